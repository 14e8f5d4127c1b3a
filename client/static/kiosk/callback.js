/*
 * Virtual Windows kiosk: no clerk reachable (the field is not served here, or the service is closed): the
 * visitor leaves a phone number on the on-screen keypad and the page sends `request_callback`.
 */

import { setText } from '../shared/dom.js';
import { formatDay } from '../shared/format.js';
import { render, setPhase } from './screen.js';
import { el, fieldName, send, state } from './state.js';
import { t, text } from './texts.js';

const PHONE_RE = /^\+?[0-9][0-9 -]{4,19}$/; // the server's pattern (docs/protocol.md, request_callback)

/** "Leave your phone number" on the error screen of a refused call. */
export function offerCallback() {
  const field = state.error && state.error.callbackField;
  if (!field || state.phase !== 'error') return;
  state.error = null;
  openCallback(field);
}

/** The callback screen for `field` (from the error screen, or from the wait screen when nobody is there). */
export function openCallback(field) {
  state.callback = { field, phone: '', description: '', sending: false, error: null, due: null, followupId: null };
  el.callbackPhone.value = '';
  el.callbackDescription.value = '';
  setPhase('callback');
}

/** Only what a phone number may hold: digits, spaces, dashes, one leading "+"; at most 20 characters. */
export function cleanPhone(value) {
  let out = String(value || '').replace(/[^0-9+ -]/g, '');
  out = (out.startsWith('+') ? '+' : '') + out.replace(/\+/g, '');
  return out.slice(0, 20);
}

export function pressKey(key) {
  const cb = state.callback;
  if (!cb || cb.sending || state.phase !== 'callback') return;
  if (key === 'delete') cb.phone = cb.phone.slice(0, -1);
  else if (key === '+') cb.phone = cb.phone ? cb.phone : '+';
  else cb.phone = cleanPhone(cb.phone + key);
  if (cb.error && cb.error.key === 'errPhone') cb.error = null;
  render();
}

function callbackErrorKey(error) {
  const message = error.message || '';
  switch (error.code) {
    case 'invalid_payload':
      if (/\$\.description/.test(message)) return 'errDescription';
      return 'errPhone';
    case 'timeout':
      return 'errTimeout';
    case 'offline':
      return 'errOffline';
    default:
      return 'errCallback';
  }
}

export async function submitCallback() {
  const cb = state.callback;
  if (!cb || cb.sending || state.phase !== 'callback') return;
  cb.phone = cleanPhone(el.callbackPhone.value);
  cb.description = el.callbackDescription.value.trim().slice(0, 500);
  const phone = cb.phone.trim();
  if (!PHONE_RE.test(phone)) {
    cb.error = { key: 'errPhone', detail: '' };
    render();
    return;
  }
  cb.error = null;
  cb.sending = true;
  render();
  const payload = { field: cb.field, language: state.lang, phone };
  if (cb.description) payload.description = cb.description;
  const answer = await send('request_callback', payload);
  if (state.callback !== cb) return;
  cb.sending = false;
  if (!answer.ok) {
    cb.error = { key: callbackErrorKey(answer.error), detail: answer.error.message };
    render();
    return;
  }
  cb.due = typeof answer.due_date === 'string' ? answer.due_date : null;
  cb.followupId = answer.followup_id != null ? answer.followup_id : null;
  setPhase('callback_done');
}

/** The form's own inputs: the phone number typed (or pasted) and the description. */
export function wireCallbackForm() {
  el.callbackForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitCallback();
  });
  el.callbackPhone.addEventListener('input', () => {
    const cb = state.callback;
    if (!cb) return;
    cb.phone = cleanPhone(el.callbackPhone.value);
    if (cb.error && cb.error.key === 'errPhone') cb.error = null;
    render();
  });
  el.callbackDescription.addEventListener('input', () => {
    if (state.callback) state.callback.description = el.callbackDescription.value;
  });
}

export function renderCallback() {
  const cb = state.callback;
  if (!cb) return;
  setText(el.callbackField, fieldName(cb.field));
  if (el.callbackPhone.value !== cb.phone) el.callbackPhone.value = cb.phone;
  el.callbackPhone.setAttribute('aria-invalid', String(!!(cb.error && cb.error.key === 'errPhone')));
  el.callbackError.hidden = !cb.error;
  setText(el.callbackErrorText, cb.error ? text(cb.error.key) : '');
  setText(el.callbackErrorDetail, cb.error && cb.error.detail ? cb.error.detail : '');
  el.callbackSubmit.disabled = cb.sending;
  el.callbackForm.setAttribute('aria-busy', String(cb.sending));
  setText(el.callbackSubmit, cb.sending ? t('Sending…') : t('Send'));
  // the server's calendar date, in the visitor's language
  setText(el.callbackDue, cb.due ? t('By {date} at the latest.', { date: formatDay(cb.due, state.lang, 'long') }) : '');
  el.callbackDue.dataset.date = cb.due || '';
  setText(el.callbackRef, cb.followupId != null ? t('Your reference number: {id}', { id: cb.followupId }) : '');
}
