/*
 * Virtual Windows kiosk: the start screen's parts that are built from the server's data: the language buttons,
 * a button per service field (with its icon), and the notices shown in every language at once before anyone
 * picked one. Their texts are filled in by render() (screen.js) in the visitor's language.
 */

import { CATALOGS, el, state } from './state.js';
import { t } from './texts.js';

const ICONS = {
  shop: [
    'M3 9 5 4h14l2 5',
    'M3 9h18v1.5a3 3 0 0 1-6 0 3 3 0 0 1-6 0 3 3 0 0 1-6 0z',
    'M5 13v7h14v-7',
    'M10 20v-4h4v4',
  ],
  receipt: ['M6 3h12v18l-3-2-3 2-3-2-3 2z', 'M9 8h6', 'M9 12h6', 'M9 16h3'],
  people: [
    'M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z',
    'M2.5 20a6.5 6.5 0 0 1 13 0',
    'M16 4.3a3.2 3.2 0 0 1 0 6.4',
    'M18 14a6 6 0 0 1 3.5 6',
  ],
  home: ['M3 11.5 12 4l9 7.5', 'M5.5 10v10h13V10', 'M10 20v-6h4v6'],
  other: ['M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z', 'M12 7.5v6', 'M12 16.5v.5'],
};

function svgIcon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', 'vw-field-icon');
  for (const d of ICONS[name] || ICONS.other) {
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', d);
    svg.appendChild(path);
  }
  return svg;
}

export function buildFields() {
  el.fields.replaceChildren();
  for (const f of state.fields) {
    if (!f || typeof f.id !== 'string') continue;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'vw-field';
    button.dataset.field = f.id;
    button.dataset.testid = 'field-' + f.id;
    button.appendChild(svgIcon(f.icon));
    const name = document.createElement('span');
    name.className = 'vw-field-name';
    button.appendChild(name);
    // what the field handles (its matter types, config/fields.toml), in the visitor's language by render()
    const matters = document.createElement('span');
    matters.className = 'vw-field-matters';
    matters.dataset.testid = 'field-matters-' + f.id;
    button.appendChild(matters);
    el.fields.appendChild(button);
  }
}

export function buildLanguages() {
  el.languages.replaceChildren();
  for (const lang of state.languages) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'vw-lang';
    button.lang = lang;
    button.dir = CATALOGS[lang].dir;
    button.dataset.lang = lang;
    button.dataset.testid = 'lang-' + lang;
    button.textContent = CATALOGS[lang].name || lang;
    el.languages.appendChild(button);
  }
}

/** Texts shown in every language at once (before anyone picked one). */
export function renderMultilang() {
  for (const box of document.querySelectorAll('[data-multilang]')) {
    const msgids = JSON.parse(box.dataset.multilang || '[]');
    box.replaceChildren();
    for (const lang of state.languages) {
      const block = document.createElement('div');
      block.className = 'vw-multilang-block';
      block.lang = lang;
      block.dir = CATALOGS[lang].dir;
      msgids.forEach((msgid, i) => {
        const p = document.createElement('p');
        p.className = i === 0 ? 'vw-big-text' : 'vw-sub-text';
        p.textContent = t(msgid, null, lang);
        block.appendChild(p);
      });
      box.appendChild(block);
    }
  }
}
