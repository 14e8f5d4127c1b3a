/*
 * Virtual Windows: the service fields of the catalog (config/fields.toml) as the server sends them to the pages
 * (in #vw-data and in `welcome.fields`): {id, names: {zh, en, ar}, icon, recording, matters}.
 */

import { pickName } from './i18n.js';

export function fieldById(fields, id) {
  return fields.find((f) => f && f.id === id) || null;
}

/** The field's name in `lang`; an unknown field shows its id. */
export function fieldName(fields, id, lang) {
  const f = fieldById(fields, id);
  return f ? pickName(f.names, lang, f.id) : id || '';
}
