/*
 * Virtual Windows kiosk: the visitor's touch screen (client/templates/kiosk.html loads this module).
 *
 * Speaks docs/protocol.md on the Socket.IO namespace /kiosk (shared/connection.js). The kiosk is the offerer
 * of each call. Texts come from the kiosk catalogs (texts.js; zh, en, ar). The phases and their modules are
 * listed in screen.js. This module starts the page: the token, the connection and the server's `welcome`,
 * taps and keys, and the timer that brings an untouched screen back to the start.
 */

import { Connection, socketIoLoaded } from '../shared/connection.js';
import { readData } from '../shared/dom.js';
import { translator } from '../shared/i18n.js';
import { reloadOnNewToken, takeToken } from '../shared/token.js';
import { endLocalCall, hangup, onCallEnded, onMatched, onRecorderLost, onSignal, renderCallTimer, toggleMute } from './call.js';
import { offerCallback, openCallback, pressKey, wireCallbackForm } from './callback.js';
import { buildFields, buildLanguages, renderMultilang } from './idle.js';
import { goIdle, showError } from './navigation.js';
import { onQueued, onRinging, resumeCall } from './queue.js';
import { buildChips, chooseScore, finishRating, toggleReason } from './rating.js';
import { answerConsent, cancel, chooseField } from './request.js';
import { render, setBanner, setLanguage, setPhase } from './screen.js';
import { cleanLanguages, el, state } from './state.js';

const TOKEN_KEY = 'vw.kioskToken';
const IDLE_TIMEOUT_MS = 60 * 1000; // error-like screens go back to the start after this long untouched
// phases that go back to the start after this long untouched
const PHASE_TIMEOUTS_MS = {
  camera: IDLE_TIMEOUT_MS,
  consent: IDLE_TIMEOUT_MS,
  error: IDLE_TIMEOUT_MS,
  rating: 40 * 1000, // the visitor walked away: send what was chosen, say goodbye
  callback: 120 * 1000,
  callback_done: 20 * 1000,
};

// Test hook, deliberately global: tests/browser/test_languages.py checks the plural forms in Chromium with the
// page's own translator and catalogs, as `VW.translator(VW.readData('vw-i18n'), () => lang)`. The modules
// themselves share nothing through globals.
window.VW = Object.freeze({ translator, readData });

// ------------------------------------------------------------------ the server

function onWelcome(msg) {
  msg = msg || {};
  state.kiosk = msg.kiosk || null;
  if (Array.isArray(msg.fields) && msg.fields.length) state.fields = msg.fields;
  state.retentionDays = Number(msg.recording_retention_days) || 0;
  if (Array.isArray(msg.languages) && msg.languages.length) {
    state.languages = cleanLanguages(msg.languages);
    if (!state.languages.includes(state.defaultLang)) state.defaultLang = state.languages[0];
    if (!state.languages.includes(state.lang)) state.lang = state.defaultLang;
  }
  buildLanguages();
  buildFields();
  renderMultilang();
  setBanner(false);

  const serverCall = msg.call && typeof msg.call === 'object' ? msg.call : null;
  const serverCallId = serverCall ? serverCall.call_id || serverCall.id : null;
  const call = state.call;
  if (typeof serverCallId === 'string' && serverCallId) {
    // the server kept this kiosk's place in the queue while it was away: back to it
    resumeCall(Object.assign({}, serverCall, { call_id: serverCallId }));
  } else if (call && ['requesting', 'queue', 'ringing', 'call'].includes(state.phase)) {
    // A new connection: the server ended whatever this page was doing (protocol:
    // a kiosk that disconnects ends its call).
    showError('errConnectionLost');
  } else if (['connecting', 'replaced', 'unauthorized'].includes(state.phase)) {
    goIdle(false);
  } else {
    render();
  }
}

function connect() {
  state.connection = new Connection('/kiosk', state.token, {
    online: () => setBanner(false),
    retrying: () => setBanner(true),
    unauthorized: () => {
      endLocalCall();
      setPhase('unauthorized');
      setBanner(false);
    },
    replaced: () => {
      // the server closed this connection: the same kiosk connected elsewhere
      endLocalCall();
      setPhase('replaced');
      setBanner(false);
    },
  }, {
    welcome: onWelcome,
    queued: onQueued,
    ringing: onRinging,
    matched: onMatched,
    signal: onSignal,
    call_ended: onCallEnded,
    recorder_lost: onRecorderLost,
  });
}

// ------------------------------------------------------------------ the visitor

function onClick(ev) {
  const target = ev.target instanceof Element ? ev.target : null;
  if (!target) return;
  const fieldButton = target.closest('[data-field]');
  if (fieldButton && el.fields.contains(fieldButton)) {
    chooseField(fieldButton.dataset.field);
    return;
  }
  const langButton = target.closest('[data-lang]');
  if (langButton && el.languages.contains(langButton)) {
    setLanguage(langButton.dataset.lang);
    return;
  }
  const scoreButton = target.closest('[data-score]');
  if (scoreButton && el.rateScores.contains(scoreButton)) {
    chooseScore(scoreButton.dataset.score);
    return;
  }
  const chip = target.closest('[data-reason]');
  if (chip && el.rateChips.contains(chip)) {
    toggleReason(chip.dataset.reason);
    return;
  }
  const key = target.closest('[data-key]');
  if (key && el.keypad.contains(key)) {
    pressKey(key.dataset.key);
    return;
  }
  const button = target.closest('button');
  switch (button && button.id) {
    case 'rate-send':
      finishRating(true);
      break;
    case 'rate-skip':
      finishRating(false);
      break;
    case 'callback-offer':
      offerCallback();
      break;
    case 'wait-callback': {
      // nobody who could take the call is there: leave the queue and leave a number instead
      const field = state.call && state.phase === 'queue' ? state.call.field : null;
      if (!field) break;
      cancel();
      openCallback(field);
      break;
    }
    case 'callback-cancel':
    case 'callback-finish':
      goIdle(true);
      break;
    case 'callback-submit':
      break; // the form's submit event
    case 'consent-yes':
      answerConsent(true);
      break;
    case 'consent-no':
      answerConsent(false);
      break;
    case 'consent-back':
      state.consent = null;
      goIdle(false);
      break;
    case 'cancel':
    case 'camera-back':
      cancel();
      break;
    case 'back':
      goIdle(false);
      break;
    case 'hangup':
      hangup();
      break;
    case 'mute':
      toggleMute();
      break;
    case 'reconnect':
      setPhase('connecting');
      if (state.connection) state.connection.reconnect();
      break;
    default:
      if (state.phase === 'thanks' && target.closest('[data-screen="thanks"]')) goIdle(true);
  }
}

function touched() {
  state.lastTouch = Date.now();
}

function tick() {
  renderCallTimer();
  const idleFor = Date.now() - state.lastTouch;
  const limit = PHASE_TIMEOUTS_MS[state.phase];
  if (limit !== undefined) {
    if (idleFor < limit) return;
    if (state.phase === 'rating') finishRating(true); // what was chosen is kept; then thanks, then the start
    else goIdle(true);
  } else if (idleFor < IDLE_TIMEOUT_MS) {
    return;
  } else if (state.phase === 'idle' && state.lang !== state.defaultLang) {
    state.lastTouch = Date.now();
    setLanguage(state.defaultLang);
  }
}

function start() {
  buildLanguages();
  buildFields();
  buildChips();
  renderMultilang();
  document.addEventListener('click', onClick);
  wireCallbackForm();
  for (const type of ['pointerdown', 'touchstart', 'keydown']) {
    document.addEventListener(type, touched, { capture: true, passive: true });
  }
  document.addEventListener('contextmenu', (ev) => ev.preventDefault());
  setInterval(tick, 1000);

  state.token = takeToken(TOKEN_KEY);
  reloadOnNewToken();
  if (!state.token) {
    setPhase('setup');
    return;
  }
  if (!socketIoLoaded()) {
    showError('errOffline', 'socket.io client missing');
    return;
  }
  setPhase('connecting');
  connect();
}

start();
