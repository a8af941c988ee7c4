// Leases written straight into a floatd SQLite file (the scale run of bench/run.mjs, and bench/sweep-floor.mjs):
// licenses of 1,000 leases, each lease with its device and one instance, ids random as floatd makes them (ids.ts),
// so a lease's rows land on random pages of the id-keyed indexes, as on a real server. Each lease and use has what
// floatd writes with it: the share group and the use's device (before 2026-12-07 they were left empty, which put every
// entry of the indexes on them on a few neighbouring pages and made a sweep look cheaper than floatd's rows make it).
import { randomBytes } from 'node:crypto';
import { formatKey } from '@floatd/protocol';

const PER = 1000;
const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** An id of floatd's form (prefix, `_`, 20 random base-62 characters). */
export const randomId = (prefix) => `${prefix}_${Array.from(randomBytes(20), (b) => ID_CHARS[b % 62]).join('')}`;

/**
 * Fills an open better-sqlite3 database (floatd's schema, a product `productId`) with `total` leases, the first
 * `expired` of them dead an hour ago, the others alive for a day. Returns the licenses' keys and, per dead license,
 * its id and its leases as [lease id, device id]. With `spread`, the dead are spread over every license instead (the
 * same share of each), as a network outage that cut a share of every customer's users leaves them.
 */
export function fillLeases(db, productId, total, expired, now, { spread = false } = {}) {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const lic =
    db.prepare(`INSERT INTO licenses (id, product_id, key, seats, model, expires_at, trial_days, trial_started_at, lease_ttl_seconds,
      heartbeat_interval_seconds, max_offline_seconds, max_offline_seats, max_instances_per_device, counting, suspended, metadata,
      seats_used, seats_offline, created_at, updated_at)
    VALUES (?, ?, ?, ?, 'permanent', NULL, NULL, NULL, 86400, 3600, 0, NULL, 1, 'per-device', 0, '{}', ?, 0, ?, ?)`);
  const dev = db.prepare(
    'INSERT INTO devices (id, license_id, fingerprint, hostname, user_name, app_version, first_seen_at, last_accessed_at) VALUES (?, ?, ?, NULL, NULL, NULL, ?, ?)',
  );
  const lease = db.prepare(
    `INSERT INTO leases (id, license_id, device_id, offline, granted_at, last_heartbeat_at, expires_at, offline_expires_at, share_group)
      VALUES (?, ?, ?, 0, ?, ?, ?, NULL, ?)`,
  );
  // A use carries its lease's license since migration 12 (a `--before` build's schema may not have the column).
  const useLicense = db.prepare("SELECT 1 FROM pragma_table_info('instances') WHERE name = 'license_id'").get() !== undefined;
  const instSql = useLicense
    ? 'INSERT INTO instances (lease_id, instance_id, started_at, last_heartbeat_at, expires_at, device_id, license_id) VALUES (?, ?, ?, ?, ?, ?, ?)'
    : 'INSERT INTO instances (lease_id, instance_id, started_at, last_heartbeat_at, expires_at, device_id) VALUES (?, ?, ?, ?, ?, ?)';
  const insertUse = db.prepare(instSql);
  const inst = { run: (...args) => (useLicense ? insertUse.run(...args) : insertUse.run(...args.slice(0, 6))) };
  const licenses = Math.ceil(total / PER);
  const expiredLicenses = Math.ceil(expired / PER);
  const keys = [];
  /** [license id, [lease id, device id][]] of the dead */
  const dead = [];
  const fill = db.transaction((l) => {
    const id = `lic_scale${String(l).padStart(15, '0')}`;
    // A well-formed key (Crockford base32 and its check symbol): a server looks up only what normalizeKey accepts.
    const key = formatKey(`5CA1E${String(l).padStart(19, '0')}`);
    const n = Math.min(PER, total - l * PER);
    /** the license's dead leases: all or none, or with `spread` its share */
    const deadHere = spread
      ? Math.round(((l + 1) * expired) / licenses) - Math.round((l * expired) / licenses)
      : l < expiredLicenses
        ? n
        : 0;
    lic.run(id, productId, key, n + 100, n, now, now);
    const uses = [];
    for (let i = 0; i < n; i++) {
      const isDead = i < deadHere;
      const expiresAt = isDead ? now - 3_600_000 : now + 86_400_000;
      const d = randomId('dev');
      const s = randomId('lse');
      dev.run(d, id, `scale-${l}-${i}`, now, now);
      lease.run(s, id, d, now, now, expiresAt, `device=${d}`);
      inst.run(s, 'app', now, now, expiresAt, d, id);
      if (isDead) uses.push([s, d]);
    }
    keys.push({ key, expired: deadHere === n });
    if (deadHere) dead.push([id, uses]);
  });
  for (let l = 0; l < licenses; l++) fill(l);
  db.pragma('wal_checkpoint(TRUNCATE)');
  return { keys, dead };
}
