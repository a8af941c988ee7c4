/**
 * Signed documents: the envelope shared by license files, activation requests,
 * usage reports and the stored trusted time.
 *
 * ```json
 * { "format": "floatd-license-file/1",
 *   "payload": { ...plain, readable JSON... },
 *   "signature": { "alg": "EdDSA", "kid": "…", "value": "<base64url Ed25519 signature>" } }
 * ```
 *
 * The signature covers `format + "\n" + canonical(payload)`, where `canonical` is
 * JSON with object keys sorted and no whitespace (RFC 8785 for the values we use:
 * strings, integers, booleans, null, arrays, objects). Putting the format first
 * separates the kinds of document: a usage report can never pass for a license
 * file. Anyone with the public key can check a file with a dozen lines of code
 * (docs/on-prem.md shows them); people can read the payload as it is.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

export type DocumentFormat =
  | 'floatd-license-file/1'
  | 'floatd-activation-request/1'
  | 'floatd-usage-report/1'
  | 'floatd-trusted-time/1'
  | 'floatd-state/1';

export interface Envelope<P = unknown> {
  format: DocumentFormat;
  payload: P;
  signature: { alg: 'EdDSA'; kid: string; value: string };
}

/** JSON with sorted object keys and no whitespace: the bytes a signature covers. */
export function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new Error('signed documents hold integers only');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
}

function signedBytes(format: DocumentFormat, payload: unknown): Buffer {
  return Buffer.from(`${format}\n${canonical(payload)}`);
}

/** The key id of an Ed25519 public key: 16 characters of the SHA-256 of its raw bytes. */
export function keyId(publicKey: KeyObject): string {
  const x = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
  return createHash('sha256').update(Buffer.from(x, 'base64url')).digest('base64url').slice(0, 16);
}

export interface Signer {
  kid: string;
  privateKey: KeyObject;
}

export function signerOf(privateKey: KeyObject): Signer {
  return { kid: keyId(createPublicKey(privateKey)), privateKey };
}

export function signDocument<P>(format: DocumentFormat, payload: P, signer: Signer): Envelope<P> {
  const value = sign(null, signedBytes(format, payload), signer.privateKey).toString('base64url');
  return { format, payload, signature: { alg: 'EdDSA', kid: signer.kid, value } };
}

export type Verified<P> = { ok: true; payload: P; kid: string } | { ok: false; reason: string };

/**
 * Checks an envelope (parsed JSON of unknown shape) against trusted public keys.
 * Only the shape of the envelope is checked here; the payload's own schema is the caller's.
 */
export function verifyDocument<P = unknown>(format: DocumentFormat, doc: unknown, keys: readonly KeyObject[]): Verified<P> {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc))
    return { ok: false, reason: 'not a signed floatd document (expected a JSON object)' };
  const d = doc as Partial<Envelope<P>>;
  if (d.format !== format) return { ok: false, reason: `expected format ${format}, found ${JSON.stringify(d.format ?? null)}` };
  const s = d.signature;
  if (!s || typeof s !== 'object' || s.alg !== 'EdDSA' || typeof s.value !== 'string' || typeof s.kid !== 'string') {
    return { ok: false, reason: 'the signature block is missing or not EdDSA' };
  }
  if (d.payload === undefined || d.payload === null || typeof d.payload !== 'object')
    return { ok: false, reason: 'the payload is missing' };
  let bytes: Buffer;
  try {
    bytes = signedBytes(format, d.payload);
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  const sig = Buffer.from(s.value, 'base64url');
  for (const key of keys) {
    if (sig.length === 64 && verify(null, bytes, key, sig)) return { ok: true, payload: d.payload, kid: keyId(key) };
  }
  return {
    ok: false,
    reason: keys.length
      ? 'the signature does not match the trusted key (the document was changed, or another key signed it)'
      : 'no key to verify with',
  };
}

/** Parses a document's text; a syntax error is a reason, not an exception. */
export function parseDocument(text: string): { ok: true; doc: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, doc: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}` };
  }
}

export function generateSigningKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

/** A public key from PEM (SPKI), a JWK (JSON text) or raw base64url of the 32 key bytes. Parsed once, then reused. */
export function publicKeyFrom(text: string): KeyObject {
  const t = text.trim();
  if (t.startsWith('-----BEGIN')) {
    const key = createPublicKey(t);
    return ed25519(key);
  }
  if (t.startsWith('{')) return ed25519(createPublicKey({ key: JSON.parse(t) as import('node:crypto').JsonWebKey, format: 'jwk' }));
  if (/^[A-Za-z0-9_-]{43}$/.test(t)) return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: t }, format: 'jwk' });
  throw new Error('not an Ed25519 public key (PEM, JWK or base64url)');
}

export function privateKeyFrom(text: string): KeyObject {
  const t = text.trim();
  const key = t.startsWith('{')
    ? createPrivateKey({ key: JSON.parse(t) as import('node:crypto').JsonWebKey, format: 'jwk' })
    : createPrivateKey(t);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`not an Ed25519 private key (found ${key.asymmetricKeyType ?? 'unknown'})`);
  return key;
}

function ed25519(key: KeyObject): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`not an Ed25519 public key (found ${key.asymmetricKeyType ?? 'unknown'})`);
  return key;
}

/** The public half as base64url of its 32 raw bytes (what files and requests carry). */
export function publicKeyText(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return (pub.export({ format: 'jwk' }) as { x: string }).x;
}
