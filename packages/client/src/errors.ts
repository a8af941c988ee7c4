/**
 * Errors the SDK rejects with. Every one carries a stable `code`: either a
 * server error code (see `@floatd/protocol` ERRORS and docs/errors.md) or one
 * of the client-side codes below.
 */
import { retryAfterMs, type ErrorCode } from '@floatd/protocol';

/**
 * Codes that only the client produces.
 *
 * - `INVALID_SIGNATURE`: a lease token or JWKS failed verification (forged, tampered, unknown key, wrong algorithm).
 * - `TOKEN_MISMATCH`: a correctly signed token that was not issued to this device / lease / instance.
 * - `NETWORK_ERROR`: the server could not be reached (after the retries).
 * - `BAD_RESPONSE`: the server answered something that is not floatd's API (wrong shape, not JSON).
 * - `CLOCK_TAMPERED`: the local clock is earlier than the latest trusted time by more than the tolerance.
 * - `NOT_CHECKED_OUT`: an operation that needs a lease was called without one.
 * - `CLOSED`: the instance was closed with `close()`.
 *
 * @example if (CLIENT_ERROR_CODES.includes(err.code as ClientErrorCode)) console.log('decided by the client, not the server');
 */
export const CLIENT_ERROR_CODES = [
  'INVALID_SIGNATURE',
  'TOKEN_MISMATCH',
  'NETWORK_ERROR',
  'BAD_RESPONSE',
  'CLOCK_TAMPERED',
  'NOT_CHECKED_OUT',
  'CLOSED',
] as const;
export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

/** Every code a {@link FloatingLicenseError} may carry. @example const code: FloatingLicenseErrorCode = 'NO_SEATS_AVAILABLE'; */
export type FloatingLicenseErrorCode = ErrorCode | ClientErrorCode;

/**
 * The one error type of the SDK.
 *
 * @example
 * try {
 *   await lic.checkout();
 * } catch (err) {
 *   if (err instanceof FloatingLicenseError && err.code === 'LICENSE_SUSPENDED') showSuspendedDialog();
 *   else throw err;
 * }
 */
export class FloatingLicenseError extends Error {
  override name = 'FloatingLicenseError';
  /** Stable code: a server error code or a client code. */
  readonly code: FloatingLicenseErrorCode;
  /** HTTP status when the server answered, otherwise undefined. */
  readonly status: number | undefined;
  /** The server's request id, to quote when reporting a problem. */
  readonly requestId: string | undefined;
  /** Extra fields of the server's error envelope (e.g. `seatsTotal` on NO_SEATS_AVAILABLE). */
  readonly details: Record<string, unknown>;
  /** How long the server asked to wait before trying again (`429 RATE_LIMITED`'s `Retry-After`), ms. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: FloatingLicenseErrorCode,
    message: string,
    opts: { status?: number; requestId?: string; details?: Record<string, unknown>; cause?: unknown; retryAfterMs?: number } = {},
  ) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.code = code;
    this.status = opts.status;
    this.requestId = opts.requestId;
    this.details = opts.details ?? {};
    this.retryAfterMs = opts.retryAfterMs;
  }

  /**
   * True for failures worth retrying: the network, a 5xx answer, `429 RATE_LIMITED` (after
   * `retryAfterMs`), or an answer that is not floatd's (not JSON, or not signed). A 4xx is the server's decision and is never retried.
   *
   * @example if (err instanceof FloatingLicenseError && err.transient) scheduleRetry();
   */
  get transient(): boolean {
    if (this.code === 'NETWORK_ERROR') return true;
    // the server (or a proxy) asks to slow down: try again after Retry-After, it is not a refusal
    if (this.code === 'RATE_LIMITED' || this.status === 429) return true;
    if (this.status !== undefined) return this.status >= 500;
    // a 2xx that is not floatd's answer (a captive portal, a proxy page): the network is not there yet
    return this.code === 'BAD_RESPONSE';
  }
}

/** The longest `Retry-After` the SDK honours (an answer asking for longer waits this long, then asks again). */
export const MAX_RETRY_AFTER_MS = 600_000;

/** `Retry-After` (seconds, or an HTTP date) as ms from `now`, at most MAX_RETRY_AFTER_MS; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  const ms = retryAfterMs(value, now);
  return ms === undefined ? undefined : Math.min(MAX_RETRY_AFTER_MS, ms);
}
