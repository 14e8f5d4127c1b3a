/*
 * Virtual Windows kiosk: after an answered call, the visitor rates it (satisfied / neutral / dissatisfied,
 * then optional reasons) and the page sends `rate`.
 */

import { setText } from '../shared/dom.js';
import { endLocalCall } from './call.js';
import { showThanks } from './navigation.js';
import { render, setPhase } from './screen.js';
import { el, send, state } from './state.js';
import { t, text } from './texts.js';

const RATE_REASONS = ['waited_too_long', 'problem_not_solved', 'hard_to_hear_or_see', 'clerk_helpful'];

/** The reason chips of the rating screen (their texts are drawn by renderRating). */
export function buildChips() {
  el.rateChips.replaceChildren();
  for (const reason of RATE_REASONS) {
    const chip = document.createElement('button');
    chip.type = 'button';
    chip.className = 'vw-chip';
    chip.dataset.reason = reason;
    chip.dataset.testid = 'rate-reason-' + reason;
    chip.setAttribute('aria-pressed', 'false');
    el.rateChips.appendChild(chip);
  }
}

/**
 * An answered call is over: ask how it went. `ready` resolves once the server has
 * ended the call (a visitor's own hang-up), so that `rate` never overtakes `hangup`.
 */
export function showRating(call, interrupted, ready) {
  endLocalCall();
  if (!call.id) {
    showThanks(interrupted);
    return;
  }
  clearTimeout(state.thanksTimer);
  state.thanks = null;
  state.rating = { callId: call.id, score: null, reasons: new Set(), interrupted: !!interrupted, ready: ready || Promise.resolve() };
  setPhase('rating');
}

export function chooseScore(score) {
  const rating = state.rating;
  if (!rating || state.phase !== 'rating') return;
  rating.score = score;
  render();
}

export function toggleReason(reason) {
  const rating = state.rating;
  if (!rating || !rating.score) return;
  if (rating.reasons.has(reason)) rating.reasons.delete(reason);
  else rating.reasons.add(reason);
  render();
}

/** Send the rating (if a score was chosen; `withReasons` false drops the chips) and say goodbye. */
export function finishRating(withReasons) {
  const rating = state.rating;
  if (!rating || state.phase !== 'rating') return;
  state.rating = null;
  if (rating.score) {
    const payload = { call_id: rating.callId, score: rating.score };
    const reason = withReasons ? RATE_REASONS.filter((r) => rating.reasons.has(r)).join(',') : '';
    if (reason) payload.reason = reason;
    rating.ready
      .catch(() => undefined)
      .then(() => send('rate', payload))
      .then((answer) => {
        if (!answer.ok) console.warn('vw: rating refused', answer.error);
      });
  }
  showThanks(rating.interrupted, !!rating.score);
}

export function renderRating() {
  const rating = state.rating;
  if (!rating) return;
  const step = rating.score ? 'reason' : 'score';
  el.ratingScreen.dataset.step = step;
  setText(el.ratingTitle, rating.score ? t('Thank you! Anything else you would like to tell us?') : t('How was your call?'));
  for (const button of el.rateScores.querySelectorAll('[data-score]')) {
    button.setAttribute('aria-pressed', String(button.dataset.score === rating.score));
  }
  el.rateScores.classList.toggle('vw-rate-scores-chosen', !!rating.score);
  el.rateReasons.hidden = !rating.score;
  for (const chip of el.rateChips.querySelectorAll('[data-reason]')) {
    setText(chip, text('reason_' + chip.dataset.reason));
    chip.setAttribute('aria-pressed', String(rating.reasons.has(chip.dataset.reason)));
  }
  el.rateSend.hidden = !rating.score;
  setText(el.rateSkip, rating.score ? t('Skip') : t('Skip'));
}
