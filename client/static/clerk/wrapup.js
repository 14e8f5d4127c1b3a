/*
 * Virtual Windows clerk console: the wrap-ups of ended calls (docs/protocol.md, `wrap_up`). Calls wait in
 * state.wrapups, oldest first; the form (wrapup-form.js) shows the first. This module keeps the queue, the
 * countdowns of the server's wrap-up time, sending, and the "wrap-up saved" panel.
 */

import { make, setText } from '../shared/dom.js';
import { formatDay, formatDuration } from '../shared/format.js';
import { fieldById } from '../shared/fields.js';
import { render } from './screen.js';
import { el, fieldName, lang, phase, send, state } from './state.js';
import { t, text } from './texts.js';
import { WrapupForm } from './wrapup-form.js';

function matterTypes(fieldId) {
  const f = fieldById(state.fields, fieldId);
  return f && Array.isArray(f.matters) ? f.matters.filter((m) => m && typeof m.id === 'string') : [];
}

const wrapupForm = new WrapupForm({
  el: {
    form: el.wrapupForm,
    clockLabel: el.wrapupClockLabel,
    countdown: el.wrapupCountdown,
    call: el.wrapupCall,
    late: el.wrapupLate,
    pending: el.wrapupPending,
    matters: el.wrapupMatters,
    formError: el.wrapupFormError,
    addMatter: el.wrapupAddMatter,
    submit: el.wrapupSubmit,
    submitLabel: el.wrapupSubmitLabel,
  },
  t,
  lang,
  matterTypes,
});

export function renderWrapup() {
  const w = state.wrapups[0] || null;
  wrapupForm.render(w, {
    visible: !['setup', 'signedout', 'unauthorized', 'replaced'].includes(state.conn),
    callText: w
      ? t('{kiosk} · {field} · {duration} · {how}', {
        kiosk: (w.peer && w.peer.name) || '',
        field: fieldName(w.field),
        duration: formatDuration(w.duration),
        how: w.how,
      })
      : '',
    more: state.wrapups.length - 1,
    left: wrapupClock(w),
  });
}

/** Seconds of wrap-up time left while the server says wrap_up, else null. */
function wrapupLeft() {
  if (state.status !== 'wrap_up' || !state.wrapups.length) return null;
  const latest = state.wrapups[state.wrapups.length - 1];
  return Math.max(0, Math.ceil((latest.deadline - performance.now()) / 1000));
}

/** The form's countdown: only for the latest call's wrap-up (the one the server is timing). */
function wrapupClock(w) {
  const left = wrapupLeft();
  return left !== null && w === state.wrapups[state.wrapups.length - 1] ? left : null;
}

/** The wrap-up countdown next to the status in the header. */
export function renderStatusClock() {
  const left = wrapupLeft();
  el.statusCountdown.hidden = left === null;
  setText(el.statusCountdown, left === null ? '' : formatDuration(left));
  el.statusCountdown.dataset.seconds = left === null ? '' : String(left);
}

/** Every tick: the countdowns. */
export function renderWrapupClocks() {
  if (!state.wrapups.length) return;
  wrapupForm.renderClock(wrapupClock(state.wrapups[0]));
  renderStatusClock();
}

export function renderWrapupDone() {
  const done = state.wrapupDone;
  el.wrapupDone.hidden = !done || phase() !== 'idle';
  if (!done) return;
  setText(el.wrapupDoneText, done.already ? t('This call had been wrapped up already.') : t('Matters logged for {field}: {n}.', { n: done.matters, field: fieldName(done.field) }));
  const lines = done.followups.length
    ? done.followups.map((f) => ({
      text: t('Follow-up #{id} ({kind}): due {date}', { id: f.id, kind: text('kind_' + f.kind) || f.kind, date: formatDay(f.due_date, lang, 'short') }),
      due: f.due_date,
    }))
    : done.already ? [] : [{ text: t('No follow-up was opened.'), due: '' }];
  const key = lines.map((l) => l.text).join('\n');
  if (el.wrapupDoneFollowups.dataset.key !== key) {
    el.wrapupDoneFollowups.dataset.key = key;
    el.wrapupDoneFollowups.replaceChildren(...lines.map((l) => make('li', {
      text: l.text, dataset: l.due ? { testid: 'wrapup-followup-due', due: l.due } : {},
    })));
  }
}

/** An ended call the server asks a wrap-up for (`call_ended.wrap_up`, or `welcome.pending_wrapups`). */
export function startWrapup(call) {
  if (state.wrapups.some((w) => w.callId === call.id)) return;
  state.wrapups.push(WrapupForm.create(call, state.wrapupTimeoutS));
  state.wrapupDone = null;
  render();
  if (state.wrapups[0].callId === call.id && !state.call && !state.ring) wrapupForm.focus(state.wrapups[0], 0, 'matter_type');
}

function onWrapupInput(ev) {
  if (wrapupForm.readInput(state.wrapups[0], ev.target)) renderWrapup();
}

export function addMatter() {
  const w = state.wrapups[0];
  const index = wrapupForm.add(w);
  if (index < 0) return;
  render();
  wrapupForm.focus(w, index, 'matter_type');
}

export function removeMatter(uid) {
  const w = state.wrapups[0];
  const index = wrapupForm.remove(w, uid);
  if (index < 0) return;
  render();
  wrapupForm.focus(w, index, 'matter_type');
}

export async function submitWrapup() {
  const w = state.wrapups[0];
  if (!w || w.sending || el.wrapupForm.hidden) return;
  const problem = wrapupForm.check(w);
  if (problem) {
    w.error = problem;
    renderWrapup();
    wrapupForm.focus(w, problem.index, problem.field);
    return;
  }
  w.error = null;
  w.sending = true;
  render();
  const answer = await send('wrap_up', WrapupForm.payload(w));
  w.sending = false;
  if (!answer.ok && answer.error.code !== 'already_done') {
    // keep what was typed; show the refusal at its matter
    w.error = wrapupForm.placeError(w, answer.error);
    render();
    if (w.error.index !== null) wrapupForm.focus(w, w.error.index, w.error.field || 'matter_type');
    return;
  }
  // saved (already_done: an earlier attempt whose answer was lost had saved it)
  state.wrapups = state.wrapups.filter((x) => x !== w);
  state.wrapupDone = {
    field: w.field,
    matters: Array.isArray(answer.matters) ? answer.matters.length : w.matters.length,
    followups: Array.isArray(answer.followups) ? answer.followups : [],
    already: !answer.ok,
  };
  render();
  if (state.wrapups.length && !state.call && !state.ring) wrapupForm.focus(state.wrapups[0], 0, 'matter_type');
  else if (!el.wrapupDone.hidden) el.wrapupDone.querySelector('button').focus({ preventScroll: true });
}

/** The form's own events: submit (also Ctrl+Enter, main.js) and every input written back into the wrap-up. */
export function wireWrapupForm() {
  el.wrapupForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitWrapup();
  });
  el.wrapupForm.addEventListener('input', onWrapupInput);
  el.wrapupForm.addEventListener('change', onWrapupInput);
}
