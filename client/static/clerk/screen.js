/*
 * Virtual Windows clerk console: drawing the page from its state, and the notice line.
 *
 * Phases (phase() in state.js; shown in [data-testid=state] and <body data-state>):
 *   setup, unauthorized, replaced, connecting   no usable connection
 *   idle                                        away or available, no call
 *   ringing                                     a call is offered (ring card: ring.js)
 *   call                                        talking to a visitor (call.js, transfer.js)
 *   wrap_up                                     the call is over: log its matters (wrap-up form: wrapup.js)
 * The server's status (away, available, ringing, busy, wrap_up) is in
 * [data-testid=status] as text and as its data-status attribute.
 *
 * A wrap-up stays on the page until it is saved, also after the server's
 * wrap-up time ran out (the server accepts late wrap-ups); the form then shows
 * below a new ring or call.
 */

import { setText } from '../shared/dom.js';
import { renderCall } from './call.js';
import { renderRing } from './ring.js';
import { el, fieldName, languageName, LIST_SEPARATOR, phase, regionName, state } from './state.js';
import { STATUS_NAMES, t, text } from './texts.js';
import { renderStatusClock, renderWrapup, renderWrapupDone } from './wrapup.js';

const INFO_NOTICE_MS = 15 * 1000;
const baseTitle = document.title;

/** The notice line: "info" goes away by itself, "warn" and "error" stay until replaced. */
export function setNotice(text, kind) {
  clearTimeout(state.noticeTimer);
  state.notice = text ? { text, kind: kind || 'info' } : null;
  if (text && (kind || 'info') === 'info') {
    state.noticeTimer = setTimeout(() => setNotice(null), INFO_NOTICE_MS);
  }
  render();
}

export function render() {
  const p = phase();
  setText(el.state, p);
  document.body.dataset.state = p;

  // header
  const clerk = state.clerk;
  setText(el.clerkName, clerk ? clerk.name || clerk.id || '' : '');
  setText(el.clerkCenter, clerk ? clerk.center || '' : '');
  const online = state.conn === 'online' && !!state.connection && state.connection.connected;
  const status = online ? state.status || 'away' : 'offline';
  el.status.dataset.status = status;
  setText(el.status, STATUS_NAMES[status] ? STATUS_NAMES[status]() : status);
  el.setAvailable.disabled = !online || status !== 'away';
  el.setAway.disabled = !online || status === 'away' || status === 'busy';
  el.setAvailable.setAttribute('aria-pressed', String(status === 'available'));
  el.setAway.setAttribute('aria-pressed', String(status === 'away'));
  el.signOut.hidden = !state.token;
  // the records pages need a login session; a console opened with its link has none: go through the login
  // page (it comes back to the page asked for) and say why, instead of a bare login page in a new tab
  el.linkSessions.href = state.loggedIn ? '/sessions' : '/login?next=/sessions';
  el.linkFollowups.href = state.loggedIn ? '/followups' : '/login?next=/followups';
  el.recordsNote.hidden = state.loggedIn;
  setText(el.recordsNote, state.loggedIn ? '' : t('(log in to open: this console was opened with its link, which does not open your records)'));
  renderStatusClock();

  // notice
  el.notice.hidden = !state.notice;
  el.notice.dataset.kind = state.notice ? state.notice.kind : '';
  setText(el.notice, state.notice ? state.notice.text : '');

  // setup panel
  const setupKeys = {
    setup: ['notSetUpTitle', 'notSetUpText'],
    signedout: ['signedOutTitle', 'signedOutText'],
    unauthorized: state.token ? ['unauthorizedTitle', 'unauthorizedText'] : ['sessionExpiredTitle', 'sessionExpiredText'],
    replaced: ['replacedTitle', 'replacedText'],
  }[state.conn];
  el.setupPanel.hidden = !setupKeys || !!state.call;
  if (setupKeys) {
    setText(el.setupTitle, text(setupKeys[0]));
    setText(el.setupText, text(setupKeys[1]));
  }
  el.reconnect.hidden = state.conn !== 'replaced';
  // no token and no login session: logging in is the other way in
  el.loginRow.hidden = !['setup', 'signedout', 'unauthorized'].includes(state.conn) || (state.loggedIn && state.conn !== 'unauthorized');

  // idle panel
  el.idlePanel.hidden = !(p === 'idle' || (p === 'connecting' && state.clerk));
  setText(el.idleText, !online ? t('Connecting…') : status === 'available' ? t('You are available. Waiting for a call…') : t('You are away. Press “Available” to receive calls.'));
  if (clerk) {
    setText(el.clerkFields, (clerk.fields || []).map(fieldName).join(LIST_SEPARATOR));
    setText(el.clerkLanguages, (clerk.languages || []).map(languageName).join(LIST_SEPARATOR));
    setText(el.clerkRegions, (clerk.regions || []).map(regionName).join(LIST_SEPARATOR));
  }

  renderRing();
  renderCall();
  renderWrapup();
  renderWrapupDone();
  renderLog();
  document.title = state.ring ? `☎ ${t('Incoming call')} · ${baseTitle}` : baseTitle;
}

function renderLog() {
  // the latest call in [data-testid=call-summary], the ones before in the list below it
  const latest = state.log[0];
  setText(el.callSummary, latest || t('No calls yet.'));
  el.callSummary.classList.toggle('vw-summary-empty', !latest);
  const older = state.log.slice(1);
  const shown = Array.from(el.callLog.children, (li) => li.textContent);
  if (shown.length !== older.length || shown.some((line, i) => line !== older[i])) {
    el.callLog.replaceChildren(
      ...older.map((line) => {
        const li = document.createElement('li');
        li.textContent = line;
        return li;
      }),
    );
  }
}
