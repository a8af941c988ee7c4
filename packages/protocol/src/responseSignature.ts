/**
 * Signed responses of the client API (`/v1/client/*`). The server signs every
 * answer, success or error, with its current Ed25519 lease-token key; the SDK
 * verifies it with the JWKS it already trusts, so a hostile network can neither
 * forge nor alter nor replay an answer (a refusal, a license summary, a check-in
 * result) — not only the lease token inside it.
 *
 * Headers of a signed answer:
 *
 * ```
 * Floatd-Date: 2026-03-02T09:00:00.000Z
 * Content-Digest: sha-256=:<base64 SHA-256 of the body bytes>:
 * Floatd-Signature: kid=<kid>;sig=<base64url Ed25519 signature>
 * ```
 *
 * The signature covers {@link signingInput}: seven lines joined by `\n`:
 * `floatd-response-v1`, the status, the request method, the request path with its
 * query as the server received it, the request's `Floatd-Nonce` header (empty when
 * none was sent), `Floatd-Date`, `Content-Digest`.
 */

export const SIGNATURE_HEADER = 'floatd-signature';
export const DATE_HEADER = 'floatd-date';
export const DIGEST_HEADER = 'content-digest';
/** A random value the client sends; the signed answer repeats it, so an old answer cannot be replayed to a new request. */
export const NONCE_HEADER = 'floatd-nonce';
export const SIGNATURE_VERSION = 'floatd-response-v1';
/** The longest nonce the server signs back (longer ones are cut: the client sends 22 characters). */
export const MAX_NONCE_LENGTH = 64;

/** `Content-Digest` value (RFC 9530) for a SHA-256 digest given in base64. @example digestHeader('47DEQpj8…=') // 'sha-256=:47DEQpj8…=:' */
export function digestHeader(sha256Base64: string): string {
  return `sha-256=:${sha256Base64}:`;
}

/**
 * The exact text the signature is over.
 *
 * @example signingInput(200, 'POST', '/v1/client/checkout', 'n0nce', '2026-03-02T09:00:00.000Z', 'sha-256=:…:')
 */
export function signingInput(status: number, method: string, path: string, nonce: string, date: string, digest: string): string {
  return `${SIGNATURE_VERSION}\n${status}\n${method}\n${path}\n${nonce}\n${date}\n${digest}`;
}

/** `kid=<kid>;sig=<sig>` → its parts; undefined when it is not of that form. */
export function parseSignatureHeader(value: string | null | undefined): { kid: string; sig: string } | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^kid=([A-Za-z0-9_-]{1,128});sig=([A-Za-z0-9_-]{86})$/.exec(value.trim());
  return m ? { kid: m[1]!, sig: m[2]! } : undefined;
}
