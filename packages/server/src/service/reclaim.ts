/**
 * Reclamation: frees seats whose holder went silent (crash, sleep, lost
 * network). Runs on a timer (the reclaimer job, jobs/reclaimer.ts) and on demand ("reclaim now").
 *
 * A sweep costs what it frees, not what is stored (issue #17: 100,000 dead leases in under a second whether
 * a million or a hundred million are live): the dead are found by range scans of the expiry indexes, a page
 * at a time (`Store.sweepScan`), never by asking every license. Each page is freed per license in batches,
 * one transaction each (the license locked, the batch read again under the lock, the domain deciding), so a
 * big sweep never holds a lock long; each batch is a few bulk writes, with one audit entry per freed lease
 * (the answer to "when and why was this lease released").
 */
import { longestTtlSeconds } from '../domain/features.js';
import { RELEASE_REASONS } from '@floatd/protocol';
import type { Clock } from '../domain/clock.js';
import { SeatGuardError } from '../domain/effects.js';
import { decideReclaim, type Reclaimed } from '../domain/seats.js';
import type { Store, SweepFound } from '../store/port.js';
import type { Metrics } from './metrics.js';
import type { RenewalBuffer } from './renewals.js';
import { countedLicense } from './seatCounters.js';

/**
 * Leases per transaction: big enough that a large sweep is a few bulk writes, small enough to hold the lock briefly.
 * On SQLite a batch's savepoint journal is in memory (store/sqlite/store.ts): about 30 MB for 1,000 leases, 99 MB
 * for 5,000 (a file of 300,000 leases, docs/operations.md).
 */
const BATCH = 1000;
/** Leases per page of the scan: the ids held in memory at once; a page is freed before the next is read. */
const PAGE = 100_000;
/** Licenses freed at once. */
const PARALLEL = 4;

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
   * With `customerId` (a customer's own administrator), a sweep of that customer's licenses only, of its own:
   * its report names nothing of another customer's.
   */
  async sweep(actor: string, only?: { customerId: string }): Promise<Reclaimed & { ranAt: number }> {
    if (only) return this.run(actor, only.customerId);
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

  private async run(actor: string, customerId?: string): Promise<Reclaimed & { ranAt: number }> {
    this.guard.watchClock?.();
    const now = this.clock.now();
    const total: Reclaimed = { freed: [], instancesDropped: 0 };
    // A node whose clock is out of bounds decides no expiry.
    if (this.guard.fenced?.()) return { ...total, ranAt: now };
    await this.renewals?.flush();
    const counted = new Set<string>();
    /** with `customerId`: whether a license is that customer's */
    const theirs = new Map<string, boolean>();
    let cursor: string | null = null;
    do {
      const page = await this.store.sweepScan(now, cursor, PAGE);
      // A few licenses at once (each one's batches in turn): SQLite then shares a commit between their batches, PostgreSQL
      // runs them on as many connections.
      const licenses = [...byLicense(page.found)];
      const worker = async () => {
        for (let next = licenses.shift(); next; next = licenses.shift()) {
          const [licenseId, ids] = next;
          if (customerId !== undefined) {
            if (!theirs.has(licenseId)) theirs.set(licenseId, (await this.store.getLicense(licenseId))?.customerId === customerId);
            if (!theirs.get(licenseId)) continue;
          }
          for (let i = 0; i < ids.length; i += BATCH) {
            const done = await this.batch(licenseId, ids.slice(i, i + BATCH), now, actor, counted);
            for (const f of done.freed) total.freed.push(f);
            total.instancesDropped += done.instancesDropped;
          }
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, worker));
      cursor = page.next;
    } while (cursor !== null);
    if (total.freed.length) {
      this.metrics.reclaimed.inc(total.freed.length);
      this.metrics.released.inc({ reason: RELEASE_REASONS.EXPIRED }, total.freed.length);
    }
    return { ...total, ranAt: now };
  }

  /**
   * One batch of one license in one transaction. The license's seat counters are checked against its lease rows
   * (`countedLicense`) in its first batch of the sweep only: every seat change after that is a guarded write, and
   * counting a big license's rows again for each batch would make the sweep cost what the license holds. Should the
   * counters have been edited by hand in between, the guard refuses the batch, and it runs again with the check.
   */
  private async batch(licenseId: string, ids: readonly string[], now: number, actor: string, counted: Set<string>): Promise<Reclaimed> {
    const attempt = (check: boolean) =>
      this.store.transaction(async (tx): Promise<Reclaimed> => {
        const locked = await tx.lockLicense(licenseId);
        const license = check ? await countedLicense(tx, locked, now, this.metrics) : locked;
        if (!license) return { freed: [], instancesDropped: 0 };
        // Within the grace after a start or a clock step, only leases whose whole silence the server watched are freed.
        const cutoff = this.guard.reclaimCutoff?.(longestTtlSeconds(license), now) ?? now;
        const found = await tx.leasesToSweep(licenseId, ids);
        const candidates = cutoff < now ? found.filter((l) => l.expiresAt !== null && l.expiresAt <= cutoff) : found;
        if (candidates.length === 0) return { freed: [], instancesDropped: 0 };
        const decision = decideReclaim(license, candidates, now, actor);
        await tx.apply(decision.effects);
        return decision.result.ok ? decision.result.value : { freed: [], instancesDropped: 0 };
      });
    if (counted.has(licenseId)) {
      try {
        return await attempt(false);
      } catch (err) {
        if (!(err instanceof SeatGuardError)) throw err;
      }
    }
    counted.add(licenseId);
    return attempt(true);
  }
}

/** A page's leases by license (each once: a lease with two dead uses is found twice), in the order the licenses first appear. */
function byLicense(found: readonly SweepFound[]): Map<string, string[]> {
  const sets = new Map<string, Set<string>>();
  for (const f of found) {
    const ids = sets.get(f.licenseId);
    if (ids) ids.add(f.leaseId);
    else sets.set(f.licenseId, new Set([f.leaseId]));
  }
  return new Map([...sets].map(([licenseId, ids]) => [licenseId, [...ids]]));
}
