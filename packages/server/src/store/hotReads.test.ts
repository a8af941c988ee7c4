/**
 * The heartbeat's read in memory on SQLite (store/sqlite/hotReads.ts, issue #17). What it must never do is answer
 * a heartbeat from rows that are no longer the file's. Tried here on a real file, through the real services:
 * - a long random run of checkouts, heartbeats (batched renewals), check-ins, second instances, force releases,
 *   license changes, sweeps, clock moves and edits by another connection: after every step, each use's read from
 *   the cache equals the read a second connection makes from the file;
 * - what a customer who wants a free seat would try: delete a held lease's row (or suspend nothing, or move its
 *   expiry) with sqlite3 on the live file while the server keeps answering its heartbeats from memory: the next
 *   heartbeat reads the file, and the freed seat is not held twice;
 * - a failed transaction empties the cache.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { rm } from 'node:fs/promises';
import { sqliteWorld } from '../testing/sqliteWorld.js';
import { SqliteStore } from './sqlite/store.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function world(seats: number, ttl = 600) {
  const w = await sqliteWorld({ prefix: 'floatd-hot-', seats, leaseTtlSeconds: ttl, heartbeatIntervalSeconds: 60, renewalBatchMs: 1000 });
  dirs.push(w.dir);
  const { store, path, clock, catalogue, licensing, reclaim } = w;
  const renewals = w.renewals!;
  /** Another connection on the same file: what the file holds (its reads never move the server's data_version). */
  const reader = new SqliteStore({ path });
  const other = () => {
    const db = new Database(path);
    db.pragma('busy_timeout = 5000');
    return db;
  };
  return { store, reader, other, clock, renewals, catalogue, licensing, reclaim, license: w.license, key: w.key };
}

const stats = (store: SqliteStore) => store.hotReadStats();

test('a long random run: every read from the cache equals what another connection reads from the file', async () => {
  const w = await world(6);
  let seed = 17;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Math.floor((seed / 2 ** 31) * n); // the high bits: an LCG's low bits repeat with a short period
  };
  /** the uses asked about: lease id and instance id (some gone, which must read as gone) */
  const uses: { leaseId: string; instanceId: string; fingerprint: string }[] = [];
  const compare = async (step: string) => {
    const now = w.clock.now();
    for (const u of uses) {
      const hot = await w.store.leaseOfKey(w.key, u.leaseId, u.instanceId, now);
      const file = await w.reader.leaseOfKey(w.key, u.leaseId, u.instanceId, now);
      assert.deepEqual(hot, file, `${step}: ${u.leaseId}/${u.instanceId}`);
    }
  };
  const ops = [
    async () => {
      const fp = `dev-${rnd(10)}`;
      const instanceId = `app-${rnd(3)}`;
      const g = await w.licensing.checkout(w.key, { fingerprint: fp, instanceId });
      if (g.ok) uses.push({ leaseId: g.value.granted.lease.id, instanceId, fingerprint: fp });
      return 'checkout';
    },
    async () => {
      const u = uses[rnd(uses.length)];
      if (u) await w.licensing.heartbeat(w.key, u.leaseId, u.instanceId, { token: false });
      return 'heartbeat';
    },
    async () => {
      const u = uses[rnd(uses.length)];
      if (u) await w.licensing.heartbeat(w.key, u.leaseId, u.instanceId, { token: false });
      return 'heartbeat';
    },
    async () => {
      await w.renewals.flush();
      return 'flush';
    },
    async () => {
      const u = uses[rnd(uses.length)];
      if (u) await w.licensing.checkin(w.key, u.leaseId, u.instanceId);
      return 'checkin';
    },
    async () => {
      w.clock.advance(rnd(3) === 0 ? 700_000 : 20_000);
      return 'clock';
    },
    async () => {
      const u = uses[rnd(uses.length)];
      if (u) await w.catalogue.releaseLease(u.leaseId, true, 'test');
      return 'force release';
    },
    async () => {
      await w.catalogue.updateLicense(w.license.id, { suspended: rnd(4) === 0, seats: 4 + rnd(4) } as never, 'test');
      return 'license update';
    },
    async () => {
      await w.reclaim.sweep('test');
      return 'sweep';
    },
    async () => {
      const u = uses[rnd(uses.length)];
      if (!u) return 'external edit';
      if (rnd(3) !== 0) return 'no edit';
      const db = w.other();
      db.prepare('UPDATE leases SET expires_at = expires_at + 1 WHERE id = ?').run(u.leaseId);
      db.close();
      return 'external edit';
    },
  ];
  for (let i = 0; i < 600; i++) {
    const step = await ops[rnd(ops.length)]!();
    await compare(`step ${i} (${step})`);
  }
  const s = stats(w.store);
  assert.ok(s.hits > 1000, `the cache answered (${JSON.stringify(s)})`);
  w.store.close();
  w.reader.close();
});

test('another process deletes a held lease on the live file: the next heartbeat is refused, and the seat is not held twice', async () => {
  const w = await world(1);
  const g = await w.licensing.checkout(w.key, { fingerprint: 'holder', instanceId: 'app' });
  assert.ok(g.ok);
  const leaseId = g.value.granted.lease.id;
  for (let i = 0; i < 3; i++) assert.ok((await w.licensing.heartbeat(w.key, leaseId, 'app', { token: false })).ok);
  const before = stats(w.store).hits;
  assert.ok(before >= 2, 'heartbeats answered from memory');
  const db = w.other();
  db.prepare('DELETE FROM instances WHERE lease_id = ?').run(leaseId);
  db.prepare('DELETE FROM leases WHERE id = ?').run(leaseId);
  db.close();
  const hb = await w.licensing.heartbeat(w.key, leaseId, 'app', { token: false });
  assert.equal(hb.ok, false, 'the deleted lease is not renewed from memory');
  // The freed seat goes to someone else, once; the old holder cannot come back on it.
  assert.ok((await w.licensing.checkout(w.key, { fingerprint: 'newcomer', instanceId: 'app' })).ok);
  const again = await w.licensing.heartbeat(w.key, leaseId, 'app', { token: false });
  assert.equal(again.ok, false);
  w.store.close();
  w.reader.close();
});

test('another process suspends the license or moves a lease into the past: the next heartbeat sees it', async () => {
  const w = await world(2, 600);
  const g = await w.licensing.checkout(w.key, { fingerprint: 'holder', instanceId: 'app' });
  assert.ok(g.ok);
  const leaseId = g.value.granted.lease.id;
  assert.ok((await w.licensing.heartbeat(w.key, leaseId, 'app', { token: false })).ok);
  assert.ok((await w.licensing.heartbeat(w.key, leaseId, 'app', { token: false })).ok);
  let db = w.other();
  db.prepare('UPDATE licenses SET suspended = 1 WHERE id = ?').run(w.license.id);
  db.close();
  const refused = await w.licensing.heartbeat(w.key, leaseId, 'app', { token: false });
  assert.equal(refused.ok, false, JSON.stringify(refused));
  db = w.other();
  db.prepare('UPDATE licenses SET suspended = 0 WHERE id = ?').run(w.license.id);
  db.close();
  assert.ok((await w.licensing.heartbeat(w.key, leaseId, 'app', { token: false })).ok);
  // An expiry moved into the past is read: the heartbeat goes the locked way (a revival), not the batched one.
  await w.renewals.flush();
  db = w.other();
  db.prepare('UPDATE leases SET expires_at = ? WHERE id = ?').run(w.clock.now() - 1, leaseId);
  db.close();
  const read = await w.store.leaseOfKey(w.key, leaseId, 'app', w.clock.now());
  assert.equal(read?.lease?.expiresAt, w.clock.now() - 1);
  w.store.close();
  w.reader.close();
});

test('a failed transaction empties the cache', async () => {
  const w = await world(2);
  const g = await w.licensing.checkout(w.key, { fingerprint: 'holder', instanceId: 'app' });
  assert.ok(g.ok);
  await w.licensing.heartbeat(w.key, g.value.granted.lease.id, 'app', { token: false });
  await w.licensing.heartbeat(w.key, g.value.granted.lease.id, 'app', { token: false });
  assert.ok(stats(w.store).leases > 0);
  await assert.rejects(
    w.store.transaction(async () => {
      throw new Error('a unit that fails');
    }),
  );
  assert.deepEqual({ ...stats(w.store), hits: 0, misses: 0 }, { licenses: 0, leases: 0, hits: 0, misses: 0 });
  w.store.close();
  w.reader.close();
});
