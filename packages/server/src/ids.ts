/** Random identifiers: `prefix_` + 20 base62 characters (119 bits), never sequential. */
import { randomBytes, randomInt } from 'node:crypto';
import { formatKey, KEY_ALPHABET } from '@floatd/protocol';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export type IdPrefix = 'whk' | 'evt' | 'dlv' | 'cus' | 'prd' | 'lic' | 'dev' | 'lse' | 'tok' | 'req' | 'dpl';

export function newId(prefix: IdPrefix): string {
  // 248 = 4 * 62: bytes at or above it are redrawn so every character is equally likely.
  let out = prefix + '_';
  while (out.length < prefix.length + 21) {
    for (const b of randomBytes(32)) {
      if (b < 248 && out.length < prefix.length + 21) out += BASE62[b % 62];
    }
  }
  return out;
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
