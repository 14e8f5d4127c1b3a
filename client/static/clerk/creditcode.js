/*
 * Virtual Windows clerk console: the unified social credit code (GB 32100-2015) checked as it is typed, the
 * same check character rule as the server's (signaling/creditcode.py): alphabet 0-9 and A-Y without I, O, Z, S,
 * V; weights 3^(i-1) mod 31 over positions 1-17; C18 = 31 - (sum mod 31), 31 becoming 0. The server still
 * checks everything (also the registration authority and entity type); this only tells the clerk early.
 */

export const ALPHABET = '0123456789ABCDEFGHJKLMNPQRTUWXY';
export const LENGTH = 18;
const WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/** As the server normalizes: NFKC (full-width digits and letters), no whitespace, upper case. */
export function normalizeCode(text) {
  return String(text || '').normalize('NFKC').replace(/\s+/g, '').toUpperCase();
}

/** The check character the first 17 characters call for, or null if one of them is not in the alphabet. */
export function expectedCheckCharacter(code) {
  let sum = 0;
  for (let i = 0; i < 17; i += 1) {
    const v = ALPHABET.indexOf(code[i]);
    if (v < 0) return null;
    sum += v * WEIGHTS[i];
  }
  return ALPHABET[(31 - (sum % 31)) % 31];
}

/**
 * Where a code being typed stands: {state, position?, char?, expected?}
 *   empty      nothing typed
 *   bad_char   `char` at 1-based `position` is not in the alphabet
 *   partial    fewer than 18 characters so far, all allowed
 *   bad_check  18 characters, the last is not `expected`
 *   ok         18 characters and the check character is right
 */
export function checkCode(text) {
  const code = normalizeCode(text);
  if (!code) return { state: 'empty' };
  for (let i = 0; i < code.length; i += 1) {
    if (ALPHABET.indexOf(code[i]) < 0) return { state: 'bad_char', position: i + 1, char: code[i] };
  }
  if (code.length < LENGTH) return { state: 'partial' };
  const expected = expectedCheckCharacter(code);
  return code[17] === expected ? { state: 'ok' } : { state: 'bad_check', expected };
}
