/**
 * The session-key exchange (issue #17; docs/api.md "RFC 9421 answers and session keys"), for Node: both halves
 * (server and SDK) and the tools (bench, tests) use these, so the derivation is written once.
 *
 * Key pairs are made from 32 random bytes imported as a private key, not with `generateKeyPairSync`: on Node 20 a
 * garbage collection that runs the finaliser of a finished key-generation job while a key is being exported
 * deadlocks the process (the finaliser waits for a mutex the export holds; seen in the bench: the server stopped
 * answering, its main thread in `KeyGenJob::~KeyGenJob` under `ExportJWKEdKey`). Imported keys make no such job.
 */
import { createHash, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, type KeyObject } from 'node:crypto';
import { SESSION_KDF, SESSION_KEYID_PREFIX } from './messageSignature.js';
import { randomBuffer } from './random.js';

/** A PKCS#8 private X25519 key is this DER prefix and the 32 bytes of the key (RFC 8410). */
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
/** What a JWK import is given as the public half, which Node 20 and 22 derive from `d` and ignore. */
const X_PLACEHOLDER = 'A'.repeat(43);

/**
 * How this Node imports 32 private bytes fastest, chosen once: a JWK with a placeholder public half (Node 20 and 22,
 * about 35 µs, where a PKCS#8 DER import takes 380 µs on Node 20), else PKCS#8 DER (Node 24 refuses a JWK whose `x`
 * is not the key's own, and imports DER in about 45 µs). The JWK way is taken only where it gives the key DER gives.
 */
const importPrivate: (d: Buffer) => KeyObject = (() => {
  const der = (d: Buffer) => createPrivateKey({ key: Buffer.concat([PKCS8_X25519, d]), format: 'der', type: 'pkcs8' });
  const jwk = (d: Buffer) =>
    createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: d.toString('base64url'), x: X_PLACEHOLDER }, format: 'jwk' });
  const probe = randomBuffer(32);
  try {
    return publicHalf(jwk(probe)) === publicHalf(der(probe)) ? jwk : der;
  } catch {
    return der;
  }
})();

function publicHalf(privateKey: KeyObject): string {
  return String(createPublicKey(privateKey).export({ format: 'jwk' }).x);
}

/** An X25519 key pair: the private key, and the public key as 43 base64url characters (the wire's `x25519`). */
export interface X25519Pair {
  privateKey: KeyObject;
  x25519: string;
}

/** A fresh X25519 key pair. */
export function x25519Pair(): X25519Pair {
  return x25519PairOf(randomBuffer(32));
}

/** The X25519 key pair of 32 private bytes (`x25519Pair`'s import, for tests with known keys). */
export function x25519PairOf(privateBytes: Buffer): X25519Pair {
  const privateKey = importPrivate(privateBytes);
  return { privateKey, x25519: publicHalf(privateKey) };
}

/**
 * The shared secret of our private key and the peer's public key (base64url); undefined when the peer's key is not
 * an X25519 public key or is a low-order point (the secret all zeros: a key anyone could compute, RFC 7748 §6.1).
 */
export function sharedSecret(privateKey: KeyObject, peerX25519: string): Buffer | undefined {
  let shared: Buffer;
  try {
    const peer = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: peerX25519 }, format: 'jwk' });
    shared = diffieHellman({ privateKey, publicKey: peer });
  } catch {
    return undefined;
  }
  return shared.every((b) => b === 0) ? undefined : shared;
}

/** The use's session key: HKDF-SHA256 (`SESSION_KDF`) over the shared secret, salted with the lease id. */
export function sessionKeyOf(shared: Buffer, leaseId: string): Buffer {
  return Buffer.from(hkdfSync(SESSION_KDF.hash, shared, Buffer.from(leaseId, 'utf8'), SESSION_KDF.info, SESSION_KDF.length));
}

/** A session key's id: `ses_` + 22 base64url characters of SHA-256(`SESSION_KEYID_PREFIX` ‖ key). */
export function sessionKeyId(key: Buffer): string {
  return 'ses_' + createHash('sha256').update(SESSION_KEYID_PREFIX).update(key).digest('base64url').slice(0, 22);
}
