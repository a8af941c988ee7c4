/**
 * Seat counters are a cache; the lease rows are the truth.
 *
 * `licenses.seats_used` / `seats_offline` let a decision read a license's level
 * in one row, but a counter is easy to edit by hand (on-premise the database is
 * the customer's) and a bug could make it drift. So every seat-changing
 * transaction, right after it locks the license, counts the lease rows it holds
 * (one index range scan) and decides on that count. A counter that disagrees is
 * repaired in the same transaction, audited (`seats.repaired`), logged and
 * counted in `floatd_seat_counter_repairs_total`. Where the rows hold more seats
 * than the license allows (rows inserted by hand, or seats lowered), nothing is
 * taken away from the holders, but no seat is granted until the level is below
 * the limit again: the domain sees the real level.
 *
 * A store that owns its data (SQLite: one node, one connection) knows when nobody else
 * has written since it last counted a license equal (`StoreTx.countersTrusted`: SQLite's
 * `PRAGMA data_version` moves on any other connection's commit, another process's
 * included), and the count is then skipped: it cost a scan of every lease row of the
 * license in every checkout, check-in and locked heartbeat (O(seats held)). Each license
 * is still counted again every `RECOUNT_EVERY` uses, so a drift by a bug of floatd's own
 * cannot outlive a few hundred transactions. PostgreSQL's turns of one license's transactions read the count once
 * for the turn and follow it through the turn's own writes (`store/postgres/turnView.ts`).
 */
import type { Effect } from '../domain/effects.js';
import type { License } from '../domain/types.js';
import type { StoreTx } from '../store/port.js';

/** What a repair changed, for the log and the audit entry. */
export interface SeatRepair {
  licenseId: string;
  stored: { used: number; offline: number };
  counted: { used: number; offline: number };
}

/** The pure part: the license at its counted level and the effects that repair the stored counters. */
export function reconcileSeats(
  license: License,
  counted: { used: number; offline: number },
  now: number,
  actor: string,
): { license: License; effects: Effect[]; repair: SeatRepair | undefined } {
  if (license.seatsUsed === counted.used && license.seatsOffline === counted.offline) return { license, effects: [], repair: undefined };
  const repair: SeatRepair = { licenseId: license.id, stored: { used: license.seatsUsed, offline: license.seatsOffline }, counted };
  return {
    license: { ...license, seatsUsed: counted.used, seatsOffline: counted.offline },
    repair,
    effects: [
      { type: 'seats.set', licenseId: license.id, used: counted.used, offline: counted.offline },
      {
        type: 'audit',
        entry: {
          at: now,
          type: 'seats.repaired',
          actor,
          licenseId: license.id,
          deviceId: null,
          leaseId: null,
          reason: 'counter-mismatch',
          data: { stored: repair.stored, counted },
        },
      },
    ],
  };
}

/** Where a repair is counted and logged (the server's `Metrics`). */
export interface RepairSink {
  seatCounterRepaired(repair: SeatRepair): void;
}

/**
 * Checks a license just locked in `tx` against its lease rows, repairs the
 * counters if they disagree, and returns the license at its real level.
 */
export async function countedLicense(
  tx: StoreTx,
  license: License | undefined,
  now: number,
  metrics: RepairSink,
  actor = 'server',
): Promise<License | undefined> {
  if (!license) return license;
  if (tx.countersTrusted?.(license.id)) return license;
  const r = reconcileSeats(license, await tx.leaseCounts(license.id), now, actor);
  if (!r.repair) {
    tx.countersVerified?.(license.id);
    return license;
  }
  await tx.apply(r.effects);
  metrics.seatCounterRepaired(r.repair);
  return r.license;
}
