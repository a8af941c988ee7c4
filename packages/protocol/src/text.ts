/**
 * Text a client chooses (hostname, user name, app version; fingerprints and
 * instance ids are narrower still) ends up on administrators' terminals, in the
 * console and in spreadsheets. Two rules, one for each side:
 *
 * - on the way in, identity text refuses the characters a terminal or a text
 *   renderer obeys instead of showing: C0 and C1 control characters, DEL, and
 *   the bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069).
 *   The schemas carry the rule (`IDENTITY_TEXT_PATTERN`), so the server refuses
 *   with VALIDATION_FAILED and the SDK can check before it sends;
 * - on the way out, anything that came from a client or from metadata, including
 *   rows stored before the rule existed, is shown with those characters escaped
 *   visibly (`visibleText`), and a CSV cell that a spreadsheet would run as a
 *   formula is neutralised (`csvSafeCell`, after OWASP's CSV-injection guidance).
 */

/** The characters identity text may not hold (as a JSON-Schema/RegExp class body, `u` flag). */
const UNSAFE_CLASS = '\\u0000-\\u001f\\u007f-\\u009f\\u202a-\\u202e\\u2066-\\u2069';

/** JSON-Schema `pattern` for identity text from clients. */
export const IDENTITY_TEXT_PATTERN = `^[^${UNSAFE_CLASS}]*$`;
/** A name an administrator lists (a group's users and hosts): identity text, not empty, and no lone surrogate either. */
export const LISTED_NAME_PATTERN = `^[^${UNSAFE_CLASS}\\ud800-\\udfff]+$`;
/** A principal of an access policy: `user:`, `host:` or `group:` and a listed name. */
export const PRINCIPAL_PATTERN = `^(user|host|group):[^${UNSAFE_CLASS}\\ud800-\\udfff]{1,255}$`;

const UNSAFE = new RegExp(`[${UNSAFE_CLASS}]`, 'u');
const UNSAFE_ALL = new RegExp(`[${UNSAFE_CLASS}]`, 'gu');

/** Whether `s` holds a character identity text may not hold. */
export function hasUnsafeText(s: string): boolean {
  return UNSAFE.test(s);
}

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `s` with every control character, DEL and bidi override shown as an escape
 * (`\x1b`, `\x7f`, `\u202e`, `\n`); a backslash that would make the output
 * ambiguous is not doubled, as the result is for reading, not for parsing back.
 *
 * @example visibleText('\u001b]0;PWNED\u0007ws') === '\\x1b]0;PWNED\\x07ws'
 */
export function visibleText(s: string): string {
  return s.replace(UNSAFE_ALL, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.codePointAt(0) ?? 0;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * JSON text whose string contents hold no raw control character or bidi
 * override: JSON.stringify already escapes C0, this escapes DEL, C1 and the
 * overrides as `\uXXXX` (still valid JSON that parses to the same value).
 */
export function visibleJson(json: string): string {
  // C0 is left alone: inside strings JSON.stringify escaped it, outside it is the indentation's own line breaks.
  return json.replace(/[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/gu, (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`);
}

/**
 * A CSV cell a spreadsheet will not run: a cell that starts with `=`, `+`, `-`,
 * `@`, a tab or a carriage return gets a leading apostrophe (OWASP, CSV
 * injection). Plain numbers (a negative count, say) are left as they are.
 */
export function csvSafeCell(s: string): string {
  if (/^-?\d+(\.\d+)?$/.test(s)) return s;
  return /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
}
