// The SQL floor of a large sweep on SQLite (issue #17, docs/performance.md): no floatd server, no decision, no HTTP —
// only the statements a sweep must run, on floatd's own schema, on a file of `--leases` leases (1,000 per license,
// random ids of floatd's form) of which the first `--expired` are dead:
//   read each batch (leases and instances by id), delete its instances and leases, insert one audit entry per lease,
//   and COMMIT every `--group` licenses (floatd's reclaimer shares one commit between the batches of 4 licenses).
// It prints where the time went. `--autocheckpoint N` sets `wal_autocheckpoint` (floatd keeps SQLite's 1,000 pages).
//   node bench/sweep-floor.mjs [--leases 1000000] [--expired 100000] [--group 4] [--autocheckpoint 1000]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../packages/server/dist/store/sqlite/store.js';

const flag = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i > 0 ? process.argv[i + 1] : dflt);
};
const TOTAL = flag('leases', 1_000_000);
const EXPIRED = flag('expired', 100_000);
const GROUP = flag('group', 4);
const AUTOCHECKPOINT = flag('autocheckpoint', 1000);
const PER = 1000;

const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const randomId = (prefix) => `${prefix}_${Array.from(randomBytes(20), (b) => ID_CHARS[b % 62]).join('')}`;

const dir = mkdtempSync(join(tmpdir(), 'floatd-sweep-floor-'));
try {
  const path = join(dir, 'floatd.db');
  new SqliteStore({ path }).close(); // floatd's schema
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  db.prepare("INSERT INTO products (id, name, created_at, updated_at, metadata) VALUES ('prd_floor', 'floor', 0, 0, '{}')").run();
  const now = Date.now();
  const lic = db.prepare(`INSERT INTO licenses (id, product_id, key, seats, model, expires_at, trial_days, trial_started_at,
      lease_ttl_seconds, heartbeat_interval_seconds, max_offline_seconds, max_offline_seats, max_instances_per_device, counting,
      suspended, metadata, seats_used, seats_offline, created_at, updated_at)
    VALUES (?, 'prd_floor', ?, ?, 'permanent', NULL, NULL, NULL, 86400, 3600, 0, NULL, 1, 'per-device', 0, '{}', ?, 0, ?, ?)`);
  const dev = db.prepare(`INSERT INTO devices (id, license_id, fingerprint, hostname, user_name, app_version, first_seen_at,
      last_accessed_at) VALUES (?, ?, ?, NULL, NULL, NULL, ?, ?)`);
  const lease = db.prepare(`INSERT INTO leases (id, license_id, device_id, offline, granted_at, last_heartbeat_at, expires_at,
      offline_expires_at) VALUES (?, ?, ?, 0, ?, ?, ?, NULL)`);
  const inst = db.prepare(
    'INSERT INTO instances (lease_id, instance_id, started_at, last_heartbeat_at, expires_at) VALUES (?, ?, ?, ?, ?)',
  );
  /** the dead: [license id, [lease id, device id][]] */
  const dead = [];
  db.transaction(() => {
    for (let l = 0; l < TOTAL / PER; l++) {
      const id = randomId('lic');
      const expired = l < EXPIRED / PER;
      lic.run(id, `FLOOR-${l}`, PER + 100, PER, now, now);
      const expiresAt = expired ? now - 3_600_000 : now + 86_400_000;
      const ids = [];
      for (let i = 0; i < PER; i++) {
        const d = randomId('dev');
        const s = randomId('lse');
        dev.run(d, id, `floor-${l}-${i}`, now, now);
        lease.run(s, id, d, now, now, expiresAt);
        inst.run(s, 'app', now, now, expiresAt);
        ids.push([s, d]);
      }
      if (expired) dead.push([id, ids]);
    }
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  // floatd's settings (store/sqlite/store.ts)
  db.pragma('synchronous = FULL');
  db.pragma('cache_size = -65536');
  db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT}`);

  const read = [
    db.prepare('SELECT * FROM leases WHERE id IN (SELECT value FROM json_each(?)) AND license_id = ?'),
    db.prepare('SELECT * FROM instances WHERE lease_id IN (SELECT value FROM json_each(?)) ORDER BY started_at'),
  ];
  const del = [
    db.prepare('DELETE FROM instances WHERE lease_id IN (SELECT value FROM json_each(?))'),
    db.prepare('DELETE FROM leases WHERE id IN (SELECT value FROM json_each(?))'),
  ];
  const audit = db.prepare(
    'INSERT INTO audit (at, type, actor, license_id, device_id, lease_id, reason, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const ms = { read: 0, delete: 0, audit: 0, commit: 0 };
  const timed = (k, fn) => {
    const t = performance.now();
    fn();
    ms[k] += performance.now() - t;
  };
  const t0 = performance.now();
  for (let g = 0; g < dead.length; g += GROUP) {
    db.exec('BEGIN IMMEDIATE');
    for (const [licenseId, uses] of dead.slice(g, g + GROUP)) {
      const ids = JSON.stringify(uses.map(([s]) => s));
      timed('read', () => {
        read[0].all(ids, licenseId);
        read[1].all(ids);
      });
      timed('delete', () => {
        for (const st of del) st.run(ids);
      });
      timed('audit', () => {
        for (const [s, d] of uses) audit.run(now, 'lease.released', 'reclaimer', licenseId, d, s, 'expired', `{"expiredAt":${now}}`);
      });
    }
    timed('commit', () => db.exec('COMMIT'));
  }
  const total = performance.now() - t0;
  const round = (v) => Math.round(v);
  console.log(
    JSON.stringify({
      leases: TOTAL,
      freed: EXPIRED,
      licensesPerCommit: GROUP,
      walAutocheckpoint: AUTOCHECKPOINT,
      total_ms: round(total),
      read_ms: round(ms.read),
      delete_ms: round(ms.delete),
      audit_ms: round(ms.audit),
      commit_ms: round(ms.commit),
    }),
  );
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
