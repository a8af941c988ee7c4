/**
 * Heartbeats that write nothing until needed (service/renewals.ts), over real HTTP on the test store (SQLite, or
 * PostgreSQL with FLOATD_TEST_STORE=postgres), the server's clock moved by hand: the stored rows stay ahead of the
 * holder's next heartbeat, the admin views show the newest heartbeat, a silent holder's seat is freed one TTL after
 * its last heartbeat (not at the older stored expiry), and a server lost with its unwritten renewals frees nobody.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../domain/clock.js';
import { startTestServer, type TestServer } from '../testing/harness.js';

const S = 1000;
const servers: TestServer[] = [];
const dirs: string[] = [];
after(async () => {
  for (const s of servers) await s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A data directory with `t`'s first admin token (a second node's). */
async function adminTokenDir(t: TestServer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-renewals-'));
  dirs.push(dir);
  await copyFile(join(t.dataDir, 'admin-token'), join(dir, 'admin-token'));
  return dir;
}

async function stored(t: TestServer, leaseId: string) {
  const [lease] = await t.rows('SELECT expires_at, last_heartbeat_at FROM leases WHERE id = ?', leaseId);
  const [use] = await t.rows('SELECT expires_at, last_heartbeat_at FROM instances WHERE lease_id = ?', leaseId);
  return { leaseExpires: Number(lease!.expires_at), useExpires: Number(use!.expires_at), useHeartbeat: Number(use!.last_heartbeat_at) };
}

test('heartbeats far from the stored expiry write nothing; each is written before it must be, and the admin views show the newest', async () => {
  const t = await startTestServer();
  servers.push(t);
  // TTL 300 s, heartbeats every 60 s, batches every 1 s (the default): a renewal may stay unwritten while the stored
  // expiry is more than 60 s + 1 s + 10 s (the margin) away, and is written up to two batches before that.
  const lic = await t.license({ seats: 1, leaseTtlSeconds: 300, heartbeatIntervalSeconds: 60 });
  const out = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'renew-dev-1', instanceId: 'app' });
  assert.equal(out.status, 201);
  const id = out.body.lease.id as string;
  const t0 = t.clock.now();
  for (const at of [60, 120, 180]) {
    t.clock.set(t0 + at * S);
    const hb = await t.client(lic.key, 'POST', `/v1/client/leases/${id}/heartbeat`, { instanceId: 'app' });
    assert.equal(hb.status, 200);
    assert.equal(Date.parse(hb.body.lease.expiresAt), t0 + (at + 300) * S, 'the answer has the new expiry');
    // A sweep here changes nothing and writes nothing: the stored expiry (t0 + 300 s) outlives the next heartbeat.
    assert.deepEqual((await t.admin('POST', '/v1/admin/reclaim')).body.freed, []);
    assert.deepEqual(
      await stored(t, id),
      { leaseExpires: t0 + 300 * S, useExpires: t0 + 300 * S, useHeartbeat: t0 },
      `after the heartbeat at ${at} s`,
    );
  }
  assert.match((await t.raw('GET', '/metrics')).body as string, /^floatd_heartbeat_renewals_pending 1$/m);
  // The admin views show the newest heartbeat, not the stored one.
  const view = (await t.admin('GET', `/v1/admin/leases/${id}`)).body;
  assert.equal(Date.parse(view.expiresAt), t0 + 480 * S);
  assert.equal(Date.parse(view.instances[0].lastHeartbeatAt), t0 + 180 * S);
  assert.equal(Date.parse(view.instances[0].expiresAt), t0 + 480 * S);
  assert.equal(Date.parse(view.lastAccessedAt), t0 + 180 * S);
  const list = (await t.admin('GET', `/v1/admin/licenses/${lic.id}/leases`)).body.items;
  assert.equal(Date.parse(list[0].instances[0].lastHeartbeatAt), t0 + 180 * S);
  const devices = (await t.admin('GET', `/v1/admin/licenses/${lic.id}/devices`)).body.items;
  assert.equal(Date.parse(devices[0].lastAccessedAt), t0 + 180 * S);
  // A denial's `earliestExpiryAt` is the stored expiry: a lower bound (api.md), earlier than the holder's real one.
  const denied = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'renew-dev-2', instanceId: 'app' });
  assert.equal(denied.status, 409);
  assert.equal(Date.parse(denied.body.error.earliestExpiryAt), t0 + 300 * S);
  assert.ok(Date.parse(denied.body.error.earliestExpiryAt) <= Date.parse(view.expiresAt), 'no later than the real expiry');
  // At 228 s the renewal is due within two batches (300 - 71 = 229 s): the sweep writes it before it decides.
  t.clock.set(t0 + 228 * S);
  assert.deepEqual((await t.admin('POST', '/v1/admin/reclaim')).body.freed, []);
  assert.deepEqual(await stored(t, id), { leaseExpires: t0 + 480 * S, useExpires: t0 + 480 * S, useHeartbeat: t0 + 180 * S });
  assert.match((await t.raw('GET', '/metrics')).body as string, /^floatd_heartbeat_renewals_pending 0$/m);
  // The holder goes silent: its seat is freed one TTL after its last heartbeat, not before.
  t.clock.set(t0 + 479 * S);
  assert.deepEqual((await t.admin('POST', '/v1/admin/reclaim')).body.freed, []);
  const taken = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'renew-dev-2', instanceId: 'app' });
  assert.equal(taken.status, 409, 'the seat is still held');
  t.clock.set(t0 + 481 * S);
  const freed = (await t.admin('POST', '/v1/admin/reclaim')).body.freed as { leaseId: string }[];
  assert.deepEqual(
    freed.map((f) => f.leaseId),
    [id],
  );
});

test('a server killed with its unwritten renewals frees no holder that keeps heartbeating, and a checkout cannot take its seat', async () => {
  const clock = new ManualClock(Date.parse('2026-03-02T09:00:00Z'));
  const first = await startTestServer({ clock });
  servers.push(first);
  const lic = await first.license({ seats: 1, leaseTtlSeconds: 300, heartbeatIntervalSeconds: 60 });
  const out = await first.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'crash-dev-1', instanceId: 'app' });
  assert.equal(out.status, 201);
  const id = out.body.lease.id as string;
  const t0 = clock.now();
  for (const at of [60, 120, 180]) {
    clock.set(t0 + at * S);
    assert.equal((await first.client(lic.key, 'POST', `/v1/client/leases/${id}/heartbeat`, { instanceId: 'app' })).status, 200);
  }
  assert.equal((await stored(first, id)).leaseExpires, t0 + 300 * S, 'nothing written yet');
  // Another server on the same data, as after a kill -9 (SQLite: the same file) or on the next node (PostgreSQL): the
  // first one's unwritten renewals are lost to it. (The first is never asked again; it is closed after the test.)
  const t2 = await startTestServer(
    first.store === 'postgres'
      ? { clock, database: first.database, dataDir: await adminTokenDir(first) }
      : { clock, dataDir: first.dataDir },
  );
  servers.unshift(t2);
  // The holder's next heartbeat (240 s) reaches the other server: the lease as stored is still alive, so it renews.
  clock.set(t0 + 240 * S);
  assert.deepEqual((await t2.admin('POST', '/v1/admin/reclaim')).body.freed, []);
  const other = await t2.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'crash-dev-2', instanceId: 'app' });
  assert.equal(other.status, 409, 'nobody takes the heartbeating holder seat');
  const hb = await t2.client(lic.key, 'POST', `/v1/client/leases/${id}/heartbeat`, { instanceId: 'app' });
  assert.equal(hb.status, 200);
});

test('a server that stops (SIGTERM, close) writes every renewal it holds first', async () => {
  const t = await startTestServer();
  servers.push(t);
  const lic = await t.license({ seats: 1, leaseTtlSeconds: 300, heartbeatIntervalSeconds: 60 });
  const out = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'stop-dev-1', instanceId: 'app' });
  assert.equal(out.status, 201);
  const id = out.body.lease.id as string;
  const t0 = t.clock.now();
  t.clock.set(t0 + 60 * S);
  assert.equal((await t.client(lic.key, 'POST', `/v1/client/leases/${id}/heartbeat`, { instanceId: 'app' })).status, 200);
  assert.equal((await stored(t, id)).leaseExpires, t0 + 300 * S, 'not written while the server runs');
  await t.server.close();
  assert.deepEqual(await stored(t, id), { leaseExpires: t0 + 360 * S, useExpires: t0 + 360 * S, useHeartbeat: t0 + 60 * S });
});
