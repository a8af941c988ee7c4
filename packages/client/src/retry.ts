/** Back-off with jitter for retries of transient failures. */

/**
 * How the SDK retries transient failures (network errors, 5xx). A 4xx is never retried.
 *
 * @example const retry: Partial<RetryPolicy> = { initialDelayMs: 500, maxAttempts: 6 };
 */
export interface RetryPolicy {
  /** first delay, ms (default 1000) */
  initialDelayMs: number;
  /** longest delay, ms (default 60000) */
  maxDelayMs: number;
  /** attempts of `checkout()` before it gives up, without `wait` (default 4) */
  maxAttempts: number;
}

/** @example new FloatingLicense({ serverUrl, licenseKey, retry: { ...DEFAULT_RETRY, maxAttempts: 8 } }) */
export const DEFAULT_RETRY: RetryPolicy = { initialDelayMs: 1000, maxDelayMs: 60_000, maxAttempts: 4 };

/**
 * Delay before retry number `attempt` (1-based): exponential, capped, with "equal
 * jitter" (between half and all of the step), so clients that failed together do
 * not come back together.
 *
 * @example backoff(3, DEFAULT_RETRY, Math.random) // between 2000 and 4000
 */
export function backoff(attempt: number, policy: RetryPolicy, random: () => number): number {
  const step = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(step / 2 + (random() * step) / 2);
}
