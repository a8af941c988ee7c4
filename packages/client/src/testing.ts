/**
 * Test helpers for applications that embed `@floatd/client`: a clock whose time
 * moves only when the test says so.
 *
 * @example
 * import { FakeClock } from '@floatd/client/testing';
 * const clock = new FakeClock(Date.parse('2026-03-02T09:00:00Z'));
 * const lic = new FloatingLicense({ serverUrl, licenseKey, clock });
 * await lic.checkout();
 * await clock.advance(60_000); // heartbeats due in this minute run, and finish, before this resolves
 */
import type { Clock, TimerHandle } from './clock.js';

interface FakeTimer {
  id: number;
  due: number;
  fn: () => void | Promise<unknown>;
}

/** Anything with `advance(ms)`, e.g. the server's `ManualClock`: moved together with this clock. */
export interface LinkedClock {
  advance(ms: number): void;
}

/**
 * A manual {@link Clock}. Two notions of time, as on a real machine:
 *
 * - elapsed time, which drives timers, moves only with {@link advance};
 * - wall time (`now()`) moves with `advance` too, and alone with {@link setWall} /
 *   {@link shiftWall} — a user changing the system clock, which fires no timer.
 */
export class FakeClock implements Clock {
  private wall: number;
  private elapsed = 0;
  private seq = 0;
  private timers: FakeTimer[] = [];
  private linked: LinkedClock[] = [];
  private queue: Promise<void> = Promise.resolve();
  /** Errors thrown by timer callbacks (a test may assert it is empty). */
  readonly errors: unknown[] = [];

  /**
   * @param wallStart initial wall time in ms since the epoch
   * @example const clock = new FakeClock(Date.now());
   */
  constructor(wallStart: number = Date.parse('2026-03-02T09:00:00Z')) {
    this.wall = wallStart;
  }

  /** @example clock.now() // ms since the epoch */
  now(): number {
    return this.wall;
  }

  /** Elapsed time since this clock was made: moves only with {@link advance}, never with the wall clock. @example clock.monotonic() */
  monotonic(): number {
    return this.elapsed;
  }

  /** @example clock.setTimeout(() => console.log('later'), 1000) */
  setTimeout(fn: () => void | Promise<unknown>, ms: number, _keepAlive?: boolean): TimerHandle {
    const id = ++this.seq;
    this.timers.push({ id, due: this.elapsed + Math.max(0, ms), fn });
    return id;
  }

  /** @example clock.clearTimeout(handle) */
  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /**
   * Moves `other` forward whenever this clock advances (by the same steps, so a
   * timer that fires at t+30 s sees the other clock at t+30 s too).
   *
   * @example clock.link(testServer.clock)
   */
  link(other: LinkedClock): this {
    this.linked.push(other);
    return this;
  }

  /** Stops moving a clock given to {@link link}. @example clock.unlink(testServer.clock) */
  unlink(other: LinkedClock): this {
    this.linked = this.linked.filter((l) => l !== other);
    return this;
  }

  /** Number of pending timers. @example assert.equal(clock.pending(), 0) */
  pending(): number {
    return this.timers.length;
  }

  /** Milliseconds until the next timer fires, or undefined. @example await clock.advance(clock.nextIn()!) */
  nextIn(): number | undefined {
    if (this.timers.length === 0) return undefined;
    return Math.min(...this.timers.map((t) => t.due)) - this.elapsed;
  }

  /**
   * Lets `ms` milliseconds pass: fires every timer that falls due, in order, each
   * at its own time, and awaits the promise its callback returns (and timers that
   * callback schedules within the window) before going on. Calls are queued, so
   * never await `advance()` inside a timer callback (it would wait for itself).
   *
   * @example await clock.advance(5 * 60_000)
   */
  advance(ms: number): Promise<void> {
    const run = this.queue.then(() => this.run(ms));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async run(ms: number): Promise<void> {
    const target = this.elapsed + Math.max(0, ms);
    for (;;) {
      const due = this.timers.filter((t) => t.due <= target).sort((a, b) => a.due - b.due || a.id - b.id)[0];
      if (!due) break;
      this.step(due.due - this.elapsed);
      this.timers = this.timers.filter((t) => t !== due);
      try {
        await due.fn();
      } catch (err) {
        this.errors.push(err);
      }
      // let handlers of events the callback emitted run before the next timer
      await new Promise((r) => setImmediate(r));
    }
    this.step(target - this.elapsed);
  }

  private step(delta: number): void {
    if (delta <= 0) return;
    this.elapsed += delta;
    this.wall += delta;
    for (const l of this.linked) l.advance(delta);
  }

  /** Sets the wall clock without letting time pass (fires nothing). @example clock.setWall(Date.parse('2020-01-01T00:00:00Z')) */
  setWall(ms: number): void {
    this.wall = ms;
  }

  /** Moves the wall clock by `deltaMs` (negative: back) without letting time pass. @example clock.shiftWall(-2 * 3600_000) */
  shiftWall(deltaMs: number): void {
    this.wall += deltaMs;
  }
}
