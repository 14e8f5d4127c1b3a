/*
 * Virtual Windows clerk console: its texts, from the staff catalog (client/locale/<lang>/LC_MESSAGES/staff.po;
 * zh, en) in the console's language, which the server renders into the page. `pybabel extract` finds every
 * t(), tp() and N_() of the console's modules (client/locale/staff.cfg).
 */

import { readData } from '../shared/dom.js';
import { translator } from '../shared/i18n.js';
import { lang } from './state.js';

export const { t, tp, N_ } = translator(readData('vw-i18n'), () => lang);

// texts chosen by a code (a media note, an ending, a follow-up kind) and looked up when shown
const TEXTS = {
  mediaInsecure: N_('The camera needs a secure page (https or localhost): receive only.'),
  mediaDenied: N_('Camera and microphone were not allowed: receive only.'),
  noCamera: N_('No camera: the visitor can hear you but not see you.'),
  noMedia: N_('No camera or microphone: receive only, the visitor can neither see nor hear you.'),
  connectingMedia: N_('Connecting the video…'),
  mediaProblem: N_('The video connection is unstable…'),
  notSetUpTitle: N_('This console is not set up yet'),
  notSetUpText: N_('Open it once as /clerk#token=… with your clerk token (from “vwindow clerk add”; “vwindow serve --demo” prints demo links), or log in.'),
  signedOutTitle: N_('Signed out'),
  signedOutText: N_('The token was removed from this browser. Open /clerk#token=… to sign in again.'),
  unauthorizedTitle: N_('Your clerk token was not accepted'),
  unauthorizedText: N_('It may have been revoked. Ask an administrator for a new one and open /clerk#token=… again.'),
  sessionExpiredTitle: N_('Your login session has ended'),
  sessionExpiredText: N_('Log in again to take calls.'),
  replacedTitle: N_('This console was opened in another window'),
  replacedText: N_('A clerk can be connected from one window at a time. Press “Reconnect” to use this one.'),
  end_hangup_clerk: N_('you hung up'),
  end_hangup_visitor: N_('the visitor hung up'),
  end_hangup_system: N_('ended'),
  end_visitor_disconnected: N_("the visitor's connection was lost"),
  end_clerk_disconnected: N_('your connection was lost'),
  end_cancelled: N_('cancelled'),
  end_transferred: N_('transferred'),
  end_media_failed: N_('the connection was lost'),
  ringEnded_timeout: N_('The call was not answered in time and went to another clerk.'),
  ringEnded_declined: N_('Call declined; it goes to the next clerk.'),
  ringEnded_cancelled: N_('The visitor cancelled the call.'),
  ringEnded_visitor_disconnected: N_('The visitor left before the call was answered.'),
  kind_simple: N_('simple'),
  kind_general: N_('general'),
  kind_complex: N_('complex'),
};

export const STATUS_NAMES = {
  away: () => tp('status', 'Away'),
  available: () => tp('status', 'Available'),
  ringing: () => tp('status', 'Ringing'),
  busy: () => tp('status', 'In a call'),
  offline: () => tp('status', 'Offline'),
  wrap_up: () => tp('status', 'Wrap-up'),
};

/** The text of a code in TEXTS, or undefined. */
export function text(code, params) {
  return code in TEXTS ? t(TEXTS[code], params) : undefined;
}
