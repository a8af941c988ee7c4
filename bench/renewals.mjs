// What a flush of batched heartbeats costs SQLite (issue #17, docs/performance.md), without a server: a file of
// `--leases` leases written as the scale run writes them (bench/populate.mjs: random ids of floatd's form), then
// `--rounds` flushes, each renewing `--renewals` random leases with floatd's three UPDATE statements (store.ts
// renewLease, renewInstance, renewDevice), in transactions of `--part` renewals (RENEWALS_PER_TRANSACTION), in random
// order or in lease id order as SqliteStore.renew writes them since 2026-12-06. Prints µs per renewal: statements,
// COMMIT, total.
//   node bench/renewals.mjs [--leases 10000] [--renewals 7000] [--part 500] [--rounds 10]
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
const LEASES = flag('leases', 10_000);
const RENEWALS = Math.min(LEASES, flag('renewals', 7_000));
const PART = flag('part', 500);
const ROUNDS = flag('rounds', 10);

for (const order of ['random', 'lease id']) {
  const dir = mkdtempSync(join(tmpdir(), 'floatd-renewals-'));
  try {
    const path = join(dir, 'floatd.db');
    new SqliteStore({ path }).close(); // floatd's schema
    const db = new Database(path);
    db.prepare("INSERT INTO products (id, name, created_at, updated_at, metadata) VALUES ('prd_renew', 'renew', 0, 0, '{}')").run();
    fillLeases(db, 'prd_renew', LEASES, 0, Date.now());
    // floatd's settings (store/sqlite/store.ts): the WAL synced by floatd after COMMIT, so NORMAL here
    db.pragma('synchronous = NORMAL');
    db.pragma('cache_size = -65536');
    db.pragma('temp_store = MEMORY');
    const uses = db
      .prepare(
        'SELECT l.id AS leaseId, l.device_id AS deviceId, i.instance_id AS instanceId FROM leases l JOIN instances i ON i.lease_id = l.id',
      )
      .all();
    const renewLease = db.prepare(`UPDATE leases SET last_heartbeat_at = MAX(last_heartbeat_at, @at),
        expires_at = CASE WHEN @expiresAt IS NULL OR expires_at IS NULL THEN @expiresAt ELSE MAX(expires_at, @expiresAt) END
      WHERE id = @leaseId AND offline = 0`);
    const renewInstance = db.prepare(`UPDATE instances SET last_heartbeat_at = MAX(last_heartbeat_at, @at),
        expires_at = CASE WHEN @expiresAt IS NULL OR expires_at IS NULL THEN @expiresAt ELSE MAX(expires_at, @expiresAt) END
      WHERE lease_id = @leaseId AND instance_id = @instanceId`);
    const renewDevice = db.prepare('UPDATE devices SET last_accessed_at = MAX(last_accessed_at, @at) WHERE id = @deviceId');
    let at = Date.now();
    let statementsMs = 0;
    let commitMs = 0;
    let n = 0;
    for (let round = 0; round < ROUNDS; round++) {
      at += 1000;
      const batch = uses.map((u) => ({ ...u, at, expiresAt: at + 3_600_000 }));
      for (let i = batch.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [batch[i], batch[j]] = [batch[j], batch[i]];
      }
      const flush = batch.slice(0, RENEWALS);
      if (order === 'lease id') flush.sort((a, b) => (a.leaseId < b.leaseId ? -1 : a.leaseId > b.leaseId ? 1 : 0));
      for (let i = 0; i < flush.length; i += PART) {
        const t0 = performance.now();
        db.exec('BEGIN IMMEDIATE');
        for (const r of flush.slice(i, i + PART)) {
          if (renewLease.run(r).changes === 1) renewInstance.run(r);
          renewDevice.run(r);
        }
        const t1 = performance.now();
        db.exec('COMMIT');
        statementsMs += t1 - t0;
        commitMs += performance.now() - t1;
        n += Math.min(PART, flush.length - i);
      }
    }
    const us = (ms) => ((1000 * ms) / n).toFixed(1);
    console.log(
      `${order} order, ${RENEWALS} of ${LEASES} leases a flush in parts of ${PART}: µs per renewal: statements ${us(statementsMs)}, COMMIT ${us(commitMs)}, total ${us(statementsMs + commitMs)}`,
    );
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
