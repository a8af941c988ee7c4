/**
 * License key format: 25 symbols of Crockford base32 in five groups of five,
 * `XXXXX-XXXXX-XXXXX-XXXXX-XXXXC`. The first 24 symbols are random (120 bits,
 * unguessable); the last is a Luhn mod 32 check symbol, so any mistake in one
 * symbol and nearly every swap of two neighbours (all but 0↔Z) is caught before
 * any network call.
 * Crockford's alphabet has no I, L, O, U: readers map I/L to 1 and O to 0.
 */
export const KEY_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const N = KEY_ALPHABET.length;

function codePoint(ch: string): number {
  return KEY_ALPHABET.indexOf(ch);
}

/** Luhn mod N check symbol over `body` (symbols of KEY_ALPHABET). */
export function checkSymbol(body: string): string {
  let factor = 2;
  let sum = 0;
  for (let i = body.length - 1; i >= 0; i--) {
    let addend = factor * codePoint(body[i]!);
    factor = factor === 2 ? 1 : 2;
    addend = Math.floor(addend / N) + (addend % N);
    sum += addend;
  }
  return KEY_ALPHABET[(N - (sum % N)) % N]!;
}

/** Formats 24 body symbols plus the check symbol into five dash-separated groups. */
export function formatKey(body: string): string {
  const full = body + checkSymbol(body);
  return full.match(/.{5}/g)!.join('-');
}

/**
 * Normalises what a person typed (case, spaces, dashes, I/L/O look-alikes) and
 * returns the canonical key, or `undefined` when it is not a well-formed key.
 *
 * @example normalizeKey('abcde fghjk-mnpqr-stvwx-yz01x') // 'ABCDE-FGHJK-...' or undefined
 */
export function normalizeKey(input: string): string | undefined {
  if (input.length > 64) return undefined;
  const raw = input.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
  if (raw.length !== 25) return undefined;
  for (const ch of raw) if (codePoint(ch) < 0) return undefined;
  const body = raw.slice(0, 24);
  if (checkSymbol(body) !== raw[24]) return undefined;
  return formatKey(body);
}
