import type { ErrorCode } from '@floatd/protocol';

/** An expected failure: a value, not an exception. The HTTP layer turns it into the error envelope. */
export interface DomainError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: DomainError };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = (code: ErrorCode, message: string, details?: Record<string, unknown>): { ok: false; error: DomainError } => ({
  ok: false,
  error: details ? { code, message, details } : { code, message },
});
