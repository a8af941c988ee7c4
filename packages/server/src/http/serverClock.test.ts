/**
 * Server clock rollback protection in the hosted role (the on-premise role is in
 * onprem.test.ts): the clock set back beyond the tolerance stops new grants until
 * it is corrected, held leases keep working, the trusted time survives a restart,
 * and the hot path writes nothing for it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../domain/clock.js';
import { startTestServer, type TestServer } from '../testing/harness.js';

const T0 = Date.parse('2026-03-02T09:00:00Z');
const MIN = 60_000;
const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function server(clock: ManualClock, dataDir?: string): Promise<TestServer> {
  const t = await startTestServer({ clock, ...(dataDir ? { dataDir } : {}), config: { clockTolerance: '300' } });
  closers.push(() => t.close());
  return t;
}
const trusted = async (t: TestServer) =>
  (await t.rows("SELECT value FROM kv WHERE name = 'server/trusted-time'"))[0]?.value as string | undefined;

test('hosted: a clock set back beyond the tolerance refuses new seats until corrected; leases held keep heartbeating', async () => {
  const clock = new ManualClock(T0);
  const t = await server(clock);
  const lic = await t.license({ seats: 5, leaseTtlSeconds: 3600, heartbeatIntervalSeconds: 600 });
  const held = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-hosted-clock-1', instanceId: 'a' });
  assert.equal(held.status, 201);
  clock.advance(30 * MIN);
  assert.equal((await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-hosted-clock-2', instanceId: 'a' })).status, 201);

  // Within the tolerance (NTP steps a few seconds, a VM resumes): nothing happens.
  clock.advance(-4 * MIN);
  assert.equal((await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-hosted-clock-3', instanceId: 'a' })).status, 201);

  // Beyond it: refused, said clearly, counted.
  clock.advance(-20 * MIN);
  const refused = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-hosted-clock-4', instanceId: 'a' });
  assert.equal(refused.status, 503);
  assert.equal(refused.body.error.code, 'SERVER_CLOCK_ROLLBACK');
  assert.equal(refused.body.error.trustedTime, new Date(T0 + 30 * MIN).toISOString());
  assert.match(refused.body.error.message, /behind the latest time this server trusted/);
  const before = await t.snapshot();
  assert.equal((await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-hosted-clock-4', instanceId: 'a' })).status, 503);
  assert.deepEqual(await t.snapshot(), before, 'a refused grant writes nothing');
  const hb = await t.client(lic.key, 'POST', `/v1/client/leases/${held.body.lease.id}/heartbeat`, { instanceId: 'a' });
  assert.equal(hb.status, 200, 'a held lease keeps working');
  assert.equal((await t.client(lic.key, 'POST', `/v1/client/leases/${held.body.lease.id}/checkin`, { instanceId: 'a' })).status, 200);
  const m = (await t.raw('GET', '/metrics')).body as string;
  assert.match(m, /floatd_server_clock_rollback 1/);
  assert.match(m, /floatd_server_clock_rollback_refusals_total 2/);
  const status = (await t.admin('GET', '/v1/admin/entitlements')).body;
  assert.equal(status.mode, 'hosted');
  assert.equal(status.clock.rolledBack, true);

  // Corrected: grants resume at once.
  clock.set(T0 + 31 * MIN);
  assert.equal((await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-hosted-clock-4', instanceId: 'a' })).status, 201);
  await t.server.clockGuard.tick();
  assert.match((await t.raw('GET', '/metrics')).body as string, /floatd_server_clock_rollback 0/);
  const audit = (await t.admin('GET', '/v1/admin/audit')).body.items.map((e: { type: string; actor: string }) => `${e.type}/${e.actor}`);
  assert.ok(audit.includes('server-clock.rollback/server') && audit.includes('server-clock.recovered/server'), audit.join(','));
});

test('hosted: the trusted time is kept in memory on the hot path, saved by the periodic step, and survives a restart', async () => {
  const clock = new ManualClock(T0);
  const t = await server(clock);
  const lic = await t.license({ seats: 50 });
  await t.server.clockGuard.tick();
  const saved = await trusted(t);
  assert.deepEqual(JSON.parse(saved!), { at: T0 }, 'hosted: stored as a plain record');
  for (let i = 0; i < 20; i++) {
    clock.advance(MIN);
    assert.equal(
      (await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: `fp-hot-path-${i}`, instanceId: 'a' })).status,
      201,
    );
  }
  assert.equal(await trusted(t), saved, 'twenty grants, no write of the trusted time');
  await t.server.clockGuard.tick();
  assert.equal(JSON.parse((await trusted(t))!).at, T0 + 20 * MIN);

  if (t.store !== 'sqlite') return; // a restart on the same database: the SQLite data directory is kept
  // Stopped, clock set back an hour, started again: the saved mark refuses at once.
  const dataDir = t.dataDir;
  await t.server.close();
  clock.set(T0 - 40 * MIN);
  const again = await server(clock, dataDir);
  const r = await again.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-after-restart', instanceId: 'a' });
  assert.equal(r.status, 503);
  assert.equal(r.body.error.code, 'SERVER_CLOCK_ROLLBACK');
  clock.set(T0 + 21 * MIN);
  assert.equal(
    (await again.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-after-restart', instanceId: 'a' })).status,
    201,
  );
});
