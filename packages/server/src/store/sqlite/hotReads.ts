/**
 * The heartbeat's read (`SqliteStore.leaseOfKey`) kept in memory (issue #17). One process owns an SQLite file, so
 * the rows a heartbeat reads — the license by key, the lease with its instances and device — change only by this
 * process's own writes, which the store reports here as they are applied, or by another connection's commit (an
 * on-premise customer's `sqlite3`, a second process), which moves `PRAGMA data_version` and empties the whole cache
 * before the next read is answered from it.
 *
 * The rules, each what keeps an answer from memory equal to the one SQL would give:
 * - filled only outside a transaction (a read inside an open group may see writes that are then rolled back);
 * - an effect on a license, lease, instance or device drops what it touches when it is applied (so a read during the
 *   group goes to SQL, and the entry is filled again from committed rows after the commit);
 * - a batched renewal is applied to the cached rows exactly as its UPDATE statements apply it to the stored ones
 *   (otherwise every renewal would drop its entry, and a lease heartbeating once a minute would never be found);
 * - a license with waiters in its queue is not cached (its `waiting` count depends on the time of the read);
 * - anything written outside the effects (a license deleted with its rows, waiters dropped by sequence number)
 *   empties the cache.
 * Bounded: at most `MAX_LEASES` lease entries; the oldest is dropped first.
 */

type Row = Record<string, unknown>;

/** An instance as `leaseWithDevice` returns it: [instance_id, started_at, last_heartbeat_at, expires_at, device_id, meta, features, session_key]. */
export type InstanceTuple = [string, number, number, number | null, string, string | null, string | null, string | null];

export interface HotLease {
  /** `leaseWithDevice`'s row (the lease's columns and its device's `d_*` columns) */
  row: Row;
  instances: InstanceTuple[];
}

export const MAX_LEASES = 100_000;

const later = (a: unknown, b: number) => Math.max(Number(a), b);
/** The renewal's expiry rule, as the UPDATE writes it: NULL on either side takes the new value, else the later one. */
const laterExpiry = (stored: unknown, given: number | null) =>
  given === null || stored === null ? given : Math.max(Number(stored), given);

export class HotReads {
  /** license rows by key */
  private readonly licenses = new Map<string, Row>();
  private readonly keyOfLicense = new Map<string, string>();
  /** lease id → instance id asked → entry (the device read depends on the instance) */
  private readonly leases = new Map<string, Map<string, HotLease>>();
  private readonly leasesOfDevice = new Map<string, Set<string>>();
  private leaseEntries = 0;
  /** reads answered from memory, and from SQL (for tests and the bench) */
  hits = 0;
  misses = 0;

  license(key: string): Row | undefined {
    return this.licenses.get(key);
  }

  keepLicense(key: string, row: Row): void {
    this.licenses.set(key, row);
    this.keyOfLicense.set(String(row.id), key);
  }

  lease(leaseId: string, instanceId: string): HotLease | undefined {
    return this.leases.get(leaseId)?.get(instanceId);
  }

  keepLease(leaseId: string, instanceId: string, entry: HotLease): void {
    if (this.leaseEntries >= MAX_LEASES) {
      const oldest = this.leases.keys().next().value;
      if (oldest !== undefined) this.dropLease(oldest);
    }
    let byInstance = this.leases.get(leaseId);
    if (!byInstance) this.leases.set(leaseId, (byInstance = new Map()));
    if (!byInstance.has(instanceId)) this.leaseEntries++;
    byInstance.set(instanceId, entry);
    const deviceId = entry.row.d_id;
    if (typeof deviceId === 'string') {
      let set = this.leasesOfDevice.get(deviceId);
      if (!set) this.leasesOfDevice.set(deviceId, (set = new Set()));
      set.add(leaseId);
    }
  }

  dropLicense(licenseId: string): void {
    const key = this.keyOfLicense.get(licenseId);
    if (key === undefined) return;
    this.keyOfLicense.delete(licenseId);
    this.licenses.delete(key);
  }

  dropLease(leaseId: string): void {
    const byInstance = this.leases.get(leaseId);
    if (!byInstance) return;
    this.leases.delete(leaseId);
    this.leaseEntries -= byInstance.size;
    for (const e of byInstance.values()) {
      const set = this.leasesOfDevice.get(e.row.d_id as string);
      if (set) {
        set.delete(leaseId);
        if (set.size === 0) this.leasesOfDevice.delete(e.row.d_id as string);
      }
    }
  }

  dropDevice(deviceId: string): void {
    const set = this.leasesOfDevice.get(deviceId);
    if (!set) return;
    for (const leaseId of [...set]) this.dropLease(leaseId);
  }

  clear(): void {
    this.licenses.clear();
    this.keyOfLicense.clear();
    this.leases.clear();
    this.leasesOfDevice.clear();
    this.leaseEntries = 0;
  }

  get size(): { licenses: number; leases: number } {
    return { licenses: this.licenses.size, leases: this.leaseEntries };
  }

  /**
   * A batched renewal written to the file (`renewLease`, then `renewInstance` if the lease row changed, and
   * `renewDevice`), applied to the cached rows the same way. `leaseChanged`: whether the lease UPDATE changed a row.
   */
  renewed(r: { leaseId: string; instanceId: string; deviceId: string; at: number; expiresAt: number | null }, leaseChanged: boolean): void {
    if (leaseChanged)
      for (const e of this.leases.get(r.leaseId)?.values() ?? []) {
        e.row.last_heartbeat_at = later(e.row.last_heartbeat_at, r.at);
        e.row.expires_at = laterExpiry(e.row.expires_at, r.expiresAt);
        for (const i of e.instances)
          if (i[0] === r.instanceId) {
            i[2] = later(i[2], r.at);
            i[3] = laterExpiry(i[3], r.expiresAt);
          }
      }
    for (const leaseId of this.leasesOfDevice.get(r.deviceId) ?? [])
      for (const e of this.leases.get(leaseId)?.values() ?? [])
        if (e.row.d_id === r.deviceId) e.row.d_last_accessed_at = later(e.row.d_last_accessed_at, r.at);
  }
}
