/*
 * Virtual Windows clerk console: the page's state and elements, which every module of the console reads and
 * changes. It imports no other module of the console (they all import it).
 */

import { send as sendOn } from '../shared/connection.js';
import { readData } from '../shared/dom.js';
import { fieldName as nameOfField } from '../shared/fields.js';
import { pickName } from '../shared/i18n.js';

const $ = (id) => document.getElementById(id);
export const el = {
  html: document.documentElement,
  state: $('clerk-state'),
  banner: $('banner'),
  clerkName: $('clerk-name'),
  clerkCenter: $('clerk-center'),
  status: $('status'),
  setAvailable: $('set-available'),
  setAway: $('set-away'),
  signOut: $('sign-out'),
  notice: $('notice'),
  setupPanel: $('setup-panel'),
  setupTitle: $('setup-title'),
  setupText: $('setup-text'),
  reconnect: $('reconnect'),
  ringCard: $('ring-card'),
  ringField: $('ring-field'),
  ringRegion: $('ring-region'),
  ringKiosk: $('ring-kiosk'),
  ringLanguage: $('ring-language'),
  ringWaited: $('ring-waited'),
  ringCountdown: $('ring-countdown'),
  ringCountdownBar: $('ring-countdown-bar'),
  soundHint: $('sound-hint'),
  accept: $('accept'),
  decline: $('decline'),
  callPanel: $('call-panel'),
  remoteVideo: $('remote-video'),
  localVideo: $('local-video'),
  peerName: $('peer-name'),
  peerRegion: $('peer-region'),
  peerLanguage: $('peer-language'),
  callField: $('call-field'),
  callTimer: $('call-timer'),
  recIndicator: $('rec-indicator'),
  recText: $('rec-text'),
  callNote: $('call-note'),
  mediaNote: $('media-note'),
  muteMic: $('mute-mic'),
  muteCamera: $('mute-camera'),
  hangup: $('hangup'),
  idlePanel: $('idle-panel'),
  idleText: $('idle-text'),
  clerkFields: $('clerk-fields'),
  clerkLanguages: $('clerk-languages'),
  clerkRegions: $('clerk-regions'),
  callSummary: $('call-summary'),
  callLog: $('call-log'),
  statusCountdown: $('status-countdown'),
  loginRow: $('login-row'),
  logoutForm: $('logout-form'),
  transfer: $('transfer'),
  transferMenu: $('transfer-menu'),
  transferFields: $('transfer-fields'),
  linkSessions: $('link-sessions'),
  linkFollowups: $('link-followups'),
  recordsNote: $('records-note'),
  transferConfirm: $('transfer-confirm'),
  transferConfirmText: $('transfer-confirm-text'),
  transferConfirmYes: $('transfer-confirm-yes'),
  wrapupForm: $('wrapup-form'),
  wrapupClockLabel: $('wrapup-clock-label'),
  wrapupCountdown: $('wrapup-countdown'),
  wrapupCall: $('wrapup-call'),
  wrapupLate: $('wrapup-late'),
  wrapupPending: $('wrapup-pending'),
  wrapupMatters: $('wrapup-matters'),
  wrapupFormError: $('wrapup-form-error'),
  wrapupAddMatter: $('wrapup-add-matter'),
  wrapupSubmit: $('wrapup-submit'),
  wrapupSubmitLabel: $('wrapup-submit-label'),
  wrapupDone: $('wrapup-done'),
  wrapupDoneText: $('wrapup-done-text'),
  wrapupDoneFollowups: $('wrapup-done-followups'),
};

/** The console's language, as the server rendered the page: "zh" or "en". */
export const lang = (el.html.getAttribute('lang') || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en';
export const LIST_SEPARATOR = lang === 'zh' ? '、' : ', ';

const initial = readData();

export const state = {
  token: null,
  connection: null, // the Connection to /clerk (shared/connection.js)
  conn: 'connecting', // setup | unauthorized | replaced | signedout | connecting | online
  clerk: null,
  status: null, // the server's: away | available | ringing | busy
  fields: Array.isArray(initial.fields) ? initial.fields : [],
  ring: null,
  call: null,
  notice: null, // {text, kind}
  noticeTimer: null,
  log: [],
  loggedIn: initial.logged_in_clerk === true, // came through /login: the session cookie identifies the clerk
  wrapupTimeoutS: 0,
  ended: new Map(), // call id -> a call that ended on this page (kept for its wrap-up)
  wrapups: [], // calls to wrap up, oldest first; the form shows the first
  wrapupDone: null, // {field, matters, followups} after the last successful wrap-up
  transferOpen: false,
  transferConfirm: null, // the field picked in the transfer menu, waiting for the clerk's confirmation
};

export function fieldName(id) {
  return nameOfField(state.fields, id, lang);
}

/** The center's time zone (config: timezone): the console shows times as the administrator's pages do. */
export const TIMEZONE = typeof initial.timezone === 'string' && initial.timezone ? initial.timezone : undefined;

/** A region's name in the console's language ("sh" -> "Shanghai"), from the names the server sent. */
export function regionName(path) {
  const names = state.clerk && state.clerk.region_names ? state.clerk.region_names[path] : null;
  return pickName(names, lang, path);
}

export function languageName(code) {
  return (initial.language_names || {})[code] || code || '';
}

/** What the console is doing (in [data-testid=state] and <body data-state>; see screen.js). */
export function phase() {
  if (state.conn !== 'online' && !state.call) return state.conn === 'signedout' ? 'setup' : state.conn;
  if (state.call) return 'call';
  if (state.ring) return 'ringing';
  if (state.wrapups.length) return 'wrap_up';
  return 'idle';
}

/** Emit on the console's connection; a promise of the ack (shared/connection.js: send). */
export function send(event, payload) {
  return sendOn(state.connection, event, payload);
}
