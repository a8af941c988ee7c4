/**
 * The device-fingerprint hash a lease token carries (`fph` claim): the server
 * writes it when it signs a token, the SDK checks it against its own device.
 * One implementation, so the two sides cannot drift apart.
 *
 * Node-only (node:crypto, synchronous): exported as `@floatd/protocol/fingerprint`,
 * not from the package index, which the browser console also imports.
 */
import { createHash } from 'node:crypto';

/** SHA-256 of the fingerprint text (UTF-8), base64url without padding. */
export function fingerprintHash(fingerprint: string): string {
  return createHash('sha256').update(fingerprint).digest('base64url');
}
