/*
 * Virtual Windows clerk console: the wrap-up form (docs/protocol.md, `wrap_up`).
 *
 * A wrap-up is a plain object (WrapupForm.create) holding the ended call and
 * the matters typed so far; the form is drawn from it and every input writes back
 * into it, so nothing typed is lost when the form is redrawn, when the server
 * refuses a matter, or when the wrap-up time runs out. Sending, and the queue of
 * calls waiting for their wrap-up, stay in wrapup.js.
 */

import { make, setText } from '../shared/dom.js';
import { formatDuration } from '../shared/format.js';
import { pickName } from '../shared/i18n.js';
import { checkCode, LENGTH } from './creditcode.js';

const MAX_MATTERS = 20; // the server's limit
const CREDIT_CODE_LENGTH = LENGTH; // GB 32100-2015
const OUTCOMES = ['completed', 'referred', 'yet_to_do'];
const FOLLOWUP_KINDS = ['simple', 'general', 'complex'];
const N_ = (msgid) => msgid; // marks a catalog text (staff.po) that is translated where it is shown
const OUTCOME_TEXTS = {
  completed: N_('Completed'),
  referred: N_('Referred'),
  yet_to_do: N_('Yet to do'),
};
const FOLLOWUP_TEXTS = {
  simple: N_('Simple: the same working day'),
  general: N_('General: within 3 working days'),
  complex: N_('Complex: within 7 working days'),
};
// the server names the matter's field in its refusal; the label shown before its message
const ERROR_FIELD_TEXTS = {
  matter_type: N_('Matter type'),
  credit_code: N_('Credit code'),
  entity_name: N_('Entity name'),
  notes: N_('Notes'),
  followup: N_('Follow-up class'),
  outcome: N_('Outcome'),
};

let matterSeq = 0;

function newMatter(outcome) {
  matterSeq += 1;
  return {
    uid: matterSeq,
    matter_type: '',
    credit_code: '',
    entity_name: '',
    outcome: outcome || 'completed',
    followup: 'general',
    notes: '',
  };
}

export class WrapupForm {
  /**
   * @param {object} options
   * @param {object} options.el         the form's elements (see clerk.html): form, clockLabel, countdown,
   *                                      call, late, pending, matters, formError, addMatter, submit, submitLabel
   * @param {function(string, object=): string} options.t   the console's texts
   * @param {string} options.lang        "en" or "zh"
   * @param {function(string): object[]} options.matterTypes  the catalog's matters of a field
   */
  constructor(options) {
    this.el = options.el;
    this.t = options.t;
    this.lang = options.lang;
    this.matterTypes = options.matterTypes;
    this.builtFor = null; // the wrap-up whose matter rows are in the form
  }

  /** A new wrap-up for an ended call: one empty matter, the wrap-up time counted from now. */
  static create(call, timeoutS) {
    return {
      callId: call.id,
      field: call.field,
      peer: call.peer || {},
      duration: ((call.endedAt || Date.now()) - call.startedAt) / 1000,
      how: call.how || '',
      deadline: performance.now() + (timeoutS || 0) * 1000,
      late: false, // the server's wrap-up time ran out (a late wrap-up is still accepted)
      // a call handed on to another department was referred, not completed
      matters: [newMatter(call.transferring ? 'referred' : 'completed')],
      error: null, // {index: number|null, field, code, text}
      sending: false,
    };
  }

  // ---------------------------------------------------------------- drawing

  _row(w, m, index) {
    const t = this.t;
    const id = (name) => `matter-${m.uid}-${name}`;
    const typeSelect = make('select', { id: id('type'), required: true, dataset: { name: 'matter_type', testid: 'wrapup-matter-type' } }, [
      make('option', { value: '', text: t('Choose…') }),
      ...this.matterTypes(w.field).map((mt) => make('option', { value: mt.id, text: pickName(mt.names, this.lang, mt.id) })),
    ]);
    typeSelect.value = m.matter_type;
    const code = make('input', {
      id: id('code'),
      type: 'text',
      class: 'vw-credit-code',
      maxlength: String(CREDIT_CODE_LENGTH),
      spellcheck: 'false',
      autocapitalize: 'characters',
      autocomplete: 'off',
      placeholder: '91350100M000100Y43',
      'aria-describedby': `${id('code-count')} ${id('code-check')}`,
      dataset: { name: 'credit_code', testid: 'wrapup-credit-code' },
    });
    code.value = m.credit_code;
    const entity = make('input', { id: id('entity'), type: 'text', maxlength: '200', dataset: { name: 'entity_name', testid: 'wrapup-entity-name' } });
    entity.value = m.entity_name;
    const outcomes = make(
      'div',
      { class: 'vw-radios', role: 'radiogroup', 'aria-labelledby': id('outcome-label') },
      OUTCOMES.map((o) => {
        const radio = make('input', { type: 'radio', name: id('outcome'), value: o, dataset: { name: 'outcome', testid: 'wrapup-outcome-' + o } });
        radio.checked = m.outcome === o;
        return make('label', { class: 'vw-radio' }, [radio, make('span', { text: t(OUTCOME_TEXTS[o]) })]);
      }),
    );
    const followup = make(
      'select',
      { id: id('followup'), dataset: { name: 'followup', testid: 'wrapup-followup' } },
      FOLLOWUP_KINDS.map((k) => make('option', { value: k, text: t(FOLLOWUP_TEXTS[k]) })),
    );
    followup.value = m.followup;
    const notes = make('textarea', { id: id('notes'), rows: '2', maxlength: '2000', dataset: { name: 'notes', testid: 'wrapup-notes' } });
    notes.value = m.notes;
    const remove = make('button', {
      type: 'button',
      class: 'vw-btn-link vw-matter-remove',
      text: t('Remove'),
      dataset: { removeMatter: String(m.uid), testid: 'wrapup-remove-matter' },
    });

    return make('li', { class: 'vw-matter', dataset: { uid: String(m.uid), index: String(index), testid: 'wrapup-matter' } }, [
      make('div', { class: 'vw-matter-head' }, [make('h3', { class: 'vw-matter-title', text: t('Matter {n}', { n: index + 1 }) }), remove]),
      make('div', { class: 'vw-matter-grid' }, [
        make('label', { for: id('type'), text: t('Matter type') }),
        typeSelect,
        make('label', { for: id('code'), text: t('Unified social credit code (optional)') }),
        make('div', { class: 'vw-code-box' }, [
          code,
          make('span', { id: id('code-count'), class: 'vw-code-count', dataset: { testid: 'wrapup-credit-code-count' } }),
          make('span', { id: id('code-check'), class: 'vw-code-check', role: 'status', dataset: { testid: 'wrapup-credit-code-check' } }),
        ]),
        make('label', { for: id('entity'), text: t('Entity name (optional)') }),
        entity,
        make('span', { id: id('outcome-label'), class: 'vw-grid-label', text: t('Outcome') }),
        outcomes,
        make('label', { for: id('followup'), class: 'vw-followup-label', text: t('Follow-up class') }),
        make('div', { class: 'vw-followup-box' }, [followup]),
        make('label', { for: id('notes'), text: t('Notes (optional)') }),
        notes,
      ]),
      make('div', { class: 'vw-matter-error-slot' }),
    ]);
  }

  /** Draw the matter rows of `w` afresh (after adding or removing one, or for another wrap-up). */
  build(w) {
    this.builtFor = w;
    this.el.matters.replaceChildren(...(w ? w.matters.map((m, i) => this._row(w, m, i)) : []));
  }

  _errorNode(error, index) {
    return make('p', {
      class: 'vw-field-error',
      role: 'alert',
      id: index === null ? 'wrapup-error-form' : `wrapup-error-${index}`,
      text: error.text,
      dataset: { testid: 'wrapup-error', matter: index === null ? '' : String(index), code: error.code || '' },
    });
  }

  _showError(slot, error, index) {
    const shown = slot.firstElementChild;
    if (!error) {
      if (shown) slot.replaceChildren();
    } else if (!shown || shown.textContent !== error.text) {
      slot.replaceChildren(this._errorNode(error, index));
    }
  }

  /**
   * Show `w` (null hides the form). `info`: {visible, callText, more (wrap-ups
   * waiting after this one), left (seconds of wrap-up time, or null)}.
   */
  render(w, info) {
    const el = this.el;
    const t = this.t;
    el.form.hidden = !w || !info.visible;
    if (this.builtFor !== w) this.build(w);
    if (!w) return;
    el.form.dataset.callId = w.callId;
    el.form.setAttribute('aria-busy', String(w.sending));
    setText(el.call, info.callText);
    el.late.hidden = !w.late;
    setText(el.late, w.late ? t('The wrap-up time is over and you are available again. You can still save this wrap-up.') : '');
    el.pending.hidden = !(info.more > 0);
    setText(el.pending, info.more > 0 ? t('Calls waiting for their wrap-up after this one: {n}', { n: info.more }) : '');
    this.renderClock(info.left);

    const rows = el.matters.children;
    w.matters.forEach((m, i) => {
      const row = rows[i];
      if (!row) return;
      row.dataset.index = String(i);
      setText(row.querySelector('.vw-matter-title'), t('Matter {n}', { n: i + 1 }));
      row.querySelector('[data-remove-matter]').hidden = w.matters.length < 2;
      row.querySelector('.vw-followup-label').hidden = m.outcome !== 'yet_to_do';
      row.querySelector('.vw-followup-box').hidden = m.outcome !== 'yet_to_do';
      const count = row.querySelector('.vw-code-count');
      // the code checked as it is typed (the server's rule): green only when the check character is right
      const check = checkCode(m.credit_code);
      setText(count, `${m.credit_code.length}/${CREDIT_CODE_LENGTH}`);
      count.classList.toggle('vw-code-count-full', check.state === 'ok');
      count.classList.toggle('vw-code-count-bad', check.state === 'bad_check' || check.state === 'bad_char');
      const checkLine = row.querySelector('.vw-code-check');
      checkLine.dataset.state = check.state;
      setText(checkLine, {
        ok: t('check character correct'),
        bad_check: t('check character should be {expected}: a character is probably mistyped', { expected: check.expected }),
        bad_char: t('“{char}” (position {position}) cannot be in a credit code', { char: check.char, position: check.position }),
      }[check.state] || '');
      const codeBad = check.state === 'bad_check' || check.state === 'bad_char';
      const error = w.error && w.error.index === i ? w.error : null;
      for (const input of row.querySelectorAll('[data-name]')) {
        const bad = (!!error && !!error.field && input.dataset.name === error.field) || (codeBad && input.dataset.name === 'credit_code');
        input.setAttribute('aria-invalid', String(bad));
        if (bad) input.setAttribute('aria-errormessage', `wrapup-error-${i}`);
        else input.removeAttribute('aria-errormessage');
      }
      this._showError(row.querySelector('.vw-matter-error-slot'), error, i);
    });
    this._showError(el.formError, w.error && w.error.index === null ? w.error : null, null);
    el.addMatter.disabled = w.sending || w.matters.length >= MAX_MATTERS;
    el.submit.disabled = w.sending;
    setText(el.submitLabel, w.sending ? t('Saving…') : t('Save wrap-up'));
  }

  /** The countdown: `left` seconds of wrap-up time, or null when it is not counting. */
  renderClock(left) {
    const counting = typeof left === 'number';
    setText(this.el.clockLabel, counting ? this.t('Time left') : '');
    setText(this.el.countdown, counting ? formatDuration(left) : '');
    this.el.countdown.dataset.seconds = counting ? String(left) : '';
  }

  focus(w, index, name) {
    if (this.builtFor !== w) return;
    const row = this.el.matters.children[index];
    if (!row) return;
    const input = row.querySelector(`[data-name="${name}"]:not([type="radio"])`) || row.querySelector(`[data-name="${name}"]:checked`);
    if (input) input.focus();
  }

  // ---------------------------------------------------------------- editing

  /** An input or change event in the form: write it into `w`. Returns whether it was a matter's field. */
  readInput(w, target) {
    if (!w || this.builtFor !== w || !(target instanceof HTMLElement) || !target.dataset.name) return false;
    const row = target.closest('[data-uid]');
    const index = row ? w.matters.findIndex((m) => String(m.uid) === row.dataset.uid) : -1;
    if (index < 0) return false;
    const m = w.matters[index];
    const name = target.dataset.name;
    if (name === 'credit_code') {
      // uppercase as typed, no spaces; the caret stays where it was
      const before = target.value;
      const start = target.selectionStart;
      const cleaned = before.toUpperCase().replace(/\s+/g, '').slice(0, CREDIT_CODE_LENGTH);
      if (cleaned !== before) {
        const removed = before.slice(0, start || 0).replace(/\S/g, '').length;
        target.value = cleaned;
        if (start !== null) {
          const caret = Math.min(cleaned.length, Math.max(0, start - removed));
          target.setSelectionRange(caret, caret);
        }
      }
      m.credit_code = cleaned;
    } else if (name === 'outcome') {
      if (target.checked) m.outcome = target.value;
    } else if (name in m) {
      m[name] = target.value;
    }
    // a refusal goes away once the field it was about is changed
    if (w.error && w.error.index === index && (!w.error.field || w.error.field === name || name === 'matter_type')) w.error = null;
    return true;
  }

  /** Add an empty matter; returns its index, or -1 at the limit. */
  add(w) {
    if (!w || w.sending || w.matters.length >= MAX_MATTERS) return -1;
    w.matters.push(newMatter());
    this.build(w);
    return w.matters.length - 1;
  }

  /** Remove the matter `uid` (never the last one); returns the index to focus, or -1. */
  remove(w, uid) {
    if (!w || w.sending || w.matters.length < 2) return -1;
    const index = w.matters.findIndex((m) => String(m.uid) === uid);
    if (index < 0) return -1;
    w.matters.splice(index, 1);
    if (w.error && w.error.index !== null) {
      if (w.error.index === index) w.error = null;
      else if (w.error.index > index) w.error.index -= 1;
    }
    this.build(w);
    return Math.min(index, w.matters.length - 1);
  }

  // ---------------------------------------------------------------- sending

  /** What must be fixed before sending (a matter without its type), as an error, or null. */
  check(w) {
    const missing = w.matters.findIndex((m) => !m.matter_type);
    if (missing < 0) return null;
    return { index: missing, field: 'matter_type', code: 'required', text: this.t('Choose the matter type.') };
  }

  /** The `wrap_up` payload; empty optional fields are left out. */
  static payload(w) {
    return {
      call_id: w.callId,
      matters: w.matters.map((m) => {
        const out = { matter_type: m.matter_type, outcome: m.outcome };
        const code = m.credit_code.trim();
        const entity = m.entity_name.trim();
        const notes = m.notes.trim();
        if (code) out.credit_code = code;
        if (entity) out.entity_name = entity;
        if (notes) out.notes = notes;
        if (m.outcome === 'yet_to_do') out.followup = m.followup;
        return out;
      }),
    };
  }

  /**
   * The server's refusal, placed at its matter: "matters[1].credit_code: ..." (the
   * server's checks) or "... - at `$.matters[1].notes`" (schema validation); any
   * other goes below the matters.
   */
  placeError(w, error) {
    const t = this.t;
    const message = error.message || error.code;
    const m = /^matters\[(\d+)\](?:\.(\w+))?:\s*([\s\S]*)$/.exec(message) || /\$\.matters\[(\d+)\](?:\.(\w+))?/.exec(message);
    if (m && Number(m[1]) < w.matters.length) {
      const field = m[2] || '';
      const detail = m[3] !== undefined ? m[3] : message;
      const label = ERROR_FIELD_TEXTS[field] ? t(ERROR_FIELD_TEXTS[field]) : '';
      const separator = this.lang === 'zh' ? '：' : ': ';
      return { index: Number(m[1]), field, code: error.code, text: label ? label + separator + detail : detail };
    }
    return { index: null, field: '', code: error.code, text: t('The server refused: {message}', { message }) };
  }
}
