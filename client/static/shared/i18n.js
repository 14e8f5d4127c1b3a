/*
 * Virtual Windows: texts from the gettext catalogs (client/locale/<lang>/LC_MESSAGES/<domain>.po), which the
 * server renders into each page as JSON (<script id="vw-i18n">): {lang: {name, dir, messages}}.
 *
 * A message is keyed by its msgid (the English source text; "context\u0004msgid" with a context) and is a
 * text, or its plural forms keyed by Intl.PluralRules category. A text without a translation shows its msgid.
 * `{name}` placeholders are filled from `params`.
 *
 * The functions are found by `pybabel extract` (keywords t, tn:1,2, tp:1c,2 and N_ in client/locale/*.cfg),
 * so a page calls them by these bare names with string literals as first arguments; N_ marks a text that is
 * translated later. This module holds no texts of its own: it is in neither extraction config.
 */

/** t, tp, tn and N_ over `catalogs`; `currentLang()` names the language when a call gives none. */
export function translator(catalogs, currentLang) {
  function format(text, params) {
    if (!params) return text;
    return text.replace(/\{(\w+)\}/g, (all, name) => (name in params ? String(params[name]) : all));
  }
  function lookup(key, lang) {
    const catalog = catalogs[lang || currentLang()];
    const messages = catalog && catalog.messages;
    return messages && Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : undefined;
  }
  /** gettext */
  function t(msgid, params, lang) {
    if (typeof msgid !== 'string') return '';
    const value = lookup(msgid, lang);
    return format(typeof value === 'string' ? value : msgid, params);
  }
  /** pgettext: the same English text with another meaning (and translation) */
  function tp(context, msgid, params, lang) {
    const value = lookup(`${context}\u0004${msgid}`, lang);
    return format(typeof value === 'string' ? value : msgid, params);
  }
  /** ngettext: the form for the count `n` (also the placeholder {n}) */
  function tn(singular, plural, n, params, lang) {
    const language = lang || currentLang();
    const value = lookup(singular, language);
    let text = n === 1 ? singular : plural;
    if (value && typeof value === 'object') {
      let category = 'other';
      try {
        category = new Intl.PluralRules(language).select(n);
      } catch (err) {
        /* an unknown language: "other" */
      }
      text = value[category] || value.other || text;
    }
    return format(text, Object.assign({ n }, params));
  }
  return { t, tp, tn, N_: (msgid) => msgid };
}

/** A name from a {zh, en, ar} map of the configuration (fields, regions, matter types) in `lang`, else English,
 * else the fallback. */
export function pickName(names, lang, fallback) {
  if (names && typeof names === 'object') return names[lang] || names.en || fallback;
  return fallback;
}
