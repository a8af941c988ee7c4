/**
 * The SDK's only source of time and of timers. Every time rule of the client
 * (heartbeat scheduling, token expiry while the server is unreachable, the
 * Offline Expiry Date, clock-tamper detection, retry back-off) goes through a
 * `Clock`, so tests drive them with `FakeClock` (`@floatd/client/testing`)
 * instead of sleeping.
 */

/** An opaque timer handle returned by {@link Clock.setTimeout}. @example const h: TimerHandle = clock.setTimeout(fn, 1000); clock.clearTimeout(h); */
export type TimerHandle = unknown;

/**
 * Wall time plus timers.
 *
 * `now()` is the wall clock (what the user can change). Timers are relative and
 * run on elapsed time, like `setTimeout`: moving the wall clock does not make a
 * timer fire sooner or later.
 *
 * A callback may return a promise; a test clock awaits it, so a test that
 * advances time sees the work the timer started (e.g. a heartbeat round trip)
 * finished when `advance()` resolves. The system clock ignores it.
 *
 * @example
 * const clock: Clock = { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };
 */
export interface Clock {
  /** Wall time, milliseconds since the epoch (UTC). */
  now(): number;
  /**
   * Calls `fn` once after `ms` milliseconds of elapsed time. `keepAlive` asks that
   * the timer keep the process running (a wait someone awaits); background timers
   * (heartbeats) do not.
   */
  setTimeout(fn: () => void | Promise<unknown>, ms: number, keepAlive?: boolean): TimerHandle;
  /** Cancels a timer; a handle that already fired or was cancelled is ignored. */
  clearTimeout(handle: TimerHandle): void;
  /**
   * Elapsed time in ms since an arbitrary origin (the process start): it never goes
   * back and changing the system clock does not move it. The SDK adds it to the
   * trusted time it stored, so time used by a run counts whatever the wall clock
   * says. Optional: without it the SDK uses `performance.now()`.
   */
  monotonic?(): number;
}

/** Node's `setTimeout` accepts at most 2^31-1 ms; longer waits are chained. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The real clock. Background timers are `unref`'d: a heartbeat never keeps a
 * process alive on its own (an app that is done exits, and `beforeExit` checks
 * in); a wait inside a call the application awaits (`keepAlive`) does.
 *
 * @example new FloatingLicense({ serverUrl, licenseKey, clock: systemClock })
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(fn, ms, keepAlive = false) {
    const box: { t?: NodeJS.Timeout } = {};
    const arm = (left: number) => {
      const step = Math.min(Math.max(0, left), MAX_TIMER_MS);
      box.t = setTimeout(() => {
        if (left > step) return arm(left - step);
        void Promise.resolve()
          .then(fn)
          .catch(() => undefined);
      }, step);
      if (!keepAlive) box.t.unref?.();
    };
    arm(ms);
    return box;
  },
  clearTimeout(handle) {
    const box = handle as { t?: NodeJS.Timeout } | undefined;
    if (box?.t) clearTimeout(box.t);
  },
};

/** Waits `ms` on `clock` (keeping the process alive); rejects with the signal's reason when aborted. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal!.reason);
    };
    const handle = clock.setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      ms,
      true,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
