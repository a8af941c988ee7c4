/**
 * Reclamation: frees seats whose holder went silent (crash, sleep, lost
 * network). Runs on a timer (the reclaimer job, jobs/reclaimer.ts) and on demand ("reclaim now").
 * One transaction per license and batch, so a big sweep never holds the lock long.
 */
import { RELEASE_REASONS } from '@floatd/protocol';
import type { Clock } from '../domain/clock.js';
import { decideReclaim, type Reclaimed } from '../domain/seats.js';
import type { Store } from '../store/port.js';
import type { Metrics } from './metrics.js';
import type { RenewalBuffer } from './renewals.js';
import { countedLicense } from './seatCounters.js';

/** Leases per transaction: big enough that a large sweep is a few bulk writes, small enough to hold the lock briefly. */
const BATCH = 5000;

export class ReclaimService {
  private running: Promise<Reclaimed & { ranAt: number }> | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    /** batched heartbeat writes: written before a sweep reads expiries */
    private readonly renewals?: RenewalBuffer,
    /** whether leases that look expired may be freed yet (the grace after a start or a clock step), and whether this node may decide at all */
    private readonly guard: {
      reclaimCutoff?(leaseTtlSeconds: number | null, now: number): number;
      fenced?(): boolean;
      watchClock?(): void;
    } = {},
  ) {}

  /**
   * Frees every dead lease now. Concurrent calls share one sweep, but never one that read its time before
   * the call: a sweep started at an earlier time (the background one, just before the clock passed an
   * expiry) would not free what is dead now, so the call waits for it and starts, or joins, a newer one.
   */
  async sweep(actor: string): Promise<Reclaimed & { ranAt: number }> {
    const asked = this.clock.now();
    while (this.running && this.runningFrom < asked) await this.running.catch(() => undefined);
    if (!this.running) {
      this.runningFrom = this.clock.now();
      this.running = this.run(actor).finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }
  /** the time the running sweep was started at */
  private runningFrom = 0;

  private async run(actor: string): Promise<Reclaimed & { ranAt: number }> {
    this.guard.watchClock?.();
    const now = this.clock.now();
    const total: Reclaimed = { freed: [], instancesDropped: 0 };
    // A node whose clock is out of bounds decides no expiry.
    if (this.guard.fenced?.()) return { ...total, ranAt: now };
    await this.renewals?.flush();
    for (const licenseId of await this.store.licensesToSweep(now)) {
      for (;;) {
        const batch = await this.store.transaction(async (tx) => {
          const license = await countedLicense(tx, await tx.lockLicense(licenseId), now, this.metrics);
          if (!license) return { freed: [], instancesDropped: 0, more: false };
          // Within the grace after a start or a clock step, only leases whose whole silence the server watched are freed.
          const cutoff = this.guard.reclaimCutoff?.(license.leaseTtlSeconds, now) ?? now;
          const found = await tx.sweepCandidates(licenseId, cutoff, BATCH);
          const candidates = cutoff < now ? found.filter((l) => l.expiresAt !== null && l.expiresAt <= cutoff) : found;
          if (candidates.length === 0) return { freed: [], instancesDropped: 0, more: false };
          const decision = decideReclaim(license, candidates, now, actor);
          await tx.apply(decision.effects);
          const done = decision.result.ok ? decision.result.value : { freed: [], instancesDropped: 0 };
          // Every candidate is dead or has a dead instance, so a full batch that changed nothing would loop forever.
          const progressed = done.freed.length > 0 || done.instancesDropped > 0;
          return { ...done, more: candidates.length === BATCH && progressed };
        });
        total.freed.push(...batch.freed);
        total.instancesDropped += batch.instancesDropped;
        if (!batch.more) break;
      }
    }
    if (total.freed.length) {
      this.metrics.reclaimed.inc(total.freed.length);
      this.metrics.released.inc({ reason: RELEASE_REASONS.EXPIRED }, total.freed.length);
    }
    return { ...total, ranAt: now };
  }
}
