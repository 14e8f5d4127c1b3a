/*
 * Virtual Windows kiosk: where the visitor is sent when a call ends or cannot start: back to the start screen,
 * an error screen (with Back, and maybe a callback offer), or the thank-you screen.
 */

import { setText } from '../shared/dom.js';
import { endLocalCall } from './call.js';
import { setPhase } from './screen.js';
import { el, state } from './state.js';
import { t, text } from './texts.js';

const THANKS_MS = 8 * 1000;

/** Back to the start screen; `fresh` also resets the language for the next visitor. */
export function goIdle(fresh) {
  endLocalCall();
  clearTimeout(state.thanksTimer);
  state.thanksTimer = null;
  state.error = null;
  state.thanks = null;
  state.rating = null;
  state.callback = null;
  state.consent = null;
  if (fresh) state.lang = state.defaultLang;
  // before the first welcome there is nothing to show yet; later a lost connection only shows the banner
  setPhase(state.kiosk ? 'idle' : 'connecting');
}

/** An error screen; `extra` may carry `hours` (service hours) and `callbackField` (offer a callback). */
export function showError(key, detail, extra) {
  endLocalCall();
  state.rating = null;
  state.callback = null;
  state.error = Object.assign({ key, detail: detail || '', hours: '', callbackField: null }, extra || {});
  setPhase('error');
}

export function showThanks(interrupted, rated) {
  endLocalCall();
  state.rating = null;
  state.thanks = { interrupted: !!interrupted, rated: !!rated };
  clearTimeout(state.thanksTimer);
  state.thanksTimer = setTimeout(() => {
    if (state.phase === 'thanks') goIdle(true);
  }, THANKS_MS);
  setPhase('thanks');
}

export function renderError() {
  const error = state.error;
  setText(el.errorMessage, error ? text(error.key) : '');
  setText(el.errorDetail, error && error.detail ? error.detail : '');
  el.errorHours.hidden = !(error && error.hours);
  setText(el.errorHours, error && error.hours ? t('Opening hours: {hours} on working days', { hours: error.hours }) : '');
  el.callbackOffer.hidden = !(error && error.callbackField);
  // closed, or not served here: expected, so a clock rather than an exclamation mark
  el.errorIcon.hidden = !!(error && error.callbackField);
  el.errorIconCalm.hidden = !(error && error.callbackField);
}

export function renderThanks() {
  const thanks = state.thanks || {};
  setText(el.thanksText, thanks.interrupted ? t('The call was interrupted. Please choose the service again if you need to.') : thanks.rated ? t('Your feedback helps us do better. Goodbye!') : t('We hope we could help you. Goodbye!'));
}
