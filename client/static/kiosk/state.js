/*
 * Virtual Windows kiosk: the page's state and elements, which every phase module reads and changes.
 * It imports no phase module (they all import it).
 */

import { send as sendOn } from '../shared/connection.js';
import { readData } from '../shared/dom.js';
import { fieldById as findField, fieldName as nameOfField } from '../shared/fields.js';

// every language's catalog (client/locale/<lang>/LC_MESSAGES/kiosk.po), rendered into the page by the server
export const CATALOGS = readData('vw-i18n');

const $ = (id) => document.getElementById(id);
export const el = {
  html: document.documentElement,
  state: $('kiosk-state'),
  status: $('kiosk-status'),
  banner: $('banner'),
  placeName: $('place-name'),
  placeRegion: $('place-region'),
  languages: $('languages'),
  fields: $('fields'),
  errorIcon: $('error-icon'),
  errorIconCalm: $('error-icon-calm'),
  errorMessage: $('error-message'),
  errorHours: $('error-hours'),
  errorDetail: $('error-detail'),
  callbackOffer: $('callback-offer'),
  waitField: $('wait-field'),
  waitTitle: $('wait-title'),
  queueNote: $('queue-note'),
  queueBox: $('queue-box'),
  ringingBox: $('ringing-box'),
  queuePosition: $('queue-position'),
  queuePositionText: $('queue-position-text'),
  estimatedWait: $('estimated-wait'),
  previewVideo: $('preview-video'),
  remoteVideo: $('remote-video'),
  localVideo: $('local-video'),
  peerName: $('peer-name'),
  peerCenter: $('peer-center'),
  nobodyNote: $('nobody-note'),
  serviceHours: $('service-hours'),
  waitCallback: $('wait-callback'),
  mute: $('mute'),
  muteLabel: $('mute-label'),
  callTimer: $('call-timer'),
  callField: $('call-field'),
  callNote: $('call-note'),
  thanksText: $('thanks-text'),
  ratingScreen: document.querySelector('[data-screen="rating"]'),
  ratingTitle: $('rating-title'),
  rateScores: $('rate-scores'),
  rateReasons: $('rate-reasons'),
  rateChips: $('rate-chips'),
  rateSend: $('rate-send'),
  rateSkip: $('rate-skip'),
  callbackForm: $('callback-form'),
  callbackField: $('callback-field'),
  callbackPhone: $('callback-phone'),
  callbackDescription: $('callback-description'),
  callbackError: $('callback-error'),
  callbackErrorText: $('callback-error-text'),
  callbackErrorDetail: $('callback-error-detail'),
  callbackSubmit: $('callback-submit'),
  keypad: $('keypad'),
  callbackDue: $('callback-due'),
  callbackRef: $('callback-ref'),
  consentTitle: $('consent-title'),
  consentField: $('consent-field'),
  consentText: $('consent-text'),
  consentYes: $('consent-yes'),
  consentNo: $('consent-no'),
  recIndicator: $('rec-indicator'),
};

const initial = readData();
const htmlLang = (el.html.getAttribute('lang') || 'en').split('-')[0];

export const state = {
  token: null,
  connection: null, // the Connection to /kiosk (shared/connection.js)
  fields: Array.isArray(initial.fields) ? initial.fields : [],
  languages: cleanLanguages(initial.languages),
  defaultLang: 'en',
  lang: 'en',
  kiosk: null,
  phase: 'connecting',
  call: null, // the visitor's call, from the tap on a field to its end
  error: null, // {key, detail, hours, callbackField}
  thanks: null, // {interrupted, rated}
  rating: null, // {callId, score, reasons: Set, interrupted, ready: Promise}
  callback: null, // {field, phone, description, sending, error: {key, detail}, due, followupId}
  consent: null, // {field, policy}: the recording notice on screen
  retentionDays: 0, // how long recordings are kept (from welcome), told in the notice
  lastTouch: Date.now(),
  thanksTimer: null,
  strays: new Set(), // call ids we hung up because nobody on this page owns them
};
state.defaultLang = state.languages.includes(htmlLang) ? htmlLang : state.languages[0];
state.lang = state.defaultLang;

/** The languages of `list` that the page has a catalog for (all three when none). */
export function cleanLanguages(list) {
  const known = Array.isArray(list) ? list.filter((l) => typeof l === 'string' && CATALOGS[l]) : [];
  return known.length ? known : ['zh', 'en', 'ar'];
}

export function fieldById(id) {
  return findField(state.fields, id);
}

/** The field's name in the visitor's language. */
export function fieldName(id) {
  return nameOfField(state.fields, id, state.lang);
}

/** A kiosk's or center's name in the visitor's language (config/names.toml), else as it was stored. */
export function localName(name) {
  const forms = name && initial.names && typeof initial.names === 'object' ? initial.names[name] : null;
  return (forms && typeof forms[state.lang] === 'string' && forms[state.lang]) || name || '';
}

/** The service hours ("08:30-17:30", or "" for always open) and the center's time zone, from the page. */
export const SERVICE_HOURS = typeof initial.service_hours === 'string' ? initial.service_hours : '';

/** Emit on the kiosk's connection; a promise of the ack (shared/connection.js: send). */
export function send(event, payload) {
  return sendOn(state.connection, event, payload);
}
