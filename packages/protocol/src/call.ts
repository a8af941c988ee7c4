/**
 * The one way to call a declared route: `call(route, input, options)`, built on `fetch`
 * with nothing Node-only, so the SDK, the admin CLI and the console (in the browser)
 * send requests, read answers and parse error envelopes the same way. A failure is
 * always an `ApiError`: the server's envelope, a transport failure (`NETWORK_ERROR`,
 * status 0) or an answer that is not JSON (`BAD_RESPONSE`). Each caller adds only what
 * is its own: its headers (`Bearer` / `License`), its `fetch`, and a look at the raw
 * answer before it is believed (the SDK checks the answer's signature there).
 *
 * ```ts
 * const page = await call(routes.admin.listLicenses, { query: { limit: 50 } }, {
 *   baseUrl: 'https://licenses.example.com', headers: { authorization: `Bearer ${token}` },
 * });
 * ```
 */
import type { ReplyOf, RouteSpec, ParamsOf, QueryOf, BodyOf } from './route.js';
import { urlOf } from './route.js';
import type { TSchema } from '@sinclair/typebox';

/** The arguments of a call to a route (path params, query, body), typed by the route. */
export type CallInput<R extends RouteSpec> = (R['params'] extends TSchema ? { params: ParamsOf<R> } : { params?: undefined }) &
  (R['query'] extends TSchema ? { query?: Partial<QueryOf<R>> } : { query?: undefined }) &
  (R['body'] extends TSchema ? (R['optionalBody'] extends true ? { body?: BodyOf<R> } : { body: BodyOf<R> }) : { body?: undefined });

/** The `fetch` a caller may supply (Electron's `net.fetch`, a test double of the network). */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** An answer as it came off the wire, before anything of it is believed. */
export interface RawAnswer {
  method: string;
  /** the path and query sent (what an answer signature covers) */
  path: string;
  url: string;
  status: number;
  headers: Headers;
  bytes: Uint8Array;
}

export interface CallOptions {
  /** `https://host:port/base` (no trailing slash); empty: relative to the page (the console) */
  baseUrl?: string;
  /** added to `accept` / `content-type`: `authorization` (`Bearer …`, `License …`), a nonce, a user agent */
  headers?: Record<string, string>;
  /** default: the global `fetch` */
  fetch?: FetchLike;
  /** abort and answer NETWORK_ERROR after this long */
  timeoutMs?: number;
  /** the caller's own cancel: its abort is rethrown as is, not turned into an ApiError */
  signal?: AbortSignal;
  /** statuses answered as data instead of thrown (e.g. 503 on `/readyz`) */
  accept?: readonly number[];
  /** the rest of the request (e.g. `cache: 'no-store'` in a browser) */
  requestInit?: Omit<RequestInit, 'method' | 'headers' | 'body' | 'signal'>;
  /** sees every answer before it is parsed; what it throws is what the call throws */
  inspect?: (answer: RawAnswer) => void | Promise<void>;
  /** the wall clock, for a `Retry-After` given as an HTTP date */
  now?: () => number;
}

/** A successful (or accepted) answer: its status, its parsed JSON, its headers. */
export interface Answer<T> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * A failed call, one class for every caller: the server's error envelope (`code`, `message`,
 * `requestId` and the envelope's other fields in `details`), or `NETWORK_ERROR` (status 0:
 * nothing answered, or too late; the fetch error is the `cause`), or an answer that is not
 * floatd's (`HTTP_<status>` for an error status without an envelope, `BAD_RESPONSE` for a
 * success that is not JSON).
 */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    /** the HTTP status; 0 when nothing answered */
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | undefined = undefined,
    /** the envelope's fields besides code, message and requestId (e.g. `field`, `seatsTotal`, `role`) */
    readonly details: Record<string, unknown> = {},
    /** how long the server asked to wait (`Retry-After`, or the envelope's `retryAfterSeconds`), ms */
    readonly retryAfterMs: number | undefined = undefined,
    /** the whole parsed answer (the envelope), or null */
    readonly body: unknown = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** True when the answer was a floatd error envelope (not a proxy page, not a transport failure). */
  get fromServer(): boolean {
    return this.status !== 0 && !this.code.startsWith('HTTP_') && this.code !== 'BAD_RESPONSE';
  }
}

/** `Retry-After` (seconds, or an HTTP date) as ms from `now`; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null | undefined, now: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - now;
  return Number.isFinite(ms) ? Math.max(0, ms) : undefined;
}

/**
 * The `ApiError` of an error answer: floatd's envelope `{"error": {code, message, requestId, …}}`,
 * or, for anything else, `HTTP_<status>` with the status text. The one envelope parser.
 */
export function errorOfAnswer(status: number, body: unknown, headers?: Headers, now: number = Date.now(), statusText = ''): ApiError {
  const waitHeader = retryAfterMs(headers?.get('retry-after'), now);
  const envelope = body && typeof body === 'object' ? (body as { error?: unknown }).error : undefined;
  if (envelope && typeof envelope === 'object' && typeof (envelope as { code?: unknown }).code === 'string') {
    const { code, message, requestId, ...details } = envelope as Record<string, unknown>;
    const wait = waitHeader ?? (typeof details.retryAfterSeconds === 'number' ? details.retryAfterSeconds * 1000 : undefined);
    return new ApiError(
      status,
      code as string,
      typeof message === 'string' ? message : (code as string),
      typeof requestId === 'string' ? requestId : (headers?.get('x-request-id') ?? undefined),
      details,
      wait,
      body,
    );
  }
  const text = typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : '';
  const parsed = typeof body === 'string' ? null : (body ?? null);
  return new ApiError(
    status,
    `HTTP_${status}`,
    statusText || `the server answered ${status}${text}`,
    headers?.get('x-request-id') ?? undefined,
    {},
    waitHeader,
    parsed,
  );
}

/**
 * Calls a declared route and resolves with its status, parsed JSON answer and headers. Rejects
 * with an `ApiError` (or what `options.inspect` throws, or the caller's own abort).
 * @example const { status, body } = await send(routes.client.checkout, { body }, { baseUrl, headers }); // 201: a new seat
 */
export async function send<R extends RouteSpec>(route: R, input: CallInput<R>, options: CallOptions = {}): Promise<Answer<ReplyOf<R>>> {
  const given = input as { params?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown };
  const method = route.method;
  const path = urlOf(route, given.params, given.query);
  const url = (options.baseUrl ?? '') + path;
  const body = given.body ?? (route.optionalBody ? {} : undefined);
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const signals = [options.signal, options.timeoutMs !== undefined ? AbortSignal.timeout(options.timeoutMs) : undefined].filter(
    (s): s is AbortSignal => s !== undefined,
  );
  const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
  const doFetch: FetchLike = options.fetch ?? ((u, init) => fetch(u, init));
  let res: Response;
  let bytes: Uint8Array;
  try {
    res = await doFetch(url, {
      ...options.requestInit,
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(signal ? { signal } : {}),
    });
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (err) {
    if (options.signal?.aborted) throw err;
    const timedOut = (err as { name?: unknown }).name === 'TimeoutError';
    const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
    const why = timedOut ? 'no answer in time' : String(cause?.code ?? cause?.message ?? (err as Error).message);
    throw new ApiError(0, 'NETWORK_ERROR', `cannot reach ${options.baseUrl || 'the server'}: ${why}`, undefined, {}, undefined, null, {
      cause: err,
    });
  }
  await options.inspect?.({ method, path, url, status: res.status, headers: res.headers, bytes });
  const text = new TextDecoder().decode(bytes);
  let parsed: unknown;
  let json = true;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    json = false;
  }
  if (res.ok || options.accept?.includes(res.status)) {
    if (!json)
      throw new ApiError(
        res.status,
        'BAD_RESPONSE',
        `${method} ${path}: the answer (HTTP ${res.status}) is not JSON (a proxy or captive portal?)`,
      );
    return { status: res.status, body: parsed as ReplyOf<R>, headers: res.headers };
  }
  throw errorOfAnswer(res.status, json ? parsed : text, res.headers, (options.now ?? Date.now)(), res.statusText);
}

/**
 * Calls a declared route and resolves with its parsed JSON answer (see `send`).
 * @example const grant = await call(routes.client.checkout, { body: { fingerprint, instanceId } }, { baseUrl, headers: { authorization: `License ${key}` } });
 */
export async function call<R extends RouteSpec>(route: R, input: CallInput<R>, options: CallOptions = {}): Promise<ReplyOf<R>> {
  return (await send(route, input, options)).body;
}
