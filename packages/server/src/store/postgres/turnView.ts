/**
 * What one turn of a license's group commit (store/groupCommit.ts) reads once for all its units, kept exact across
 * their writes (issue #17).
 *
 * A turn runs its units one after another under the license's lock. Each unit used to make one round trip of its
 * own: lock and reads, then its decision, then its writes went out with the next unit's reads. So a turn of n units
 * waited n times for the database, and the node and the database took turns at working (with the database a network
 * away, each unit cost a whole round trip under the lock).
 *
 * Here the turn reads, in one round trip behind its lock, what each unit named up front (`ReadAhead`) and the license
 * row, its lease tally and its queue. A unit then reads these from the view, without a round trip, as long as they are
 * what a read would give at that moment: every write of the units before it in the turn is projected here
 * (`written`). The view knows exactly how a few effects change what it holds; any other effect gives up the
 * license's part of the view (`exact` false), and the units after it read as before. A unit's own reads are given up
 * where an earlier unit's writes touched the same device, fingerprint or lease.
 *
 * The seat counters and the tally move by the same `seats` deltas: the domain writes a lease row and its `seats`
 * effect together, and the database refuses a `seats` effect past the limit (the guarded UPDATE), which fails the
 * unit and runs the turn again without it, reading everything anew. A counter repair (`seats.set`) sets the counters
 * to the lease rows' count that the unit read. A lease row written past floatd (by hand) is seen by the next turn's
 * reads, as before.
 */
import type { Effect } from '../../domain/effects.js';

type Row = Record<string, unknown>;

/** A checkout's reads for one fingerprint: the device, its leases (locked), the seats its uses are on, their instances. */
export interface DeviceReads {
  row: Row | undefined;
  own: readonly Row[];
  onSeats: readonly Row[];
  instances: readonly Row[];
}

/** A check-in's (or a locked renewal's) reads for one lease: its row, its instances, their devices. */
export interface LeaseReads {
  rows: readonly Row[];
  instances: readonly Row[];
  devices: readonly Row[];
}

export class TurnView {
  /** whether `license`, `counts` and `waiters` are still what a read would give */
  exact = true;
  private readonly fingerprints = new Set<string>();
  private readonly deviceIds = new Set<string>();
  private readonly leaseIds = new Set<string>();

  constructor(
    /** the license key the turn locked */
    readonly key: string,
    /** the license row (undefined: no such license) */
    readonly license: Row | undefined,
    /** the lease tally (or count) of the license's lease rows */
    readonly counts: { used: number; offline: number },
    readonly waiters: readonly Row[],
    private readonly devices: Map<string, DeviceReads>,
    private readonly leases: Map<string, LeaseReads>,
  ) {}

  /**
   * The reads of the device of `fingerprint`, once, if no earlier write of the turn touched that fingerprint, the
   * device, or any lease they name; else undefined (the unit reads them itself).
   */
  device(fingerprint: string): DeviceReads | undefined {
    const read = this.devices.get(fingerprint);
    this.devices.delete(fingerprint);
    if (!read || this.fingerprints.has(fingerprint)) return undefined;
    if (read.row && this.deviceIds.has(String(read.row.id))) return undefined;
    if (read.own.some((row) => this.leaseIds.has(String(row.id)))) return undefined;
    if (read.onSeats.some((row) => this.leaseIds.has(String(row.lease_id)))) return undefined;
    return read;
  }

  /** The reads of lease `id`, once, if no earlier write of the turn touched it or its devices; else undefined. */
  lease(id: string): LeaseReads | undefined {
    const read = this.leases.get(id);
    this.leases.delete(id);
    if (!read || this.leaseIds.has(id)) return undefined;
    if (read.devices.some((row) => this.deviceIds.has(String(row.id)))) return undefined;
    return read;
  }

  /** A unit's session key written on its use's row. */
  keyed(leaseId: string): void {
    this.leaseIds.add(leaseId);
  }

  /** Projects a unit's writes (issued in this order on the turn's connection). */
  written(effects: readonly Effect[]): void {
    for (const e of effects) {
      switch (e.type) {
        case 'device.upsert':
          this.fingerprints.add(e.device.fingerprint);
          this.deviceIds.add(e.device.id);
          break;
        case 'lease.insert':
        case 'lease.update':
          this.leaseIds.add(e.lease.id);
          this.deviceIds.add(e.lease.deviceId);
          for (const i of e.lease.instances) this.deviceIds.add(i.deviceId);
          break;
        case 'lease.delete':
          this.leaseIds.add(e.leaseId);
          break;
        case 'lease.renew':
          this.leaseIds.add(e.renewal.leaseId);
          break;
        case 'instance.put':
          this.leaseIds.add(e.leaseId);
          this.deviceIds.add(e.instance.deviceId);
          break;
        case 'instance.delete':
          this.leaseIds.add(e.leaseId);
          break;
        case 'seats':
          if (!this.license || String(this.license.id) !== e.licenseId) {
            this.exact = false;
            break;
          }
          this.license.seats_used = Number(this.license.seats_used) + e.used;
          this.license.seats_offline = Number(this.license.seats_offline) + e.offline;
          this.counts.used += e.used;
          this.counts.offline += e.offline;
          break;
        case 'seats.set':
          if (!this.license || String(this.license.id) !== e.licenseId) {
            this.exact = false;
            break;
          }
          this.license.seats_used = e.used;
          this.license.seats_offline = e.offline;
          break;
        // Rows the view does not hold.
        case 'audit':
        case 'audit.aggregate':
        case 'usage':
        case 'usage.feature':
        case 'usage.queue':
        case 'webhook.event':
          break;
        default:
          this.exact = false;
      }
    }
  }
}
