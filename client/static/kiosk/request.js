/*
 * Virtual Windows kiosk: from the tap on a service field to the server's answer to `request_call`: the
 * recording notice where the field records, the camera, the request, and cancelling (`cancel_call`) before a
 * clerk answers.
 */

import { setText } from '../shared/dom.js';
import { attachStream, stopStream } from '../shared/media.js';
import { newCall } from './call.js';
import { goIdle, showError } from './navigation.js';
import { setPhase } from './screen.js';
import { el, fieldById, fieldName, send, state } from './state.js';
import { t, tn } from './texts.js';

// request_call refusals after which the visitor may leave a phone number instead
const CALLBACK_CODES = new Set(['field_not_served', 'outside_service_hours']);

export function cameraErrorKey(err) {
  const name = err && err.name;
  if (name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError') return 'cameraDenied';
  if (name === 'NotFoundError' || name === 'DevicesNotFoundError' || name === 'OverconstrainedError' || name === 'NotSupportedError') {
    return 'cameraMissing';
  }
  return 'cameraFailed';
}

function ackErrorKey(code) {
  switch (code) {
    case 'field_not_served':
    case 'unknown_field':
      return 'errFieldNotServed';
    case 'outside_service_hours':
      return 'errOutsideHours';
    case 'already_in_call':
      return 'errAlreadyInCall';
    case 'timeout':
      return 'errTimeout';
    case 'offline':
      return 'errOffline';
    default:
      return 'errGeneric';
  }
}

/** The kiosk's camera and microphone: a video call needs both. */
export async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    const err = new Error('navigator.mediaDevices is not available (is the page served over https?)');
    err.name = 'NotSupportedError';
    throw err;
  }
  return navigator.mediaDevices.getUserMedia({ video: true, audio: true });
}

export function chooseField(fieldId) {
  if (state.phase !== 'idle' || state.call) return;
  if (!state.connection || !state.connection.connected) {
    showError('errOffline');
    return;
  }
  const f = fieldById(fieldId);
  const policy = f && f.recording;
  if (policy === 'always' || policy === 'ask') {
    // the visitor hears about the recording before anything is recorded, and before the camera starts
    state.consent = { field: fieldId, policy };
    setPhase('consent');
    return;
  }
  startCall(fieldId, null);
}

export function answerConsent(agreed) {
  const consent = state.consent;
  if (!consent || state.phase !== 'consent') return;
  state.consent = null;
  setPhase('idle'); // startCall begins from the start screen
  startCall(consent.field, agreed);
}

async function startCall(fieldId, consent) {
  if (state.phase !== 'idle' || state.call) return;
  const call = newCall(fieldId, state.lang);
  call.consent = consent;
  state.call = call;
  setPhase('camera');

  let stream;
  try {
    stream = await openCamera();
  } catch (err) {
    if (state.call !== call) return; // the visitor left meanwhile
    console.warn('vw: getUserMedia failed', err);
    showError(cameraErrorKey(err), err && err.name ? `${err.name}: ${err.message || ''}` : '');
    return;
  }
  if (state.call !== call) {
    stopStream(stream);
    return;
  }
  call.stream = stream;
  attachStream(el.previewVideo, stream);
  setPhase('requesting');

  const request = { field: fieldId, language: call.language };
  if (call.consent !== null) request.recording_consent = call.consent;
  const answer = await send('request_call', request);
  if (state.call !== call) {
    // cancelled (or timed out) before the server answered: withdraw the call it made
    if (answer.ok && answer.call_id) withdraw(answer.call_id);
    return;
  }
  if (!answer.ok) {
    const code = answer.error.code;
    if (CALLBACK_CODES.has(code)) {
      // expected, not a fault: say so calmly and offer a call back (the server's English text stays out)
      const hours = /(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})/.exec(answer.error.message || '');
      showError(ackErrorKey(code), '', { hours: hours ? `${hours[1]}–${hours[2]}` : '', callbackField: fieldId });
    } else {
      showError(ackErrorKey(code), answer.error.message);
    }
    return;
  }
  call.id = call.id || answer.call_id;
  if (state.phase === 'requesting') {
    // events for this call may have come before this answer; only fill in what they did not
    if (call.position === undefined) call.position = answer.position;
    if (call.wait === undefined) call.wait = answer.estimated_wait_s;
    setPhase(answer.state === 'ringing' ? 'ringing' : 'queue');
  }
}

export async function cancel() {
  const call = state.call;
  if (!call || !['camera', 'requesting', 'queue', 'ringing'].includes(state.phase)) return;
  goIdle(false);
  if (call.id) withdraw(call.id);
  // no id yet: startCall() withdraws the call when the server's answer comes
}

/** Cancel a call that is waiting or ringing; one that was answered meanwhile is hung up. */
export async function withdraw(callId) {
  const answer = await send('cancel_call', { call_id: callId });
  if (!answer.ok && answer.error.code === 'wrong_state') {
    await send('hangup', { call_id: callId });
  }
}

/** The recording notice before a call in a field that records ("always": accept or go back; "ask": yes or no). */
export function renderConsent() {
  const consent = state.consent;
  if (!consent || state.phase !== 'consent') return;
  const ask = consent.policy === 'ask';
  setText(el.consentTitle, ask ? t('May we record this call?') : t('This video call is recorded'));
  setText(el.consentField, fieldName(consent.field));
  const days = state.retentionDays;
  const kept = days > 0 ? tn('It is deleted after {n} day.', 'It is deleted after {n} days.', days) : '';
  setText(el.consentText, `${t('The recording is kept as a record of your matter. Only authorised staff may view it.')} ${kept}`.trim());
  setText(el.consentYes, ask ? t('Yes, record it') : t('I agree, start the call'));
  el.consentNo.hidden = !ask;
}
