/*
 * Virtual Windows clerk console: handing the visitor on to another department (`transfer`): the menu of the
 * other service fields, and what the clerk is told when it is done or refused.
 */

import { setText } from '../shared/dom.js';
import { finishCall } from './call.js';
import { render, setNotice } from './screen.js';
import { el, fieldName, send, state } from './state.js';
import { t } from './texts.js';

export function toggleTransfer(open) {
  const call = state.call;
  if (!call || call.transferring) return;
  state.transferOpen = open === undefined ? !state.transferOpen : open;
  state.transferConfirm = null;
  render();
  if (state.transferOpen) {
    const first = el.transferFields.querySelector('button');
    if (first) first.focus({ preventScroll: true });
  }
}

/** A field picked in the menu: ask before the visitor is handed on (a slip of the mouse is not undone). */
export function askTransfer(fieldId) {
  const call = state.call;
  if (!call || call.transferring || fieldId === call.field) return;
  state.transferConfirm = fieldId || null;
  render();
  const focus = fieldId ? el.transferConfirmYes : el.transferFields.querySelector('button');
  if (focus) focus.focus({ preventScroll: true });
}

export async function transferTo(fieldId) {
  const call = state.call;
  if (!call || call.transferring || !fieldId || fieldId === call.field) return;
  call.transferring = fieldId;
  state.transferOpen = false;
  state.transferConfirm = null;
  render();
  const answer = await send('transfer', { call_id: call.id, field: fieldId });
  if (!answer.ok) {
    call.transferring = null;
    if (state.call === call) render();
    const text = answer.error.code === 'field_not_served' ? t('No clerk serves {field} for this visitor’s region: the visitor stays with you.', { field: fieldName(fieldId) })
      : t('The server refused: {message}', { message: answer.error.message || answer.error.code });
    setNotice(text, 'error');
    return;
  }
  // call_ended (transferred, wrap_up) has usually come already; if not, end the call on this side now
  if (!call.over) finishCall(call, 'transferred', 'clerk');
  setNotice(t('The visitor is being put through to {field}. Please wrap up your part.', { field: fieldName(fieldId) }), 'info');
}

export function renderTransfer(call) {
  const open = state.transferOpen && !call.transferring;
  el.transfer.disabled = !!call.transferring || !state.connection || !state.connection.connected;
  el.transfer.setAttribute('aria-expanded', String(open));
  setText(el.transfer.querySelector('[data-i18n]'), call.transferring
    ? t('Transferring to {field}…', { field: fieldName(call.transferring) })
    : t('Transfer to another department'));
  el.transferMenu.hidden = !open;
  const asking = open && state.transferConfirm ? state.transferConfirm : null;
  el.transferConfirm.hidden = !asking;
  el.transferFields.hidden = !!asking;
  setText(el.transferConfirmText, asking ? t('Put the visitor through to {field}? Your part of the call ends.', { field: fieldName(asking) }) : '');
  const others = state.fields.filter((f) => f && typeof f.id === 'string' && f.id !== call.field);
  const ids = others.map((f) => f.id).join(' ');
  if (el.transferFields.dataset.ids !== ids) {
    el.transferFields.dataset.ids = ids;
    el.transferFields.replaceChildren(
      ...others.map((f) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'vw-btn-small vw-transfer-field';
        b.dataset.transferField = f.id;
        b.dataset.testid = 'transfer-to-' + f.id;
        return b;
      }),
    );
  }
  for (const b of el.transferFields.querySelectorAll('[data-transfer-field]')) {
    setText(b, fieldName(b.dataset.transferField));
  }
}
