// The SQL floor of a large sweep on SQLite (issue #17, docs/performance.md): no floatd server, no decision, no HTTP —
// only the statements a sweep must run, on floatd's own schema, on a file of `--leases` leases written as the scale
// run writes them (bench/populate.mjs: 1,000 per license, random ids of floatd's form), the first `--expired` dead:
//   read each batch (leases and instances by id), delete its instances and leases, insert one audit entry per lease,
//   and COMMIT every `--group` licenses (floatd's reclaimer on PostgreSQL shares one commit between the batches of 4
//   licenses), or with `--by-id N` every N leases in lease id order across licenses (floatd's on SQLite on the morning
//   of 2026-12-07: 4 transactions of 1,000 share a commit, so `--by-id 4000`), or with `--by-license N` every N leases
//   in license, then lease id order (floatd's on SQLite since: `--by-license 4000`).
// `--spread`: the dead are a share of every license (bench/populate.mjs), not whole licenses.
// It prints where the time went. `--autocheckpoint N` sets `wal_autocheckpoint` (floatd keeps SQLite's 1,000 pages),
// `--cache-mib N` the page cache (floatd's is 64 MiB; 256 made no difference in one run against 64).
// `--release`: the floor of a sweep that frees leases without deleting their rows (a "logical release", not floatd's
// design): each batch is read as before, its lease ids go into a small table of released leases, and the audit entries
// are written; nothing is deleted (the rows would be removed later, off the seat path).
// `--watermark`: the floor of a sweep that frees a license's dead leases by moving a mark on the license (not floatd's
// design): leases of a license that expired at or before its `released_through` would hold no seat and be read as gone;
// per license, one read of the dead leases' ids (an index range), one UPDATE of the license (the mark and its seat
// count) and one audit entry listing the ids. Then it measures, apart, the purge that must still delete the rows
// later (instances and leases, no audit entries, the same groups).
//   node bench/sweep-floor.mjs [--leases 1000000] [--expired 100000] [--group 4 | --by-id 4000 | --by-license 4000] [--spread] [--autocheckpoint 1000] [--cache-mib 64] [--release | --watermark]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../packages/server/dist/store/sqlite/store.js';
import { fillLeases } from './populate.mjs';

const flag = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i > 0 ? process.argv[i + 1] : dflt);
};
const TOTAL = flag('leases', 1_000_000);
const EXPIRED = flag('expired', 100_000);
const GROUP = flag('group', 4);
const AUTOCHECKPOINT = flag('autocheckpoint', 1000);

const dir = mkdtempSync(join(tmpdir(), 'floatd-sweep-floor-'));
try {
  const path = join(dir, 'floatd.db');
  new SqliteStore({ path }).close(); // floatd's schema
  const db = new Database(path);
  db.prepare("INSERT INTO products (id, name, created_at, updated_at, metadata) VALUES ('prd_floor', 'floor', 0, 0, '{}')").run();
  const { dead } = fillLeases(db, 'prd_floor', TOTAL, EXPIRED, Date.now(), { spread: process.argv.includes('--spread') });
  const now = Date.now();
  // floatd's settings (store/sqlite/store.ts)
  db.pragma('synchronous = FULL');
  db.pragma(`cache_size = -${flag('cache-mib', 64) * 1024}`);
  db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT}`);

  if (process.argv.includes('--watermark')) watermark(db, dead, now);
  else sweep(db, dead, now);
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** A timer adding each call's milliseconds to `ms[k]`; returns what the call returned. */
function timerInto(ms) {
  return (k, fn) => {
    const t = performance.now();
    const r = fn();
    ms[k] += performance.now() - t;
    return r;
  };
}

/** The deletes of a batch's uses and leases (a JSON array of lease ids), as floatd's reclaimer runs them. */
function deletes(db) {
  return [
    db.prepare('DELETE FROM instances WHERE lease_id IN (SELECT value FROM json_each(?))'),
    db.prepare('DELETE FROM leases WHERE id IN (SELECT value FROM json_each(?))'),
  ];
}

/** The sweep as floatd runs it (deletes and one audit entry per lease), or with `--release` the logical release. */
function sweep(db, dead, now) {
  const read = [
    db.prepare('SELECT * FROM leases WHERE id IN (SELECT value FROM json_each(?)) AND +license_id = ?'),
    db.prepare('SELECT * FROM instances WHERE lease_id IN (SELECT value FROM json_each(?)) ORDER BY started_at'),
  ];
  const RELEASE = process.argv.includes('--release');
  if (RELEASE) db.exec('CREATE TABLE released (lease_id TEXT PRIMARY KEY, license_id TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID');
  const release = RELEASE && db.prepare('INSERT INTO released (lease_id, license_id, at) SELECT value, ?, ? FROM json_each(?)');
  const del = RELEASE ? [] : deletes(db);
  const audit = db.prepare(
    'INSERT INTO audit (at, type, actor, license_id, device_id, lease_id, reason, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const ms = { read: 0, delete: 0, audit: 0, commit: 0 };
  const timed = timerInto(ms);
  const t0 = performance.now();
  // `--by-id N`: transactions of N leases in lease id order across licenses (each license's part of one as a batch);
  // `--by-license N`: the same in license, then lease id order
  const BY_LICENSE = flag('by-license', 0);
  const BY_ID = flag('by-id', 0) || BY_LICENSE;
  const groups = [];
  if (BY_ID) {
    const all = dead.flatMap(([licenseId, uses]) => uses.map((u) => [licenseId, u]));
    if (BY_LICENSE) all.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1][0] < b[1][0] ? -1 : 1));
    else all.sort((a, b) => (a[1][0] < b[1][0] ? -1 : 1));
    for (let i = 0; i < all.length; i += BY_ID) {
      const m = new Map();
      for (const [licenseId, u] of all.slice(i, i + BY_ID)) (m.get(licenseId) ?? m.set(licenseId, []).get(licenseId)).push(u);
      groups.push([...m]);
    }
  } else for (let g = 0; g < dead.length; g += GROUP) groups.push(dead.slice(g, g + GROUP));
  for (const group of groups) {
    db.exec('BEGIN IMMEDIATE');
    for (const [licenseId, uses] of group) {
      const ids = JSON.stringify(uses.map(([s]) => s));
      timed('read', () => {
        read[0].all(ids, licenseId);
        read[1].all(ids);
      });
      timed('delete', () => {
        for (const st of del) st.run(ids);
        if (RELEASE) release.run(licenseId, now, ids);
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
      mode: RELEASE ? 'release' : 'delete',
      spread: process.argv.includes('--spread'),
      ...(BY_ID ? { leasesPerCommit: BY_ID, order: BY_LICENSE ? 'license' : 'lease' } : { licensesPerCommit: GROUP }),
      walAutocheckpoint: AUTOCHECKPOINT,
      total_ms: round(total),
      read_ms: round(ms.read),
      [RELEASE ? 'release_ms' : 'delete_ms']: round(ms.delete),
      audit_ms: round(ms.audit),
      commit_ms: round(ms.commit),
    }),
  );
}

/** `--watermark`: the release by a mark per license, then the purge of the rows it leaves (see the head comment). */
function watermark(db, dead, now) {
  db.exec('ALTER TABLE licenses ADD COLUMN released_through INTEGER NOT NULL DEFAULT 0');
  // The licenses a sweep frees in: a range of the expiry index (floatd's `leases_sweep`), as sweepScan finds them.
  const licensesDue = db.prepare('SELECT DISTINCT license_id FROM leases WHERE expires_at IS NOT NULL AND expires_at <= ?').pluck();
  const deadOf = db.prepare(
    `SELECT l.id, l.device_id FROM leases l JOIN licenses c ON c.id = l.license_id
     WHERE l.license_id = ? AND l.expires_at > c.released_through AND l.expires_at <= ?`,
  );
  const mark = db.prepare('UPDATE licenses SET released_through = ?, seats_used = seats_used - ? WHERE id = ?');
  const audit = db.prepare(
    "INSERT INTO audit (at, type, actor, license_id, device_id, lease_id, reason, data) VALUES (?, 'leases.released', 'reclaimer', ?, NULL, NULL, 'expired', ?)",
  );
  const ms = { scan: 0, read: 0, mark: 0, audit: 0, commit: 0 };
  const timed = timerInto(ms);
  const t0 = performance.now();
  const licenses = timed('scan', () => licensesDue.all(now));
  let freed = 0;
  for (let g = 0; g < licenses.length; g += GROUP) {
    db.exec('BEGIN IMMEDIATE');
    for (const licenseId of licenses.slice(g, g + GROUP)) {
      const rows = timed('read', () => deadOf.all(licenseId, now));
      timed('mark', () => mark.run(now, rows.length, licenseId));
      timed('audit', () => audit.run(now, licenseId, JSON.stringify({ leases: rows.map((r) => [r.id, r.device_id]) })));
      freed += rows.length;
    }
    timed('commit', () => db.exec('COMMIT'));
  }
  const release = performance.now() - t0;
  // The purge: the rows are still there and must go (every read would otherwise skip them for good).
  const del = deletes(db);
  const t1 = performance.now();
  for (let g = 0; g < dead.length; g += GROUP) {
    db.exec('BEGIN IMMEDIATE');
    for (const [, uses] of dead.slice(g, g + GROUP)) {
      const ids = JSON.stringify(uses.map(([s]) => s));
      for (const st of del) st.run(ids);
    }
    db.exec('COMMIT');
  }
  const purge = performance.now() - t1;
  const round = (v) => Math.round(v);
  console.log(
    JSON.stringify({
      leases: TOTAL,
      freed,
      mode: 'watermark',
      licensesPerCommit: GROUP,
      walAutocheckpoint: AUTOCHECKPOINT,
      release_ms: round(release),
      scan_ms: round(ms.scan),
      read_ms: round(ms.read),
      mark_ms: round(ms.mark),
      audit_ms: round(ms.audit),
      commit_ms: round(ms.commit),
      purge_ms: round(purge),
    }),
  );
}
