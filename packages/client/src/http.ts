/**
 * The HTTP calls to floatd's client API: one request, a timeout, errors mapped to
 * codes, and the check of the answer's signature (every `/v1/client/*` answer is
 * signed by the server; see `@floatd/protocol` responseSignature).
 */
import { createHash, randomBytes } from 'node:crypto';
import { DATE_HEADER, DIGEST_HEADER, NONCE_HEADER, SIGNATURE_HEADER, digestHeader, parseSignatureHeader, signingInput, urlOf } from '@floatd/protocol';
import type { CallInput, ReplyOf, RouteSpec } from '@floatd/protocol';
import { FloatingLicenseError, errorFromResponse, parseRetryAfter } from './errors.js';

/** The `fetch` the SDK uses. @example new FloatingLicense({ serverUrl, licenseKey, fetch: (url, init) => net.fetch(url, init) }) // Electron's net */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface ApiOptions {
  serverUrl: string;
  licenseKey: string;
  fetch: FetchLike;
  timeoutMs: number;
  userAgent: string;
  /** the wall clock, for an HTTP-date `Retry-After` */
  now?: () => number;
}

/**
 * Checks a detached Ed25519 signature by the server key `kid` over `data`;
 * rejects with INVALID_SIGNATURE. Set once the trusted keys are known.
 */
export type SignatureVerifier = (kid: string, data: string, sig: string) => Promise<void>;

/** `https://host:port/base` without a trailing slash; throws on anything that is not http(s). */
export function normalizeServerUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FloatingLicenseError('VALIDATION_FAILED', `serverUrl "${url}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new FloatingLicenseError('VALIDATION_FAILED', `serverUrl must be http(s), not ${u.protocol}`);
  return (u.origin + u.pathname).replace(/\/+$/, '');
}

export class Api {
  /** Verifies signed answers; without it (before the SDK set up its trust) client API answers are refused. */
  verifier: SignatureVerifier | undefined;

  constructor(private readonly o: ApiOptions) {}

  /**
   * Calls a route declared in `@floatd/protocol` (`routes.client.*`, `routes.ops.jwks`).
   * Resolves with the parsed JSON of a 2xx answer; rejects with a `FloatingLicenseError`:
   * the server's code for an error envelope, NETWORK_ERROR when nothing answered (or too
   * late), BAD_RESPONSE when the answer is not floatd's.
   * @example const grant = await api.call(routes.client.checkout, { body: { fingerprint, instanceId } });
   */
  async call<R extends RouteSpec>(route: R, input: CallInput<R>, opts: { timeoutMs?: number } = {}): Promise<ReplyOf<R>> {
    return (await this.request(route, input, opts)).body;
  }

  /** Like `call`, with the HTTP status of the 2xx answer (201 = a new seat). */
  async request<R extends RouteSpec>(route: R, input: CallInput<R>, opts: { timeoutMs?: number } = {}): Promise<{ status: number; body: ReplyOf<R> }> {
    const i = input as { params?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown };
    const method = route.method;
    const path = urlOf(route, i.params, i.query);
    const body = i.body ?? (route.optionalBody ? {} : undefined);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.o.userAgent };
    // Client routes carry the key, and their answers are signed: it must repeat this nonce, so an old answer cannot be replayed.
    const signed = route.auth === 'license';
    if (signed) headers.authorization = `License ${this.o.licenseKey}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const nonce = signed ? randomBytes(16).toString('base64url') : '';
    if (signed) headers[NONCE_HEADER] = nonce;
    let res: Response;
    let bytes: Buffer;
    try {
      res = await this.o.fetch(this.o.serverUrl + path, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(opts.timeoutMs ?? this.o.timeoutMs),
      });
      bytes = Buffer.from(await res.arrayBuffer());
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new FloatingLicenseError('NETWORK_ERROR', `cannot reach the license server at ${this.o.serverUrl}: ${why}`, { cause: err });
    }
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), (this.o.now ?? Date.now)());
    if (signed) await this.checkSignature(method, path, nonce, res, bytes, retryAfterMs);
    const text = bytes.toString('utf8');
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
      if (res.ok) throw new FloatingLicenseError('BAD_RESPONSE', `${method} ${path}: the answer is not JSON (a proxy or captive portal?)`);
    }
    if (!res.ok) throw errorFromResponse(res.status, parsed, retryAfterMs);
    return { status: res.status, body: parsed as ReplyOf<R> };
  }

  /**
   * Nothing of an answer is believed before its signature verifies: a body that does
   * not match its digest, or a signature that does not verify with a trusted key, is
   * INVALID_SIGNATURE. An unsigned answer is not floatd's: a 5xx or 429 from a proxy is
   * retried as such (its body ignored), anything else is BAD_RESPONSE (retried like a
   * captive portal); none of them can grant, refuse or release anything.
   */
  private async checkSignature(method: string, path: string, nonce: string, res: Response, bytes: Buffer, retryAfterMs: number | undefined): Promise<void> {
    const sig = parseSignatureHeader(res.headers.get(SIGNATURE_HEADER));
    const date = res.headers.get(DATE_HEADER);
    const digest = res.headers.get(DIGEST_HEADER);
    if (!sig || !date || !digest) {
      if (res.status >= 500) throw new FloatingLicenseError('SERVICE_UNAVAILABLE', `the server answered HTTP ${res.status} (unsigned)`, { status: res.status });
      if (res.status === 429) {
        throw new FloatingLicenseError('RATE_LIMITED', 'asked to slow down (HTTP 429, unsigned)', { status: 429, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
      }
      throw new FloatingLicenseError('BAD_RESPONSE', `${method} ${path}: the answer (HTTP ${res.status}) is not signed by the license server (a proxy, a captive portal, or tampering)`);
    }
    if (digest !== digestHeader(createHash('sha256').update(bytes).digest('base64'))) {
      throw new FloatingLicenseError('INVALID_SIGNATURE', `${method} ${path}: the answer's body does not match its signed digest (altered on the way)`);
    }
    if (!this.verifier) throw new FloatingLicenseError('INVALID_SIGNATURE', 'no trusted server key to verify the answer with');
    await this.verifier(sig.kid, signingInput(res.status, method, path, nonce, date, digest), sig.sig);
  }
}
