/** The only source of "now" for every time rule. Milliseconds since the epoch, UTC. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * A clock tests move by hand, so time rules are tested without sleeping.
 *
 * @example const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z')); clock.advance(60_000);
 */
export class ManualClock implements Clock {
  constructor(private ms: number = Date.parse('2026-01-01T00:00:00Z')) {}
  now(): number {
    return this.ms;
  }
  /** Moves time forward (or back, with a negative value) by `ms` milliseconds. */
  advance(ms: number): void {
    this.ms += ms;
  }
  advanceSeconds(s: number): void {
    this.ms += s * 1000;
  }
  set(ms: number): void {
    this.ms = ms;
  }
}
