/**
 * Signed client answers as HTTP Message Signatures (RFC 9421) with `Content-Digest` (RFC 9530):
 * the form a client asks for with an `Accept-Signature` request header (issue #17). Clients that do not
 * ask get today's `Floatd-Signature` (responseSignature.ts) for one more release.
 *
 * - **Which key.** A checkout's answer, and any answer whose request names no session key of the use it
 *   addresses, is signed with the server's Ed25519 lease-token key (`alg="ed25519"`, `keyid` = its JWKS `kid`). A checkout may carry the
 *   client's ephemeral X25519 public key (`session.x25519`); its signed answer then carries the server's, and
 *   both sides derive the use's 32-byte session key with HKDF-SHA256 ({@link SESSION_KDF}). The answers on
 *   that use afterwards (heartbeat, check-in, features), to requests naming that key in `Accept-Signature`, are
 *   signed with HMAC-SHA256 under it (`alg="hmac-sha256"`, `keyid` = its id, `ses_…`): one hash instead of a
 *   public-key signature.
 * - **What is covered.** Always the same components, in this order:
 *   `"@status" "content-digest" "floatd-date" "@method";req "@path";req "@query";req`, with the parameters
 *   `created` (the answer's date, in seconds), `keyid`, `alg` and `nonce` (the request's `Floatd-Nonce`,
 *   omitted when the request sent none or one that is not a plain token).
 * - **Headers.** `Signature-Input: floatd=(…);created=…;keyid="…";alg="…";nonce="…"` and
 *   `Signature: floatd=:<base64>:`. The label is always `floatd`.
 *
 * @example
 * // the signature base of a heartbeat's answer (what the HMAC is over)
 * signatureBase({ status: 200, method: 'POST', path: '/v1/client/leases/lse_…/heartbeat', query: '',
 *   digest: 'sha-256=:…:', date: '2026-03-02T09:00:00.000Z' },
 *   signatureParams({ created: 1772442000, keyid: 'ses_…', alg: 'hmac-sha256', nonce: 'n0nce' }))
 */

export const SIGNATURE_INPUT_HEADER = 'signature-input';
export const MESSAGE_SIGNATURE_HEADER = 'signature';
/** A request header: the client asks for RFC 9421 answers (any value; floatd's SDK sends {@link ACCEPT_SIGNATURE_VALUE}). */
export const ACCEPT_SIGNATURE_HEADER = 'accept-signature';
export const SIGNATURE_LABEL = 'floatd';
export type MessageAlg = 'ed25519' | 'hmac-sha256';

/** The components every signed answer covers, serialized as in `Signature-Input`. */
export const COVERED_COMPONENTS = '("@status" "content-digest" "floatd-date" "@method";req "@path";req "@query";req)';
/** What floatd's SDK sends as `Accept-Signature` (RFC 9421 §5.1: the components it wants covered). */
export const ACCEPT_SIGNATURE_VALUE = `${SIGNATURE_LABEL}=${COVERED_COMPONENTS}`;

/**
 * The session key's derivation: HKDF-SHA256 with the X25519 shared secret as input keying material, the lease id
 * (UTF-8) as salt and this text as info, 32 bytes out.
 */
export const SESSION_KDF = { hash: 'sha256', info: 'floatd-session-v1', length: 32 } as const;
/**
 * A session key's `keyid`: `ses_` + the first 22 base64url characters of SHA-256(UTF-8 {@link SESSION_KEYID_PREFIX}
 * followed by the 32 key bytes). The client names the key it holds in `Accept-Signature` (`;keyid="ses_…"`); the
 * server signs with HMAC only when that is the key of the use the request addresses (another process's check-in of
 * a crashed use on the same lease gets Ed25519).
 */
export const SESSION_KEYID_PREFIX = 'floatd-session-keyid-v1';

/** `Accept-Signature` naming the session key a client holds (without one: {@link ACCEPT_SIGNATURE_VALUE}). */
export function acceptSignature(keyid?: string): string {
  return keyid === undefined ? ACCEPT_SIGNATURE_VALUE : `${ACCEPT_SIGNATURE_VALUE};keyid="${keyid}"`;
}

/** The `keyid` an `Accept-Signature` value names, if any. */
export function acceptedKeyId(value: string | string[] | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  return /;keyid="(ses_[A-Za-z0-9_-]{22})"/.exec(value)?.[1];
}

/** Nonces signed back as a parameter: a plain token (an sf-string needing no escapes). */
const NONCE_RE = /^[A-Za-z0-9._~+/=-]{1,64}$/;

/** The nonce as signed: the request's own when it is a plain token, otherwise none. */
export function signableNonce(nonce: string | undefined): string | undefined {
  return nonce !== undefined && NONCE_RE.test(nonce) ? nonce : undefined;
}

export interface SignatureParams {
  /** seconds since the epoch */
  created: number;
  keyid: string;
  alg: MessageAlg;
  nonce?: string | undefined;
}

/** The inner list with its parameters, as in `Signature-Input` (after `floatd=`) and the base's last line. */
export function signatureParams(p: SignatureParams): string {
  return `${COVERED_COMPONENTS};created=${p.created};keyid="${p.keyid}";alg="${p.alg}"${p.nonce !== undefined ? `;nonce="${p.nonce}"` : ''}`;
}

export interface SignedAnswer {
  status: number;
  method: string;
  /** the request's path, without its query */
  path: string;
  /** the request's query without its `?` ('' when none) */
  query: string;
  /** the answer's `Content-Digest` */
  digest: string;
  /** the answer's `Floatd-Date` */
  date: string;
}

/** The signature base (RFC 9421 §2.5) of an answer: what the Ed25519 signature or the HMAC is over. */
export function signatureBase(a: SignedAnswer, params: string): string {
  return (
    `"@status": ${a.status}\n` +
    `"content-digest": ${a.digest}\n` +
    `"floatd-date": ${a.date}\n` +
    `"@method";req: ${a.method.toUpperCase()}\n` +
    `"@path";req: ${a.path}\n` +
    `"@query";req: ?${a.query}\n` +
    `"@signature-params": ${params}`
  );
}

/** Splits a request target (`/path?query`) into the `@path` and `@query` values' sources. */
export function splitTarget(target: string): { path: string; query: string } {
  const q = target.indexOf('?');
  return q < 0 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

const INPUT_RE = new RegExp(
  `^${SIGNATURE_LABEL}=(${regexText(COVERED_COMPONENTS)};created=([0-9]{1,12});keyid="([A-Za-z0-9_.:-]{1,128})";alg="(ed25519|hmac-sha256)"(?:;nonce="([A-Za-z0-9._~+/=-]{1,64})")?)$`,
);
function regexText(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A `Signature-Input` value floatd writes → its parts (`params`: the text after `floatd=`); undefined otherwise. */
export function parseSignatureInput(value: string | null | undefined): (SignatureParams & { params: string }) | undefined {
  if (typeof value !== 'string') return undefined;
  const m = INPUT_RE.exec(value.trim());
  if (!m) return undefined;
  return { params: m[1]!, created: Number(m[2]), keyid: m[3]!, alg: m[4] as MessageAlg, ...(m[5] !== undefined ? { nonce: m[5] } : {}) };
}

/** `Signature: floatd=:<base64>:` → the signature bytes' base64; undefined otherwise. */
export function parseMessageSignature(value: string | null | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = new RegExp(`^${SIGNATURE_LABEL}=:([A-Za-z0-9+/]{1,200}={0,2}):$`).exec(value.trim());
  return m ? m[1] : undefined;
}

/** The `Signature-Input` and `Signature` header values for a signature (base64) made over `params`. */
export function signatureHeaders(params: string, signatureBase64: string): { input: string; signature: string } {
  return { input: `${SIGNATURE_LABEL}=${params}`, signature: `${SIGNATURE_LABEL}=:${signatureBase64}:` };
}
