/*
 * Virtual Windows kiosk: its texts, from the kiosk catalogs (client/locale/<lang>/LC_MESSAGES/kiosk.po; zh, en,
 * ar), in the language the visitor picked. `pybabel extract` finds every t(), tn() and N_() of the kiosk's
 * modules (client/locale/kiosk.cfg).
 */

import { translator } from '../shared/i18n.js';
import { CATALOGS, state } from './state.js';

export const { t, tn, N_ } = translator(CATALOGS, () => state.lang);

// texts chosen by a code (an error, a note) and looked up when shown
const TEXTS = {
  errFieldNotServed: N_('Sorry, this service is not offered at this window.'),
  errOutsideHours: N_('The service is closed at the moment.'),
  errAlreadyInCall: N_('A call is already in progress at this window. Please try again in a moment.'),
  errTimeout: N_('The service is not answering. Please try again.'),
  errOffline: N_('This window is offline at the moment. Please try again shortly.'),
  errConnectionLost: N_('The connection was interrupted. Please choose the service again.'),
  errMediaFailed: N_('The video connection was lost and could not be restored. Please choose the service again.'),
  errGeneric: N_('Sorry, something went wrong. Please try again.'),
  errPhone: N_('Please enter a phone number of 5 to 20 digits (it may start with +).'),
  errDescription: N_('The description is too long (500 characters at most).'),
  errCallback: N_('Sorry, your request could not be sent. Please try again.'),
  cameraDenied: N_('The camera or microphone was not allowed. A video call needs both. Please ask the staff for help.'),
  cameraMissing: N_('No camera or microphone was found on this window. Please ask the staff for help.'),
  cameraFailed: N_('The camera could not be started. Please try again.'),
  transferred: N_('You are being put through to {field}. Please wait a moment.'),
  resumed: N_('Welcome back: you kept your place in line.'),
  clerkDisconnected: N_("The clerk's connection was lost. You are back at the front of the line; please wait."),
  connectingMedia: N_('Connecting the video…'),
  mediaProblem: N_('The video connection is unstable…'),
  reason_waited_too_long: N_('I waited too long'),
  reason_problem_not_solved: N_('My problem was not solved'),
  reason_hard_to_hear_or_see: N_('Hard to hear or see'),
  reason_clerk_helpful: N_('The clerk was helpful'),
};

/** The text of a code in TEXTS (translated when shown: the visitor may change the language meanwhile). */
export function text(code, params, lang) {
  return t(TEXTS[code], params, lang);
}
