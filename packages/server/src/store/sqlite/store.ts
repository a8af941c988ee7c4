/**
 * SQLite adapter of the Store port (embedded default), on better-sqlite3.
 *
 * Concurrency: one connection per process; `transaction` serialises seat
 * transactions through a queue (run in groups sharing one commit, see
 * `transaction`) and opens each group with `BEGIN IMMEDIATE`,
 * which takes SQLite's write lock up front, so the state a decision reads
 * cannot change before its effects are written — also against a second
 * process on the same file (it waits up to `busy_timeout`). WAL mode lets
 * readers run beside the writer.
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { SeatGuardError, type Effect, type Renewal } from '../../domain/effects.js';
import type { Lease, Product, License } from '../../domain/types.js';
import { countingOf } from '../../domain/sharing.js';
import {
  instanceParams,
  num,
  numOrNull,
  strOrNull,
  toAdminToken,
  toAudit,
  toDevice,
  toInstance,
  toLease,
  toLicense,
  toProduct,
  toUsage,
} from '../rows.js';
import type { AuditFilter, DeviceView, KvRecord, LeaseView, PageOf, PageRequest, Store, StoredAudit, StoreTx, UsageRow } from '../port.js';
import { decodeCursor, encodeCursor, fillHours, hourOf, HOUR_MS } from '../common.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { ChangeFeed } from '../changes.js';

type Row = Record<string, unknown>;

interface Waiting {
  fn: (tx: StoreTx) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** At most this many transactions share one commit (bounds the latency of the last one in a group). */
const MAX_GROUP = 256;

export interface SqliteOptions {
  /** file path, or ':memory:' */
  path: string;
  /**
   * PRAGMA synchronous. FULL (default): in WAL mode every COMMIT syncs the WAL before it returns, and nobody is
   * answered before the COMMIT, so an answered write survives a power cut. NORMAL: the WAL is synced only at
   * checkpoints; a process crash loses nothing, a power cut may roll back the last answered commits.
   */
  synchronous?: 'NORMAL' | 'FULL';
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly changes = new ChangeFeed();
  private readonly s;
  private readonly tx: StoreTx;

  constructor(opts: SqliteOptions) {
    // The database holds license keys: create it private. SQLite gives its -wal and -shm files the same mode.
    if (opts.path !== ':memory:' && !existsSync(opts.path)) closeSync(openSync(opts.path, 'a', 0o600));
    this.db = new Database(opts.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    this.db.pragma('busy_timeout = 5000');
    // A bigger page cache (64 MiB): with a million leases the indexes no longer fit the 2 MiB default.
    this.db.pragma('cache_size = -65536');
    this.db.pragma('foreign_keys = ON');
    migrate(this.db);
    const p = (sql: string) => this.db.prepare(sql);
    this.s = {
      licenseByKey: p('SELECT * FROM licenses WHERE key = ?'),
      licenseById: p('SELECT * FROM licenses WHERE id = ?'),
      device: p('SELECT * FROM devices WHERE license_id = ? AND fingerprint = ?'),
      deviceById: p('SELECT * FROM devices WHERE id = ?'),
      // The seats a device took, and the shared seats its uses are on.
      leasesOfDevice: p(`SELECT * FROM leases WHERE device_id = @d
          UNION SELECT l.* FROM instances i JOIN leases l ON l.id = i.lease_id WHERE i.device_id = @d ORDER BY granted_at`),
      leasesOfShareGroup: p('SELECT * FROM leases WHERE license_id = ? AND share_group = ? ORDER BY granted_at'),
      leasesOfLicense: p('SELECT * FROM leases WHERE license_id = ? ORDER BY granted_at'),
      lease: p('SELECT * FROM leases WHERE id = ?'),
      // The device is the use's (on a shared seat, not always the lease's).
      leaseWithDevice: p(`SELECT l.*, d.id AS d_id, d.fingerprint AS d_fingerprint, d.hostname AS d_hostname, d.user_name AS d_user_name,
          d.app_version AS d_app_version, d.first_seen_at AS d_first_seen_at, d.last_accessed_at AS d_last_accessed_at,
          d.machines_seen AS d_machines_seen, d.clone_suspected_at AS d_clone_suspected_at,
          (SELECT json_group_array(json_array(i.instance_id, i.started_at, i.last_heartbeat_at, i.expires_at, i.device_id, i.meta))
             FROM (SELECT * FROM instances WHERE lease_id = l.id ORDER BY started_at) i) AS instances
        FROM leases l LEFT JOIN devices d ON d.id = COALESCE(
          (SELECT device_id FROM instances WHERE lease_id = l.id AND instance_id = @instanceId), l.device_id)
        WHERE l.id = @leaseId AND l.license_id = @licenseId`),
      instancesOf: p('SELECT * FROM instances WHERE lease_id = ? ORDER BY started_at'),
      instancesOfMany: p('SELECT * FROM instances WHERE lease_id IN (SELECT value FROM json_each(?)) ORDER BY started_at'),
      deadLeases: p('SELECT * FROM leases WHERE license_id = ? AND expires_at <= ? ORDER BY expires_at LIMIT ?'),
      earliestExpiry: p('SELECT MIN(expires_at) AS e FROM leases WHERE license_id = ? AND expires_at > ?'),
      leaseCounts: p('SELECT COUNT(*) AS used, COALESCE(SUM(offline), 0) AS offline FROM leases WHERE license_id = ?'),
      seatsSet: p('UPDATE licenses SET seats_used = @used, seats_offline = @offline WHERE id = @id'),
      expiryStats: p(`SELECT COUNT(*) FILTER (WHERE expires_at <= ?) AS dead, MIN(expires_at) FILTER (WHERE expires_at > ?) AS earliest
        FROM leases WHERE license_id = ? AND expires_at IS NOT NULL`),
      sweepCandidates: p(`SELECT * FROM leases WHERE id IN (
          SELECT id FROM leases WHERE license_id = ? AND expires_at <= ?
          UNION SELECT i.lease_id FROM instances i JOIN leases l ON l.id = i.lease_id WHERE l.license_id = ? AND i.expires_at <= ?
        ) LIMIT ?`),
      licensesToSweep: p(`SELECT license_id FROM leases WHERE expires_at <= ?
          UNION SELECT l.license_id FROM instances i JOIN leases l ON l.id = i.lease_id WHERE i.expires_at <= ?`),
      licenseCountOfProduct: p('SELECT COUNT(*) AS n FROM licenses WHERE product_id = ?'),
      product: p('SELECT * FROM products WHERE id = ?'),
      // writes
      insertProduct: p(
        'INSERT INTO products (id, name, metadata, created_at, updated_at) VALUES (@id, @name, @metadata, @createdAt, @updatedAt)',
      ),
      updateProduct: p('UPDATE products SET name = @name, metadata = @metadata, updated_at = @updatedAt WHERE id = @id'),
      deleteProduct: p('DELETE FROM products WHERE id = ?'),
      insertLicense:
        p(`INSERT INTO licenses (id, product_id, key, seats, model, expires_at, trial_days, trial_started_at, lease_ttl_seconds,
          heartbeat_interval_seconds, max_offline_seconds, max_offline_seats, max_instances_per_device, counting, sharing,
          clone_policy, vm_policy, linger_seconds, overdraft_seats, access, suspended, metadata, seats_used, seats_offline, created_at, updated_at)
        VALUES (@id, @productId, @key, @seats, @model, @expiresAt, @trialDays, @trialStartedAt, @leaseTtlSeconds,
          @heartbeatIntervalSeconds, @maxOfflineSeconds, @maxOfflineSeats, @maxInstancesPerDevice, @counting, @sharing,
          @clonePolicy, @vmPolicy, @lingerSeconds, @overdraftSeats, @access, @suspended, @metadata, 0, 0, @createdAt, @updatedAt)`),
      // Policy fields only: the seat counters are never written from a decision's copy, only by the guarded `seats` effect.
      updateLicense: p(`UPDATE licenses SET seats = @seats, model = @model, expires_at = @expiresAt, trial_days = @trialDays,
          trial_started_at = @trialStartedAt, lease_ttl_seconds = @leaseTtlSeconds, heartbeat_interval_seconds = @heartbeatIntervalSeconds,
          max_offline_seconds = @maxOfflineSeconds, max_offline_seats = @maxOfflineSeats, max_instances_per_device = @maxInstancesPerDevice,
          counting = @counting, sharing = @sharing, clone_policy = @clonePolicy, vm_policy = @vmPolicy,
          linger_seconds = @lingerSeconds, overdraft_seats = @overdraftSeats, access = @access, suspended = @suspended, metadata = @metadata, updated_at = @updatedAt WHERE id = @id`),
      trialStarted: p('UPDATE licenses SET trial_started_at = ? WHERE id = ? AND trial_started_at IS NULL'),
      deleteLicense: [
        p('DELETE FROM instances WHERE lease_id IN (SELECT id FROM leases WHERE license_id = ?)'),
        p('DELETE FROM leases WHERE license_id = ?'),
        p('DELETE FROM devices WHERE license_id = ?'),
        p('DELETE FROM usage_hourly WHERE license_id = ?'),
        p('DELETE FROM licenses WHERE id = ?'),
      ],
      // The guard: never above the seat count and its overdraft (or the offline cap), never below zero, whatever the decision said.
      seats: p(`UPDATE licenses SET seats_used = seats_used + @used, seats_offline = seats_offline + @offline
        WHERE id = @id
          AND seats_used + @used >= 0 AND seats_offline + @offline >= 0
          AND (@used <= 0 OR seats_used + @used <= seats + overdraft_seats)
          AND (@offline <= 0 OR seats_offline + @offline <= MIN(seats, COALESCE(max_offline_seats, seats)))`),
      upsertDevice: p(`INSERT INTO devices (id, license_id, fingerprint, hostname, user_name, app_version, first_seen_at, last_accessed_at,
          machines_seen, clone_suspected_at)
        VALUES (@id, @licenseId, @fingerprint, @hostname, @user, @appVersion, @firstSeenAt, @lastAccessedAt, @machinesSeen, @cloneSuspectedAt)
        ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, user_name = excluded.user_name,
          app_version = excluded.app_version, last_accessed_at = excluded.last_accessed_at,
          machines_seen = excluded.machines_seen, clone_suspected_at = excluded.clone_suspected_at`),
      insertLease:
        p(`INSERT INTO leases (id, license_id, device_id, share_group, overdraft, offline, granted_at, last_heartbeat_at, expires_at,
          offline_expires_at)
        VALUES (@id, @licenseId, @deviceId, @shareGroup, @overdraft, @offline, @grantedAt, @lastHeartbeatAt, @expiresAt, @offlineExpiresAt)`),
      updateLease: p(`UPDATE leases SET offline = @offline, last_heartbeat_at = @lastHeartbeatAt, expires_at = @expiresAt,
        offline_expires_at = @offlineExpiresAt, linger_until = @lingerUntil WHERE id = @id`),
      deleteLease: [p('DELETE FROM instances WHERE lease_id = ?'), p('DELETE FROM leases WHERE id = ?')],
      // bulk forms, the ids or entries as one JSON array
      deleteLeases: [
        p('DELETE FROM instances WHERE lease_id IN (SELECT value FROM json_each(?))'),
        p('DELETE FROM leases WHERE id IN (SELECT value FROM json_each(?))'),
      ],
      auditMany: p(`INSERT INTO audit (at, type, actor, license_id, device_id, lease_id, reason, data)
        SELECT value ->> 'at', value ->> 'type', value ->> 'actor', value ->> 'licenseId', value ->> 'deviceId', value ->> 'leaseId',
          value ->> 'reason', value ->> 'data'
        FROM json_each(?) ORDER BY key`),
      putInstance: p(`INSERT INTO instances (lease_id, instance_id, started_at, last_heartbeat_at, expires_at, device_id, meta)
        VALUES (@leaseId, @instanceId, @startedAt, @lastHeartbeatAt, @expiresAt, @deviceId, @meta)
        ON CONFLICT (lease_id, instance_id) DO UPDATE SET last_heartbeat_at = excluded.last_heartbeat_at, expires_at = excluded.expires_at`),
      deleteInstance: p('DELETE FROM instances WHERE lease_id = ? AND instance_id = ?'),
      // Renewals: monotonic and update-only (see domain/effects.ts `Renewal`).
      renewLease: p(`UPDATE leases SET last_heartbeat_at = MAX(last_heartbeat_at, @at),
          expires_at = CASE WHEN @expiresAt IS NULL OR expires_at IS NULL THEN @expiresAt ELSE MAX(expires_at, @expiresAt) END
        WHERE id = @leaseId AND offline = 0`),
      renewInstance: p(`UPDATE instances SET last_heartbeat_at = MAX(last_heartbeat_at, @at),
          expires_at = CASE WHEN @expiresAt IS NULL OR expires_at IS NULL THEN @expiresAt ELSE MAX(expires_at, @expiresAt) END
        WHERE lease_id = @leaseId AND instance_id = @instanceId`),
      renewDevice: p('UPDATE devices SET last_accessed_at = MAX(last_accessed_at, @at) WHERE id = @deviceId'),
      audit: p(`INSERT INTO audit (at, type, actor, license_id, device_id, lease_id, reason, data)
        VALUES (@at, @type, @actor, @licenseId, @deviceId, @leaseId, @reason, @data)`),
      // Aggregated audit entries (effects.ts `audit.aggregate`): add to the key's entry, or insert it (under the window's cap).
      auditAggBump: p('UPDATE audit SET count = count + 1, last_at = MAX(COALESCE(last_at, at), @at) WHERE agg_key = @key'),
      auditAggCount: p('SELECT COUNT(*) AS n FROM audit WHERE agg_window = ?'),
      auditAggInsert:
        p(`INSERT INTO audit (at, type, actor, license_id, device_id, lease_id, reason, data, agg_key, agg_window, count, last_at)
        VALUES (@at, @type, @actor, @licenseId, @deviceId, @leaseId, @reason, @data, @key, @window, 1, @at)
        ON CONFLICT (agg_key) WHERE agg_key IS NOT NULL DO UPDATE SET count = count + 1, last_at = MAX(last_at, excluded.last_at)`),
      // Retention (jobs/retention.ts): one small batch per call, oldest first.
      pruneAudit: p(`DELETE FROM audit WHERE id IN (
        SELECT id FROM audit WHERE at < @before AND COALESCE(last_at, at) < @before ORDER BY at LIMIT @limit)`),
      pruneUsage: p(`DELETE FROM usage_hourly WHERE (license_id, hour) IN (
        SELECT license_id, hour FROM usage_hourly WHERE hour <= @lastHour ORDER BY hour LIMIT @limit)`),
      usage: p(`INSERT INTO usage_hourly (license_id, hour, peak_seats, seats_at_end, checkouts, denials, peak_overdraft,
          overdraft_at_end, overdraft_checkouts)
        VALUES (@licenseId, @hour, @peak, @seatsUsed, @checkouts, @denials, @peakOverdraft, @overdraftAtEnd, @overdraftCheckouts)
        ON CONFLICT (license_id, hour) DO UPDATE SET peak_seats = MAX(peak_seats, excluded.peak_seats),
          seats_at_end = excluded.seats_at_end, checkouts = checkouts + excluded.checkouts, denials = denials + excluded.denials,
          peak_overdraft = MAX(peak_overdraft, excluded.peak_overdraft), overdraft_at_end = excluded.overdraft_at_end,
          overdraft_checkouts = overdraft_checkouts + excluded.overdraft_checkouts`),
      // reads outside transactions
      listProducts: p('SELECT seq, * FROM products WHERE seq > ? ORDER BY seq LIMIT ?'),
      listLicenses: p('SELECT seq, * FROM licenses WHERE seq > ? ORDER BY seq LIMIT ?'),
      listLicensesOfProduct: p('SELECT seq, * FROM licenses WHERE product_id = ? AND seq > ? ORDER BY seq LIMIT ?'),
      // Seats the device took; its uses wherever they run (on a shared seat, maybe another device's).
      devicesOfLicense: p(`SELECT d.*, COUNT(l.id) AS seats_held, MAX(l.offline_expires_at) AS offline_expires_at,
          (SELECT COUNT(*) FROM instances i WHERE i.device_id = d.id) AS instance_count
        FROM devices d LEFT JOIN leases l ON l.device_id = d.id
        WHERE d.license_id = ? GROUP BY d.id ORDER BY d.last_accessed_at DESC`),
      usage_range: p('SELECT * FROM usage_hourly WHERE license_id = ? AND hour >= ? AND hour < ? ORDER BY hour'),
      usage_before: p('SELECT seats_at_end FROM usage_hourly WHERE license_id = ? AND hour < ? ORDER BY hour DESC LIMIT 1'),
      seatTotals: p(
        'SELECT COALESCE(SUM(seats_used), 0) AS used, COALESCE(SUM(seats_offline), 0) AS offline, (SELECT COUNT(*) FROM leases) AS leases FROM licenses',
      ),
      insertAdminToken: p(`INSERT INTO admin_tokens (id, name, role, token_hash, created_at, last_used_at, revoked_at)
        VALUES (@id, @name, @role, @tokenHash, @createdAt, @lastUsedAt, @revokedAt)`),
      adminTokenById: p('SELECT * FROM admin_tokens WHERE id = ?'),
      countAdminTokens: p('SELECT COUNT(*) AS n FROM admin_tokens WHERE revoked_at IS NULL'),
      activeAdminCount: p("SELECT COUNT(*) AS n FROM admin_tokens WHERE revoked_at IS NULL AND role = 'admin'"),
      listAdminTokens: p('SELECT * FROM admin_tokens ORDER BY created_at, id'),
      revokeAdminToken: p('UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      touchAdminToken: p('UPDATE admin_tokens SET last_used_at = ? WHERE id = ?'),
      denialsSince: p('SELECT license_id, SUM(denials) AS n FROM usage_hourly WHERE hour >= ? GROUP BY license_id'),
      ping: p('SELECT 1'),
      kvGet: p('SELECT * FROM kv WHERE name = ?'),
      kvList: p('SELECT * FROM kv WHERE substr(name, 1, length(?)) = ? ORDER BY name'),
      kvDelete: p('DELETE FROM kv WHERE name = ?'),
      kvPut: p(`INSERT INTO kv (name, value, updated_at) VALUES (@name, @value, @at)
        ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`),
    };
    this.tx = this.makeTx();
  }

  private withInstances(row: Row | undefined): Lease | undefined {
    if (!row) return undefined;
    return toLease(row, (this.s.instancesOf.all(row.id) as Row[]).map(toInstance));
  }

  private leases(rows: Row[]): Lease[] {
    if (rows.length < 8) return rows.map((row) => this.withInstances(row)!);
    // Many leases (a reclamation batch): their instances in one query.
    const by = new Map<string, Row[]>();
    for (const i of this.s.instancesOfMany.all(JSON.stringify(rows.map((row) => row.id))) as Row[]) {
      const list = by.get(i.lease_id as string);
      if (list) list.push(i);
      else by.set(i.lease_id as string, [i]);
    }
    return rows.map((row) => toLease(row, (by.get(row.id as string) ?? []).map(toInstance)));
  }

  private makeTx(): StoreTx {
    const s = this.s;
    return {
      lockLicenseByKey: async (key) => {
        const row = s.licenseByKey.get(key) as Row | undefined;
        return row && toLicense(row);
      },
      lockLicense: async (id) => {
        const row = s.licenseById.get(id) as Row | undefined;
        return row && toLicense(row);
      },
      device: async (licenseId, fingerprint) => {
        const row = s.device.get(licenseId, fingerprint) as Row | undefined;
        return row && toDevice(row);
      },
      deviceById: async (id) => {
        const row = s.deviceById.get(id) as Row | undefined;
        return row && toDevice(row);
      },
      leasesOfDevice: async (deviceId) => this.leases(s.leasesOfDevice.all({ d: deviceId }) as Row[]),
      leasesOfShareGroup: async (licenseId, group) => this.leases(s.leasesOfShareGroup.all(licenseId, group) as Row[]),
      lease: async (id) => this.withInstances(s.lease.get(id) as Row | undefined),
      deadLeases: async (licenseId, now, limit) => this.leases(s.deadLeases.all(licenseId, now, limit) as Row[]),
      earliestExpiry: async (licenseId, now) => numOrNull((s.earliestExpiry.get(licenseId, now) as Row).e),
      sweepCandidates: async (licenseId, now, limit) => this.leases(s.sweepCandidates.all(licenseId, now, licenseId, now, limit) as Row[]),
      leasesOfLicense: async (licenseId) => this.leases(s.leasesOfLicense.all(licenseId) as Row[]),
      leaseCounts: async (licenseId) => {
        const row = s.leaseCounts.get(licenseId) as Row;
        return { used: num(row.used), offline: num(row.offline) };
      },
      licenseCountOfProduct: async (productId) => num((s.licenseCountOfProduct.get(productId) as Row).n),
      product: async (id) => {
        const row = s.product.get(id) as Row | undefined;
        return row && toProduct(row);
      },
      adminToken: async (id) => {
        const row = s.adminTokenById.get(id) as Row | undefined;
        return row && toAdminToken(row);
      },
      lockAdminTokens: async () => undefined,
      lockKv: async (name) => kvRecord(s.kvGet.get(name) as Row | undefined),
      activeAdminCount: async () => num((s.activeAdminCount.get() as Row).n),
      apply: async (effects) => {
        for (let i = 0; i < effects.length; ) {
          // Runs of deletes or audit entries (a reclamation batch) are written with one statement each.
          const type = effects[i]!.type;
          let j = i + 1;
          if (type === 'lease.delete' || type === 'audit') while (j < effects.length && effects[j]!.type === type) j++;
          if (j - i > 1) this.applyRun(effects.slice(i, j));
          else this.applyOne(effects[i]!);
          for (let k = i; k < j; k++) this.changes.record(effects[k]!);
          i = j;
        }
      },
    };
  }

  private applyRun(run: Effect[]): void {
    const s = this.s;
    if (run[0]!.type === 'lease.delete') {
      const ids = JSON.stringify(run.map((e) => (e.type === 'lease.delete' ? e.leaseId : '')));
      for (const st of s.deleteLeases) st.run(ids);
    } else {
      s.auditMany.run(JSON.stringify(run.map((e) => (e.type === 'audit' ? { ...e.entry, data: JSON.stringify(e.entry.data) } : null))));
    }
  }

  private applyOne(effect: Effect): void {
    const s = this.s;
    switch (effect.type) {
      case 'product.insert':
      case 'product.update': {
        const p = effect.product;
        (effect.type === 'product.insert' ? s.insertProduct : s.updateProduct).run({ ...p, metadata: JSON.stringify(p.metadata) });
        return;
      }
      case 'product.delete':
        s.deleteProduct.run(effect.productId);
        return;
      case 'license.insert':
      case 'license.update': {
        const l = effect.license;
        (effect.type === 'license.insert' ? s.insertLicense : s.updateLicense).run({
          id: l.id,
          productId: l.productId,
          key: l.key,
          seats: l.seats,
          model: l.model,
          expiresAt: l.expiresAt,
          trialDays: l.trialDays,
          trialStartedAt: l.trialStartedAt,
          leaseTtlSeconds: l.leaseTtlSeconds,
          heartbeatIntervalSeconds: l.heartbeatIntervalSeconds,
          maxOfflineSeconds: l.maxOfflineSeconds,
          maxOfflineSeats: l.maxOfflineSeats,
          maxInstancesPerDevice: l.maxInstancesPerDevice,
          counting: countingOf(l.sharing),
          sharing: JSON.stringify(l.sharing),
          clonePolicy: l.clonePolicy,
          vmPolicy: l.vmPolicy,
          lingerSeconds: l.lingerSeconds,
          overdraftSeats: l.overdraftSeats,
          access: JSON.stringify(l.access),
          suspended: l.suspended ? 1 : 0,
          metadata: JSON.stringify(l.metadata),
          createdAt: l.createdAt,
          updatedAt: l.updatedAt,
        });
        return;
      }
      case 'license.delete':
        for (const st of s.deleteLicense) st.run(effect.licenseId);
        return;
      case 'license.trialStarted':
        s.trialStarted.run(effect.at, effect.licenseId);
        return;
      case 'device.upsert':
        s.upsertDevice.run({ ...effect.device, machinesSeen: JSON.stringify(effect.device.machinesSeen) });
        return;
      case 'lease.insert': {
        const l = effect.lease;
        s.insertLease.run({ ...leaseParams(l), shareGroup: l.shareGroup, overdraft: l.overdraft ? 1 : 0 });
        for (const i of l.instances) s.putInstance.run(instanceParams(l.id, i));
        return;
      }
      case 'lease.update':
        s.updateLease.run(leaseParams(effect.lease));
        return;
      case 'lease.delete':
        for (const st of s.deleteLease) st.run(effect.leaseId);
        return;
      case 'instance.put':
        s.putInstance.run(instanceParams(effect.leaseId, effect.instance));
        return;
      case 'instance.delete':
        s.deleteInstance.run(effect.leaseId, effect.instanceId);
        return;
      case 'lease.renew':
        this.applyRenewal(effect.renewal);
        return;
      case 'seats.set':
        s.seatsSet.run({ id: effect.licenseId, used: effect.used, offline: effect.offline });
        return;
      case 'seats':
        if (s.seats.run({ id: effect.licenseId, used: effect.used, offline: effect.offline }).changes !== 1)
          throw new SeatGuardError(effect.licenseId);
        return;
      case 'adminToken.insert':
        s.insertAdminToken.run(effect.token);
        return;
      case 'adminToken.revoke':
        s.revokeAdminToken.run(effect.at, effect.tokenId);
        return;
      case 'audit':
        s.audit.run({ ...effect.entry, data: JSON.stringify(effect.entry.data) });
        return;
      case 'audit.aggregate': {
        if (s.auditAggBump.run({ key: effect.key, at: effect.entry.at }).changes > 0) return;
        const under = num((s.auditAggCount.get(effect.window) as Row).n) < effect.cap;
        const { key, entry } = under ? effect : effect.overflow;
        s.auditAggInsert.run({ ...entry, data: JSON.stringify(entry.data), key, window: effect.window });
        return;
      }
      case 'kv.put':
        s.kvPut.run({ name: effect.name, value: effect.value, at: effect.at });
        return;
      case 'kv.delete':
        s.kvDelete.run(effect.name);
        return;
      case 'usage':
        s.usage.run({
          licenseId: effect.licenseId,
          hour: hourOf(effect.at),
          peak: effect.peak,
          seatsUsed: effect.seatsUsed,
          checkouts: effect.checkouts,
          denials: effect.denials,
          peakOverdraft: effect.peakOverdraft,
          overdraftAtEnd: effect.overdraftAtEnd,
          overdraftCheckouts: effect.overdraftCheckouts,
        });
        return;
    }
  }

  /**
   * Group commit. Transactions queue up; the queue is drained in groups: one
   * `BEGIN IMMEDIATE … COMMIT` around every transaction that is waiting, each in
   * its own SAVEPOINT (a transaction that throws rolls back to its savepoint and
   * fails alone). Each still runs alone, in order, on the state the ones before it
   * left, so the guarantee in `port.ts` is unchanged; only the cost of BEGIN and
   * COMMIT (the WAL write) is shared. Nobody is answered before the COMMIT: a
   * caller never sees a result that is not yet durable.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ fn, resolve, reject } as Waiting);
      if (!this.draining) {
        this.draining = true;
        // After the current I/O phase: every request that arrived in it joins the group.
        setImmediate(() => void this.drain());
      }
    });
  }

  private waiting: Waiting[] = [];
  private draining = false;

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length) {
        const group = this.waiting.splice(0, MAX_GROUP);
        await this.runGroup(group);
      }
    } finally {
      this.draining = false;
    }
  }

  private async runGroup(group: Waiting[]): Promise<void> {
    const done: [Waiting, unknown][] = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      for (const w of group) w.reject(err);
      return;
    }
    for (const w of group) {
      this.db.exec('SAVEPOINT unit');
      try {
        const value = await w.fn(this.tx);
        this.db.exec('RELEASE unit');
        this.changes.keep();
        done.push([w, value]);
      } catch (err) {
        this.changes.discard();
        if (!this.db.inTransaction) {
          // SQLite rolled the whole transaction back (disk full, I/O error): the group's earlier units are gone too.
          this.changes.discardAll();
          for (const [d] of done) d.reject(err);
          done.length = 0;
          w.reject(err);
          try {
            this.db.exec('BEGIN IMMEDIATE');
          } catch (again) {
            for (const rest of group.slice(group.indexOf(w) + 1)) rest.reject(again);
            return;
          }
          continue;
        }
        this.db.exec('ROLLBACK TO unit');
        this.db.exec('RELEASE unit');
        w.reject(err);
      }
    }
    try {
      this.db.exec('COMMIT');
    } catch (err) {
      this.changes.discardAll();
      // A ROLLBACK after a failed COMMIT (disk full) may fail too: every caller must still hear the first error.
      if (this.db.inTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          /* reported through `err` */
        }
      }
      for (const [w] of done) w.reject(err);
      return;
    }
    this.changes.flush();
    for (const [w, value] of done) w.resolve(value);
  }

  private applyRenewal(renewal: Renewal): void {
    // The lease first: an offline (or deleted) lease's instance keeps its times.
    if (this.s.renewLease.run(renewal).changes === 1) this.s.renewInstance.run(renewal);
    this.s.renewDevice.run(renewal);
  }

  async renew(renewals: readonly Renewal[]): Promise<Renewal[]> {
    // One writer at a time: nothing can hold a lease here, so every renewal applies (or is dropped).
    await this.transaction(async () => {
      for (const renewal of renewals) this.applyRenewal(renewal);
    });
    return [];
  }

  async leaseOfKey(key: string, leaseId: string, instanceId: string) {
    const l = this.s.licenseByKey.get(key) as Row | undefined;
    if (!l) return undefined;
    const license = toLicense(l);
    // The lease, its device and its instances in one statement (each statement on a file costs a read transaction).
    const row = this.s.leaseWithDevice.get({ leaseId, licenseId: license.id, instanceId }) as Row | undefined;
    if (!row) return { license, lease: undefined, device: undefined };
    const instances = (JSON.parse(row.instances as string) as [string, number, number, number | null, string, string | null][]).map(
      ([instance_id, started_at, last_heartbeat_at, expires_at, device_id, meta]) =>
        toInstance({ instance_id, started_at, last_heartbeat_at, expires_at, device_id, meta }),
    );
    const device = {
      id: String(row.d_id),
      licenseId: license.id,
      fingerprint: String(row.d_fingerprint),
      hostname: strOrNull(row.d_hostname),
      user: strOrNull(row.d_user_name),
      appVersion: strOrNull(row.d_app_version),
      firstSeenAt: num(row.d_first_seen_at),
      lastAccessedAt: num(row.d_last_accessed_at),
      machinesSeen: row.d_machines_seen ? (JSON.parse(String(row.d_machines_seen)) as string[]) : [],
      cloneSuspectedAt: numOrNull(row.d_clone_suspected_at),
    };
    return { license, lease: toLease(row, instances), device: row.d_fingerprint === null ? undefined : device };
  }

  async getProduct(id: string) {
    const row = this.s.product.get(id) as Row | undefined;
    return row && toProduct(row);
  }

  async listProducts(page: PageRequest): Promise<PageOf<Product>> {
    return paged(this.s.listProducts.all(decodeCursor(page.cursor), page.limit + 1) as Row[], page.limit, toProduct);
  }

  async getLicense(id: string) {
    const row = this.s.licenseById.get(id) as Row | undefined;
    return row && toLicense(row);
  }

  async getLicenseByKey(key: string) {
    const row = this.s.licenseByKey.get(key) as Row | undefined;
    return row && toLicense(row);
  }

  async listLicenses(page: PageRequest & { productId?: string | undefined }): Promise<PageOf<License>> {
    const after = decodeCursor(page.cursor);
    const rows = page.productId
      ? (this.s.listLicensesOfProduct.all(page.productId, after, page.limit + 1) as Row[])
      : (this.s.listLicenses.all(after, page.limit + 1) as Row[]);
    return paged(rows, page.limit, toLicense);
  }

  async listLeases(licenseId: string): Promise<LeaseView[]> {
    return this.leases(this.s.leasesOfLicense.all(licenseId) as Row[]).map((l) => this.withDevice(l));
  }

  private withDevice(l: Lease): LeaseView {
    return { ...l, device: toDevice(this.s.deviceById.get(l.deviceId) as Row) };
  }

  async leasesOfFingerprint(licenseId: string, fingerprint: string): Promise<Lease[]> {
    const d = this.s.device.get(licenseId, fingerprint) as Row | undefined;
    return d ? this.leases(this.s.leasesOfDevice.all({ d: d.id }) as Row[]) : [];
  }

  async listDevices(licenseId: string): Promise<DeviceView[]> {
    return (this.s.devicesOfLicense.all(licenseId) as Row[]).map((row) => ({
      ...toDevice(row),
      seatsHeld: num(row.seats_held),
      instanceCount: num(row.instance_count),
      offlineExpiresAt: numOrNull(row.offline_expires_at),
    }));
  }

  async getLease(id: string) {
    const lease = this.withInstances(this.s.lease.get(id) as Row | undefined);
    return lease && this.withDevice(lease);
  }

  async listAudit(filter: AuditFilter): Promise<PageOf<StoredAudit>> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      where.push(sql);
      args.push(v);
    };
    if (filter.licenseId) add('license_id = ?', filter.licenseId);
    if (filter.deviceId) add('device_id = ?', filter.deviceId);
    if (filter.leaseId) add('lease_id = ?', filter.leaseId);
    if (filter.type) add('type = ?', filter.type);
    if (filter.actor) add('actor = ?', filter.actor);
    if (filter.from !== undefined) add('at >= ?', filter.from);
    if (filter.to !== undefined) add('at < ?', filter.to);
    if (filter.cursor) add('id < ?', decodeCursor(filter.cursor));
    const sql = `SELECT * FROM audit ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, filter.limit + 1) as Row[];
    const items = rows.slice(0, filter.limit).map(toAudit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > filter.limit && last ? encodeCursor(last.id) : null };
  }

  async usage(licenseId: string, from: number, to: number): Promise<UsageRow[]> {
    const before = this.s.usage_before.get(licenseId, from) as Row | undefined;
    const rows = (this.s.usage_range.all(licenseId, from, to) as Row[]).map(toUsage);
    return fillHours(rows, from, to, before ? num(before.seats_at_end) : 0);
  }

  // Retention: each call is one small batch in its own place in the write queue, so a seat transaction waits at most one batch.
  pruneAudit(before: number, limit: number): Promise<number> {
    return this.transaction(async () => this.s.pruneAudit.run({ before, limit }).changes);
  }

  pruneUsage(before: number, limit: number): Promise<number> {
    return this.transaction(async () => this.s.pruneUsage.run({ lastHour: before - HOUR_MS, limit }).changes);
  }

  async expiryStats(licenseId: string, now: number) {
    const row = this.s.expiryStats.get(now, now, licenseId) as Row;
    return { dead: num(row.dead), earliestExpiry: numOrNull(row.earliest) };
  }

  async licensesToSweep(now: number): Promise<string[]> {
    return (this.s.licensesToSweep.all(now, now) as Row[]).map((row) => String(row.license_id));
  }

  async newestRecordedTime(opts: { leases: boolean }) {
    const row = this.db
      .prepare(
        `SELECT MAX(COALESCE((SELECT MAX(at) FROM audit), 0), COALESCE((SELECT MAX(hour) FROM usage_hourly), 0), COALESCE((SELECT MAX(updated_at) FROM kv), 0)${
          opts.leases ? ', COALESCE((SELECT MAX(last_heartbeat_at) FROM leases), 0)' : ''
        }) AS t`,
      )
      .get() as Row;
    return num(row.t);
  }

  async leaseCounts(licenseId: string) {
    const row = this.s.leaseCounts.get(licenseId) as Row;
    return { used: num(row.used), offline: num(row.offline) };
  }

  async seatTotals() {
    const row = this.s.seatTotals.get() as Row;
    return { seatsUsed: num(row.used), seatsOffline: num(row.offline), leases: num(row.leases) };
  }

  async listAdminTokens() {
    return (this.s.listAdminTokens.all() as Row[]).map(toAdminToken);
  }

  async touchAdminToken(id: string, at: number) {
    this.s.touchAdminToken.run(at, id);
  }

  async denialsSince(from: number) {
    return new Map((this.s.denialsSince.all(hourOf(from)) as Row[]).map((row) => [String(row.license_id), num(row.n)]));
  }

  async adminTokenById(id: string) {
    const row = this.s.adminTokenById.get(id) as Row | undefined;
    return row && toAdminToken(row);
  }

  async countAdminTokens() {
    return num((this.s.countAdminTokens.get() as Row).n);
  }

  subscribe(listener: (e: import('../port.js').ChangeEvent) => void) {
    return this.changes.subscribe(listener);
  }

  async getKv(name: string) {
    return kvRecord(this.s.kvGet.get(name) as Row | undefined);
  }

  async listKv(prefix: string) {
    return (this.s.kvList.all(prefix, prefix) as Row[]).map((row) => kvRecord(row)!);
  }

  async ping() {
    this.s.ping.get();
  }

  async probeWrite() {
    // A row written and deleted in one transaction: the pages are dirtied and committed, the content ends as it was.
    // (An UPDATE to the same value would not do: SQLite skips writing a cell whose bytes do not change.)
    await this.transaction(async () => {
      this.db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (-1, 'write probe', 0)").run();
      this.db.prepare('DELETE FROM schema_migrations WHERE version = -1').run();
    });
  }

  async close() {
    // Let queued transactions finish (a transaction queued after close starts fails on the closed database).
    while (this.draining) await new Promise((row) => setImmediate(row));
    if (this.db.open) this.db.close();
  }
}

function leaseParams(l: Lease) {
  return {
    id: l.id,
    licenseId: l.licenseId,
    deviceId: l.deviceId,
    offline: l.offline ? 1 : 0,
    grantedAt: l.grantedAt,
    lastHeartbeatAt: l.lastHeartbeatAt,
    expiresAt: l.expiresAt,
    offlineExpiresAt: l.offlineExpiresAt,
    lingerUntil: l.lingerUntil,
  };
}

function paged<T>(rows: Row[], limit: number, map: (row: Row) => T): PageOf<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items: items.map(map), nextCursor: rows.length > limit && last ? encodeCursor(num(last.seq)) : null };
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const done = new Set((db.prepare('SELECT version FROM schema_migrations').all() as Row[]).map((row) => num(row.version)));
  for (const m of SQLITE_MIGRATIONS) {
    if (done.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
    }).immediate();
  }
}

function kvRecord(row: Row | undefined): KvRecord | undefined {
  return row && { name: String(row.name), value: String(row.value), updatedAt: num(row.updated_at) };
}
