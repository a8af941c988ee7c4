/**
 * The HTTP calls to floatd's client API, through protocol's one caller (`send`): the
 * `License` key, a nonce, a timeout, failures mapped to the SDK's codes, and the check of
 * the answer's signature before anything of it is read (every `/v1/client/*` answer is
 * signed by the server; see `@floatd/protocol` responseSignature).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  ACCEPT_SIGNATURE_HEADER,
  acceptSignature,
  MESSAGE_SIGNATURE_HEADER,
  SIGNATURE_INPUT_HEADER,
  parseMessageSignature,
  parseSignatureInput,
  signatureBase,
  splitTarget,
  ApiError,
  DATE_HEADER,
  DIGEST_HEADER,
  NONCE_HEADER,
  SIGNATURE_HEADER,
  digestHeader,
  isErrorCode,
  parseSignatureHeader,
  send,
  signingInput,
} from '@floatd/protocol';
import type { CallInput, FetchLike as ProtocolFetch, RawAnswer, ReplyOf, RouteSpec } from '@floatd/protocol';
import { FloatingLicenseError, MAX_RETRY_AFTER_MS, parseRetryAfter } from './errors.js';

/** The `fetch` the SDK uses. @example new FloatingLicense({ serverUrl, licenseKey, fetch: (url, init) => net.fetch(url, init) }) // Electron's net */
export type FetchLike = ProtocolFetch;

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
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new FloatingLicenseError('VALIDATION_FAILED', `serverUrl must be http(s), not ${u.protocol}`);
  return (u.origin + u.pathname).replace(/\/+$/, '');
}

export class Api {
  /** Verifies signed answers; without it (before the SDK set up its trust) client API answers are refused. */
  verifier: SignatureVerifier | undefined;
  /**
   * The held use's session key (agreed at checkout) and its `keyid` (`ses_…`): answers signed with HMAC-SHA256 are
   * checked with it, and only under its keyid. Without it only Ed25519-signed answers are believed.
   */
  sessionKey: { keyid: string; key: Buffer } | undefined;
  /** How the last verified answer was signed: the session key, the server's Ed25519 key, or today's `Floatd-Signature`. */
  lastSignedWith: 'hmac-sha256' | 'ed25519' | 'floatd-signature' | undefined;

  constructor(private readonly options: ApiOptions) {}

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
  async request<R extends RouteSpec>(
    route: R,
    input: CallInput<R>,
    opts: { timeoutMs?: number } = {},
  ): Promise<{ status: number; body: ReplyOf<R> }> {
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent };
    // Client routes carry the key, and their answers are signed: it must repeat this nonce, so an old answer cannot be replayed.
    const signed = route.auth === 'license';
    const nonce = signed ? randomBytes(16).toString('base64url') : '';
    if (signed) {
      headers.authorization = `License ${this.options.licenseKey}`;
      headers[NONCE_HEADER] = nonce;
      // RFC 9421 answers (HMAC-SHA256 under the session key on the held use); a server that predates them answers as before.
      // It names the session key it holds: answers on that key's use come HMAC-signed, any other (another use's) Ed25519.
      headers[ACCEPT_SIGNATURE_HEADER] = acceptSignature(this.sessionKey?.keyid);
    }
    try {
      const answer = await send(route, input, {
        baseUrl: this.options.serverUrl,
        headers,
        fetch: this.options.fetch,
        timeoutMs: opts.timeoutMs ?? this.options.timeoutMs,
        ...(this.options.now ? { now: this.options.now } : {}),
        ...(signed ? { inspect: (raw: RawAnswer) => this.checkSignature(raw, nonce) } : {}),
      });
      return { status: answer.status, body: answer.body };
    } catch (err) {
      throw err instanceof ApiError ? this.sdkError(err) : err;
    }
  }

  /** protocol's `ApiError` as the SDK's public error: the server's codes kept, anything else named by what it means to a client. */
  private sdkError(err: ApiError): FloatingLicenseError {
    const status = err.status;
    if (status === 0) {
      const cause = (err.cause as { cause?: { code?: string; message?: string } } | undefined)?.cause;
      const why = cause?.code ?? cause?.message ?? (err.cause as Error | undefined)?.message ?? err.message;
      return new FloatingLicenseError('NETWORK_ERROR', `cannot reach the license server at ${this.options.serverUrl}: ${why}`, {
        cause: err.cause,
      });
    }
    const retryAfterMs = err.retryAfterMs === undefined ? undefined : Math.min(MAX_RETRY_AFTER_MS, err.retryAfterMs);
    const wait = retryAfterMs !== undefined ? { retryAfterMs } : {};
    if (err.code === 'BAD_RESPONSE') return new FloatingLicenseError('BAD_RESPONSE', err.message);
    if (isErrorCode(err.code)) {
      return new FloatingLicenseError(err.code, err.message, {
        status,
        ...(err.requestId !== undefined ? { requestId: err.requestId } : {}),
        details: err.details,
        ...wait,
      });
    }
    if (status === 429) return new FloatingLicenseError('RATE_LIMITED', 'the server asks to slow down (HTTP 429)', { status, ...wait });
    if (status >= 500) return new FloatingLicenseError('SERVICE_UNAVAILABLE', `the server answered HTTP ${status}`, { status });
    return new FloatingLicenseError('BAD_RESPONSE', `unexpected answer HTTP ${status} (is the server URL a floatd server?)`, { status });
  }

  /**
   * Nothing of an answer is believed before its signature verifies: a body that does
   * not match its digest, or a signature that does not verify with a trusted key, is
   * INVALID_SIGNATURE. An unsigned answer is not floatd's: a 5xx or 429 from a proxy is
   * retried as such (its body ignored), anything else is BAD_RESPONSE (retried like a
   * captive portal); none of them can grant, refuse or release anything.
   */
  private async checkSignature(raw: RawAnswer, nonce: string): Promise<void> {
    const { method, path, status } = raw;
    const input = raw.headers.get(SIGNATURE_INPUT_HEADER);
    const sig = input === null ? parseSignatureHeader(raw.headers.get(SIGNATURE_HEADER)) : undefined;
    const date = raw.headers.get(DATE_HEADER);
    const digest = raw.headers.get(DIGEST_HEADER);
    if ((!sig && input === null) || !date || !digest) {
      if (status >= 500) throw new FloatingLicenseError('SERVICE_UNAVAILABLE', `the server answered HTTP ${status} (unsigned)`, { status });
      if (status === 429) {
        const retryAfterMs = parseRetryAfter(raw.headers.get('retry-after'), (this.options.now ?? Date.now)());
        throw new FloatingLicenseError('RATE_LIMITED', 'asked to slow down (HTTP 429, unsigned)', {
          status: 429,
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        });
      }
      throw new FloatingLicenseError(
        'BAD_RESPONSE',
        `${method} ${path}: the answer (HTTP ${status}) is not signed by the license server (a proxy, a captive portal, or tampering)`,
      );
    }
    if (digest !== digestHeader(createHash('sha256').update(raw.bytes).digest('base64'))) {
      throw new FloatingLicenseError(
        'INVALID_SIGNATURE',
        `${method} ${path}: the answer's body does not match its signed digest (altered on the way)`,
      );
    }
    if (input !== null) return this.checkMessageSignature(raw, input, nonce, date, digest);
    if (!this.verifier) throw new FloatingLicenseError('INVALID_SIGNATURE', 'no trusted server key to verify the answer with');
    await this.verifier(sig!.kid, signingInput(status, method, path, nonce, date, digest), sig!.sig);
    this.lastSignedWith = 'floatd-signature';
  }

  /**
   * An RFC 9421 answer (`@floatd/protocol` messageSignature): the covered components and parameters exactly
   * floatd's, this request's nonce, and a signature by the server's Ed25519 key (`keyid` a trusted kid) or an
   * HMAC-SHA256 under the held use's session key (`keyid` its lease).
   */
  private async checkMessageSignature(raw: RawAnswer, input: string, nonce: string, date: string, digest: string): Promise<void> {
    const { method, status } = raw;
    const parsed = parseSignatureInput(input);
    const signature = parseMessageSignature(raw.headers.get(MESSAGE_SIGNATURE_HEADER));
    const refuse = (why: string) =>
      new FloatingLicenseError('INVALID_SIGNATURE', `${method} ${raw.path}: the answer's signature ${why} (forged, altered or replayed)`);
    if (!parsed || !signature) throw refuse('is not one floatd writes');
    if (parsed.nonce !== nonce) throw refuse('is for another request (its nonce differs)');
    if (parsed.created !== Math.floor(Date.parse(date) / 1000)) throw refuse('and its date disagree');
    const base = signatureBase({ status, method, ...splitTarget(raw.path), digest, date }, parsed.params);
    if (parsed.alg === 'hmac-sha256') {
      const session = this.sessionKey;
      if (!session || session.keyid !== parsed.keyid) throw refuse(`names session key "${parsed.keyid}", which this client does not hold`);
      const expected = createHmac('sha256', session.key).update(base).digest();
      const given = Buffer.from(signature, 'base64');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw refuse('does not verify');
      this.lastSignedWith = 'hmac-sha256';
      return;
    }
    if (!this.verifier) throw new FloatingLicenseError('INVALID_SIGNATURE', 'no trusted server key to verify the answer with');
    await this.verifier(parsed.keyid, base, signature);
    this.lastSignedWith = 'ed25519';
  }
}
