/** Random identifiers: `prefix_` + 20 base62 characters (119 bits), never sequential. */
import { randomInt } from 'node:crypto';
import { formatKey, KEY_ALPHABET } from '@floatd/protocol';
import { randomChars } from '@floatd/protocol/random';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export type IdPrefix = 'whk' | 'evt' | 'dlv' | 'cus' | 'prd' | 'lic' | 'dev' | 'lse' | 'tok' | 'req' | 'dpl';

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomChars(BASE62, 20)}`;
}

/**
 * Request ids: `req_` + 20 base62 characters like `newId`, but a random per-process prefix
 * and a counter (they identify a request in the logs; nothing relies on guessing them being
 * hard, and drawing random bytes for every request is measurable on the hot path).
 */
const REQ_PREFIX = newId('req').slice(0, 4 + 10);
let reqCounter = 0;
export function newRequestId(): string {
  let n = ++reqCounter;
  let tail = '';
  for (let i = 0; i < 10; i++) {
    tail = BASE62[n % 62] + tail;
    n = Math.floor(n / 62);
  }
  return REQ_PREFIX + tail;
}

/** A new license key: 24 random Crockford base32 symbols (120 bits) and a check symbol. */
export function newLicenseKey(): string {
  let body = '';
  for (let i = 0; i < 24; i++) body += KEY_ALPHABET[randomInt(KEY_ALPHABET.length)];
  return formatKey(body);
}
