/*
 * Virtual Windows kiosk: the wait screen. The place in line and the estimated wait (`queued`), a clerk being
 * rung (`ringing`), a transfer to another field (same camera, new call id), and a call the server held for
 * this kiosk while it was offline (`welcome.call`).
 */

import { setText } from '../shared/dom.js';
import { attachStream, stopStream } from '../shared/media.js';
import { closePeer, endLocalCall, newCall, onMatched, ownCall, stray } from './call.js';
import { showError } from './navigation.js';
import { cameraErrorKey, openCamera, withdraw } from './request.js';
import { setPhase } from './screen.js';
import { el, fieldName, state } from './state.js';
import { t, text, tn } from './texts.js';

export function onQueued(msg) {
  const call = ownCall(msg);
  if (!call) return stray(msg);
  if (call.media) {
    // back in the queue while talking: the clerk's connection dropped
    closePeer(call);
    call.note = 'clerkDisconnected';
  } else if (msg.reason === 'clerk_disconnected') {
    call.note = 'clerkDisconnected';
  }
  call.position = typeof msg.position === 'number' ? msg.position : call.position;
  call.wait = msg.estimated_wait_s === null || typeof msg.estimated_wait_s === 'number' ? msg.estimated_wait_s : call.wait;
  setPhase('queue');
}

export function onRinging(msg) {
  const call = ownCall(msg);
  if (!call) return stray(msg);
  if (call.media) {
    // the clerk dropped and the call went straight to another clerk
    closePeer(call);
    call.note = 'clerkDisconnected';
  }
  setPhase('ringing');
}

/** The clerk handed the visitor on to another field: same camera, new call id, front of that queue. */
export function transferCall(call, to) {
  closePeer(call);
  call.id = to.call_id;
  if (typeof to.field === 'string' && to.field) call.field = to.field;
  call.position = undefined;
  call.wait = undefined;
  call.note = 'transferred';
  setPhase('queue');
}

/**
 * The server held a call for this kiosk while it was offline (welcome.call, after a lost connection, a
 * reload, or the node it was connected to going down). A waiting call: back to the wait screen for it. A
 * call in progress (`state` "connecting" or "active"): its media may have gone on flowing peer to peer,
 * and the page simply carries on; after a reload the page has no peer connection any more, so it opens
 * the restart's (attempt 1) and the clerk's side replaces its own when that offer comes.
 */
export function resumeCall(held) {
  const local = state.call;
  const inProgress = (held.state === 'connecting' || held.state === 'active') && held.matched;
  if (local && local.id === held.call_id) {
    if (inProgress && state.phase === 'call' && local.media) {
      setPhase('call'); // signaling resumes on the new connection; the media went on
      return;
    }
    if (!inProgress && ['requesting', 'queue', 'ringing'].includes(state.phase)) {
      local.note = local.note || 'resumed';
      setPhase('queue');
      return;
    }
  }
  endLocalCall();
  clearTimeout(state.thanksTimer);
  state.error = null;
  state.thanks = null;
  state.rating = null;
  state.callback = null;
  if (typeof held.language === 'string' && state.languages.includes(held.language)) state.lang = held.language;
  const call = newCall(typeof held.field === 'string' ? held.field : '', state.lang);
  call.id = held.call_id;
  call.note = 'resumed';
  state.call = call;
  setPhase('queue');
  // onMatched waits for this before it makes the offer
  call.cameraReady = openCamera()
    .then((stream) => {
      if (state.call !== call || call.over) {
        stopStream(stream);
        return;
      }
      call.stream = stream;
      attachStream(el.previewVideo, stream);
    })
    .catch((err) => {
      if (state.call !== call) return;
      console.warn('vw: getUserMedia failed', err);
      withdraw(call.id);
      showError(cameraErrorKey(err), err && err.name ? `${err.name}: ${err.message || ''}` : '');
    })
    .finally(() => {
      call.cameraReady = null;
    });
  // onMatched waits for the camera; attempt 1 replaces the connection the reload cut
  if (inProgress) onMatched(Object.assign({}, held.matched, { call_id: held.call_id }), 1);
}

export function renderWait() {
  const call = state.call;
  if (!call) return;
  const ringing = state.phase === 'ringing';
  setText(el.waitField, fieldName(call.field));
  el.queueNote.hidden = !call.note;
  el.queueNote.dataset.note = call.note || '';
  el.queueNote.classList.toggle('vw-note-calm', call.note === 'transferred' || call.note === 'resumed');
  setText(el.queueNote, call.note ? text(call.note, { field: fieldName(call.field) }) : '');
  el.queueBox.hidden = ringing;
  el.ringingBox.hidden = !ringing;

  const position = call.position;
  setText(el.queuePosition, typeof position === 'number' ? String(position) : '…');
  el.queuePosition.dataset.position = typeof position === 'number' ? String(position) : '';
  let positionText = '';
  if (position === 1) positionText = t('You are next');
  else if (typeof position === 'number' && position > 1) positionText = tn('{n} person ahead of you', '{n} people ahead of you', position - 1);
  setText(el.queuePositionText, positionText);

  const wait = call.wait; // undefined: not known yet; null: nobody who could take it is there (away or offline)
  const nobody = !ringing && wait === null;
  el.nobodyNote.hidden = !nobody;
  setText(el.nobodyNote, nobody ? t('Nobody who handles {field} is available right now. You can keep waiting, or leave your phone number and we will call you back.', { field: fieldName(call.field) }) : '');
  el.waitCallback.hidden = !nobody;
  setText(el.waitTitle, ringing ? t('Connecting you to a clerk…') : nobody ? t('No clerk is available right now') : t('Please wait, a clerk will be with you shortly'));
  let waitText = '…';
  if (wait === null) waitText = t('unknown');
  else if (typeof wait === 'number') waitText = wait < 60 ? t('less than a minute') : tn('about {n} minute', 'about {n} minutes', Math.round(wait / 60));
  setText(el.estimatedWait, waitText);
  el.estimatedWait.dataset.seconds = typeof wait === 'number' ? String(Math.round(wait)) : '';
}
