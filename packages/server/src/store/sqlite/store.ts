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
import { closeSync, existsSync, fdatasync, fstatSync, fsyncSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { SeatGuardError, type Effect, type Renewal } from '../../domain/effects.js';
import type { AuditEntry, Customer, Lease, Product, License } from '../../domain/types.js';
import {
  withWebhookEvents,
  type ClaimedDelivery,
  type DeliveryAttempt,
  type DeliveryState,
  type DeliveryView,
  type WebhookEndpoint,
} from '../../domain/webhooks.js';
import { newId } from '../../ids.js';
import { countingOf } from '../../domain/sharing.js';
import {
  instanceParams,
  namesColumn,
  num,
  numOrNull,
  strOrNull,
  toAdminToken,
  toCustomer,
  toClaimed,
  toDelivery,
  toWebhook,
  toAudit,
  toDevice,
  toInstance,
  toLease,
  toLicense,
  toProduct,
  toUsage,
  toWaiter,
  withFeatureUsage,
  countNames,
} from '../rows.js';
import type { AuditFilter, DeviceView, KvRecord, LeaseView, PageOf, PageRequest, Store, StoredAudit, StoreTx, UsageRow } from '../port.js';
import { decodeCursor, encodeCursor, fillHours, hourOf, HOUR_MS, likeEscaped, sweepPage, type SweepRow } from '../common.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { QUEUE_POLL_WINDOW_MS } from '../../domain/queue.js';
import { ChangeFeed } from '../changes.js';
import { HotReads, type InstanceTuple } from './hotReads.js';
import { SyncAfter } from '../syncAfter.js';
import { TickBatch } from '../tickBatch.js';

type Row = Record<string, unknown>;

interface Waiting {
  fn: (tx: StoreTx) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** Effects from which a decision is bulk (a sweep's batch): `apply` asks first whether any webhook endpoint exists. */
const BULK = 64;

/** At most this many transactions share one commit (bounds the latency of the last one in a group). */
const MAX_GROUP = 256;
/**
 * When nobody else was served in the last IDLE_MS (no foreground group, no heartbeat read), the background transactions
 * waiting share one commit (at most BACKGROUND_WHEN_IDLE): a sweep's batches dirty pages all over the file, and the more
 * of them a commit holds, the more of those pages they share (the sweep hands over this many runs of 250 at once,
 * `backgroundPerCommit`; docs/performance.md). With others served, one a commit. (Heartbeats are answered from memory and write nothing at
 * once, but they wait for the event loop: before they counted, heartbeats beside a 100k sweep at 1M leases waited
 * behind groups of 16 runs, p50 535 ms, p99 3.4 s, 12 req/s.)
 */
const BACKGROUND_WHEN_IDLE = 16;
const IDLE_MS = 500;
/**
 * While others are served, after each background group no other runs for as long as that group held the event loop (at
 * most this many ms), so that the background work takes about half of the loop, not all of it: foreground groups run
 * meanwhile as they come (a foreground transaction ends the drain's pause at once). Beside a 100k sweep at 1M leases:
 * checkout + check-in p50 45-50 -> 7 ms, heartbeats p50 355 ms -> 0 (docs/performance.md).
 */
const BACKGROUND_PAUSE_MAX_MS = 100;
/**
 * SQLite's automatic checkpoint, in WAL pages: its default (1,000) in normal running, and 8,000 while background
 * transactions run. A sweep's run of 250 leases writes more than 1,000 pages, so each of its commits also copied them
 * into the file and synced it, on the event loop: 26 ms of a 36-ms run (docs/performance.md). Less often, the pages
 * that successive runs share are copied once. The default comes back with the last one (its next commit checkpoints
 * the rest): kept at 8,000 throughout, the WAL's checkpoints fell into checkouts' commits and their p99 at 1M leases
 * went from 14 to 41 ms.
 */
const CHECKPOINT_PAGES = 1000;
const CHECKPOINT_PAGES_IN_BACKGROUND = 8000;
/** A license whose counters are trusted (`countersTrusted`) is counted again after this many uses all the same. */
export const RECOUNT_EVERY = 256;

export interface SqliteOptions {
  /** file path, or ':memory:' */
  path: string;
  /**
   * FULL (default): nobody is answered before the WAL holding their commit was synced, so an answered write survives
   * a power cut. The store syncs the WAL itself after each group's COMMIT, on libuv's thread pool (`walSync`), where
   * SQLite's own FULL would sync inside COMMIT, on the event loop; the connection runs SQLite's NORMAL (which stays
   * consistent after a power cut and syncs the WAL before every checkpoint). NORMAL: nothing synced before answers;
   * the WAL is synced only at checkpoints; a process crash loses nothing, a power cut may roll back the last answered
   * commits.
   */
  synchronous?: 'NORMAL' | 'FULL';
  /** renewals written per transaction by `renew` (default RENEWALS_PER_TRANSACTION) */
  renewalsPerTransaction?: number;
}

/**
 * A batch of renewals is written in transactions of at most this many, with requests served in between: a
 * transaction runs on the event loop, and a second's 6,000 renewals in one held every answer for 20-30 ms.
 */
export const RENEWALS_PER_TRANSACTION = 500;

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly sweepOrder = 'run' as const;
  readonly backgroundPerCommit = BACKGROUND_WHEN_IDLE;
  private readonly db: Database.Database;
  private readonly changes = new ChangeFeed();
  private readonly s;
  private readonly tx: StoreTx;
  private readonly renewalsPerTransaction: number;
  private readonly path: string;
  /** FULL: the store syncs the WAL before answering (`walSync`) */
  private readonly syncWal: boolean;
  private walFd: number | undefined;
  /** fdatasync of the WAL on libuv's thread pool, shared by the groups that committed before it began */
  private readonly walSync = new SyncAfter(
    () =>
      new Promise<void>((resolve, reject) => {
        const fd = this.walFile();
        fdatasync(fd, (err) => (err ? reject(err) : resolve()));
      }),
  );

  constructor(opts: SqliteOptions) {
    // The database holds license keys: create it private. SQLite gives its -wal and -shm files the same mode.
    if (opts.path !== ':memory:' && !existsSync(opts.path)) closeSync(openSync(opts.path, 'a', 0o600));
    this.renewalsPerTransaction = Math.max(1, opts.renewalsPerTransaction ?? RENEWALS_PER_TRANSACTION);
    this.db = new Database(opts.path);
    this.db.pragma('journal_mode = WAL');
    this.path = opts.path;
    this.syncWal = (opts.synchronous ?? 'FULL') === 'FULL' && opts.path !== ':memory:';
    this.db.pragma(`synchronous = ${this.syncWal ? 'NORMAL' : (opts.synchronous ?? 'FULL')}`);
    this.db.pragma('busy_timeout = 5000');
    // A bigger page cache (64 MiB): with a million leases the indexes no longer fit the 2 MiB default.
    this.db.pragma('cache_size = -65536');
    // Each unit of a group commit runs in a SAVEPOINT, whose sub-journal keeps the pages the unit changes (to roll it
    // back alone). SQLite spills a sub-journal past 64 KiB to a temporary file: about 100 KB in 48 write calls per
    // checkout-checkin request, 80% of the process's writes. In memory it is copied, not written (figures in
    // docs/performance.md). It is emptied when the unit ends, so it holds one unit's pages at most (docs/operations.md).
    this.db.pragma('temp_store = MEMORY');
    this.db.pragma('foreign_keys = ON');
    migrate(this.db);
    const p = (sql: string) => this.db.prepare(sql);
    this.s = {
      licenseByKey: p('SELECT * FROM licenses WHERE key = ?'),
      licenseById: p('SELECT * FROM licenses WHERE id = ?'),
      device: p('SELECT * FROM devices WHERE license_id = ? AND fingerprint = ?'),
      deviceById: p('SELECT * FROM devices WHERE id = ?'),
      // The seats a device took, and the shared seats its uses are on.
      // Both by license, then device (the indexes are keyed so: migration 12).
      leasesOfDevice: p(`SELECT * FROM leases WHERE license_id = (SELECT license_id FROM devices WHERE id = @d) AND device_id = @d
          UNION SELECT l.* FROM instances i JOIN leases l ON l.id = i.lease_id
          WHERE i.license_id = (SELECT license_id FROM devices WHERE id = @d) AND i.device_id = @d ORDER BY granted_at`),
      leasesOfShareGroup: p('SELECT * FROM leases WHERE license_id = ? AND share_group = ? ORDER BY granted_at'),
      leasesOfLicense: p('SELECT * FROM leases WHERE license_id = ? ORDER BY granted_at'),
      lease: p('SELECT * FROM leases WHERE id = ?'),
      // The device is the use's (on a shared seat, not always the lease's).
      leaseWithDevice: p(`SELECT l.*, d.id AS d_id, d.fingerprint AS d_fingerprint, d.hostname AS d_hostname, d.user_name AS d_user_name,
          d.app_version AS d_app_version, d.first_seen_at AS d_first_seen_at, d.last_accessed_at AS d_last_accessed_at,
          d.machines_seen AS d_machines_seen, d.clone_suspected_at AS d_clone_suspected_at,
          (SELECT json_group_array(json_array(i.instance_id, i.started_at, i.last_heartbeat_at, i.expires_at, i.device_id, i.meta, i.features, i.session_key))
             FROM (SELECT * FROM instances WHERE lease_id = l.id ORDER BY started_at) i) AS instances,
          -- the license's live waiters (domain/queue.ts), in the same statement
          (SELECT COUNT(DISTINCT w.fingerprint || char(10) || w.instance_id) FROM waiters w
             WHERE w.license_id = @licenseId AND w.last_poll_at > @since AND w.expires_at > @now) AS waiting
        FROM leases l LEFT JOIN devices d ON d.id = COALESCE(
          (SELECT device_id FROM instances WHERE lease_id = l.id AND instance_id = @instanceId), l.device_id)
        WHERE l.id = @leaseId AND l.license_id = @licenseId`),
      instancesOf: p('SELECT * FROM instances WHERE lease_id = ? ORDER BY started_at'),
      instancesOfMany: p('SELECT * FROM instances WHERE lease_id IN (SELECT value FROM json_each(?)) ORDER BY started_at'),
      deadLeases: p('SELECT * FROM leases WHERE license_id = ? AND expires_at <= ? ORDER BY expires_at LIMIT ?'),
      earliestExpiry: p('SELECT MIN(expires_at) AS e FROM leases WHERE license_id = ? AND expires_at > ?'),
      // Base seats only: a seat of features only takes nothing from the base pool (domain/features.ts).
      leaseCounts: p('SELECT COALESCE(SUM(base), 0) AS used, COALESCE(SUM(offline * base), 0) AS offline FROM leases WHERE license_id = ?'),
      leasesWithFeatures: p('SELECT * FROM leases WHERE license_id = ? AND features IS NOT NULL'),
      waiters: p('SELECT * FROM waiters WHERE license_id = ? ORDER BY seq'),
      waitingCounts: p(`SELECT license_id, COUNT(DISTINCT fingerprint || char(10) || instance_id) AS n FROM waiters
        WHERE last_poll_at > @since AND expires_at > @now GROUP BY license_id`),
      putWaiter: p(`INSERT INTO waiters (license_id, pool, fingerprint, instance_id, enqueued_at, last_poll_at, expires_at)
        VALUES (@licenseId, @pool, @fingerprint, @instanceId, @enqueuedAt, @lastPollAt, @expiresAt)
        ON CONFLICT (license_id, pool, fingerprint, instance_id) DO UPDATE SET last_poll_at = excluded.last_poll_at,
          expires_at = excluded.expires_at`),
      deleteWaiter: p('DELETE FROM waiters WHERE license_id = @licenseId AND fingerprint = @fingerprint AND instance_id = @instanceId'),
      dropWaiters: p('DELETE FROM waiters WHERE seq IN (SELECT value FROM json_each(?))'),
      queueUsage:
        p(`INSERT INTO usage_hourly (license_id, hour, peak_seats, seats_at_end, checkouts, denials, queued, queue_grants, queue_wait_ms)
        VALUES (@licenseId, @hour, @level, @level, 0, 0, @queued, @grants, @waitMs)
        ON CONFLICT (license_id, hour) DO UPDATE SET queued = queued + excluded.queued, queue_grants = queue_grants + excluded.queue_grants,
          queue_wait_ms = queue_wait_ms + excluded.queue_wait_ms`),
      featuresHeld: p('SELECT features FROM leases WHERE license_id = ? AND features IS NOT NULL'),
      seatsSet: p('UPDATE licenses SET seats_used = @used, seats_offline = @offline WHERE id = @id'),
      dataVersion: p('PRAGMA data_version').pluck(),
      anyWaiter: p('SELECT 1 FROM waiters WHERE license_id = ? LIMIT 1').pluck(),
      expiryStats: p(`SELECT COUNT(*) FILTER (WHERE expires_at <= ?) AS dead, MIN(expires_at) FILTER (WHERE expires_at > ?) AS earliest
        FROM leases WHERE license_id = ? AND expires_at IS NOT NULL`),
      // Each lease by its id; `+` keeps the planner off the license's indexes, which read every lease of the license for
      // a batch of a few of them (a sweep would then cost what a big license holds, not what it frees).
      leasesToSweep: p('SELECT * FROM leases WHERE id IN (SELECT value FROM json_each(?)) AND +license_id = ?'),
      // A sweep's scan (Store.sweepScan): range scans of leases_sweep alone, and of instances_expiry (which holds the
      // lease and instance ids) with one primary-key look-up per dead use, each after the cursor's key, in index order.
      sweepLeases: p(`SELECT expires_at, license_id, id FROM leases INDEXED BY leases_sweep
        WHERE expires_at <= @now AND (expires_at, license_id, id) > (@at, @a, @b) ORDER BY expires_at, license_id, id LIMIT @limit`),
      sweepUses: p(`SELECT i.expires_at, l.license_id, i.lease_id, i.instance_id
        FROM instances i INDEXED BY instances_expiry JOIN leases l ON l.id = i.lease_id
        WHERE i.expires_at <= @now AND (i.expires_at, i.lease_id, i.instance_id) > (@at, @a, @b)
          AND (l.expires_at IS NULL OR l.expires_at > @now)
        ORDER BY i.expires_at, i.lease_id, i.instance_id LIMIT @limit`),
      licenseCountOfProduct: p('SELECT COUNT(*) AS n FROM licenses WHERE product_id = ?'),
      product: p('SELECT * FROM products WHERE id = ?'),
      // writes
      insertProduct: p(
        'INSERT INTO products (id, name, metadata, created_at, updated_at) VALUES (@id, @name, @metadata, @createdAt, @updatedAt)',
      ),
      updateProduct: p('UPDATE products SET name = @name, metadata = @metadata, updated_at = @updatedAt WHERE id = @id'),
      deleteProduct: p('DELETE FROM products WHERE id = ?'),
      customer: p('SELECT * FROM customers WHERE id = ?'),
      licenseCountOfCustomer: p('SELECT COUNT(*) AS n FROM licenses WHERE customer_id = ?'),
      customerTokens: p('SELECT * FROM admin_tokens WHERE customer_id = ? AND revoked_at IS NULL'),
      insertCustomer: p(`INSERT INTO customers (id, name, contact, metadata, created_at, updated_at)
        VALUES (@id, @name, @contact, @metadata, @createdAt, @updatedAt)`),
      updateCustomer: p(
        'UPDATE customers SET name = @name, contact = @contact, metadata = @metadata, updated_at = @updatedAt WHERE id = @id',
      ),
      deleteCustomer: p('DELETE FROM customers WHERE id = ?'),
      // webhooks (domain/webhooks.ts)
      anyWebhook: p('SELECT 1 AS x FROM webhooks LIMIT 1'),
      insertWebhookEvent: p(`INSERT OR IGNORE INTO webhook_events (id, type, license_id, at, data, dedupe_key)
        VALUES (@id, @type, @licenseId, @at, @data, @dedupe)`),
      // bulk form (a reclamation batch's lease.reclaimed events): the events as one JSON array, then a delivery per
      // subscribed endpoint of each one inserted (one whose dedupe key was taken keeps its older id, so gets none here)
      insertWebhookEvents: p(`INSERT OR IGNORE INTO webhook_events (id, type, license_id, at, data, dedupe_key)
        SELECT value ->> 'id', value ->> 'type', value ->> 'licenseId', value ->> 'at', value ->> 'data', value ->> 'dedupe'
        FROM json_each(?) ORDER BY key`),
      fanOutMany: p(`INSERT INTO webhook_deliveries (id, webhook_id, event_id, state, attempts, next_attempt_at, created_at)
        SELECT 'dlv_' || lower(hex(randomblob(10))), w.id, e.id, 'pending', 0, e.at, e.at
        FROM json_each(?) j JOIN webhook_events e ON e.id = j.value JOIN webhooks w
        WHERE w.enabled = 1 AND EXISTS (SELECT 1 FROM json_each(w.events) WHERE value IN ('*', e.type)) ORDER BY j.key, w.seq`),
      fanOut: p(`INSERT INTO webhook_deliveries (id, webhook_id, event_id, state, attempts, next_attempt_at, created_at)
        SELECT 'dlv_' || lower(hex(randomblob(10))), w.id, @eventId, 'pending', 0, @at, @at FROM webhooks w
        WHERE (@webhookId IS NOT NULL AND w.id = @webhookId)
          OR (@webhookId IS NULL AND w.enabled = 1 AND EXISTS (SELECT 1 FROM json_each(w.events) WHERE value IN ('*', @type)))`),
      putWebhook: p(`INSERT INTO webhooks (id, url, events, description, enabled, secret, created_at, updated_at)
        VALUES (@id, @url, @events, @description, @enabled, @secret, @createdAt, @updatedAt)
        ON CONFLICT (id) DO UPDATE SET url = excluded.url, events = excluded.events, description = excluded.description,
          enabled = excluded.enabled, secret = excluded.secret, updated_at = excluded.updated_at`),
      deleteWebhook: [
        p('DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE webhook_id = ?)'),
        p('DELETE FROM webhook_deliveries WHERE webhook_id = ?'),
        p('DELETE FROM webhooks WHERE id = ?'),
      ],
      listWebhooks: p('SELECT * FROM webhooks ORDER BY seq'),
      webhook: p('SELECT * FROM webhooks WHERE id = ?'),
      dueDeliveries: p(`SELECT d.id FROM webhook_deliveries d WHERE d.state = 'pending' AND d.next_attempt_at <= @now
          AND (d.claimed_until IS NULL OR d.claimed_until <= @now) ORDER BY d.next_attempt_at LIMIT @limit`),
      claimDelivery: p('UPDATE webhook_deliveries SET claimed_until = @until WHERE id = @id'),
      claimedDelivery: p(`SELECT d.id, d.attempts, d.event_id, d.webhook_id, e.type, e.license_id, e.at AS event_at, e.data, w.url, w.secret
        FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?`),
      recordAttempt: p(
        `INSERT INTO webhook_attempts (delivery_id, at, status, error, duration_ms) VALUES (@id, @at, @status, @error, @durationMs)`,
      ),
      settleDelivery: p(`UPDATE webhook_deliveries SET state = @state, attempts = attempts + 1, next_attempt_at = @nextAttemptAt,
          claimed_until = NULL, delivered_at = CASE WHEN @state = 'delivered' THEN @at ELSE delivered_at END WHERE id = @id`),
      deliveries:
        p(`SELECT d.seq, d.*, e.type AS event_type, e.license_id FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
          WHERE d.webhook_id = @webhookId AND (@state IS NULL OR d.state = @state) AND (@before = 0 OR d.seq < @before)
          ORDER BY d.seq DESC LIMIT @limit`),
      delivery:
        p(`SELECT d.seq, d.*, e.type AS event_type, e.license_id FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
          WHERE d.id = ?`),
      attemptsOf: p('SELECT * FROM webhook_attempts WHERE delivery_id = ? ORDER BY seq DESC LIMIT 5'),
      redeliver: p(`UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = @now, claimed_until = NULL WHERE id = @id`),
      releaseClaims: p('UPDATE webhook_deliveries SET claimed_until = NULL WHERE claimed_until IS NOT NULL'),
      insertLicense:
        p(`INSERT INTO licenses (id, product_id, customer_id, key, seats, model, expires_at, trial_days, trial_started_at, lease_ttl_seconds,
          heartbeat_interval_seconds, max_offline_seconds, max_offline_seats, max_instances_per_device, counting, sharing,
          clone_policy, vm_policy, linger_seconds, overdraft_seats, access, features, suspended, metadata, seats_used, seats_offline, created_at, updated_at)
        VALUES (@id, @productId, @customerId, @key, @seats, @model, @expiresAt, @trialDays, @trialStartedAt, @leaseTtlSeconds,
          @heartbeatIntervalSeconds, @maxOfflineSeconds, @maxOfflineSeats, @maxInstancesPerDevice, @counting, @sharing,
          @clonePolicy, @vmPolicy, @lingerSeconds, @overdraftSeats, @access, @features, @suspended, @metadata, 0, 0, @createdAt, @updatedAt)`),
      // Policy fields only: the seat counters are never written from a decision's copy, only by the guarded `seats` effect.
      updateLicense:
        p(`UPDATE licenses SET customer_id = @customerId, seats = @seats, model = @model, expires_at = @expiresAt, trial_days = @trialDays,
          trial_started_at = @trialStartedAt, lease_ttl_seconds = @leaseTtlSeconds, heartbeat_interval_seconds = @heartbeatIntervalSeconds,
          max_offline_seconds = @maxOfflineSeconds, max_offline_seats = @maxOfflineSeats, max_instances_per_device = @maxInstancesPerDevice,
          counting = @counting, sharing = @sharing, clone_policy = @clonePolicy, vm_policy = @vmPolicy,
          linger_seconds = @lingerSeconds, overdraft_seats = @overdraftSeats, access = @access, features = @features, suspended = @suspended, metadata = @metadata, updated_at = @updatedAt WHERE id = @id`),
      trialStarted: p('UPDATE licenses SET trial_started_at = ? WHERE id = ? AND trial_started_at IS NULL'),
      deleteLicense: [
        p('DELETE FROM instances WHERE lease_id IN (SELECT id FROM leases WHERE license_id = ?)'),
        p('DELETE FROM leases WHERE license_id = ?'),
        p('DELETE FROM devices WHERE license_id = ?'),
        p('DELETE FROM usage_hourly WHERE license_id = ?'),
        p('DELETE FROM usage_features WHERE license_id = ?'),
        p('DELETE FROM waiters WHERE license_id = ?'),
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
        p(`INSERT INTO leases (id, license_id, device_id, share_group, overdraft, base, features, offline, granted_at, last_heartbeat_at,
          expires_at, offline_expires_at)
        VALUES (@id, @licenseId, @deviceId, @shareGroup, @overdraft, @base, @features, @offline, @grantedAt, @lastHeartbeatAt, @expiresAt,
          @offlineExpiresAt)`),
      updateLease: p(`UPDATE leases SET offline = @offline, last_heartbeat_at = @lastHeartbeatAt, expires_at = @expiresAt,
        offline_expires_at = @offlineExpiresAt, linger_until = @lingerUntil, features = @features WHERE id = @id`),
      deleteLease: [p('DELETE FROM instances WHERE lease_id = ?'), p('DELETE FROM leases WHERE id = ?')],
      // bulk forms, the ids or entries as one JSON array
      deleteLeases: [
        p('DELETE FROM instances WHERE lease_id IN (SELECT value FROM json_each(?))'),
        p('DELETE FROM leases WHERE id IN (SELECT value FROM json_each(?))'),
      ],
      auditRow: p('INSERT INTO audit (at, type, actor, license_id, device_id, lease_id, reason, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      putInstance: p(`INSERT INTO instances (lease_id, instance_id, started_at, last_heartbeat_at, expires_at, device_id, meta, features,
          session_key, license_id)
        VALUES (@leaseId, @instanceId, @startedAt, @lastHeartbeatAt, @expiresAt, @deviceId, @meta, @features, @sessionKey,
          (SELECT license_id FROM leases WHERE id = @leaseId))
        ON CONFLICT (lease_id, instance_id) DO UPDATE SET last_heartbeat_at = excluded.last_heartbeat_at, expires_at = excluded.expires_at,
          features = excluded.features, session_key = COALESCE(excluded.session_key, instances.session_key)`),
      deleteInstance: p('DELETE FROM instances WHERE lease_id = ? AND instance_id = ?'),
      setSessionKey: p('UPDATE instances SET session_key = ? WHERE lease_id = ? AND instance_id = ?'),
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
      pruneFeatureUsage: p(`DELETE FROM usage_features WHERE (license_id, feature, hour) IN (
        SELECT license_id, feature, hour FROM usage_features WHERE hour <= @lastHour ORDER BY hour LIMIT @limit)`),
      featureUsage: p(`INSERT INTO usage_features (license_id, feature, hour, peak, checkouts, denials)
        VALUES (@licenseId, @feature, @hour, @held, @checkouts, @denials)
        ON CONFLICT (license_id, feature, hour) DO UPDATE SET peak = MAX(peak, excluded.peak),
          checkouts = checkouts + excluded.checkouts, denials = denials + excluded.denials`),
      featureUsage_range: p('SELECT * FROM usage_features WHERE license_id = ? AND hour >= ? AND hour < ? ORDER BY hour, feature'),
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
      listLicensesOfCustomer:
        p(`SELECT seq, * FROM licenses WHERE customer_id = @customerId AND (@productId IS NULL OR product_id = @productId)
        AND seq > @after ORDER BY seq LIMIT @limit`),
      // Search: the name (any case), a license key (exact), a device's host or user name (any case) of one of its licenses.
      listCustomers: p(`SELECT c.seq, c.* FROM customers c WHERE c.seq > @after AND (@id IS NULL OR c.id = @id)
        AND (@search IS NULL OR c.name LIKE @like ESCAPE '\\' OR EXISTS (SELECT 1 FROM licenses l WHERE l.customer_id = c.id AND (l.key = @search
          OR EXISTS (SELECT 1 FROM devices d WHERE d.license_id = l.id AND (d.hostname LIKE @like ESCAPE '\\' OR d.user_name LIKE @like ESCAPE '\\')))))
        ORDER BY c.seq LIMIT @limit`),
      // Seats the device took; its uses wherever they run (on a shared seat, maybe another device's).
      devicesOfLicense: p(`SELECT d.*, COUNT(l.id) AS seats_held, MAX(l.offline_expires_at) AS offline_expires_at,
          (SELECT COUNT(*) FROM instances i WHERE i.license_id = d.license_id AND i.device_id = d.id) AS instance_count
        FROM devices d LEFT JOIN leases l ON l.license_id = d.license_id AND l.device_id = d.id
        WHERE d.license_id = ? GROUP BY d.id ORDER BY d.last_accessed_at DESC`),
      usage_range: p('SELECT * FROM usage_hourly WHERE license_id = ? AND hour >= ? AND hour < ? ORDER BY hour'),
      usage_before: p('SELECT seats_at_end FROM usage_hourly WHERE license_id = ? AND hour < ? ORDER BY hour DESC LIMIT 1'),
      // The metrics gauge's, at every scrape: the licenses' counters, one row each (no count of the lease rows, which
      // read every lease stored, on the event loop).
      seatTotals: p('SELECT COALESCE(SUM(seats_used), 0) AS used, COALESCE(SUM(seats_offline), 0) AS offline FROM licenses'),
      insertAdminToken: p(`INSERT INTO admin_tokens (id, name, role, customer_id, token_hash, created_at, last_used_at, revoked_at)
        VALUES (@id, @name, @role, @customerId, @tokenHash, @createdAt, @lastUsedAt, @revokedAt)`),
      adminTokenById: p('SELECT * FROM admin_tokens WHERE id = ?'),
      countAdminTokens: p('SELECT COUNT(*) AS n FROM admin_tokens WHERE revoked_at IS NULL'),
      activeAdminCount: p("SELECT COUNT(*) AS n FROM admin_tokens WHERE revoked_at IS NULL AND role = 'admin' AND customer_id IS NULL"),
      listAdminTokens: p('SELECT * FROM admin_tokens ORDER BY created_at, id'),
      revokeAdminToken: p('UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      touchAdminToken: p('UPDATE admin_tokens SET last_used_at = ? WHERE id = ?'),
      // Today's rows by the hour index: the planner would otherwise read every row kept (90 days of every license's
      // hours) in the primary key's order to group them.
      denialsSince: p(
        'SELECT license_id, SUM(denials) AS n FROM usage_hourly INDEXED BY usage_hourly_hour WHERE hour >= ? GROUP BY license_id',
      ),
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
      leasesToSweep: async (licenseId, ids) => this.leases(s.leasesToSweep.all(JSON.stringify(ids), licenseId) as Row[]),
      leasesOfLicense: async (licenseId) => this.leases(s.leasesOfLicense.all(licenseId) as Row[]),
      waiters: async (licenseId) => (s.waiters.all(licenseId) as Row[]).map(toWaiter),
      leasesWithFeatures: async (licenseId, names) =>
        (await this.leases(s.leasesWithFeatures.all(licenseId) as Row[])).filter((l) => l.features.some((f) => names.includes(f))),
      leaseCounts: async (licenseId) => {
        const row = s.leaseCounts.get(licenseId) as Row;
        return { used: num(row.used), offline: num(row.offline) };
      },
      countersTrusted: (licenseId) => this.countersTrusted(licenseId, true),
      countersVerified: (licenseId) => {
        this.verified.set(licenseId, { version: this.dataVersion(), uses: 0 });
      },
      licenseCountOfProduct: async (productId) => num((s.licenseCountOfProduct.get(productId) as Row).n),
      product: async (id) => {
        const row = s.product.get(id) as Row | undefined;
        return row && toProduct(row);
      },
      customer: async (id) => {
        const row = s.customer.get(id) as Row | undefined;
        return row && toCustomer(row);
      },
      licenseCountOfCustomer: async (customerId) => num((s.licenseCountOfCustomer.get(customerId) as Row).n),
      customerTokens: async (customerId) => (s.customerTokens.all(customerId) as Row[]).map(toAdminToken),
      adminToken: async (id) => {
        const row = s.adminTokenById.get(id) as Row | undefined;
        return row && toAdminToken(row);
      },
      lockAdminTokens: async () => undefined,
      lockKv: async (name) => kvRecord(s.kvGet.get(name) as Row | undefined),
      setSessionKey: async (leaseId, instanceId, stored) => {
        this.hot.dropLease(leaseId);
        s.setSessionKey.run(stored, leaseId, instanceId);
      },
      activeAdminCount: async () => num((s.activeAdminCount.get() as Row).n),
      apply: async (given) => {
        // A bulk decision (a sweep's batch) with no endpoint to tell: no event to derive (each would be dropped unwritten).
        const effects = given.length > BULK && !s.anyWebhook.get() ? given : withWebhookEvents(given, () => newId('evt'));
        for (let i = 0; i < effects.length; ) {
          // Runs of deletes, audit entries or events (a reclamation batch) are written with one statement each.
          const type = effects[i]!.type;
          let j = i + 1;
          if (type === 'lease.delete' || type === 'audit' || type === 'webhook.event')
            while (j < effects.length && effects[j]!.type === type) j++;
          if (j - i > 1) this.applyRun(effects.slice(i, j));
          else this.applyOne(effects[i]!);
          for (let k = i; k < j; k++) {
            this.forget(effects[k]!);
            this.changes.record(effects[k]!);
          }
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
    } else if (run[0]!.type === 'webhook.event') {
      const events = run.flatMap((e) => (e.type === 'webhook.event' ? [e] : []));
      // An event for one endpoint (a ping) is written alone; none of the others is written when no endpoint exists.
      if (events.some((e) => e.webhookId)) for (const e of events) this.applyOne(e);
      else if (s.anyWebhook.get()) {
        s.insertWebhookEvents.run(
          JSON.stringify(events.map(({ event: ev, dedupe }) => ({ ...ev, data: JSON.stringify(ev.data), dedupe }))),
        );
        s.fanOutMany.run(JSON.stringify(events.map((e) => e.event.id)));
      }
    } else {
      // One prepared insert per entry: in process, cheaper than a JSON array of objects taken apart field by field.
      for (const e of run) if (e.type === 'audit') s.auditRow.run(...auditParams(e.entry));
    }
  }

  private applyOne(effect: Effect): void {
    const s = this.s;
    switch (effect.type) {
      case 'customer.insert':
      case 'customer.update': {
        const c = effect.customer;
        (effect.type === 'customer.insert' ? s.insertCustomer : s.updateCustomer).run({
          ...c,
          contact: JSON.stringify(c.contact),
          metadata: JSON.stringify(c.metadata),
        });
        return;
      }
      case 'customer.delete':
        s.deleteCustomer.run(effect.customerId);
        return;
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
          customerId: l.customerId,
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
          features: l.features.length ? JSON.stringify(l.features) : null,
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
        s.insertLease.run({ ...leaseParams(l), shareGroup: l.shareGroup, overdraft: l.overdraft ? 1 : 0, base: l.base ? 1 : 0 });
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
      case 'webhook.event': {
        // No endpoint at all (the common case): nothing to tell, nothing written.
        if (!effect.webhookId && !s.anyWebhook.get()) return;
        const ev = effect.event;
        const inserted = s.insertWebhookEvent.run({
          id: ev.id,
          type: ev.type,
          licenseId: ev.licenseId,
          at: ev.at,
          data: JSON.stringify(ev.data),
          dedupe: effect.dedupe,
        });
        if (inserted.changes > 0) s.fanOut.run({ eventId: ev.id, at: ev.at, type: ev.type, webhookId: effect.webhookId ?? null });
        return;
      }
      case 'webhook.put': {
        const w = effect.webhook;
        s.putWebhook.run({ ...w, events: JSON.stringify(w.events), enabled: w.enabled ? 1 : 0 });
        return;
      }
      case 'webhook.delete':
        for (const st of s.deleteWebhook) st.run(effect.webhookId);
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
      case 'usage.feature':
        s.featureUsage.run({ ...effect, hour: hourOf(effect.at) });
        return;
      case 'usage.queue':
        s.queueUsage.run({ ...effect, hour: hourOf(effect.at) });
        return;
      case 'waiter.put': {
        const { seq: _seq, ...w } = effect.waiter;
        s.putWaiter.run(w);
        return;
      }
      case 'waiter.delete':
        s.deleteWaiter.run({ licenseId: effect.licenseId, fingerprint: effect.fingerprint, instanceId: effect.instanceId });
        return;
      case 'waiters.drop':
        s.dropWaiters.run(JSON.stringify(effect.seqs));
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
  transaction<T>(fn: (tx: StoreTx) => Promise<T>, opts?: { background?: boolean | undefined }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      (opts?.background ? this.background : this.waiting).push({ fn, resolve, reject } as Waiting);
      if (!opts?.background) this.endPause?.();
      if (!this.draining) {
        this.draining = true;
        // After the current I/O phase: every request that arrived in it joins the group.
        setImmediate(() => void this.drain());
      }
    });
  }

  private waiting: Waiting[] = [];
  /**
   * Background transactions (a sweep's batches): after the group waiting then, each in a group of its own (up to
   * BACKGROUND_WHEN_IDLE in one when nobody else writes). In one queue a checkout that arrived during a big sweep
   * shared its group with the sweep's next batches and waited for all of them, their commit and the sync of their
   * pages (docs/performance.md).
   */
  private background: Waiting[] = [];
  /** when the last foreground group began or a heartbeat was read (`performance.now()`; IDLE_MS) */
  private othersAt = Number.NEGATIVE_INFINITY;
  private draining = false;

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length || this.background.length) {
        this.checkpointEvery(this.background.length ? CHECKPOINT_PAGES_IN_BACKGROUND : CHECKPOINT_PAGES);
        if (this.waiting.length) {
          this.othersAt = performance.now();
          const { synced } = await this.runGroup(this.waiting.splice(0, MAX_GROUP));
          // A background group's pages go into the WAL after the foreground's, and the sync that answers the foreground
          // would carry them: a batch of a sweep is megabytes, 120-140 ms of fdatasync here. So they wait for it.
          if (synced && this.background.length) await synced.catch(() => undefined);
        }
        if (this.background.length === 0) continue;
        // While nobody else is served, background transactions share commits again (fewer pages written in all).
        const began = performance.now();
        const idle = began - this.othersAt > IDLE_MS;
        if (!idle && began < this.backgroundNotBefore) {
          // The background's half of the loop is used up: foreground work first, else a pause that foreground work ends.
          if (!this.waiting.length) await this.pause(this.backgroundNotBefore - began);
          continue;
        }
        await this.runGroup(this.background.splice(0, idle ? BACKGROUND_WHEN_IDLE : 1));
        const ended = performance.now();
        this.backgroundNotBefore = ended + Math.min(ended - began, BACKGROUND_PAUSE_MAX_MS);
        // Requests that arrived meanwhile are read before the next group (the I/O phase runs before `setImmediate`),
        // so that they go before the next background transaction rather than after it.
        await new Promise((resolve) => setImmediate(resolve));
      }
      this.checkpointEvery(CHECKPOINT_PAGES);
    } finally {
      this.draining = false;
    }
  }

  /** No background group before this (`performance.now()`) while others are served: BACKGROUND_PAUSE_MAX_MS. */
  private backgroundNotBefore = Number.NEGATIVE_INFINITY;
  /** Ends the drain's pause between background groups (BACKGROUND_PAUSE_MAX_MS), when one is under way. */
  private endPause: (() => void) | undefined;
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.endPause?.(), ms);
      this.endPause = () => {
        clearTimeout(timer);
        this.endPause = undefined;
        resolve();
      };
    });
  }

  /** SQLite's automatic checkpoint threshold now, in WAL pages */
  private checkpointAt = CHECKPOINT_PAGES;
  private checkpointEvery(pages: number): void {
    if (this.checkpointAt === pages) return;
    this.db.pragma(`wal_autocheckpoint = ${pages}`);
    this.checkpointAt = pages;
  }

  /** Runs a group to its COMMIT; resolves with the sync its callers are answered after (FULL), if any. */
  private async runGroup(group: Waiting[]): Promise<{ synced?: Promise<void> }> {
    const done: [Waiting, unknown][] = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      for (const w of group) w.reject(err);
      return {};
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
        this.verified.clear();
        this.hot.clear();
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
            return {};
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
      this.verified.clear();
      this.hot.clear();
      // A ROLLBACK after a failed COMMIT (disk full) may fail too: every caller must still hear the first error.
      if (this.db.inTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          /* reported through `err` */
        }
      }
      for (const [w] of done) w.reject(err);
      return {};
    }
    this.changes.flush();
    if (!this.syncWal || done.length === 0) {
      for (const [w, value] of done) w.resolve(value);
      return {};
    }
    // Answered once the WAL holding this COMMIT is on disk; the next group runs meanwhile (its commit waits for the
    // sync after this one). A failed sync fails the group's callers: their commit may not survive a power cut.
    const synced = this.walSync.after();
    synced.then(
      () => {
        for (const [w, value] of done) w.resolve(value);
      },
      (err: unknown) => {
        for (const [w] of done) w.reject(err);
      },
    );
    return { synced };
  }

  /**
   * The WAL file, opened once. SQLite keeps it, the same file, while its connection is open; should it ever be
   * another file (a new inode at the path), the new one is opened, so a sync never goes to a file SQLite left.
   */
  private walFile(): number {
    const path = `${this.path}-wal`;
    if (this.walFd !== undefined && fstatSync(this.walFd).ino !== statSync(path).ino) {
      closeSync(this.walFd);
      this.walFd = undefined;
    }
    if (this.walFd === undefined) {
      const fd = openSync(path, 'r');
      // Its directory entry too, once: under NORMAL SQLite would sync it only at its first checkpoint.
      const dir = openSync(dirname(this.path), 'r');
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
      this.walFd = fd;
    }
    return this.walFd;
  }

  private applyRenewal(renewal: Renewal): void {
    // The lease first: an offline (or deleted) lease's instance keeps its times.
    const changed = this.s.renewLease.run(renewal).changes === 1;
    if (changed) this.s.renewInstance.run(renewal);
    this.s.renewDevice.run(renewal);
    this.hot.renewed(renewal, changed);
  }

  async renew(renewals: readonly Renewal[]): Promise<Renewal[]> {
    // One writer at a time: nothing can hold a lease here, so every renewal applies (or is dropped).
    // In lease id order: a part then changes neighbouring rows of the tables keyed by lease id, not a row on each of
    // their pages (bench/renewals.mjs, 7,000 of 10,000 leases in parts of 500: 58-67 µs a renewal in random order, 44 sorted;
    // docs/performance.md). Renewals are independent (each only moves times forward), so their order changes nothing.
    const ordered = [...renewals].sort((a, b) => (a.leaseId < b.leaseId ? -1 : a.leaseId > b.leaseId ? 1 : 0));
    const per = this.renewalsPerTransaction;
    for (let i = 0; i < ordered.length; i += per) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      try {
        await this.transaction(async () => {
          for (const renewal of ordered.slice(i, i + per)) this.applyRenewal(renewal);
        });
      } catch (err) {
        // The parts before this one are committed: say which renewals were not written (`unwrittenRenewals`).
        if (i > 0 && err !== null && typeof err === 'object') Object.assign(err, { unwritten: ordered.slice(i) });
        throw err;
      }
    }
    return [];
  }

  /**
   * The heartbeat's read. Served from memory (`hotReads.ts`) while nobody else has written the file since (`PRAGMA
   * data_version`: a read transaction, a third of the cost of the statements it replaces). The reads asked in one turn
   * of the event loop are made together after it (`TickBatch`), with one `data_version` for all of them; each is still
   * made after it was asked, so it sees every commit made before. Issue #17: heartbeat 3,585 / 3,988 → 7,583 / 6,641
   * req/s, mostly from answering a turn's heartbeats together rather than from the shared `data_version`
   * (docs/performance.md). Inside a transaction (its own writes), at once.
   */
  async leaseOfKey(key: string, leaseId: string, instanceId: string, now?: number) {
    if (this.db.inTransaction) return this.readLeaseOfKey(this.dataVersion(), key, leaseId, instanceId, now);
    // A heartbeat is someone served: the background work waiting then does not take the event loop in big groups (IDLE_MS).
    this.othersAt = performance.now();
    return this.heartbeatReads.call({ key, leaseId, instanceId, now });
  }

  private readonly heartbeatReads = new TickBatch<
    { key: string; leaseId: string; instanceId: string; now: number | undefined },
    ReturnType<SqliteStore['readLeaseOfKey']>
  >(async (reads) => {
    const version = this.dataVersion();
    return reads.map((r) => {
      try {
        return this.readLeaseOfKey(version, r.key, r.leaseId, r.instanceId, r.now);
      } catch (err) {
        return err instanceof Error ? err : new Error(String(err));
      }
    });
  });

  private readLeaseOfKey(version: number, key: string, leaseId: string, instanceId: string, now: number | undefined) {
    if (version !== this.hotVersion) {
      this.hot.clear();
      this.hotVersion = version;
    }
    const fill = !this.db.inTransaction;
    let l = this.hot.license(key);
    let cachedLicense = l !== undefined;
    if (l) this.hot.hits++;
    else {
      this.hot.misses++;
      l = this.s.licenseByKey.get(key) as Row | undefined;
      if (!l) return undefined;
      // A license with waiters is read whole every time: its `waiting` count depends on the time of the read.
      if (fill && !this.s.anyWaiter.get(l.id)) {
        this.hot.keepLicense(key, l);
        cachedLicense = true;
      }
    }
    const license = toLicense(l);
    let entry = cachedLicense ? this.hot.lease(leaseId, instanceId) : undefined;
    if (!entry) {
      // The lease, its device, its instances and the license's waiters in one statement (each statement on a file costs a
      // read transaction).
      const at = now ?? 0;
      const row = this.s.leaseWithDevice.get({ leaseId, licenseId: license.id, instanceId, since: at - QUEUE_POLL_WINDOW_MS, now: at }) as
        | Row
        | undefined;
      if (!row) return { license, lease: undefined, device: undefined };
      if (now !== undefined) license.waiting = num(row.waiting);
      entry = { row, instances: JSON.parse(row.instances as string) as InstanceTuple[] };
      if (fill && cachedLicense) this.hot.keepLease(leaseId, instanceId, entry);
    } else if (entry.row.license_id !== license.id) return { license, lease: undefined, device: undefined };
    else if (now !== undefined) license.waiting = 0;
    const row = entry.row;
    const instances = entry.instances.map(
      ([instance_id, started_at, last_heartbeat_at, expires_at, device_id, meta, features, session_key]) =>
        toInstance({ instance_id, started_at, last_heartbeat_at, expires_at, device_id, meta, features, session_key }),
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

  /** What the heartbeat cache holds, and how often it answered (tests, the bench). */
  hotReadStats() {
    return { ...this.hot.size, hits: this.hot.hits, misses: this.hot.misses };
  }

  /** Drops what an applied effect changes from the heartbeat cache (`hotReads.ts`). */
  private forget(e: Effect): void {
    const hot = this.hot;
    switch (e.type) {
      case 'license.insert':
      case 'license.update':
        hot.dropLicense(e.license.id);
        break;
      case 'license.trialStarted':
      case 'seats':
      case 'seats.set':
        hot.dropLicense(e.licenseId);
        break;
      case 'waiter.put':
        hot.dropLicense(e.waiter.licenseId);
        break;
      case 'device.upsert':
        hot.dropDevice(e.device.id);
        break;
      case 'lease.insert':
      case 'lease.update':
        hot.dropLease(e.lease.id);
        break;
      case 'lease.delete':
      case 'instance.put':
      case 'instance.delete':
        hot.dropLease(e.leaseId);
        break;
      case 'lease.renew':
        hot.dropLease(e.renewal.leaseId);
        break;
      // A license deleted with its rows, and (rare, admin) changes to what licenses belong to: everything goes.
      case 'license.delete':
      case 'product.insert':
      case 'product.update':
      case 'product.delete':
      case 'customer.insert':
      case 'customer.update':
      case 'customer.delete':
        hot.clear();
        break;
      default:
        // audit, usage, waiters that leave (a cached license has none), tokens, webhooks, kv: not read by a heartbeat
        break;
    }
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

  async listLicenses(page: PageRequest & { productId?: string | undefined; customerId?: string | undefined }): Promise<PageOf<License>> {
    const after = decodeCursor(page.cursor);
    const rows = page.customerId
      ? (this.s.listLicensesOfCustomer.all({
          customerId: page.customerId,
          productId: page.productId ?? null,
          after,
          limit: page.limit + 1,
        }) as Row[])
      : page.productId
        ? (this.s.listLicensesOfProduct.all(page.productId, after, page.limit + 1) as Row[])
        : (this.s.listLicenses.all(after, page.limit + 1) as Row[]);
    return paged(rows, page.limit, toLicense);
  }

  async getCustomer(id: string) {
    const row = this.s.customer.get(id) as Row | undefined;
    return row && toCustomer(row);
  }

  async listCustomers(page: PageRequest & { search?: string | undefined; id?: string | undefined }): Promise<PageOf<Customer>> {
    const like = page.search ? `%${likeEscaped(page.search)}%` : null;
    const rows = this.s.listCustomers.all({
      after: decodeCursor(page.cursor),
      id: page.id ?? null,
      search: page.search ?? null,
      like,
      limit: page.limit + 1,
    }) as Row[];
    return paged(rows, page.limit, toCustomer);
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
    if (filter.customerId) add('license_id IN (SELECT id FROM licenses WHERE customer_id = ?)', filter.customerId);
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
    return withFeatureUsage(
      fillHours(rows, from, to, before ? num(before.seats_at_end) : 0),
      this.s.featureUsage_range.all(licenseId, from, to) as Row[],
    );
  }

  async waitingCounts(now: number): Promise<Map<string, number>> {
    const rows = this.s.waitingCounts.all({ since: now - QUEUE_POLL_WINDOW_MS, now }) as Row[];
    return new Map(rows.map((r) => [String(r.license_id), num(r.n)]));
  }

  async featureSeats(licenseId: string): Promise<Record<string, number>> {
    return countNames(this.s.featuresHeld.all(licenseId) as Row[]);
  }

  // Retention: each call is one small batch in its own place in the write queue, so a seat transaction waits at most one batch.
  pruneAudit(before: number, limit: number): Promise<number> {
    return this.transaction(async () => this.s.pruneAudit.run({ before, limit }).changes);
  }

  pruneUsage(before: number, limit: number): Promise<number> {
    return this.transaction(
      async () =>
        this.s.pruneUsage.run({ lastHour: before - HOUR_MS, limit }).changes +
        this.s.pruneFeatureUsage.run({ lastHour: before - HOUR_MS, limit }).changes,
    );
  }

  async expiryStats(licenseId: string, now: number) {
    const row = this.s.expiryStats.get(now, now, licenseId) as Row;
    return { dead: num(row.dead), earliestExpiry: numOrNull(row.earliest) };
  }

  async sweepScan(now: number, cursor: string | null, limit: number) {
    return sweepPage(
      cursor,
      limit,
      (from) =>
        (from.phase === 'lease' ? this.s.sweepLeases : this.s.sweepUses)
          .raw()
          .all({ now, at: from.at, a: from.a, b: from.b, limit }) as SweepRow[],
    );
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

  /**
   * Licenses whose stored counters were counted equal to their lease rows (service/seatCounters.ts), with this
   * connection's `PRAGMA data_version` then: it changes when any other connection commits to the file (another
   * process's sqlite3 included), never for this connection's own commits, which keep counters and rows together.
   * Cleared whenever a transaction fails (a rolled-back group may have held a repair).
   */
  private readonly verified = new Map<string, { version: number; uses: number }>();
  /** The heartbeat's read in memory, valid for `hotVersion` of `PRAGMA data_version` (leaseOfKey). */
  private readonly hot = new HotReads();
  private hotVersion = -1;

  private dataVersion(): number {
    return num(this.s.dataVersion.get());
  }

  /** Whether `licenseId`'s counters may be taken as counted; `use` counts towards the periodic recount. */
  countersTrusted(licenseId: string, use = false): boolean {
    const v = this.verified.get(licenseId);
    if (!v) return false;
    if (v.version !== this.dataVersion() || v.uses >= RECOUNT_EVERY) {
      this.verified.delete(licenseId);
      return false;
    }
    if (use) v.uses++;
    return true;
  }

  async seatTotals() {
    const row = this.s.seatTotals.get() as Row;
    return { seatsUsed: num(row.used), seatsOffline: num(row.offline) };
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

  async listWebhooks(): Promise<WebhookEndpoint[]> {
    return (this.s.listWebhooks.all() as Row[]).map(toWebhook);
  }

  async getWebhook(id: string): Promise<WebhookEndpoint | undefined> {
    const row = this.s.webhook.get(id) as Row | undefined;
    return row && toWebhook(row);
  }

  async claimDeliveries(now: number, until: number, limit: number): Promise<ClaimedDelivery[]> {
    // One writer at a time (the one process that owns the file): select and mark in one immediate transaction.
    return this.db
      .transaction(() => {
        const ids = (this.s.dueDeliveries.all({ now, limit }) as Row[]).map((r) => String(r.id));
        for (const id of ids) this.s.claimDelivery.run({ id, until });
        return ids.map((id) => toClaimed(this.s.claimedDelivery.get(id) as Row));
      })
      .immediate();
  }

  async recordAttempt(deliveryId: string, attempt: DeliveryAttempt, next: { state: DeliveryState; nextAttemptAt: number | null }) {
    this.db
      .transaction(() => {
        this.s.recordAttempt.run({ id: deliveryId, ...attempt });
        this.s.settleDelivery.run({ id: deliveryId, state: next.state, nextAttemptAt: next.nextAttemptAt, at: attempt.at });
      })
      .immediate();
  }

  async listDeliveries(webhookId: string, page: PageRequest & { state?: DeliveryState | undefined }): Promise<PageOf<DeliveryView>> {
    const rows = this.s.deliveries.all({
      webhookId,
      state: page.state ?? null,
      before: decodeCursor(page.cursor),
      limit: page.limit + 1,
    }) as Row[];
    const items = rows.slice(0, page.limit).map((r) => toDelivery(r, this.s.attemptsOf.all(r.id) as Row[]));
    const last = rows[page.limit - 1];
    return { items, nextCursor: rows.length > page.limit && last ? encodeCursor(num(last.seq)) : null };
  }

  async getDelivery(id: string): Promise<DeliveryView | undefined> {
    const row = this.s.delivery.get(id) as Row | undefined;
    return row && toDelivery(row, this.s.attemptsOf.all(id) as Row[]);
  }

  async redeliver(id: string, now: number): Promise<boolean> {
    return this.s.redeliver.run({ id, now }).changes > 0;
  }

  async releaseDeliveryClaims(): Promise<void> {
    this.s.releaseClaims.run();
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
    // and the syncs their callers wait for (the file stays open until they end)
    await this.walSync.idle();
    if (this.walFd !== undefined) closeSync(this.walFd);
    this.walFd = undefined;
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
    features: namesColumn(l.features),
  };
}

function auditParams(a: AuditEntry) {
  return [a.at, a.type, a.actor, a.licenseId, a.deviceId, a.leaseId, a.reason, JSON.stringify(a.data)] as const;
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
