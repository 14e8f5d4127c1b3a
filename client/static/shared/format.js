/*
 * Virtual Windows: durations and calendar dates as the pages show them.
 */

// the locale of each page language for dates (Arabic with Latin digits, as the rest of the kiosk shows them)
const DATE_LOCALES = { zh: 'zh-CN', en: 'en-GB', ar: 'ar-u-nu-latn' };

/** 75 -> "1:15", 3725 -> "1:02:05". */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

/**
 * "2025-06-12" (the server's calendar date, no time zone shift) as a date in `lang`, with the weekday and the
 * month named in full (`width` "long") or shortened ("short"). Anything else is shown as it is.
 */
export function formatDay(iso, lang, width) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(iso || ''));
  if (!m) return String(iso || '');
  const date = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  try {
    return new Intl.DateTimeFormat(DATE_LOCALES[lang] || lang, {
      weekday: width, year: 'numeric', month: width, day: 'numeric', timeZone: 'UTC',
    }).format(date);
  } catch (err) {
    return iso;
  }
}
