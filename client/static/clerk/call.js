/*
 * Virtual Windows clerk console: the call being answered. The clerk is the answerer of each call: on
 * `matched` the console starts its camera and microphone (or receives only), opens the call's media
 * (shared/call-media.js), and talks until `call_ended` or the clerk's hang-up; mute buttons; the call's line
 * in the log of recent calls; and the wrap-up when the server asks for one.
 */

import { CallMedia } from '../shared/call-media.js';
import { setText } from '../shared/dom.js';
import { formatDuration } from '../shared/format.js';
import { pickName } from '../shared/i18n.js';
import { attachStream, stopStream } from '../shared/media.js';
import { stopRing } from './ring.js';
import { render, setNotice } from './screen.js';
import { el, fieldName, lang, languageName, send, state, TIMEZONE } from './state.js';
import { t, text } from './texts.js';
import { renderTransfer } from './transfer.js';
import { startWrapup } from './wrapup.js';

const LOG_LENGTH = 20;
const KEEP_ENDED = 10; // calls remembered after they end, for a call_ended that comes after a local hang-up

/** The clerk's camera and microphone, or less: the call goes on receive-only, with a note why. */
async function localMedia() {
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) return { stream: null, note: 'mediaInsecure' };
  try {
    return { stream: await md.getUserMedia({ video: true, audio: true }), note: null };
  } catch (err) {
    console.warn('vw: camera and microphone unavailable', err);
    if (err && (err.name === 'NotAllowedError' || err.name === 'SecurityError')) return { stream: null, note: 'mediaDenied' };
  }
  try {
    return { stream: await md.getUserMedia({ audio: true }), note: 'noCamera' };
  } catch (err) {
    return { stream: null, note: 'noMedia' };
  }
}

export async function onMatched(msg) {
  if (!msg || typeof msg.call_id !== 'string') return;
  // the call's service field (for the wrap-up's matter types): from `matched`, else from the ring
  const ringField = state.ring && state.ring.call_id === msg.call_id ? state.ring.field : undefined;
  stopRing();
  if (state.call) finishCall(state.call, 'hangup', 'system', true);
  const call = {
    id: msg.call_id,
    peer: msg.peer || {},
    field: typeof msg.field === 'string' && msg.field ? msg.field : ringField,
    startedAt: Date.now(),
    stream: null,
    media: null, // the CallMedia, once the camera is on
    signals: [], // signals that come while the camera starts
    iceNote: 'connectingMedia',
    mediaNote: null,
    micMuted: false,
    cameraMuted: false,
    transferring: null, // the field the visitor is being handed on to
    recording: msg.recording === true, // true, or 'failed' when the recorder could not be reached
    over: false,
  };
  state.call = call;
  state.transferOpen = false;
  state.wrapupDone = null;
  render();

  const local = await localMedia();
  if (state.call !== call) {
    stopStream(local.stream);
    return;
  }
  call.stream = local.stream;
  call.mediaNote = local.note;
  attachStream(el.localVideo, local.stream);
  const media = new CallMedia({
    role: 'answerer',
    callId: call.id,
    iceServers: msg.ice_servers,
    iceTransportPolicy: msg.ice_transport_policy,
    stream: local.stream,
    remoteVideo: el.remoteVideo,
    send,
    onMediaState: (what) => onMediaState(call, media, what),
    onRecorderState: (what) => {
      if (call.media !== media || state.call !== call) return;
      // the clerk should know when the matter is not being recorded
      call.recording = what === 'failed' ? 'failed' : true;
      render();
    },
  });
  call.media = media;
  if (call.recording) media.record();
  const waiting = call.signals;
  call.signals = null;
  for (const s of waiting) media.handleSignal(s);
  render();
}

function onMediaState(call, media, what) {
  if (state.call !== call || call.media !== media) return;
  if (what === 'connected') call.iceNote = null;
  else if (what === 'unstable') call.iceNote = 'mediaProblem';
  render();
}

export function onRecorderLost(msg) {
  const call = state.call;
  if (!call || !msg || msg.call_id !== call.id || !call.media || !call.media.recorder) return;
  call.media.record(); // the server's recorder restarted: send to it again
}

export function onSignal(msg) {
  const call = state.call;
  if (!call || !msg || msg.call_id !== call.id) return;
  if (call.media) call.media.handleSignal(msg);
  else if (call.signals) call.signals.push(msg);
}

function endText(reason, by, call) {
  if (reason === 'transferred' && call && call.transferring) return t('transferred to {field}', { field: fieldName(call.transferring) });
  for (const key of [`end_${reason}_${by}`, `end_${reason}`]) {
    const found = text(key);
    if (found !== undefined) return found;
  }
  return [reason, by].filter(Boolean).join(', ');
}

/** Close the call on this side and log a summary line (unless `quiet`). */
export function finishCall(call, reason, by, quiet) {
  if (call.over) return;
  call.over = true;
  call.endedAt = Date.now();
  call.how = endText(reason, by, call);
  state.ended.set(call.id, call);
  for (const id of state.ended.keys()) {
    if (state.ended.size <= KEEP_ENDED) break;
    state.ended.delete(id);
  }
  if (state.call === call) state.call = null;
  state.transferOpen = false;
  if (call.media) call.media.close();
  stopStream(call.stream);
  attachStream(el.remoteVideo, null);
  attachStream(el.localVideo, null);
  if (!quiet) {
    const how = call.how;
    // in the center's time zone, as the administrator's pages show times (labelled above the list)
    const time = new Date().toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour: '2-digit', minute: '2-digit', timeZone: TIMEZONE });
    state.log.unshift(
      t('{time} · {kiosk} · {field} · {duration} · {how}', {
        time,
        kiosk: (call.peer && call.peer.name) || '',
        field: fieldName(call.field),
        duration: formatDuration((Date.now() - call.startedAt) / 1000),
        how,
      }),
    );
    state.log.length = Math.min(state.log.length, LOG_LENGTH);
  }
  render();
}

export function onCallEnded(msg) {
  if (!msg || typeof msg.call_id !== 'string') return;
  // the live call, or one this page already closed (the clerk's own hang-up or transfer)
  const call = state.call && state.call.id === msg.call_id ? state.call : state.ended.get(msg.call_id);
  if (!call) return; // e.g. a call cancelled while it rang: ring_ended said it
  if (!call.over) finishCall(call, msg.reason, msg.by);
  if (msg.reason === 'media_failed') {
    setNotice(t('The connection was lost: the video could not be restored and the call has ended. Please log the matters.'), 'warn');
  }
  if (msg.wrap_up === true) startWrapup(call);
}

export function hangup() {
  const call = state.call;
  if (!call) return;
  finishCall(call, 'hangup', 'clerk');
  send('hangup', { call_id: call.id }).then((answer) => {
    if (!answer.ok && answer.error.code !== 'no_such_call') console.warn('vw: hangup refused', answer.error);
  });
}

export function toggleMic() {
  const call = state.call;
  if (!call || !call.stream) return;
  call.micMuted = !call.micMuted;
  for (const track of call.stream.getAudioTracks()) track.enabled = !call.micMuted;
  render();
}

export function toggleCamera() {
  const call = state.call;
  if (!call || !call.stream) return;
  call.cameraMuted = !call.cameraMuted;
  for (const track of call.stream.getVideoTracks()) track.enabled = !call.cameraMuted;
  render();
}

export function renderCall() {
  const call = state.call;
  el.callPanel.hidden = !call;
  if (!call) return;
  const peer = call.peer || {};
  setText(el.peerName, peer.name || '');
  setText(el.peerRegion, pickName(peer.region_names, lang, peer.region || ''));
  setText(el.peerLanguage, languageName(peer.language));
  setText(el.callField, fieldName(call.field));
  el.callNote.hidden = !call.iceNote;
  setText(el.callNote, call.iceNote ? text(call.iceNote) : '');
  el.mediaNote.hidden = !call.mediaNote;
  setText(el.mediaNote, call.mediaNote ? text(call.mediaNote) : '');
  el.recIndicator.hidden = !call.recording;
  el.recIndicator.classList.toggle('vw-rec-failed', call.recording === 'failed');
  setText(el.recText, call.recording === 'failed'
    ? t('Not recorded: the recorder could not be reached')
    : t('This call is recorded'));

  const stream = call.stream;
  const hasMic = !!stream && stream.getAudioTracks().length > 0;
  const hasCamera = !!stream && stream.getVideoTracks().length > 0;
  el.muteMic.disabled = !hasMic;
  el.muteCamera.disabled = !hasCamera;
  el.muteMic.setAttribute('aria-pressed', String(call.micMuted));
  el.muteCamera.setAttribute('aria-pressed', String(call.cameraMuted));
  setText(el.muteMic, call.micMuted ? t('Unmute microphone') : t('Mute microphone'));
  setText(el.muteCamera, call.cameraMuted ? t('Turn camera on') : t('Turn camera off'));
  renderTransfer(call);
  renderCallClock();
}

export function renderCallClock() {
  const call = state.call;
  if (call) setText(el.callTimer, formatDuration((Date.now() - call.startedAt) / 1000));
}
