/**
 * Heartbeat writes behind the answer, and only when needed (issue #17).
 *
 * A heartbeat whose renewal may wait (`renewalMayWait`: the lease and the use as
 * stored outlive the holder's next heartbeat even if this renewal were never
 * written) is answered at once and its renewal kept here. Renewals of the same
 * use coalesce to the latest. Each is kept until its due time (`renewalDueAt`:
 * when the stored rows would stop outliving the next heartbeat) and written a
 * little before it, with the others due then, in one batch; so with a heartbeat
 * interval well under the TTL most heartbeats write nothing (TTL 300 s, interval
 * 60 s: one write in three). Safety never depends on a write being made in
 * time: every reclaimer, on every node, frees a lease by its stored expiry, which
 * the rule keeps beyond the holder's next heartbeat; a node that dies with its
 * unwritten renewals loses nothing a holder needs. What the stored rows lag by is
 * their times: `overlay` shows this node's newer ones in the admin views, and
 * `close` writes everything.
 */
import type { Renewal } from '../domain/effects.js';
import { type DeviceView, type LeaseView, type Store, unwrittenRenewals } from '../store/port.js';

export interface RenewalBufferOptions {
  /** how often due renewals are written (ms); a renewal is written up to two intervals before it is due */
  intervalMs: number;
  /** write everything at once when this many are pending (bounds the memory: about 250 bytes each) */
  maxPending?: number;
  /** the service's clock (due times are compared with it) */
  now?: () => number;
  onError?: (err: unknown) => void;
}

interface Pending {
  renewal: Renewal;
  /** the renewal must be written before this (service clock) */
  dueAt: number;
}

export const DEFAULT_MAX_PENDING_RENEWALS = 100_000;

export class RenewalBuffer {
  private pending = new Map<string, Pending>();
  /** the earliest due time pending (a lower bound: Infinity when nothing is pending) */
  private earliestDue = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;
  readonly maxPending: number;
  private readonly now: () => number;
  /** renewals written so far (for tests and metrics) */
  written = 0;

  constructor(
    private readonly store: Store,
    readonly opts: RenewalBufferOptions,
  ) {
    this.maxPending = opts.maxPending ?? DEFAULT_MAX_PENDING_RENEWALS;
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.pending.size;
  }

  /** Keeps a renewal until `dueAt` (omitted: due at once, written with the next batch). */
  add(r: Renewal, dueAt = -Infinity): void {
    this.keep({ renewal: r, dueAt });
    if (this.closed || this.pending.size >= this.maxPending) void this.flush();
    else this.schedule();
  }

  private keep(p: Pending): void {
    const k = key(p.renewal.leaseId, p.renewal.instanceId);
    const prev = this.pending.get(k);
    // The earlier due time of the two: the stored rows are at least as old as the older read says.
    const entry = prev ? { renewal: prev.renewal.at <= p.renewal.at ? p.renewal : prev.renewal, dueAt: Math.min(prev.dueAt, p.dueAt) } : p;
    this.pending.set(k, entry);
    if (entry.dueAt < this.earliestDue) this.earliestDue = entry.dueAt;
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flushDue(this.now());
    }, this.opts.intervalMs).unref();
  }

  /** Writes everything pending now (close calls it last; tests). */
  flush(): Promise<void> {
    return this.write(() => true);
  }

  /**
   * Writes the renewals due within two intervals of `now` (the timer's work; the reclaimer calls it before a sweep
   * with its clock). The others stay: their stored rows outlive their holders' next heartbeats.
   */
  flushDue(now: number): Promise<void> {
    const horizon = now + 2 * this.opts.intervalMs;
    if (this.earliestDue > horizon) {
      if (this.pending.size && !this.closed) this.schedule();
      return this.writing;
    }
    return this.write((p) => p.dueAt <= horizon);
  }

  private write(take: (p: Pending) => boolean): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.writing = this.writing.then(async () => {
      const batch: Renewal[] = [];
      let earliest = Infinity;
      for (const [k, p] of this.pending) {
        if (take(p)) {
          batch.push(p.renewal);
          this.pending.delete(k);
        } else if (p.dueAt < earliest) earliest = p.dueAt;
      }
      this.earliestDue = earliest;
      if (batch.length) {
        try {
          const retry = await this.store.renew(batch);
          this.written += batch.length - retry.length;
          for (const r of retry) this.keep({ renewal: r, dueAt: -Infinity });
        } catch (err) {
          // Keep what was not written for the next attempt, due at once (newer renewals of the same use win).
          const rest = unwrittenRenewals(err, batch);
          this.written += batch.length - rest.length;
          for (const r of rest) this.keep({ renewal: r, dueAt: -Infinity });
          this.opts.onError?.(err);
        }
      }
      if (this.pending.size && !this.closed) this.schedule();
    });
    return this.writing;
  }

  /**
   * Writes the renewals already due by the service's clock (the timer counts real time; a clock that jumps, as in
   * tests, or a timer late under load must not let a decision read a row its renewal should have moved).
   * Called before decisions that read expiries; costs a comparison when nothing is due.
   */
  settle(now: number): Promise<void> | undefined {
    return this.pending.size && now >= this.earliestDue ? this.flushDue(now) : undefined;
  }

  /**
   * A lease as this node knows it: the stored one with the times of its uses' renewals kept here (the admin
   * views; another node's unwritten renewals are not seen, docs/operations.md).
   */
  overlay<L extends LeaseView>(lease: L): L {
    if (this.pending.size === 0) return lease;
    let expiresAt = lease.expiresAt;
    let accessed = lease.device.lastAccessedAt;
    let changed = false;
    const instances = lease.instances.map((i) => {
      const p = this.pending.get(key(lease.id, i.instanceId));
      if (!p || p.renewal.at <= i.lastHeartbeatAt) return i;
      changed = true;
      const r = p.renewal;
      if (r.expiresAt !== null && expiresAt !== null && r.expiresAt > expiresAt) expiresAt = r.expiresAt;
      if (r.deviceId === lease.device.id && r.at > accessed) accessed = r.at;
      return {
        ...i,
        lastHeartbeatAt: r.at,
        expiresAt: i.expiresAt === null || r.expiresAt === null ? r.expiresAt : Math.max(i.expiresAt, r.expiresAt),
      };
    });
    if (!changed) return lease;
    return { ...lease, expiresAt, instances, device: { ...lease.device, lastAccessedAt: accessed } };
  }

  /** A license's devices with their last access as this node knows it. */
  overlayDevices<D extends DeviceView>(devices: D[]): D[] {
    if (this.pending.size === 0) return devices;
    const latest = new Map<string, number>();
    for (const { renewal: r } of this.pending.values()) if (r.at > (latest.get(r.deviceId) ?? -Infinity)) latest.set(r.deviceId, r.at);
    return devices.map((d) => {
      const at = latest.get(d.id);
      return at !== undefined && at > d.lastAccessedAt ? { ...d, lastAccessedAt: at } : d;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}

function key(leaseId: string, instanceId: string): string {
  return leaseId + '\u0000' + instanceId;
}
