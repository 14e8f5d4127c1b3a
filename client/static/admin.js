/*
 * Virtual Windows: the administrator's pages.
 * - the live board (#vwa-live) polls its JSON endpoint every few seconds and
 *   redraws its tables in place (textContent only: nothing from the server is
 *   ever parsed as HTML);
 * - forms with data-confirm ask before they are sent (revoking, new tokens);
 * - read-only token fields select themselves when focused, for copying.
 * An ES module (no build step), on the shared text and data helpers (shared/).
 */

import { readData } from './shared/dom.js';
import { translator } from './shared/i18n.js';

// the page's language's texts of the staff catalog (client/locale/<lang>/LC_MESSAGES/staff.po)
const CATALOGS = readData('vw-i18n');
const { t, tn, N_ } = translator(CATALOGS, () => Object.keys(CATALOGS)[0]);
const STATE_NAMES = {
  available: N_('available'), away: N_('away'), ringing: N_('ringing'), busy: N_('busy'),
  wrap_up: N_('wrap-up'), queued: N_('queued'), connecting: N_('connecting'), active: N_('active'),
};

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  let s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  const sec = s - m * 60;
  const pad = (n) => String(n).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function num(text) {
  return el('td', text, 'vwa-num');
}

function callLink(callId) {
  const td = el('td');
  if (callId) {
    const a = el('a', `${callId.slice(0, 8)}…`);
    a.href = `/sessions/${encodeURIComponent(callId)}`;
    td.appendChild(a);
  }
  return td;
}

function stateCell(state) {
  const td = el('td');
  td.appendChild(el('span', state in STATE_NAMES ? t(STATE_NAMES[state]) : state, `vwa-state vwa-state-${state}`));
  return td;
}

function fill(tbody, rows, columns, emptyText, build) {
  const fresh = [];
  if (!rows.length) {
    const tr = el('tr', null, 'vwa-empty');
    const td = el('td', emptyText);
    td.colSpan = columns;
    tr.appendChild(td);
    fresh.push(tr);
  }
  for (const row of rows) fresh.push(build(row));
  tbody.replaceChildren(...fresh);
}

function render(root, data) {
  const queues = document.getElementById('vwa-queues');
  const clerks = document.getElementById('vwa-clerks');
  const calls = document.getElementById('vwa-calls');
  if (queues) {
    fill(queues, data.queues || [], 6, t('Nobody is waiting.'), (q) => {
      const tr = el('tr', null, q.over_target ? 'vwa-row-bad' : '');
      // a waiting call that no clerk who is there can take (every one who could is away or offline)
      const who = el('td');
      if (q.unserved) {
        const flag = el('span', tn('{n} call: no clerk who can take it is available', '{n} calls: no clerk who can take them is available', q.unserved), 'vwa-flag');
        flag.dataset.testid = 'queue-unserved';
        who.appendChild(flag);
      } else {
        who.textContent = t('a clerk is there');
      }
      tr.append(el('td', q.field_name), el('td', q.district_name), num(q.waiting), num(q.ringing),
        num(duration(q.longest_wait_s)), who);
      return tr;
    });
  }
  if (clerks) {
    fill(clerks, data.clerks || [], 5, t('No clerk is online.'), (c) => {
      const tr = el('tr');
      tr.append(el('td', c.name), el('td', c.center), el('td', (c.field_names || []).join(', ')),
        stateCell(c.status), callLink(c.call_id));
      return tr;
    });
  }
  if (calls) {
    fill(calls, data.calls || [], 7, t('No call in progress.'), (c) => {
      const tr = el('tr');
      tr.append(callLink(c.call_id), el('td', c.field_name), el('td', c.region_name), el('td', c.kiosk),
        el('td', c.clerk || '–'), stateCell(c.state), num(duration(c.since_s)));
      return tr;
    });
  }
  const today = data.today || {};
  for (const node of root.querySelectorAll('[data-today]')) {
    const key = node.getAttribute('data-today');
    if (key in today) node.textContent = String(today[key]);
    if (key === 'avg_wait') node.classList.toggle('vwa-bad', today.avg_wait_ok === false);
  }
  const online = document.getElementById('vwa-kiosks-online');
  if (online && 'kiosks_online' in data) online.textContent = String(data.kiosks_online);
  const updated = document.getElementById('vwa-live-updated');
  if (updated) updated.textContent = data.updated || '';
}

function setStatus(text, ok) {
  const status = document.getElementById('vwa-live-status');
  if (!status) return;
  status.textContent = text;
  status.className = ok ? 'vwa-status-ok' : 'vwa-status-bad';
}

function startLiveBoard(root) {
  const url = root.getAttribute('data-url');
  const every = Math.max(500, parseInt(root.getAttribute('data-poll-ms') || '2000', 10));
  let timer = null;
  let busy = false;

  async function poll() {
    if (busy) return;
    busy = true;
    try {
      const resp = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin',
        cache: 'no-store' });
      if (resp.status === 401 || resp.status === 403) {
        setStatus(t('Logged out: reload the page to log in again —'), false);
        window.clearInterval(timer);
        return;
      }
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      render(root, await resp.json());
      setStatus(t('updated'), true);
    } catch (err) {
      setStatus(t('Connection lost, retrying; last update'), false);
    } finally {
      busy = false;
    }
  }

  timer = window.setInterval(poll, every);
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) poll();
  });
  poll();
}

function init() {
  for (const form of document.querySelectorAll('form[data-confirm]')) {
    form.addEventListener('submit', (event) => {
      if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
    });
  }
  for (const input of document.querySelectorAll('input.vwa-copy')) {
    input.addEventListener('focus', () => input.select());
    input.addEventListener('click', () => input.select());
  }
  const live = document.getElementById('vwa-live');
  if (live) startLiveBoard(live);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
