/**
 * Reclamation: frees seats whose holder went silent (crash, sleep, lost
 * network). Runs on a timer (the reclaimer job, jobs/reclaimer.ts) and on demand ("reclaim now").
 *
 * A sweep costs what it frees, not what is stored (issue #17): the dead are found by range scans of the expiry
 * indexes, a page at a time (`Store.sweepScan`), never by asking every license. Each page is freed in batches,
 * one transaction each, so a big sweep never holds a lock long: per license where a transaction locks a license's
 * row (PostgreSQL), in runs across licenses, in license then lease id order, where it locks the one writer anyway
 * (SQLite, whose commits then write neighbouring pages: `Store.sweepOrder`; there each batch is background work, a commit
 * of its own after the checkouts waiting, so a mass expiry does not hold everyone's checkouts). In a batch, each license is locked, its part read again under
 * the lock and decided by the domain; each batch is a few bulk writes, with one audit entry per freed lease (the
 * answer to "when and why was this lease released").
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
import type { SessionKeys } from './sessions.js';

/**
 * Leases per transaction of one license (`Store.sweepOrder` `license`, PostgreSQL): big enough that a large sweep is a
 * few bulk writes, small enough to hold the license's lock briefly.
 */
const BATCH = 1000;
/**
 * Leases per transaction in runs across licenses (`Store.sweepOrder` `run`, SQLite). There a batch is background work
 * (`transaction(fn, { background: true })`): a commit of its own, after the checkouts waiting. But a checkout that
 * commits after a batch is answered only once the WAL holding both is synced, and a batch's freed leases dirty pages
 * all over the file: at 1M leases, 120-140 ms of fdatasync for 1,000 leases. So the run's size bounds what a checkout
 * waits for during a big sweep (`bench/run.mjs --scale --scale-during 8`, 2026-12-07, 1,000 / 500 / 250 / 100 a run:
 * checkout + check-in p50 249 / 156 / 90 / 47 ms beside a sweep of 15.6 s at 250, 20.2 s at 100; docs/performance.md).
 * A batch's savepoint journal is in memory (store/sqlite/store.ts): about 30 MB for 1,000 leases on a file of 300,000.
 */
const RUN = 250;
/** Leases per page of the scan: the ids held in memory at once; a page is freed before the next is read. */
const PAGE = 100_000;
/** Licenses freed at once (`license` order). */
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
    /** the open session keys (the licensing service's): a freed lease's uses' keys leave the cache */
    private readonly sessions?: SessionKeys,
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
    // Renewals due by now are written first; the others' stored rows outlive their holders' next heartbeats.
    await this.renewals?.flushDue(now);
    const counted = new Set<string>();
    /** with `customerId`: whether a license is that customer's */
    const theirs = new Map<string, boolean>();
    let cursor: string | null = null;
    do {
      const page = await this.store.sweepScan(now, cursor, PAGE);
      const licenses = byLicense(page.found);
      if (customerId !== undefined) {
        for (const licenseId of licenses.keys()) {
          if (!theirs.has(licenseId)) theirs.set(licenseId, (await this.store.getLicense(licenseId))?.customerId === customerId);
          if (!theirs.get(licenseId)) licenses.delete(licenseId);
        }
      }
      // A few jobs at once, each its batches in turn: SQLite shares a commit between their transactions, PostgreSQL runs
      // them on as many connections.
      const jobs = this.store.sweepOrder === 'run' ? inRuns(licenses) : perLicense(licenses);
      const worker = async () => {
        for (let job = jobs.shift(); job; job = jobs.shift()) {
          for (const batch of job) {
            const done = await this.batch(batch, now, actor, counted);
            for (const f of done.freed) total.freed.push(f);
            total.instancesDropped += done.instancesDropped;
          }
        }
      };
      // `run` order: as many runs at once as the store puts in one commit while nobody else writes (SQLite: 16 runs of 250,
      // 4,000 leases a commit on an idle server; one a commit when others write).
      const workers = this.store.sweepOrder === 'run' ? (this.store.backgroundPerCommit ?? 1) : PARALLEL;
      await Promise.all(Array.from({ length: workers }, worker));
      cursor = page.next;
    } while (cursor !== null);
    if (total.freed.length) {
      this.metrics.reclaimed.inc(total.freed.length);
      this.metrics.released.inc({ reason: RELEASE_REASONS.EXPIRED }, total.freed.length);
    }
    return { ...total, ranAt: now };
  }

  /**
   * One batch in one transaction: each license's part in turn. A license's seat counters are checked against its
   * lease rows (`countedLicense`) in its first batch of the sweep only: every seat change after that is a guarded
   * write, and counting a big license's rows again for each batch would make the sweep cost what the license holds.
   * Should the counters have been edited by hand in between, the guard refuses the batch, and it runs again with the
   * check for each of its licenses.
   */
  private async batch(batch: Batch, now: number, actor: string, counted: Set<string>): Promise<Reclaimed> {
    // With what it freed, the stored session keys of the freed leases' uses: forgotten once the transaction committed.
    const attempt = (check: (licenseId: string) => boolean) =>
      this.store.transaction(
        async (tx) => {
          const out: Reclaimed = { freed: [], instancesDropped: 0 };
          const keys: string[] = [];
          for (const [licenseId, ids] of batch) {
            const locked = await tx.lockLicense(licenseId);
            const license = check(licenseId) ? await countedLicense(tx, locked, now, this.metrics) : locked;
            if (!license) continue;
            // Within the grace after a start or a clock step, only leases whose whole silence the server watched are freed.
            const cutoff = this.guard.reclaimCutoff?.(longestTtlSeconds(license), now) ?? now;
            const found = await tx.leasesToSweep(licenseId, ids);
            const candidates = cutoff < now ? found.filter((l) => l.expiresAt !== null && l.expiresAt <= cutoff) : found;
            if (candidates.length === 0) continue;
            const decision = decideReclaim(license, candidates, now, actor);
            await tx.apply(decision.effects);
            if (!decision.result.ok) continue;
            const freed = new Set<string>();
            for (const f of decision.result.value.freed) {
              out.freed.push(f);
              freed.add(f.leaseId);
            }
            out.instancesDropped += decision.result.value.instancesDropped;
            for (const l of candidates) if (freed.has(l.id)) for (const i of l.instances) if (i.sessionKey) keys.push(i.sessionKey);
          }
          return { out, keys };
        },
        { background: true },
      );
    const fresh = new Set(batch.filter(([licenseId]) => !counted.has(licenseId)).map(([licenseId]) => licenseId));
    for (const [licenseId] of batch) counted.add(licenseId);
    const done = async (check: (licenseId: string) => boolean) => {
      const { out, keys } = await attempt(check);
      for (const k of keys) this.sessions?.forget(k);
      return out;
    };
    if (fresh.size < batch.length) {
      try {
        return await done((licenseId) => fresh.has(licenseId));
      } catch (err) {
        if (!(err instanceof SeatGuardError)) throw err;
      }
    }
    return done(() => true);
  }
}

/** One transaction's leases: per license, the ids of its part. */
type Batch = readonly (readonly [licenseId: string, ids: readonly string[]])[];

/** Batches per license (`Store.sweepOrder` `license`): a job per license, its batches in turn. */
function perLicense(licenses: ReadonlyMap<string, readonly string[]>): Batch[][] {
  return [...licenses].map(([licenseId, ids]) => {
    const batches: Batch[] = [];
    for (let i = 0; i < ids.length; i += BATCH) batches.push([[licenseId, ids.slice(i, i + BATCH)]]);
    return batches;
  });
}

/** Batches of the next RUN leases in license, then lease id order, across licenses (`Store.sweepOrder` `run`): a job per batch. */
function inRuns(licenses: ReadonlyMap<string, readonly string[]>): Batch[][] {
  const all: [leaseId: string, licenseId: string][] = [];
  for (const [licenseId, ids] of licenses) for (const id of ids) all.push([id, licenseId]);
  all.sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const jobs: Batch[][] = [];
  for (let i = 0; i < all.length; i += RUN) {
    const parts = new Map<string, string[]>();
    for (const [id, licenseId] of all.slice(i, i + RUN)) {
      const part = parts.get(licenseId);
      if (part) part.push(id);
      else parts.set(licenseId, [id]);
    }
    jobs.push([[...parts]]);
  }
  return jobs;
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
