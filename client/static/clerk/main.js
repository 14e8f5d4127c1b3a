/*
 * Virtual Windows clerk console (client/templates/clerk.html loads this module).
 *
 * Speaks docs/protocol.md on the Socket.IO namespace /clerk (shared/connection.js). The clerk is the
 * answerer of each call. Keyboard: A = accept, D = decline, H = hang up, T = transfer menu, Ctrl+Enter = save
 * the wrap-up. The phases and their modules are listed in screen.js. This module starts the page: the token
 * or login session, the connection and the server's `welcome` and `status`, the clerk's status buttons and
 * sign-out, clicks and keys, and the clocks' tick.
 */

import { Connection, socketIoLoaded } from '../shared/connection.js';
import { forgetToken, reloadOnNewToken, takeToken, tokenInAddress } from '../shared/token.js';
import { finishCall, hangup, onCallEnded, onMatched, onRecorderLost, onSignal, renderCallClock, toggleCamera, toggleMic } from './call.js';
import { accept, decline, onRing, onRingEnded, renderRingClock, ringer, stopRing } from './ring.js';
import { render, setNotice } from './screen.js';
import { el, send, state } from './state.js';
import { t } from './texts.js';
import { askTransfer, toggleTransfer, transferTo } from './transfer.js';
import { addMatter, removeMatter, renderWrapupClocks, startWrapup, submitWrapup, wireWrapupForm } from './wrapup.js';

const TOKEN_KEY = 'vw.clerkToken';

// ------------------------------------------------------------------ the server

function onWelcome(msg) {
  msg = msg || {};
  state.conn = 'online';
  state.clerk = msg.clerk || null;
  state.status = typeof msg.status === 'string' ? msg.status : 'away';
  if (typeof msg.wrapup_timeout_s === 'number') state.wrapupTimeoutS = msg.wrapup_timeout_s;
  if (Array.isArray(msg.fields) && msg.fields.length) state.fields = msg.fields;
  el.banner.hidden = true;
  if (state.ring) stopRing();
  const held = msg.call && typeof msg.call === 'object' && typeof msg.call.call_id === 'string' ? msg.call : null;
  if (held && state.call && state.call.id === held.call_id) {
    // back within the grace period (a lost connection, or another node took over): the call went on
    render();
    return;
  }
  if (state.call) {
    // a new connection: the server put the visitor back in the queue (protocol, "Dropped connections")
    finishCall(state.call, 'clerk_disconnected', 'system');
    setNotice(t('Your connection dropped during the call; the visitor was put back at the front of the queue.'), 'warn');
    return;
  }
  if (held && held.matched) {
    // this page was reloaded during a call: take it up again; the kiosk restarts the media, and this
    // page's new connection answers that restart
    onMatched(Object.assign({}, held.matched, { call_id: held.call_id }));
    return;
  }
  if (Array.isArray(msg.pending_wrapups)) {
    // answered calls still waiting for their matters (e.g. this page was reloaded): offer the form again
    for (const p of msg.pending_wrapups) {
      if (!p || typeof p.call_id !== 'string') continue;
      const endedMs = typeof p.ended_at === 'number' ? p.ended_at * 1000 : Date.now();
      startWrapup({ id: p.call_id, field: p.field, peer: {}, startedAt: endedMs, endedAt: endedMs, how: '' });
      const w = state.wrapups.find((x) => x.callId === p.call_id);
      if (w && state.status !== 'wrap_up') w.late = true;
    }
  }
  if (state.status === 'wrap_up' && !state.wrapups.length) {
    // wrapping up a call this page no longer knows (it was reloaded)
    setNotice(t('You are in wrap-up for a call this page no longer shows (it was reloaded). Calls will be offered again when the wrap-up time runs out; the call is listed under “My sessions”.'), 'warn');
    return;
  }
  render();
}

function onStatus(msg) {
  if (!msg || typeof msg.status !== 'string') return;
  state.status = msg.status;
  if (msg.reason === 'wrapup_timeout') {
    // the server offers calls again; the form stays, a late wrap-up is still accepted
    for (const w of state.wrapups) w.late = true;
  }
  if (msg.reason === 'ring_timeout') {
    stopRing();
    setNotice(t('You missed a call and were set to away.'), 'warn');
    return;
  }
  render();
}

function connect() {
  // a logged-in console sends no token: the session cookie goes with the handshake
  state.conn = 'connecting';
  state.connection = new Connection('/clerk', state.token, {
    online: () => {
      el.banner.hidden = true;
    },
    retrying: (cause) => {
      if (cause === 'dropped') {
        if (state.ring) stopRing();
        state.conn = 'connecting';
      }
      el.banner.hidden = false;
      if (cause !== 'refused') render();
    },
    unauthorized: () => {
      state.conn = 'unauthorized';
      el.banner.hidden = true;
      render();
    },
    replaced: () => {
      // the same clerk connected from another window
      if (state.ring) stopRing();
      if (state.call) finishCall(state.call, 'clerk_disconnected', 'system');
      state.conn = 'replaced';
      el.banner.hidden = true;
      render();
    },
    closed: () => {
      if (state.ring) stopRing();
      render();
    },
  }, {
    welcome: onWelcome,
    status: onStatus,
    ring: onRing,
    ring_ended: onRingEnded,
    matched: onMatched,
    recorder_lost: onRecorderLost,
    signal: onSignal,
    call_ended: onCallEnded,
  });
}

// ------------------------------------------------------------------ the clerk

async function setStatus(status) {
  ringer.unlock(); // a click: the browser lets the ring sound play from now on
  const answer = await send('set_status', { status });
  if (answer.ok) {
    if (typeof answer.status === 'string') state.status = answer.status;
    if (state.notice && state.notice.kind === 'warn' && status === 'available') setNotice(null);
    render();
  } else {
    setNotice(t('The server refused: {message}', { message: answer.error.message || answer.error.code }), 'error');
  }
}

function signOut() {
  forgetToken(TOKEN_KEY);
  state.token = null;
  if (state.call) finishCall(state.call, 'hangup', 'clerk');
  stopRing();
  if (state.connection) state.connection.close();
  state.connection = null;
  state.conn = 'signedout';
  state.clerk = null;
  setNotice(null);
}

function onClick(ev) {
  ringer.unlock();
  const button = ev.target instanceof Element ? ev.target.closest('button') : null;
  if (!button || button.disabled) return;
  if (button.dataset.transferField) {
    askTransfer(button.dataset.transferField); // confirmed below before anything is sent
    return;
  }
  if (button.dataset.removeMatter) {
    removeMatter(button.dataset.removeMatter);
    return;
  }
  switch (button.id) {
    case 'transfer':
      toggleTransfer();
      break;
    case 'transfer-confirm-yes':
      transferTo(state.transferConfirm);
      break;
    case 'transfer-confirm-no':
      askTransfer(null);
      break;
    case 'wrapup-add-matter':
      addMatter();
      break;
    case 'wrapup-done-close':
      state.wrapupDone = null;
      render();
      break;
    case 'set-available':
      setStatus('available');
      break;
    case 'set-away':
      setStatus('away');
      break;
    case 'accept':
      accept();
      break;
    case 'decline':
      decline();
      break;
    case 'hangup':
      hangup();
      break;
    case 'mute-mic':
      toggleMic();
      break;
    case 'mute-camera':
      toggleCamera();
      break;
    case 'sign-out':
      signOut();
      break;
    case 'reconnect':
      if (state.connection) {
        state.conn = 'connecting';
        state.connection.reconnect();
        render();
      }
      break;
    default:
      break;
  }
}

function onKey(ev) {
  if (ev.defaultPrevented || ev.repeat) return;
  if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey) && !el.wrapupForm.hidden) {
    ev.preventDefault();
    submitWrapup();
    return;
  }
  if (ev.key === 'Escape' && state.transferOpen) {
    ev.preventDefault();
    toggleTransfer(false);
    el.transfer.focus({ preventScroll: true });
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const target = ev.target;
  if (target instanceof Element && target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]')) return;
  const key = (ev.key || '').toLowerCase();
  if (key === 'a' && state.ring && !state.ring.busy) {
    ev.preventDefault();
    accept();
  } else if (key === 'd' && state.ring && !state.ring.busy) {
    ev.preventDefault();
    decline();
  } else if (key === 'h' && state.call) {
    ev.preventDefault();
    hangup();
  } else if (key === 't' && state.call && !state.call.transferring) {
    ev.preventDefault();
    toggleTransfer();
  }
}

/** The clocks: ring countdown, call duration, wrap-up time. */
function tick() {
  if (state.ring) renderRingClock();
  if (state.call) renderCallClock();
  renderWrapupClocks();
}

function start() {
  document.addEventListener('click', onClick);
  document.addEventListener('keydown', (ev) => {
    ringer.unlock();
    onKey(ev);
  });
  setInterval(tick, 250);
  wireWrapupForm();
  if (el.logoutForm) {
    el.logoutForm.addEventListener('submit', (ev) => {
      if (state.call && !window.confirm(t('You are in a call. Logging out ends it for you and sends the visitor back to the queue. Log out?'))) {
        ev.preventDefault();
        return;
      }
      if (state.connection) state.connection.close();
    });
  }

  const givenInAddress = tokenInAddress();
  state.token = takeToken(TOKEN_KEY);
  reloadOnNewToken();
  // logged in through /login: the session identifies the clerk, unless a token was just given in the address
  if (state.loggedIn && !givenInAddress) state.token = null;
  if (!state.token && state.loggedIn) {
    if (!socketIoLoaded()) {
      setNotice('socket.io client missing', 'error');
      return;
    }
    connect();
    render();
    return;
  }
  if (!state.token) {
    state.conn = 'setup';
    render();
    return;
  }
  if (!socketIoLoaded()) {
    setNotice('socket.io client missing', 'error');
    return;
  }
  connect();
  render();
}

start();
