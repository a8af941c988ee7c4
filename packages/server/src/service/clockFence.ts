/**
 * Cluster clock fence: nodes on one PostgreSQL database decide expiries on one clock, the
 * database's: each node reads its own clock corrected by its measured offset
 * (`DatabaseAlignedClock`), so within the bound two nodes a second apart still agree on
 * every expiry. Past the bound a node is not trusted to be corrected. Each node measures its offset
 * from the database clock (`store/postgres/nodes.ts`, every few seconds and once before it
 * listens); while the offset is past `MAX_CLOCK_OFFSET_MS` the node is fenced: it grants
 * and renews nothing (`NODE_CLOCK_SKEWED`, 503, so a load balancer retries elsewhere),
 * its reclaimer frees nothing, and `/readyz` answers 503 — until a measurement is back
 * within the bound (CockroachDB stops a node past its maximum offset the same way).
 * On SQLite there is one clock and no fence.
 */
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import type { DomainError } from '../domain/result.js';
import type { Metrics } from './metrics.js';

/** The bound on a node's offset from the database clock (also the limit `floatd doctor` checks). */
export const MAX_CLOCK_OFFSET_MS = 2000;

export class ClockFence {
  private offsetMs: number | undefined;
  private fencedSince: number | undefined;

  constructor(
    private readonly metrics: Metrics,
    private readonly logger: Logger | false,
    private readonly boundMs: number = MAX_CLOCK_OFFSET_MS,
  ) {}

  /**
   * A new measurement of this node's clock minus the database's, taken over a round trip of
   * `rttMs` (the true offset is within ±rttMs/2 of it). Only a measurement that proves the
   * offset past the bound fences, and only one that proves it within the bound lifts the fence:
   * a slow round trip (a loaded machine) decides nothing.
   */
  measured(offsetMs: number, rttMs = 0): void {
    this.offsetMs = offsetMs;
    this.metrics.clockOffset.set(offsetMs / 1000);
    const out = Math.abs(offsetMs) - rttMs / 2 > this.boundMs;
    const within = Math.abs(offsetMs) + rttMs / 2 <= this.boundMs;
    if (out && this.fencedSince === undefined) {
      this.fencedSince = Date.now();
      this.metrics.clockFenced.set(1);
      if (this.logger)
        this.logger.error(
          { clockOffsetMs: offsetMs, boundMs: this.boundMs },
          'clock offset from the database past the bound: this node grants and renews nothing until it is back (fix NTP)',
        );
    } else if (within && this.fencedSince !== undefined) {
      this.fencedSince = undefined;
      this.metrics.clockFenced.set(0);
      if (this.logger)
        this.logger.warn({ clockOffsetMs: offsetMs, boundMs: this.boundMs }, 'clock offset back within the bound: this node serves again');
    }
  }

  fenced(): boolean {
    return this.fencedSince !== undefined;
  }

  /** Why this node may not decide now, or undefined. */
  refusal(): DomainError | undefined {
    if (this.fencedSince === undefined) return undefined;
    return {
      code: 'NODE_CLOCK_SKEWED',
      message: `this node's clock is ${this.offsetMs} ms off the database clock (bound ±${this.boundMs} ms): it grants and renews nothing until its clock is corrected; retry on another node`,
      details: { clockOffsetMs: this.offsetMs, boundMs: this.boundMs, retryAfterSeconds: 2 },
    };
  }
}

/** A correction smaller than this is measurement noise (ms): two nodes that close use their own clocks unchanged. */
export const CLOCK_ALIGN_NOISE_MS = 100;

/**
 * This node's clock on the database's time: the base clock minus the node's measured offset
 * (`measured`, fed by the same measurements as the fence). The correction moves only when a
 * measurement proves it off by more than the noise, so the reading does not wobble with each
 * round trip; a move is a step of the wall clock, which `SilenceWatch` sees and never takes for
 * a holder's silence. Monotonic time is the base clock's.
 *
 * @example two nodes 1.5 s apart, both within the bound: both read the database's time (±noise), so
 * neither frees a lease the other still counts as live, and their tokens' expiries agree.
 */
export class DatabaseAlignedClock implements Clock {
  private correctionMs = 0;

  constructor(
    private readonly base: Clock,
    private readonly noiseMs: number = CLOCK_ALIGN_NOISE_MS,
  ) {}

  /** A measurement of the base clock minus the database's over a round trip of `rttMs`. */
  measured(offsetMs: number, rttMs = 0): void {
    if (Math.abs(offsetMs - this.correctionMs) - rttMs / 2 <= this.noiseMs) return;
    this.correctionMs = Math.abs(offsetMs) + rttMs / 2 <= this.noiseMs ? 0 : offsetMs;
  }

  /** The correction in force (ms subtracted from the base clock). */
  correction(): number {
    return this.correctionMs;
  }

  now(): number {
    return this.base.now() - this.correctionMs;
  }

  monotonic(): number {
    return this.base.monotonic();
  }
}
