/**
 * The HTTP layer's defences, as hooks installed per route scope by `buildApp`:
 *
 * - rate limits (token buckets, per node): client API requests per client address
 *   and per license key; failed authentications (401) per client address, on the
 *   client and the admin API. Over a limit: `429 RATE_LIMITED` with `Retry-After`.
 * - signed client answers: every `/v1/client/*` answer, success or error, gets
 *   `Floatd-Date`, `Content-Digest` and `Floatd-Signature` (see `@floatd/protocol`
 *   responseSignature for the exact signed text).
 * - security headers on the API and the console, and CORS for the admin API
 *   (no origin allowed unless configured).
 *
 * Everything here is O(1) per request and allocates little: one digest and one
 * signature per client answer, a Map lookup per limit.
 */
import { createHash, createHmac } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import {
  ACCEPT_SIGNATURE_HEADER,
  acceptedKeyId,
  DATE_HEADER,
  DIGEST_HEADER,
  MAX_NONCE_LENGTH,
  MESSAGE_SIGNATURE_HEADER,
  NONCE_HEADER,
  SIGNATURE_HEADER,
  SIGNATURE_INPUT_HEADER,
  digestHeader,
  signableNonce,
  signatureBase,
  signatureHeaders,
  signatureParams,
  signingInput,
  splitTarget,
} from '@floatd/protocol';
import type { SecurityConfig } from '../config.js';
import type { AppContext } from './context.js';
import { ErrorReply } from './errors.js';
import { TokenBuckets } from './rateLimit.js';

export type SecuritySettings = Pick<SecurityConfig, 'rateLimit' | 'corsOrigins'>;

/** Limits off, no CORS origin: what `buildApp` uses when given no settings. */
export const NO_LIMITS: SecuritySettings = {
  rateLimit: {
    enabled: false,
    clientIp: { max: 1, perSeconds: 1 },
    clientKey: { max: 1, perSeconds: 1 },
    authFailures: { max: 1, perSeconds: 1 },
  },
  corsOrigins: [],
};

type LimitName = 'client-ip' | 'client-key' | 'auth-failures';

/** Requests holding a failure-token reservation (see `Guards.gate`). */
/** The reservation a request shares (see `gate`): address and license key. */
const reservations = new WeakMap<FastifyRequest, string>();
/** Reservations in flight kept at most (see `Guards.gate`). */
const IN_FLIGHT_CAP = 50_000;
/** How many recently valid license keys a node remembers. */
const KNOWN_KEYS = 10_000;

/** The limiters of one app (one node), shared by its route scopes. */
export class Guards {
  readonly ip: TokenBuckets | undefined;
  readonly key: TokenBuckets | undefined;
  readonly failures: TokenBuckets | undefined;
  private readonly limited: Counter<'limit'>;
  private readonly origins: Set<string>;

  constructor(
    ctx: AppContext,
    readonly settings: SecuritySettings,
  ) {
    const r = settings.rateLimit;
    if (r.enabled) {
      this.ip = new TokenBuckets(r.clientIp, ctx.clock);
      this.key = new TokenBuckets(r.clientKey, ctx.clock);
      this.failures = new TokenBuckets(r.authFailures, ctx.clock);
    }
    this.origins = new Set(settings.corsOrigins);
    this.limited = new Counter({
      name: 'floatd_rate_limited_total',
      help: 'Requests refused with 429 RATE_LIMITED, by limit',
      labelNames: ['limit'] as const,
      registers: [ctx.metrics.registry],
    });
  }

  refuse(limit: LimitName, seconds: number): ErrorReply {
    this.limited.inc({ limit });
    const what =
      limit === 'auth-failures'
        ? 'too many failed authentications from this address'
        : limit === 'client-ip'
          ? 'too many requests from this address'
          : 'too many requests for this license key';
    return new ErrorReply('RATE_LIMITED', `${what}; retry in ${seconds} s`, { retryAfterSeconds: seconds });
  }

  /**
   * Refuses a request from an address that failed authentication too often, before its
   * credentials are even looked at. Otherwise the request reserves a failure token of its
   * address now, and gives it back when it did not fail (`failed`): counting failures only
   * after they happened let a concurrent burst of bad keys be looked up far past the limit
   * (151 of 1,000 against a limit of 30). Requests in flight from one address with the same
   * key share one reservation (one key is one guess, however often it is sent at once), so a
   * site whose requests wait for their license's turn is not refused by its own in-flight
   * requests before its key is known here. A license key that authenticated on this node
   * recently is no guess: its requests reserve nothing.
   */
  gate(req: FastifyRequest, reply: FastifyReply): void {
    if (!this.failures) return;
    const known = req.licenseKey !== undefined && this.knownKeys.has(req.licenseKey);
    // Only a well-formed key is one guess; requests without one (missing, malformed) each reserve their own.
    const id = req.licenseKey ? `${req.ip}\u0000${req.licenseKey}` : undefined;
    const shared = known || id === undefined ? undefined : this.inFlight.get(id);
    const wait = known || shared ? this.failures.check(req.ip) : this.failures.take(req.ip);
    if (wait > 0) throw this.refuse('auth-failures', wait);
    if (known) return;
    if (id === undefined) {
      reservations.set(req, '');
      return;
    }
    if (shared) shared.requests++;
    else {
      // Bounded memory: entries of requests whose answer never settled (a connection gone mid-request) go at a cap.
      if (this.inFlight.size >= IN_FLIGHT_CAP) this.inFlight.clear();
      this.inFlight.set(id, { requests: 1, failed: false });
    }
    reservations.set(req, id);
  }

  /** Settles the reservation: a failed authentication (401) keeps its token, anything else gives it back. */
  failed(req: FastifyRequest, reply: FastifyReply): void {
    if (!this.failures) return;
    const id = reservations.get(req);
    reservations.delete(req);
    const key = req.licenseKey;
    const unauthenticated = reply.statusCode === 401;
    if (id === '') {
      if (!unauthenticated) this.failures.refund(req.ip);
    } else if (id !== undefined) {
      // The last request of a shared reservation settles its one token: kept if any of them failed.
      const shared = this.inFlight.get(id) ?? { requests: 1, failed: false };
      shared.requests--;
      if (unauthenticated) shared.failed = true;
      if (shared.requests <= 0) {
        this.inFlight.delete(id);
        if (!shared.failed) this.failures.refund(req.ip);
      }
    }
    if (unauthenticated) {
      if (id === undefined) this.failures.take(req.ip);
      if (key !== undefined) this.knownKeys.delete(key);
      return;
    }
    // 2xx, or a seat answer (409) only a real key gets: the key was looked up and is valid.
    if (key !== undefined && (reply.statusCode < 400 || reply.statusCode === 409)) {
      this.knownKeys.delete(key);
      this.knownKeys.set(key, true);
      if (this.knownKeys.size > KNOWN_KEYS) this.knownKeys.delete(this.knownKeys.keys().next().value!);
    }
  }

  /** Reservations of requests in flight, by address and key: how many share it, and whether one failed. */
  private readonly inFlight = new Map<string, { requests: number; failed: boolean }>();

  /** License keys that authenticated recently on this node (least recently used first). */
  private readonly knownKeys = new Map<string, true>();

  allowedOrigin(origin: string | undefined): boolean {
    return origin !== undefined && this.origins.has(origin);
  }
}

// --- headers ------------------------------------------------------------------

/** On every API answer: JSON is not to be sniffed, framed, cached or followed by a referrer. */
const API_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
};

/**
 * On the console: the Vite build loads only its own script and stylesheet files from
 * /console/assets (no inline script, no inline style element, no eval), talks only to
 * this server, and is never framed.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const CONSOLE_HEADERS: Record<string, string> = {
  'content-security-policy': CONSOLE_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

// --- scopes -------------------------------------------------------------------

/** Client API scope: limits, headers and signed answers. Install before the client routes' own hooks. */
export function clientSecurity(scope: FastifyInstance, ctx: AppContext, guards: Guards): void {
  const { ip, key } = guards;
  scope.addHook('onRequest', (req, reply, done) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', 'no-store');
    if (ip) {
      // Only the failed-authentication gate's early refusal here; its reservation waits for the key (preParsing).
      const refused = guards.failures?.check(req.ip) ?? 0;
      if (refused > 0) return done(guards.refuse('auth-failures', refused));
      const wait = ip.take(req.ip);
      if (wait > 0) return done(guards.refuse('client-ip', wait));
    }
    done();
  });
  if (key) {
    // After the client routes' onRequest hook has read the key (canonical, so spellings share a bucket).
    scope.addHook('preParsing', (req, reply, payload, done) => {
      try {
        guards.gate(req, reply);
      } catch (err) {
        return done(err as Error);
      }
      const wait = req.licenseKey ? key.take(req.licenseKey) : 0;
      if (wait > 0) return done(guards.refuse('client-key', wait));
      done(null, payload);
    });
  }
  if (guards.failures) {
    scope.addHook('onResponse', (req, reply, done) => {
      guards.failed(req, reply);
      done();
    });
  }
  scope.addHook('onSend', (req, reply, payload, done) => {
    const body =
      typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : payload === null || payload === undefined ? '' : undefined;
    // Client routes answer JSON only; a stream (none today) would go unsigned and the SDK would refuse it.
    if (body === undefined) return done(null, payload);
    const digest = digestHeader(createHash('sha256').update(body).digest('base64'));
    const now = ctx.clock.now();
    const date = new Date(now).toISOString();
    const nonceHeader = req.headers[NONCE_HEADER];
    reply.header(DATE_HEADER, date);
    reply.header(DIGEST_HEADER, digest);
    if (wantsMessageSignature(req)) {
      // RFC 9421: HMAC-SHA256 under the use's session key where the route named one, Ed25519 otherwise.
      const { path, query } = splitTarget(req.url);
      const answer = { status: reply.statusCode, method: req.method, path, query, digest, date };
      const nonce = signableNonce(typeof nonceHeader === 'string' ? nonceHeader : undefined);
      const created = Math.floor(now / 1000);
      const session = reply.statusCode < 300 ? req.answerKey : undefined;
      let params = '';
      const signature = session
        ? createHmac('sha256', session.key)
            .update(signatureBase(answer, (params = signatureParams({ created, keyid: session.keyid, alg: 'hmac-sha256', nonce }))))
            .digest('base64')
        : ctx.keys.signNamed((keyid) => signatureBase(answer, (params = signatureParams({ created, keyid, alg: 'ed25519', nonce }))));
      const headers = signatureHeaders(params, signature);
      reply.header(SIGNATURE_INPUT_HEADER, headers.input);
      reply.header(MESSAGE_SIGNATURE_HEADER, headers.signature);
      return done(null, payload);
    }
    const nonce = typeof nonceHeader === 'string' ? nonceHeader.slice(0, MAX_NONCE_LENGTH) : '';
    reply.header(SIGNATURE_HEADER, ctx.keys.signatureHeader(signingInput(reply.statusCode, req.method, req.url, nonce, date, digest)));
    done(null, payload);
  });
}

/** Whether a client request asked for RFC 9421 answers (`Accept-Signature`): otherwise today's `Floatd-Signature`. */
export function wantsMessageSignature(req: FastifyRequest): boolean {
  return req.headers[ACCEPT_SIGNATURE_HEADER] !== undefined;
}

/** The session key a client request names (`Accept-Signature` keyid): the one it holds. */
export function requestedKeyId(req: FastifyRequest): string | undefined {
  return acceptedKeyId(req.headers[ACCEPT_SIGNATURE_HEADER]);
}

/** Names the use's session key the answer to `req` is signed with (RFC 9421 answers only; none: Ed25519). */
export function signWith(req: FastifyRequest, key: { keyid: string; key: Buffer } | undefined): void {
  if (key) req.answerKey = key;
}

/** Admin API scope (and its event stream): failed-authentication limit, headers, CORS for allowed origins. */
export function adminSecurity(scope: FastifyInstance, guards: Guards): void {
  scope.addHook('onRequest', (req, reply, done) => {
    reply.headers(API_HEADERS);
    const origin = req.headers.origin;
    if (guards.allowedOrigin(origin)) {
      reply.header('access-control-allow-origin', origin!);
      reply.header('access-control-expose-headers', 'x-request-id, retry-after');
    }
    reply.header('vary', 'Origin');
    try {
      guards.gate(req, reply);
    } catch (err) {
      return done(err as Error);
    }
    done();
  });
  if (guards.failures) {
    scope.addHook('onResponse', (req, reply, done) => {
      guards.failed(req, reply);
      done();
    });
  }
}

/**
 * Browser preflights (OPTIONS) for the admin API: allowed origins get the CORS
 * answer; any other origin gets `403 CORS_ORIGIN_NOT_ALLOWED` without any
 * `Access-Control-Allow-*` header, so the browser never sends the real request.
 */
export function corsPreflight(app: FastifyInstance, guards: Guards): void {
  app.options('/v1/admin/*', { schema: { hide: true } }, async (req, reply) => {
    reply.headers(API_HEADERS);
    reply.header('vary', 'Origin');
    const origin = req.headers.origin;
    // Not a preflight: the admin API has no OPTIONS route, as before.
    if (origin === undefined) throw new ErrorReply('ROUTE_NOT_FOUND', `no route OPTIONS ${req.url.split('?')[0]}`);
    if (!guards.allowedOrigin(origin)) {
      throw new ErrorReply('CORS_ORIGIN_NOT_ALLOWED', `origin ${origin} may not call the admin API (allowed origins: FLOATD_CORS_ORIGINS)`);
    }
    reply.header('access-control-allow-origin', origin!);
    reply.header('access-control-allow-methods', 'GET, POST, PATCH, DELETE');
    reply.header('access-control-allow-headers', 'authorization, content-type');
    reply.header('access-control-max-age', '600');
    return reply.code(204).send();
  });
}

/** Console scope: a Content-Security-Policy fit for the Vite build, no framing, no sniffing, no referrer. */
export function consoleSecurity(scope: FastifyInstance): void {
  scope.addHook('onRequest', (_req, reply, done) => {
    reply.headers(CONSOLE_HEADERS);
    done();
  });
}
