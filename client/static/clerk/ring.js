/*
 * Virtual Windows clerk console: a call offered to this clerk (`ring`): the ring card with its countdown, the
 * ring sound, accept and decline, and the offer withdrawn (`ring_ended`).
 */

import { setText } from '../shared/dom.js';
import { formatDuration } from '../shared/format.js';
import { pickName } from '../shared/i18n.js';
import { Ringer } from './ringer.js';
import { render, setNotice } from './screen.js';
import { el, fieldName, lang, languageName, send, state } from './state.js';
import { t, text } from './texts.js';

export const ringer = new Ringer(() => {
  if (state.ring) render(); // hide the "click to enable sound" hint
});

export function stopRing() {
  ringer.stop();
  state.ring = null;
}

export function onRing(msg) {
  if (!msg || typeof msg.call_id !== 'string') return;
  const timeout = typeof msg.timeout_s === 'number' ? msg.timeout_s : 0;
  state.ring = Object.assign({}, msg, {
    receivedAt: performance.now(),
    deadline: performance.now() + timeout * 1000,
    timeoutMs: timeout * 1000,
    busy: false,
  });
  if (state.notice && state.notice.kind !== 'error') setNotice(null);
  state.wrapupDone = null;
  ringer.start();
  render();
  if (!el.accept.disabled) el.accept.focus({ preventScroll: true });
}

export function onRingEnded(msg) {
  if (!msg || !state.ring || state.ring.call_id !== msg.call_id) return;
  stopRing();
  const notice = text('ringEnded_' + msg.reason) || t('The call offer was withdrawn ({reason}).', { reason: msg.reason });
  setNotice(notice, msg.reason === 'timeout' ? 'warn' : 'info');
}

export async function accept() {
  const ring = state.ring;
  if (!ring || ring.busy) return;
  ring.busy = true;
  ringer.stop();
  render();
  const answer = await send('accept', { call_id: ring.call_id });
  // `matched` usually comes before this answer and has already set up the call
  if (!answer.ok) {
    if (state.ring === ring) state.ring = null;
    setNotice(t('The server refused: {message}', { message: answer.error.message || answer.error.code }), 'error');
  }
}

export async function decline() {
  const ring = state.ring;
  if (!ring || ring.busy) return;
  ring.busy = true;
  ringer.stop();
  render();
  const answer = await send('decline', { call_id: ring.call_id });
  if (state.ring === ring) state.ring = null;
  if (!answer.ok) setNotice(t('The server refused: {message}', { message: answer.error.message || answer.error.code }), 'error');
  else render();
}

export function renderRing() {
  const ring = state.ring;
  el.ringCard.hidden = !ring;
  if (!ring) return;
  setText(el.ringField, fieldName(ring.field));
  setText(el.ringRegion, pickName(ring.region_names, lang, ring.region || ''));
  setText(el.ringKiosk, (ring.kiosk && ring.kiosk.name) || '');
  setText(el.ringLanguage, languageName(ring.language));
  el.accept.disabled = !!ring.busy;
  el.decline.disabled = !!ring.busy;
  el.soundHint.hidden = ringer.running();
  renderRingClock();
}

export function renderRingClock() {
  const ring = state.ring;
  if (!ring) return;
  const now = performance.now();
  const leftMs = Math.max(0, ring.deadline - now);
  setText(el.ringCountdown, t('{n} s', { n: Math.ceil(leftMs / 1000) }));
  el.ringCountdown.dataset.seconds = String(Math.ceil(leftMs / 1000));
  const total = Math.max(1, ring.timeoutMs);
  el.ringCountdownBar.style.setProperty('width', `${Math.round((100 * leftMs) / total)}%`);
  setText(el.ringWaited, formatDuration((ring.waited_s || 0) + (now - ring.receivedAt) / 1000));
}
