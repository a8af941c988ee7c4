/**
 * The admin API client: protocol's `send` with the admin token. Every failure becomes a `CliError` carrying the exit code
 * the `floatd` admin commands end with (see docs/cli.md):
 *   1 the server refused (a 4xx error envelope), 2 bad usage, 3 cannot reach the server or 5xx,
 *   4 not authenticated (401) or not allowed (403).
 */
import * as protocol from '@floatd/protocol';

export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3, auth: 4 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * An error the CLI reports on stderr and turns into an exit code. When the server refused
 * (or was not reached), `answer` is protocol's one `ApiError` for it: its code, request id
 * and envelope (printed with `--json`).
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    /** Extra lines printed after the message (hints). */
    readonly hints: string[] = [],
    /** The server's refusal this error reports, if any. */
    readonly answer?: protocol.ApiError,
  ) {
    super(message);
    this.name = 'CliError';
  }

  /** A refusal by the server, with the exit code of its status and the hints that help with it. */
  static refused(answer: protocol.ApiError, message: string = answer.message): CliError {
    return new CliError(message, exitCodeForStatus(answer.status), hintsFor(answer.status, answer.code, answer.details), answer);
  }
}

function exitCodeForStatus(status: number): ExitCode {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status >= 500) return EXIT.unreachable;
  return EXIT.refused;
}

function hintsFor(status: number, code: string, details: Record<string, unknown>): string[] {
  if (status === 401)
    return ['hint: pass a valid admin token with --token, FLOATD_TOKEN or "token" in the config file (see floatd <command> --help)'];
  // No role may change what a vendor-signed license file grants: the hint is the file, not a token.
  if (code === 'ENTITLEMENT_MANAGED')
    return [
      'hint: this on-premise server takes its products, licenses and seats from the license file; to change them, load a new file from the vendor with floatd entitlements load <file>',
    ];
  // A customer's own token is not too low in role: it reaches one customer's licenses, never the vendor's catalogue.
  if (code === 'CUSTOMER_SCOPE')
    return [
      "hint: a customer's own token reaches only that customer's licenses, leases, usage and audit; for this, use a vendor token (--token or FLOATD_TOKEN)",
    ];
  if (status === 403) {
    const role = typeof details.role === 'string' ? details.role : null;
    const needed = typeof details.needed === 'string' ? details.needed : null;
    const why = role && needed ? `this token has role ${role}; this command needs ${needed}` : 'this token may not do this';
    return [`hint: ${why}. Use a token with a higher role (--token or FLOATD_TOKEN)`];
  }
  if (code === 'CUSTOMER_HAS_LICENSES')
    return ['hint: move its licenses to another customer (floatd licenses update <license> --customer <customer>) or delete them first'];
  if (code === 'SEATS_HELD') return ['hint: add --force to release the held seats and delete'];
  if (code === 'OFFLINE_LEASE_ACTIVE') return ['hint: add --force to release an offline lease before its Offline Expiry Date'];
  if (code === 'WEBHOOK_NOT_FOUND') return ['hint: floatd webhooks list shows the webhook endpoints and their whk_… ids'];
  if (code === 'WEBHOOK_DELIVERY_NOT_FOUND')
    return ["hint: floatd webhooks deliveries <webhookId> shows an endpoint's deliveries and their dlv_… ids"];
  return [];
}

export type Answer<T> = protocol.Answer<T>;

export class AdminClient {
  constructor(
    readonly server: string,
    private readonly token: string | null,
    private readonly timeoutMs = 30_000,
  ) {}

  /**
   * Calls a route declared in `@floatd/protocol` (`protocol.routes.admin.listLicenses`, …) through protocol's
   * `send`: its path, query and body typed by the declaration, its answer typed by the route's responses.
   * `accept` lists statuses answered as data instead of thrown (503 on /readyz).
   * @example const page = (await client.call(protocol.routes.admin.listLicenses, { query: { limit: 10 } })).body;
   */
  async call<R extends protocol.RouteSpec>(
    route: R,
    input: protocol.CallInput<R>,
    opts: { accept?: number[] } = {},
  ): Promise<Answer<protocol.ReplyOf<R>>> {
    const headers: Record<string, string> = {};
    if (route.auth !== 'none') {
      if (!this.token) {
        throw new CliError('no admin token', EXIT.auth, [
          'hint: pass one with --token, FLOATD_TOKEN or "token" in the config file; on the server machine it is in <data-dir>/admin-token',
        ]);
      }
      headers.authorization = `Bearer ${this.token}`;
    }
    try {
      return await protocol.send(route, input, {
        baseUrl: this.server.replace(/\/+$/, ''),
        headers,
        timeoutMs: this.timeoutMs,
        ...(opts.accept ? { accept: opts.accept } : {}),
      });
    } catch (err) {
      throw err instanceof protocol.ApiError ? this.cliError(err) : err;
    }
  }

  private cliError(err: protocol.ApiError): CliError {
    if (err.status === 0) {
      if (this.server.startsWith('https:') && isPlainHttpAnswer(err.cause)) {
        return new CliError(
          `the server at ${this.server} does not speak TLS (HTTPS) on that port: if it serves plain HTTP, use ${this.server.replace(/^https:/, 'http:')}`,
          EXIT.unreachable,
        );
      }
      return new CliError(`cannot reach the server at ${this.server}: ${describeFetchError(err.cause)}`, EXIT.unreachable, [
        'hint: check --server, FLOATD_SERVER or "server" in the config file, and that the server runs',
      ]);
    }
    if (err.code === 'BAD_RESPONSE')
      return new CliError(`the server at ${this.server} did not answer JSON (HTTP ${err.status})`, EXIT.unreachable);
    return CliError.refused(err);
  }
}

/** An https:// request that met a plain-HTTP listener: OpenSSL reports a record it cannot read. */
function isPlainHttpAnswer(err: unknown): boolean {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : '';
  const message = typeof cause?.message === 'string' ? cause.message : '';
  return (
    code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
    code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' ||
    /wrong version number|packet length too long|http request/i.test(message)
  );
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
  const a = err.answer;
  const first = a ? `floatd: ${a.code}: ${err.message}${a.requestId ? ` (request ${a.requestId})` : ''}` : `floatd: ${err.message}`;
  return [first, ...err.hints.map((h) => `floatd: ${h}`)];
}
