/**
 * The seat limit under real parallel HTTP requests: never more grants than
 * seats, and the counter always equals the leases actually held.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../testing/harness.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(() => t.close());

/** Seats counter, leases in the database, and leases listed by the admin API must all agree. */
async function assertConsistent(licenseId: string, expectedUsed?: number) {
  const lic = (await t.admin('GET', `/v1/admin/licenses/${licenseId}`)).body;
  const listed = (await t.admin('GET', `/v1/admin/licenses/${licenseId}/leases`)).body.items.length;
  const [row] = await t.rows('SELECT COUNT(*) AS n FROM leases WHERE license_id = ?', licenseId);
  const rows = Number(row!.n);
  assert.equal(lic.seatsUsed, rows, 'seat counter equals lease rows');
  assert.equal(listed, rows, 'admin listing equals lease rows');
  assert.ok(lic.seatsUsed <= lic.seats, `never above the seat count (${lic.seatsUsed} > ${lic.seats})`);
  if (expectedUsed !== undefined) assert.equal(lic.seatsUsed, expectedUsed);
  return lic.seatsUsed as number;
}

test('200 parallel checkouts from 200 devices on a 20-seat key grant exactly 20, and the count holds through parallel check-ins, heartbeats and reclamation', async () => {
  const lic = await t.license({ seats: 20, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
  const checkout = (i: number, round: string) =>
    t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: `dev-${round}-${String(i).padStart(4, '0')}`, instanceId: 'app' });

  const first = await Promise.all(Array.from({ length: 200 }, (_, i) => checkout(i, 'a')));
  const granted = first.filter((r) => r.status === 201);
  const denied = first.filter((r) => r.status === 409);
  assert.equal(granted.length, 20);
  assert.equal(denied.length, 180);
  for (const d of denied) assert.equal(d.body.error.code, 'NO_SEATS_AVAILABLE');
  assert.equal(new Set(granted.map((g) => g.body.lease.id)).size, 20);
  await assertConsistent(lic.id, 20);

  // Half check in while the other half heartbeat and 100 newcomers fight for the freed seats, all at once.
  const leaving = granted.slice(0, 10);
  const staying = granted.slice(10);
  const mixed = await Promise.all([
    ...leaving.map((g) => t.client(lic.key, 'POST', `/v1/client/leases/${g.body.lease.id}/checkin`, { instanceId: 'app' })),
    ...staying.map((g) => t.client(lic.key, 'POST', `/v1/client/leases/${g.body.lease.id}/heartbeat`, { instanceId: 'app' })),
    ...Array.from({ length: 100 }, (_, i) => checkout(i, 'b')),
  ]);
  const checkins = mixed.slice(0, 10);
  const heartbeats = mixed.slice(10, 20);
  const newcomers = mixed.slice(20);
  for (const c of checkins) assert.deepEqual(c.body, { released: true, instances: 0 });
  for (const h of heartbeats) assert.equal(h.status, 200);
  const newGrants = newcomers.filter((r) => r.status === 201).length;
  assert.ok(newGrants <= 10, `at most the 10 freed seats are granted (got ${newGrants})`);
  await assertConsistent(lic.id, 10 + newGrants);

  // Everybody goes silent past the TTL; reclaim-now, the background sweep and 100 checkouts race for the dead seats.
  t.clock.advance(61_000);
  const race = await Promise.all([
    t.admin('POST', '/v1/admin/reclaim'),
    t.server.reclaim.sweep('reclaimer'),
    ...Array.from({ length: 100 }, (_, i) => checkout(i, 'c')),
  ]);
  const cGrants = race.slice(2).filter((r) => (r as { status: number }).status === 201).length;
  assert.equal(cGrants, 20, 'every dead seat is reusable at once, and no more');
  await assertConsistent(lic.id, 20);
  const released = await t.admin('GET', `/v1/admin/audit?licenseId=${lic.id}&type=release&limit=500`);
  const expiredReleases = released.body.items.filter((e: { reason: string }) => e.reason === 'expired').length;
  // The leases alive before the race: the 10 that heartbeated and the newcomers that got the freed seats.
  assert.equal(expiredReleases, 10 + newGrants, 'each dead lease is freed exactly once (no double free)');
});

test('parallel joins from one device never exceed the per-device instance maximum nor take a second seat', async () => {
  const lic = await t.license({ seats: 3, maxInstancesPerDevice: 5 });
  const answers = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'one-shared-device', instanceId: `p${i}` }),
    ),
  );
  assert.equal(answers.filter((a) => a.status === 201).length, 1);
  assert.equal(answers.filter((a) => a.status === 200).length, 4);
  assert.equal(answers.filter((a) => a.status === 409 && a.body.error.code === 'INSTANCE_LIMIT_REACHED').length, 35);
  await assertConsistent(lic.id, 1);
});

test('repeating the same checkout in parallel is idempotent: one lease, one seat', async () => {
  const lic = await t.license({ seats: 5 });
  const answers = await Promise.all(
    Array.from({ length: 30 }, () =>
      t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'same-device-1', instanceId: 'same' }),
    ),
  );
  assert.equal(new Set(answers.map((a) => a.body.lease.id)).size, 1);
  assert.equal(answers.filter((a) => a.status === 201).length, 1);
  await assertConsistent(lic.id, 1);
});

test('parallel offline checkouts never exceed the offline cap', async () => {
  const lic = await t.license({ seats: 10, maxOfflineSeconds: 86400, maxOfflineSeats: 3 });
  const answers = await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      t.client(lic.key, 'POST', '/v1/client/offline-checkout', { fingerprint: `offline-dev-${i}`, instanceId: 'a', durationSeconds: 3600 }),
    ),
  );
  assert.equal(answers.filter((a) => a.status === 201).length, 3);
  const l = (await t.admin('GET', `/v1/admin/licenses/${lic.id}`)).body;
  assert.equal(l.seatsOffline, 3);
  await assertConsistent(lic.id, 3);
});
