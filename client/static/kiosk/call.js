/*
 * Virtual Windows kiosk: the visitor's call on this side. The kiosk is the offerer of each call: on `matched`
 * it opens the call's media (shared/call-media.js) with the camera it started for the request, and talks to
 * the clerk until `call_ended` or the visitor's hang-up. Also: which call an event is about, and ending
 * the call's local resources (peer connection, recorder, camera, videos).
 */

import { CallMedia } from '../shared/call-media.js';
import { setText } from '../shared/dom.js';
import { formatDuration } from '../shared/format.js';
import { attachStream, stopStream } from '../shared/media.js';
import { goIdle, showError } from './navigation.js';
import { transferCall } from './queue.js';
import { showRating } from './rating.js';
import { render, setPhase } from './screen.js';
import { el, fieldName, localName, send, state } from './state.js';
import { t, text } from './texts.js';

export function newCall(fieldId, language) {
  return {
    id: null,
    field: fieldId,
    language,
    stream: null,
    media: null, // the CallMedia while a clerk is connected
    peer: null,
    position: undefined,
    wait: undefined,
    note: null,
    mediaNote: null,
    matched: false,
    consent: null, // the answer to the recording notice (null: the field does not record)
    recording: false, // this call is recorded: the camera goes to the server's recorder too
    cameraReady: null, // a promise while the camera of a resumed call starts
    over: false,
  };
}

/** Forget the call on this side: peer connection, camera, videos. Sends nothing. */
export function endLocalCall() {
  const call = state.call;
  state.call = null;
  if (!call) return;
  call.over = true;
  if (call.media) call.media.close();
  stopStream(call.stream);
  attachStream(el.previewVideo, null);
  attachStream(el.localVideo, null);
  attachStream(el.remoteVideo, null);
}

/** The clerk is gone but the call goes on (back to the queue, or to another field): close its media. */
export function closePeer(call) {
  if (call.media) call.media.close();
  call.media = null;
  call.peer = null;
  call.mediaNote = null;
  attachStream(el.remoteVideo, null);
  attachStream(el.localVideo, null);
  attachStream(el.previewVideo, call.stream);
}

/** The visitor's call that `msg` is about, or null. */
export function ownCall(msg) {
  const call = state.call;
  if (!call || !msg || typeof msg.call_id !== 'string') return null;
  if (call.id === msg.call_id) return call;
  if (call.id === null && state.phase === 'requesting') {
    // the server's events can overtake the answer to request_call
    call.id = msg.call_id;
    return call;
  }
  return null;
}

/** Events about a call nobody here owns (left behind by a cancel or a reload): end it. */
export function stray(msg) {
  if (!msg || typeof msg.call_id !== 'string' || state.strays.has(msg.call_id)) return;
  if (state.call && state.call.id === msg.call_id) return;
  state.strays.add(msg.call_id);
  send('hangup', { call_id: msg.call_id });
}

export function onMatched(msg, attempt = 0) {
  const call = ownCall(msg);
  if (!call) return stray(msg);
  if (call.cameraReady) {
    // a resumed call whose camera is still starting
    call.cameraReady.then(() => {
      if (state.call === call && !call.over && call.id === msg.call_id) onMatched(msg, attempt);
    });
    return;
  }
  if (call.media) closePeer(call);
  call.matched = true;
  call.talkingSince = call.talkingSince || Date.now(); // the call timer (kept over a restarted connection)
  call.peer = msg.peer || {};
  call.note = null;
  call.mediaNote = 'connectingMedia';
  const media = new CallMedia({
    role: 'offerer',
    attempt,
    callId: call.id,
    iceServers: msg.ice_servers,
    iceTransportPolicy: msg.ice_transport_policy,
    stream: call.stream,
    remoteVideo: el.remoteVideo,
    send,
    onMediaState: (what) => onMediaState(call, media, what),
  });
  call.media = media;
  call.recording = msg.recording === true;
  if (call.recording) media.record();
  attachStream(el.previewVideo, null);
  attachStream(el.localVideo, call.stream);
  setPhase('call');
  media.offer().catch(() => {
    if (call.media === media) {
      call.mediaNote = 'mediaProblem';
      render();
    }
  });
}

function onMediaState(call, media, what) {
  if (call.media !== media || state.call !== call) return;
  if (what === 'connected') call.mediaNote = null;
  else if (what === 'unstable') call.mediaNote = 'mediaProblem';
  else if (what === 'connecting') call.mediaNote = 'connectingMedia';
  render();
}

export function onRecorderLost(msg) {
  const call = state.call;
  if (!call || !msg || call.id !== msg.call_id || !call.recording || state.phase !== 'call') return;
  if (call.media) call.media.record(); // the server's recorder restarted: send to it again
}

export function onSignal(msg) {
  const call = state.call;
  if (!call || !msg || call.id !== msg.call_id || !call.media) return;
  call.media.handleSignal(msg);
}

export function onCallEnded(msg) {
  const call = state.call;
  if (!call || !msg || call.id !== msg.call_id) return;
  const to = msg.transferred_to;
  if (msg.reason === 'transferred' && to && typeof to.call_id === 'string' && to.call_id) {
    transferCall(call, to);
  } else if (msg.reason === 'media_failed') {
    showError('errMediaFailed'); // the connection was lost and could not be restored
  } else if (state.phase === 'call' || (call.matched && msg.reason === 'hangup')) {
    showRating(call, msg.reason !== 'hangup');
  } else if (msg.by === 'visitor' && msg.reason === 'cancelled') {
    goIdle(false);
  } else {
    // ended by the system before a clerk answered
    showError('errGeneric', msg.reason ? `${msg.reason} (${msg.by || ''})` : '');
  }
}

export function hangup() {
  const call = state.call;
  if (!call || state.phase !== 'call') return;
  const done = call.id ? send('hangup', { call_id: call.id }) : Promise.resolve();
  showRating(call, false, done);
}

/** The visitor's microphone off or on (the clerk then hears nothing; the picture goes on). */
export function toggleMute() {
  const call = state.call;
  if (!call || !call.stream || state.phase !== 'call') return;
  call.muted = !call.muted;
  for (const track of call.stream.getAudioTracks()) track.enabled = !call.muted;
  render();
}

export function renderCallTimer() {
  const call = state.call;
  if (!call || state.phase !== 'call') return;
  setText(el.callTimer, formatDuration(call.talkingSince ? (Date.now() - call.talkingSince) / 1000 : 0));
}

export function renderCall() {
  const call = state.call;
  if (!call || state.phase !== 'call') return;
  el.mute.setAttribute('aria-pressed', String(!!call.muted));
  setText(el.muteLabel, call.muted ? t('Microphone off') : t('Mute'));
  renderCallTimer();
  el.recIndicator.hidden = !call.recording;
  const peer = call.peer || {};
  setText(el.peerName, peer.name || '');
  setText(el.peerCenter, localName(peer.center || ''));
  setText(el.callField, fieldName(call.field));
  el.callNote.hidden = !call.mediaNote;
  setText(el.callNote, call.mediaNote ? text(call.mediaNote) : '');
}
