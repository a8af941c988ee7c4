/**
 * A small fetch client for the admin API. Every failure becomes a `CliError` carrying the exit code
 * the `floatd` admin commands end with (see docs/cli.md):
 *   1 the server refused (a 4xx error envelope), 2 bad usage, 3 cannot reach the server or 5xx,
 *   4 not authenticated (401) or not allowed (403).
 */
import * as W from '@floatd/protocol';

export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3, auth: 4 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports on stderr and turns into an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    /** Extra lines printed after the message (hints). */
    readonly hints: string[] = [],
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The server answered with an error (its envelope, or a bare HTTP status). */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
    /** The whole parsed body (the envelope), printed with `--json`. */
    readonly body: unknown,
    readonly details: Record<string, unknown>,
  ) {
    super(message, exitCodeForStatus(status), hintsFor(status, code, details));
    this.name = 'ApiError';
  }
}

function exitCodeForStatus(status: number): ExitCode {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status >= 500) return EXIT.unreachable;
  return EXIT.refused;
}

function hintsFor(status: number, code: string, details: Record<string, unknown>): string[] {
  if (status === 401) return ['hint: pass a valid admin token with --token, FLOATD_TOKEN or "token" in the config file (see floatd <command> --help)'];
  // No role may change what a vendor-signed license file grants: the hint is the file, not a token.
  if (code === 'ENTITLEMENT_MANAGED') return ['hint: this on-premise server takes its products, keys and seats from the license file; to change them, load a new file from the vendor with floatd entitlements load <file>'];
  if (status === 403) {
    const role = typeof details.role === 'string' ? details.role : null;
    const needed = typeof details.needed === 'string' ? details.needed : null;
    const why = role && needed ? `this token has role ${role}; this command needs ${needed}` : 'this token may not do this';
    return [`hint: ${why}. Use a token with a higher role (--token or FLOATD_TOKEN)`];
  }
  if (code === 'SEATS_HELD') return ['hint: add --force to release the held seats and delete'];
  if (code === 'OFFLINE_LEASE_ACTIVE') return ['hint: add --force to release an offline lease before its Offline Expiry Date'];
  return [];
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Send without the Authorization header (operations routes). */
  anonymous?: boolean;
  /** Statuses answered as data instead of thrown (e.g. 503 on /readyz). */
  accept?: number[];
}

export interface Answer<T> {
  status: number;
  body: T;
}

/** The input of a call to a declared route: its path params, query and body (typed by the route). */
export type CallInput<R extends W.RouteSpec> = W.CallInput<R>;

export class AdminClient {
  constructor(
    readonly server: string,
    private readonly token: string | null,
    private readonly timeoutMs = 30_000,
  ) {}

  /**
   * Calls a route declared in `@floatd/protocol` (`W.routes.admin.listLicenses`, …): its path, query and body
   * typed by the declaration, its answer typed by the route's responses.
   * @example const page = (await client.call(W.routes.admin.listLicenses, { query: { limit: 10 } })).body;
   */
  async call<R extends W.RouteSpec>(route: R, input: CallInput<R>, opts: { accept?: number[] } = {}): Promise<Answer<W.ReplyOf<R>>> {
    const i = input as { params?: Record<string, unknown>; query?: Record<string, string | number | boolean | undefined>; body?: unknown };
    const body = i.body ?? (route.optionalBody ? {} : undefined);
    return this.request<W.ReplyOf<R>>(route.method, W.pathOf(route, i.params), {
      ...(i.query ? { query: i.query } : {}),
      ...(body !== undefined ? { body } : {}),
      anonymous: route.auth === 'none',
      ...(opts.accept ? { accept: opts.accept } : {}),
    });
  }

  private async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<Answer<T>> {
    const url = new URL(path.replace(/^\//, ''), this.server.endsWith('/') ? this.server : `${this.server}/`);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (!opts.anonymous) {
      if (!this.token) {
        throw new CliError('no admin token', EXIT.auth, [
          'hint: pass one with --token, FLOATD_TOKEN or "token" in the config file; on the server machine it is in <data-dir>/admin-token',
        ]);
      }
      headers.authorization = `Bearer ${this.token}`;
    }
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: opts.body === undefined ? null : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      if (url.protocol === 'https:' && isPlainHttpAnswer(err)) {
        throw new CliError(
          `the server at ${this.server} does not speak TLS (HTTPS) on that port: if it serves plain HTTP, use ${this.server.replace(/^https:/, 'http:')}`,
          EXIT.unreachable,
        );
      }
      throw new CliError(`cannot reach the server at ${this.server}: ${describeFetchError(err)}`, EXIT.unreachable, [
        'hint: check --server, FLOATD_SERVER or "server" in the config file, and that the server runs',
      ]);
    }
    const text = await res.text().catch(() => '');
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    if (res.ok || opts.accept?.includes(res.status)) {
      if (body === null && text) throw new CliError(`the server at ${this.server} did not answer JSON (HTTP ${res.status})`, EXIT.unreachable);
      return { status: res.status, body: body as T };
    }
    throw apiError(res, body);
  }
}

/** The protocol's one envelope parser; the CLI adds what it needs to exit (the status's exit code, hints, the body for --json). */
function apiError(res: Response, body: unknown): ApiError {
  const e = W.errorFromBody(res.status, body);
  // Not a floatd envelope (a proxy, or not a floatd server at all): the status text says more than the bare status.
  const message = e.code === `HTTP_${res.status}` ? res.statusText || 'unexpected answer' : e.message;
  return new ApiError(res.status, e.code, message, e.requestId ?? res.headers.get('x-request-id'), body, e.details);
}

/** An https:// request that met a plain-HTTP listener: OpenSSL reports a record it cannot read. */
function isPlainHttpAnswer(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : '';
  const message = typeof cause?.message === 'string' ? cause.message : '';
  return code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || /wrong version number|packet length too long|http request/i.test(message);
}

function describeFetchError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'no answer in time';
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as { code?: unknown }).code;
      return typeof code === 'string' ? `${code} (${cause.message})` : cause.message;
    }
    return err.message;
  }
  return String(err);
}

/** The one stderr line for an error: `floatd: <CODE>: <message> (request <id>)`. */
export function describeError(err: CliError): string[] {
  const first =
    err instanceof ApiError ? `floatd: ${err.code}: ${err.message}${err.requestId ? ` (request ${err.requestId})` : ''}` : `floatd: ${err.message}`;
  return [first, ...err.hints.map((h) => `floatd: ${h}`)];
}
