/**
 * Errors the SDK rejects with. Every one carries a stable `code`: either a
 * server error code (see `@floatd/protocol` ERRORS and docs/errors.md) or one
 * of the client-side codes below.
 */
import { isErrorCode, type ErrorCode } from '@floatd/protocol';

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

  constructor(
    code: FloatingLicenseErrorCode,
    message: string,
    opts: { status?: number; requestId?: string; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.code = code;
    this.status = opts.status;
    this.requestId = opts.requestId;
    this.details = opts.details ?? {};
  }

  /**
   * True for failures worth retrying: the network, a 5xx answer, or a success status
   * whose body is not floatd's. A 4xx is the server's decision and is never retried.
   *
   * @example if (err instanceof FloatingLicenseError && err.transient) scheduleRetry();
   */
  get transient(): boolean {
    if (this.code === 'NETWORK_ERROR') return true;
    if (this.status !== undefined) return this.status >= 500;
    // a 2xx that is not floatd's answer (a captive portal, a proxy page): the network is not there yet
    return this.code === 'BAD_RESPONSE';
  }
}

/** Builds the error for a server error envelope (or a non-floatd answer). */
export function errorFromResponse(status: number, body: unknown): FloatingLicenseError {
  const env = body as { error?: { code?: unknown; message?: unknown; requestId?: unknown } } | undefined;
  const e = env && typeof env === 'object' && env.error && typeof env.error === 'object' ? env.error : undefined;
  if (e && isErrorCode(e.code)) {
    const { code, message, requestId, ...details } = e as Record<string, unknown>;
    return new FloatingLicenseError(code as ErrorCode, typeof message === 'string' ? message : String(code), {
      status,
      ...(typeof requestId === 'string' ? { requestId } : {}),
      details,
    });
  }
  if (status >= 500) return new FloatingLicenseError('SERVICE_UNAVAILABLE', `the server answered HTTP ${status}`, { status });
  return new FloatingLicenseError('BAD_RESPONSE', `unexpected answer HTTP ${status} (is the server URL a floatd server?)`, { status });
}
