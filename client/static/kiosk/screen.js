/*
 * Virtual Windows kiosk: drawing the page from its state. One screen ([data-screen]) shows at a time, chosen
 * by the phase (state.phase, also in [data-testid=state] and <body data-state>):
 *   setup, unauthorized, replaced, connecting      no usable connection
 *   idle                                           language + service fields (idle.js)
 *   consent                                        the recording notice (request.js)
 *   camera                                         waiting for getUserMedia (request.js)
 *   error                                          a message and a Back button (navigation.js)
 *   requesting, queue, ringing                     the wait screen (queue.js; also after a transfer to
 *                                                  another field, and for a call the server
 *                                                  held for this kiosk while it was offline)
 *   call                                           talking to a clerk (call.js)
 *   rating                                         after an answered call: satisfied / neutral /
 *                                                  dissatisfied, then optional reasons (rating.js)
 *   thanks                                         after the call, ~8 s (navigation.js)
 *   callback, callback_done                        no clerk reachable: leave a phone number (callback.js)
 * Each phase module draws its own screen; render() draws what they share and calls them all.
 */

import { setText } from '../shared/dom.js';
import { pickName } from '../shared/i18n.js';
import { renderCall } from './call.js';
import { renderCallback } from './callback.js';
import { renderError, renderThanks } from './navigation.js';
import { renderRating } from './rating.js';
import { renderWait } from './queue.js';
import { renderConsent } from './request.js';
import { CATALOGS, el, fieldById, fieldName, localName, SERVICE_HOURS, state } from './state.js';
import { t, text } from './texts.js';

const SCREEN_OF_PHASE = { requesting: 'wait', queue: 'wait', ringing: 'wait' };

export function setPhase(phase) {
  state.phase = phase;
  state.lastTouch = Date.now();
  render();
}

export function setLanguage(lang) {
  if (!state.languages.includes(lang)) return;
  state.lang = lang;
  render();
}

export function setBanner(visible) {
  el.banner.hidden = !visible || ['setup', 'unauthorized', 'replaced'].includes(state.phase);
}

export function render() {
  const lang = state.lang;
  el.html.lang = lang;
  el.html.dir = CATALOGS[lang].dir;

  // screens
  const screen = SCREEN_OF_PHASE[state.phase] || state.phase;
  for (const section of document.querySelectorAll('[data-screen]')) {
    section.hidden = section.dataset.screen !== screen;
  }
  setText(el.state, state.phase);
  document.body.dataset.state = state.phase;

  // static texts
  for (const node of document.querySelectorAll('[data-i18n]')) {
    setText(node, t(node.dataset.i18n));
  }
  for (const button of el.languages.querySelectorAll('[data-lang]')) {
    button.setAttribute('aria-pressed', String(button.dataset.lang === lang));
  }
  for (const button of el.fields.querySelectorAll('[data-field]')) {
    setText(button.querySelector('.vw-field-name'), fieldName(button.dataset.field));
    const f = fieldById(button.dataset.field);
    const matters = f && Array.isArray(f.matters) ? f.matters.map((m) => pickName(m.names, lang, m.id)) : [];
    setText(button.querySelector('.vw-field-matters'), matters.join(lang === 'zh' ? '、' : lang === 'ar' ? '، ' : ' · '));
  }
  setText(el.serviceHours, SERVICE_HOURS
    ? t('Clerks answer {hours} on working days.', { hours: SERVICE_HOURS.replace('-', '–') })
    : t('Clerks answer while they are on duty.'));

  // the place
  const kiosk = state.kiosk;
  setText(el.placeName, kiosk ? localName(kiosk.name || '') : '');
  setText(el.placeRegion, kiosk ? pickName(kiosk.region_names, lang, kiosk.region || '') : '');

  renderWait();
  renderCall();
  renderError();
  renderRating();
  renderCallback();
  renderConsent();
  renderThanks();
  setText(el.status, statusText());
}

/** What a screen reader announces (#kiosk-status, a polite live region). */
function statusText() {
  switch (state.phase) {
    case 'setup': return t('This window is not set up yet');
    case 'unauthorized': return t("This window's access token was not accepted");
    case 'replaced': return t('This window was opened on another screen.');
    case 'connecting': return t('Connecting…');
    case 'idle': return t('Tap a service to talk to a clerk by video');
    case 'camera': return t('Starting the camera…');
    case 'consent': return [el.consentTitle.textContent, el.consentText.textContent].join(' ');
    case 'error': return state.error ? text(state.error.key) : '';
    case 'requesting':
    case 'queue': return [el.waitTitle.textContent, el.queuePositionText.textContent].filter(Boolean).join('. ');
    case 'ringing': return t('Connecting you to a clerk…');
    case 'call': return state.call && state.call.peer ? `${t('You are talking to')} ${state.call.peer.name || ''}` : '';
    case 'rating': return state.rating && state.rating.score ? t('Tap any that apply (optional)') : t('How was your call?');
    case 'thanks': return t('Thank you');
    case 'callback': return t('Leave your phone number and we will call you back');
    case 'callback_done': return `${t('We will call you back')}. ${el.callbackDue.textContent}`;
    default: return '';
  }
}
