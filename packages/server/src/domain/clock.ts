/**
 * The only source of "now" for every time rule. `now()` is wall time (ms since the epoch,
 * UTC): it decides the dates that are dates (subscription end, trial end, Offline Expiry
 * Date) and stamps what is stored. `monotonic()` never steps (the process's monotonic
 * time, from an arbitrary origin): set against `now()` it shows when the wall clock
 * stepped (see `SilenceWatch`), so a step is never taken for a holder's silence.
 */
export interface Clock {
  now(): number;
  monotonic(): number;
}

export const systemClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };

/**
 * A clock tests move by hand, so time rules are tested without sleeping. `advance` and
 * `set` are time passing (both readings move); `step` is the wall clock jumping while no
 * time passes (NTP stepping a drifted clock, a VM resumed with its old time).
 *
 * @example const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z')); clock.advance(60_000); clock.step(300_000);
 */
export class ManualClock implements Clock {
  private mono = 0;
  constructor(private ms: number = Date.parse('2026-01-01T00:00:00Z')) {}
  now(): number {
    return this.ms;
  }
  monotonic(): number {
    return this.mono;
  }
  /** Time passes by `ms` milliseconds. A negative value sets the wall clock back (monotonic time never goes back). */
  advance(ms: number): void {
    this.ms += ms;
    this.mono += Math.max(0, ms);
  }
  advanceSeconds(s: number): void {
    this.advance(s * 1000);
  }
  set(ms: number): void {
    this.advance(ms - this.ms);
  }
  /** The wall clock jumps by `ms` (forward, or back when negative); no time passes. */
  step(ms: number): void {
    this.ms += ms;
  }
}

/** A difference between the wall and monotonic clocks larger than this is a step, not drift. */
export const STEP_TOLERANCE_MS = 1000;

/**
 * How long a lease's holder has really been silent, when the wall clock may step.
 *
 * Stored expiries are wall times, so a wall clock stepped forward by 300 s would make
 * every live lease look 300 s silent. The watch compares the wall clock with the
 * monotonic clock: the moment their difference moves by more than `toleranceMs` is a
 * step. Since the process started and since the last step, a silence measured in wall
 * time cannot be trusted, so a lease is reclaimable only once it is past its stored
 * expiry AND one full TTL has passed since then (`mayReclaim`): its holder had one whole
 * heartbeat window on the new clock to renew it. The same grace follows a restart, when
 * the time spent down is unknown (etcd extends its leases by their TTL after a leader
 * change for the same reason). Cost: a seat whose holder really died just before the
 * step or restart is freed up to one TTL later. Dates that are dates still use `now()`.
 *
 * Steps are found when someone asks (`check`, `mayReclaim`); call `check` on a timer too
 * so that they are logged promptly.
 */
export class SilenceWatch {
  private offset: number | undefined;
  private since: number;
  private lastStep: { deltaMs: number; at: number } | undefined;
  /**
   * Expiries at or before this wall time were silences the server itself watched (before the
   * last step, or before it last stopped): those leases are dead whatever happened since.
   */
  private watchedUntil = 0;

  constructor(
    private readonly clock: Clock,
    private readonly onStep: (deltaMs: number, at: number) => void = () => {},
    private readonly toleranceMs: number = STEP_TOLERANCE_MS,
  ) {
    const r = this.reading();
    this.since = r?.now ?? clock.now();
    // (torn at the start: the first whole reading sets it)
    this.offset = r?.offset;
  }

  /** The last time the previous run of the server is known to have been up (its stored trusted time). */
  watchedBefore(at: number): void {
    this.watchedUntil = Math.max(this.watchedUntil, Math.min(at, this.since));
  }

  /** Looks for a step since the last look; returns the wall time since which silences are real. */
  check(): number {
    const r = this.reading();
    // The clock source moved under every reading (libfaketime's file rewritten again and again): decided at the next look.
    if (!r) return this.since;
    const { now, offset } = r;
    this.offset ??= offset;
    const delta = offset - this.offset;
    if (Math.abs(delta) > this.toleranceMs) {
      this.offset = offset;
      // Up to the moment before the step (in the new clock's terms), the server was watching.
      this.watchedUntil = Math.max(this.watchedUntil, Math.min(now, now - delta));
      this.since = now;
      this.lastStep = { deltaMs: delta, at: now };
      this.onStep(delta, now);
    }
    return this.since;
  }

  /**
   * The wall clock against the monotonic one, read between two monotonic readings. A source that moves both
   * clocks (libfaketime's offset file, a resumed VM) shows between the two monotonic readings, and such a torn
   * reading is taken again: otherwise the wall clock read after a move and the monotonic one before it (or the
   * other way round) would look like a step, and the next look like a step back. A step of the wall clock alone
   * leaves the monotonic readings together. Undefined when three readings in a row were torn.
   */
  private reading(): { now: number; offset: number } | undefined {
    for (let i = 0; i < 3; i++) {
      const before = this.clock.monotonic();
      const now = this.clock.now();
      const after = this.clock.monotonic();
      if (after - before <= this.toleranceMs / 2) return { now, offset: now - (before + after) / 2 };
    }
    return undefined;
  }

  /** The wall time of the process start or of the last step, whichever is later. */
  trustedSince(): number {
    return this.check();
  }

  get latestStep(): { deltaMs: number; at: number } | undefined {
    return this.lastStep;
  }

  /**
   * May leases with this TTL that look expired at `now` be reclaimed? Not until one TTL
   * after the start or the last step (a license without a TTL has no silence to measure).
   */
  mayReclaim(leaseTtlSeconds: number | null, now: number): boolean {
    return this.reclaimCutoff(leaseTtlSeconds, now) >= now;
  }

  /**
   * Leases that expired at or before the returned time may be reclaimed at `now`: all that look
   * expired once a TTL has passed since the start or the last step; before that, only those whose
   * expiry the server itself watched pass (before the step, or before its previous run stopped).
   */
  reclaimCutoff(leaseTtlSeconds: number | null, now: number): number {
    if (leaseTtlSeconds === null || now >= this.check() + leaseTtlSeconds * 1000) return now;
    return Math.min(now, this.watchedUntil);
  }
}
