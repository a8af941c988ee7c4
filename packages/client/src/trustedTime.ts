/**
 * Trusted time: the latest time the SDK has reason to believe (the server's time in a
 * token, a clock reading, the record an earlier run left), carried forward by the
 * monotonic clock. It only moves forward: setting the wall clock back buys nothing,
 * and a wall clock earlier than it by more than the tolerance is `CLOCK_TAMPERED`.
 * Persisting it across runs is the token store's job (`tokenStore.ts`).
 */
import type { Clock, TimerHandle } from './clock.js';

const iso = (ms: number) => new Date(ms).toISOString();

/** What the trusted time tells its owner about the wall clock. */
export interface ClockVerdicts {
  /** the wall clock is set back beyond the tolerance */
  tampered(message: string): void;
  /** the wall clock is within the tolerance again */
  clockOk(): void;
}

export class TrustedTime {
  /**
   * The trusted time is `base + monotonic()`: the latest time this object trusted
   * carried forward by the monotonic time elapsed since, so it moves on with real
   * time whatever the wall clock does. Raising it raises `base`; nothing lowers it.
   */
  private base: number;
  private readonly monotonic: () => number;

  constructor(
    private readonly clock: Clock,
    /** how far the wall clock may go back before it is tampering, ms */
    readonly toleranceMs: number,
    private readonly verdicts: ClockVerdicts,
  ) {
    this.monotonic = typeof clock.monotonic === 'function' ? () => clock.monotonic!() : () => performance.now();
    this.base = -this.monotonic();
  }

  /** The trusted time now: the latest trusted reading plus the monotonic time elapsed since it. */
  now(): number {
    return this.base + this.monotonic();
  }

  /** Raises the trusted time to `t` (never lowers it). */
  raise(time: number): void {
    const base = time - this.monotonic();
    if (base > this.base) this.base = base;
  }

  /** Wall time never earlier than the trusted time: setting the clock back buys nothing. */
  effectiveNow(): number {
    return Math.max(this.clock.now(), this.now());
  }

  /** A time the server vouched for (a token's `iat`). */
  observeServerTime(ms: number): void {
    this.raise(ms);
    this.check();
  }

  /** False (and a CLOCK_TAMPERED verdict) when the clock is earlier than the trusted time by more than the tolerance. */
  check(): boolean {
    const now = this.clock.now();
    const trusted = this.now();
    if (now < trusted - this.toleranceMs) {
      this.verdicts.tampered(
        `the system clock (${iso(now)}) is earlier than the last trusted time (${iso(trusted)}) by more than ${this.toleranceMs / 1000} s`,
      );
      return false;
    }
    this.verdicts.clockOk();
    this.raise(now);
    return true;
  }

  /**
   * A timer that also keeps the trusted time honest: a timer never fires early, so
   * when it fires at least `ms` passed since it was armed, whatever the wall clock
   * says. The trusted time (and with it every expiry) keeps moving while the clock
   * is set back.
   */
  arm(fn: () => Promise<void> | void, ms: number): TimerHandle {
    const delay = Math.max(0, ms);
    const base = this.now();
    return this.clock.setTimeout(() => {
      this.raise(base + delay);
      return fn();
    }, delay);
  }
}
