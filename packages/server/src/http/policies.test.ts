/**
 * Seat policies of issue #15 through the real HTTP server, on the store of the run (SQLite, then
 * PostgreSQL): linger (FlexNet LINGER, RLM hold) and overdraft, with real parallel requests; on PostgreSQL
 * the overdraft's exactness is tried on two nodes of one database.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { clusterOf, startTestServer, type TestServer } from '../testing/harness.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t.close();
});

const S = 1000;
const checkout = (key: string, fingerprint: string, instanceId: string, extra: Record<string, unknown> = {}, server = t) =>
  server.client(key, 'POST', '/v1/client/checkout', { fingerprint, instanceId, ...extra });
const checkin = (key: string, leaseId: string, instanceId: string) =>
  t.client(key, 'POST', `/v1/client/leases/${leaseId}/checkin`, { instanceId });
const license = async (id: string) => (await t.admin('GET', `/v1/admin/licenses/${id}`)).body;

test('linger: after the last check-in the seat stays held for its group; a re-checkout within it is instant, others find it busy, the reclaimer ends it', async () => {
  const lic = await t.license({ seats: 1, lingerSeconds: 300 });
  assert.equal(lic.lingerSeconds, 300);
  const a = await checkout(lic.key, 'linger-device-1', 'app-1');
  assert.equal(a.status, 201);
  const back = await checkin(lic.key, a.body.lease.id, 'app-1');
  assert.equal(back.status, 200);
  assert.equal(back.body.released, false, 'the seat is not back in the pool');
  assert.equal(back.body.instances, 0);
  assert.equal(Date.parse(back.body.lingerUntil), t.clock.now() + 300 * S);
  assert.equal((await license(lic.id)).seatsUsed, 1);
  const [lingering] = (await t.admin('GET', `/v1/admin/licenses/${lic.id}/leases`)).body.items;
  assert.equal(lingering.lingerUntil, back.body.lingerUntil);
  assert.equal(lingering.instanceCount, 0);

  // Others find the seat busy.
  const other = await checkout(lic.key, 'linger-device-2', 'app-1');
  assert.equal(other.body.error.code, 'NO_SEATS_AVAILABLE');
  // The same device comes back within the linger: the same seat, at once.
  t.clock.advance(120 * S);
  const again = await checkout(lic.key, 'linger-device-1', 'app-2');
  assert.equal(again.status, 200);
  assert.equal(again.body.lease.id, a.body.lease.id);
  assert.equal(again.body.lease.instances, 1);
  assert.equal((await t.admin('GET', `/v1/admin/licenses/${lic.id}/leases`)).body.items[0].lingerUntil, null);
  // A sync from the device leaves a lingering seat alone.
  await checkin(lic.key, a.body.lease.id, 'app-2');
  const sync = await t.client(lic.key, 'POST', '/v1/client/devices/sync', { fingerprint: 'linger-device-1', instanceIds: [] });
  assert.deepEqual(sync.body.released, []);
  assert.equal((await license(lic.id)).seatsUsed, 1);

  // The linger ends: the reclaimer frees the seat (audited as linger-ended) and the other device gets it. (Past the
  // first TTL after the start too: until then an expired lease may be a live holder's after a restart.)
  t.clock.advance(1000 * S);
  const reclaimed = await t.admin('POST', '/v1/admin/reclaim');
  assert.equal(reclaimed.status, 200);
  assert.deepEqual(
    reclaimed.body.freed.map((f: { leaseId: string; reason: string }) => [f.leaseId, f.reason]),
    [[a.body.lease.id, 'linger-ended']],
  );
  assert.equal((await checkout(lic.key, 'linger-device-2', 'app-1')).status, 201);
  const audit = (await t.admin('GET', `/v1/admin/audit?licenseId=${lic.id}&type=linger`)).body.items;
  assert.equal(audit.length, 2);
});

test('linger under a rule by user: the same person on another workstation takes the lingering seat back', async () => {
  const lic = await t.license({ seats: 1, lingerSeconds: 60, sharing: { by: ['user'], cap: null } });
  const a = await checkout(lic.key, 'linger-ws-1', 'cad-1', { user: 'jo' });
  await checkin(lic.key, a.body.lease.id, 'cad-1');
  assert.equal((await checkout(lic.key, 'linger-ws-3', 'cad-3', { user: 'kim' })).body.error.code, 'NO_SEATS_AVAILABLE');
  const b = await checkout(lic.key, 'linger-ws-2', 'cad-2', { user: 'jo' });
  assert.equal(b.status, 200);
  assert.equal(b.body.lease.id, a.body.lease.id);
  // Without linger, a check-in frees the seat at once (unchanged).
  const plain = await t.license({ seats: 1 });
  const p = await checkout(plain.key, 'plain-device-1', 'x');
  assert.deepEqual((await checkin(plain.key, p.body.lease.id, 'x')).body, { released: true, instances: 0 });
});

test('overdraft: past the count, up to N more seats, marked in the answer, the token, the audit and the usage; refused beyond', async () => {
  const lic = await t.license({ seats: 2, overdraftSeats: 1 });
  assert.equal(lic.overdraftSeats, 1);
  const grants = [];
  for (let i = 0; i < 3; i++) grants.push(await checkout(lic.key, `overdraft-device-${i}`, 'app'));
  assert.deepEqual(
    grants.map((g) => [g.status, g.body.lease.overdraft]),
    [
      [201, false],
      [201, false],
      [201, true],
    ],
  );
  assert.equal(decodeJwt(grants[2]!.body.token).ovd, true);
  assert.equal(decodeJwt(grants[0]!.body.token).ovd, undefined);
  const fourth = await checkout(lic.key, 'overdraft-device-3', 'app');
  assert.equal(fourth.status, 409);
  assert.equal(fourth.body.error.code, 'NO_SEATS_AVAILABLE');
  assert.equal((await license(lic.id)).seatsUsed, 3);
  const audit = (await t.admin('GET', `/v1/admin/audit?licenseId=${lic.id}&type=checkout`)).body.items;
  assert.equal(audit.filter((e: { data: { overdraft?: boolean } }) => e.data.overdraft === true).length, 1);
  const usage = (await t.admin('GET', `/v1/admin/licenses/${lic.id}/usage?from=${new Date(t.clock.now() - 3600 * S).toISOString()}`)).body;
  const hour = usage.items.find((h: { checkouts: number }) => h.checkouts > 0);
  assert.equal(hour.peakSeats, 3);
  assert.equal(hour.peakOverdraft, 1, 'the true-up figure');
  assert.equal(hour.overdraftCheckouts, 1);
  const metrics = (await t.raw('GET', '/metrics')).body as string;
  assert.match(metrics, /^floatd_overdraft_grants_total [1-9]/m);
  // Seats free: at 2 held of 2 the next checkout would still be overdraft; at 1 held it is within the count.
  await checkin(lic.key, grants[0]!.body.lease.id, 'app');
  await checkin(lic.key, grants[1]!.body.lease.id, 'app');
  const fifth = await checkout(lic.key, 'overdraft-device-4', 'app');
  assert.equal(fifth.status, 201);
  assert.equal(fifth.body.lease.overdraft, false);
  // The database guard holds the same line: a decision past seats + overdraft would be refused by it.
  const rows = await t.rows('SELECT seats, overdraft_seats, seats_used FROM licenses WHERE id = ?', lic.id);
  assert.equal(Number(rows[0]!.seats_used), 2);
  assert.equal(Number(rows[0]!.overdraft_seats), 1);
});

test('overdraft exactness: 60 parallel checkouts on 5 seats + 2 overdraft grant exactly 7 (two nodes on PostgreSQL)', async (c) => {
  // PostgreSQL: a second node on the same database
  const cluster = await clusterOf(t);
  const nodes = cluster.nodes;
  try {
    const lic = await t.license({ seats: 5, overdraftSeats: 2 });
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => checkout(lic.key, `parallel-od-${i}`, 'app', {}, nodes[i % nodes.length])),
    );
    const granted = answers.filter((a) => a.status === 201);
    const leases = await t.rows('SELECT id, overdraft FROM leases WHERE license_id = ?', lic.id);
    assert.equal(
      granted.length,
      7,
      `granted ${granted.map((a) => a.body.lease.id).join(',')}; seatsUsed ${(await license(lic.id)).seatsUsed}; rows ${JSON.stringify(leases)}`,
    );
    assert.equal(granted.filter((a) => a.body.lease.overdraft).length, 2);
    assert.ok(answers.every((a) => a.status === 201 || a.body.error.code === 'NO_SEATS_AVAILABLE'));
    assert.equal((await license(lic.id)).seatsUsed, 7);
    c.diagnostic(`60 parallel checkouts on ${nodes.length} node(s): 7 granted (2 overdraft), 53 refused`);
  } finally {
    await cluster.close();
  }
});

test('bad linger and overdraft values are refused and change nothing', async () => {
  const product = (await t.admin('POST', '/v1/admin/products', { name: 'bad policies' })).body;
  const before = await t.snapshot();
  for (const body of [
    { lingerSeconds: -1 },
    { lingerSeconds: 86_401 },
    { overdraftSeats: -1 },
    { overdraftSeats: 1.5 },
    { lingerSeconds: '60' },
  ]) {
    const r = await t.admin('POST', '/v1/admin/licenses', { productId: product.id, seats: 2, ...body });
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.body.error.code, 'VALIDATION_FAILED');
  }
  assert.deepEqual(await t.snapshot(), before);
});
