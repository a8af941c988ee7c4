/**
 * Token buckets keyed by client address or license key, in memory, per node.
 *
 * Why not @fastify/rate-limit: it counts fixed windows on `Date.now()` (our time
 * rules go through the injectable Clock, so tests advance time instead of
 * sleeping), and it cannot count only *failed* authentications. This is the
 * small part of it floatd needs: O(1) per request (one Map lookup, a delete and
 * a re-insert to keep recency, a few arithmetic operations, no allocation for a
 * known key) and bounded memory (least recently used keys are dropped beyond
 * `maxKeys`; a dropped key starts again with a full bucket, which only ever
 * errs on the side of letting a request through).
 */
import type { Clock } from '../domain/clock.js';
import type { RateLimit } from '../config.js';

interface Bucket {
  tokens: number;
  /** when `tokens` was last brought up to date (ms) */
  at: number;
}

/** How many keys one limiter remembers at most (about 100 bytes each). */
export const DEFAULT_MAX_KEYS = 100_000;

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  /** tokens added per millisecond */
  private readonly rate: number;

  constructor(
    readonly limit: RateLimit,
    private readonly clock: Clock,
    private readonly maxKeys: number = DEFAULT_MAX_KEYS,
  ) {
    this.rate = limit.max / (limit.perSeconds * 1000);
  }

  /** Keys remembered now (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  /** The bucket of `key`, refilled up to now and moved to the most recently used end. */
  private bucket(key: string, now: number): Bucket {
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.limit.max, at: now };
      if (this.buckets.size >= this.maxKeys) {
        // Map iterates in insertion order: the first key is the least recently used.
        const oldest = this.buckets.keys().next();
        if (!oldest.done) this.buckets.delete(oldest.value);
      }
    } else {
      this.buckets.delete(key);
      if (now > b.at) {
        b.tokens = Math.min(this.limit.max, b.tokens + (now - b.at) * this.rate);
        b.at = now;
      }
    }
    this.buckets.set(key, b);
    return b;
  }

  /**
   * Takes one token for `key`. Returns 0 when the request may go on, otherwise
   * the whole seconds to wait until a token is back (for `Retry-After`).
   */
  take(key: string): number {
    const b = this.bucket(key, this.clock.now());
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return this.wait(b);
  }

  /** Gives back a token taken by `take` (a reservation that was not needed). */
  refund(key: string): void {
    const b = this.buckets.get(key);
    if (b !== undefined) b.tokens = Math.min(this.limit.max, b.tokens + 1);
  }

  /** Like `take` but takes nothing: 0 while a token is left, else the seconds until one is. */
  check(key: string): number {
    const b = this.buckets.get(key);
    if (b === undefined) return 0;
    const now = this.clock.now();
    const tokens = Math.min(this.limit.max, b.tokens + Math.max(0, now - b.at) * this.rate);
    return tokens >= 1 ? 0 : seconds((1 - tokens) / this.rate);
  }

  private wait(b: Bucket): number {
    return seconds((1 - b.tokens) / this.rate);
  }
}

/** Whole seconds (at least 1) covering `ms`; a float's last-digit error does not add a second. */
function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000 - 1e-9));
}
