/**
 * Batched heartbeat writes (write-behind). A heartbeat whose renewal may wait
 * (`renewalMayWait`: the lease as stored outlives the holder's next heartbeat
 * even if this write were lost) is answered at once and its renewal written
 * with the others every `intervalMs`, in one transaction. Renewals of the same
 * instance coalesce to the latest. Safety never depends on the batch being
 * written in time: the reclaimer only frees a lease by its stored expiry, which
 * the rule keeps beyond the next heartbeat.
 */
import type { Renewal } from '../domain/effects.js';
import { type Store, unwrittenRenewals } from '../store/port.js';

export interface RenewalBufferOptions {
  /** how often pending renewals are written (ms) */
  intervalMs: number;
  /** write at once when this many are pending */
  maxPending?: number;
  onError?: (err: unknown) => void;
}

export class RenewalBuffer {
  private pending = new Map<string, Renewal>();
  /** clock time of the oldest pending renewal */
  private oldestAt = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;
  readonly maxPending: number;
  /** renewals written so far (for tests and metrics) */
  written = 0;

  constructor(
    private readonly store: Store,
    readonly opts: RenewalBufferOptions,
  ) {
    this.maxPending = opts.maxPending ?? 20_000;
  }

  get size(): number {
    return this.pending.size;
  }

  add(r: Renewal): void {
    this.keep(r);
    if (this.closed || this.pending.size >= this.maxPending) void this.flush();
    else this.schedule();
  }

  private keep(r: Renewal): void {
    if (r.at < this.oldestAt) this.oldestAt = r.at;
    const k = r.leaseId + '\u0000' + r.instanceId;
    const prev = this.pending.get(k);
    if (!prev || prev.at <= r.at) this.pending.set(k, r);
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => void this.flush(), this.opts.intervalMs).unref();
  }

  /** Writes everything pending now (the reclaimer calls it before a sweep; close calls it last). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.writing = this.writing.then(async () => {
      if (this.pending.size === 0) return;
      const batch = [...this.pending.values()];
      this.pending = new Map();
      this.oldestAt = Infinity;
      try {
        const retry = await this.store.renew(batch);
        this.written += batch.length - retry.length;
        for (const r of retry) this.keep(r);
      } catch (err) {
        // Keep what was not written for the next attempt (newer renewals of the same instance win).
        const rest = unwrittenRenewals(err, batch);
        this.written += batch.length - rest.length;
        for (const r of rest) this.keep(r);
        this.opts.onError?.(err);
      }
      if (this.pending.size && !this.closed) this.schedule();
    });
    return this.writing;
  }

  /**
   * Writes the pending renewals now if the oldest is `intervalMs` old by the
   * service's clock (the timer counts real time; a clock that jumps, as in tests,
   * must not make a decision read a renewal that is older than a batch).
   * Called before decisions that read expiries.
   */
  settle(now: number): Promise<void> | undefined {
    return this.pending.size && now - this.oldestAt >= this.opts.intervalMs ? this.flush() : undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}
