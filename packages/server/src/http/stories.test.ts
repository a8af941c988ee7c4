/**
 * The seeds' stories, over real HTTP on a real SQLite file, with the server's
 * clock moved by hand (no sleeping).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, jwtVerify, decodeJwt } from 'jose';
import { startTestServer, type TestServer } from '../testing/harness.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(() => t.close());

const S = 1000;
const DAY = 86_400 * S;
let n = 0;
const newFingerprint = () => `device-fingerprint-${++n}`;
const leaseId2 = (grant: { body: { lease: { id: string } } }) => grant.body.lease.id;

async function verify(token: string, at: number) {
  const jwks = createLocalJWKSet((await t.raw('GET', '/.well-known/jwks.json')).body);
  return jwtVerify(token, jwks, { issuer: 'floatd', currentDate: new Date(at) });
}

async function seats(licenseId: string) {
  const l = (await t.admin('GET', `/v1/admin/licenses/${licenseId}`)).body;
  return { used: l.seatsUsed as number, offline: l.seatsOffline as number };
}

test('story 1a — the laptop on a key without TTL: the seat stays with it while it is away, check-in returns it', async () => {
  const lic = await t.license({ seats: 1, leaseTtlSeconds: null });
  const laptop = newFingerprint();
  const out = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: laptop, instanceId: 'app-1', hostname: 'laptop' });
  assert.equal(out.status, 201);
  assert.equal(out.body.lease.expiresAt, null);
  const claims = decodeJwt(out.body.token);
  assert.equal(claims.exp, undefined, 'a lease without TTL gets a token without expiry');

  // The lid closes; weeks pass; reclamation runs; the seat is still the laptop's, and its token still verifies offline.
  t.clock.advance(30 * DAY);
  const swept = await t.admin('POST', '/v1/admin/reclaim');
  assert.deepEqual(swept.body.freed, []);
  await verify(out.body.token, t.clock.now());
  const other = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: newFingerprint(), instanceId: 'x' });
  assert.equal(other.status, 409);
  assert.equal(other.body.error.code, 'NO_SEATS_AVAILABLE');

  // Back in the office: it renews, then the app exits and checks in; the seat returns to the pool.
  const hb = await t.client(lic.key, 'POST', `/v1/client/leases/${out.body.lease.id}/heartbeat`, { instanceId: 'app-1' });
  assert.equal(hb.status, 200);
  const ci = await t.client(lic.key, 'POST', `/v1/client/leases/${out.body.lease.id}/checkin`, { instanceId: 'app-1' });
  assert.deepEqual(ci.body, { released: true, instances: 0 });
  assert.deepEqual(await seats(lic.id), { used: 0, offline: 0 });
  const now = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: newFingerprint(), instanceId: 'x' });
  assert.equal(now.status, 201);
});

test('story 1b — the laptop on a key with a TTL runs on its token until it expires, then must come back', async () => {
  const lic = await t.license({ seats: 1, leaseTtlSeconds: 3600, heartbeatIntervalSeconds: 600 });
  const start = t.clock.now();
  const out = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: newFingerprint(), instanceId: 'app' });
  assert.equal(out.status, 201);
  const claims = decodeJwt(out.body.token);
  assert.equal(claims.exp, Math.floor((start + 3600 * S) / 1000));
  await verify(out.body.token, start + 3599 * S); // offline, within validity: keeps working
  await assert.rejects(verify(out.body.token, start + 3601 * S), /exp/);
  // Back online before anyone reclaimed it: the heartbeat revives the lease (audited), same lease id.
  t.clock.advance(3700 * S);
  const hb = await t.client(lic.key, 'POST', `/v1/client/leases/${out.body.lease.id}/heartbeat`, { instanceId: 'app' });
  assert.equal(hb.status, 200);
  assert.equal(hb.body.lease.id, out.body.lease.id);
  const audit = await t.admin('GET', `/v1/admin/audit?licenseId=${lic.id}&type=heartbeat-revive`);
  assert.equal(audit.body.items.length, 1);
  await t.client(lic.key, 'POST', `/v1/client/leases/${out.body.lease.id}/checkin`, { instanceId: 'app' });
  assert.equal((await seats(lic.id)).used, 0);
});

test('story 2 — offline checkout for 3 days: no heartbeats, admin release refused, seat back after the Offline Expiry Date', async () => {
  const lic = await t.license({ seats: 1, leaseTtlSeconds: 300, maxOfflineSeconds: 7 * 86400 });
  const start = t.clock.now();
  const off = await t.client(lic.key, 'POST', '/v1/client/offline-checkout', {
    fingerprint: newFingerprint(),
    instanceId: 'app',
    durationSeconds: 3 * 86400,
  });
  assert.equal(off.status, 201);
  assert.equal(off.body.lease.offline, true);
  assert.equal(off.body.lease.offlineExpiresAt, new Date(start + 3 * DAY).toISOString());
  const claims = decodeJwt(off.body.token);
  assert.equal(claims.offline, true);
  assert.equal(claims.oed, Math.floor((start + 3 * DAY) / 1000));
  assert.equal(claims.exp, claims.oed);
  assert.deepEqual(await seats(lic.id), { used: 1, offline: 1 });

  // A day later, no heartbeat was sent: the seat is still held, reclamation leaves it, the admin cannot release it.
  t.clock.advance(DAY);
  await verify(off.body.token, t.clock.now());
  assert.deepEqual((await t.admin('POST', '/v1/admin/reclaim')).body.freed, []);
  const refused = await t.admin('POST', `/v1/admin/leases/${off.body.lease.id}/release`, {});
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error.code, 'OFFLINE_LEASE_ACTIVE');
  assert.equal((await seats(lic.id)).used, 1);
  const denied = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: newFingerprint(), instanceId: 'x' });
  assert.equal(denied.body.error.code, 'NO_SEATS_AVAILABLE');
  assert.equal(denied.body.error.earliestExpiryAt, new Date(start + 3 * DAY).toISOString());

  // At the Offline Expiry Date the seat returns to the pool.
  t.clock.set(start + 3 * DAY);
  const swept = await t.admin('POST', '/v1/admin/reclaim');
  assert.deepEqual(
    swept.body.freed.map((f: { leaseId: string }) => f.leaseId),
    [off.body.lease.id],
  );
  assert.deepEqual(await seats(lic.id), { used: 0, offline: 0 });
  const granted = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: newFingerprint(), instanceId: 'x' });
  assert.equal(granted.status, 201);
  const late = await t.client(lic.key, 'POST', `/v1/client/leases/${off.body.lease.id}/heartbeat`, { instanceId: 'app' });
  assert.equal(late.body.error.code, 'LEASE_NOT_FOUND');
});

test('story 2b — forced release of an offline lease is allowed and audited; early return frees the seat', async () => {
  const lic = await t.license({ seats: 2, maxOfflineSeconds: 86400, maxOfflineSeats: 1 });
  const a = await t.client(lic.key, 'POST', '/v1/client/offline-checkout', {
    fingerprint: newFingerprint(),
    instanceId: 'a',
    durationSeconds: 86400,
  });
  const capped = await t.client(lic.key, 'POST', '/v1/client/offline-checkout', {
    fingerprint: newFingerprint(),
    instanceId: 'b',
    durationSeconds: 3600,
  });
  assert.equal(capped.status, 409);
  assert.equal(capped.body.error.code, 'OFFLINE_SEAT_LIMIT_REACHED');
  const forced = await t.admin('POST', `/v1/admin/leases/${a.body.lease.id}/release`, { force: true });
  assert.equal(forced.status, 200);
  assert.equal(forced.body.offlineOverridden, true);
  const audit = await t.admin('GET', `/v1/admin/audit?leaseId=${a.body.lease.id}&type=release`);
  assert.equal(audit.body.items[0].reason, 'force-release');
  assert.equal(audit.body.items[0].data.forced, true);
  assert.ok(audit.body.items[0].actor.startsWith('admin:tok_'));

  const b = await t.client(lic.key, 'POST', '/v1/client/offline-checkout', {
    fingerprint: newFingerprint(),
    instanceId: 'b',
    durationSeconds: 3600,
  });
  assert.equal(b.status, 201);
  const ret = await t.client(lic.key, 'POST', `/v1/client/leases/${b.body.lease.id}/return`);
  assert.deepEqual(ret.body, { released: true });
  assert.deepEqual(await seats(lic.id), { used: 0, offline: 0 });
});

test('story 3 — crash: the app dies without check-in; others are denied until the TTL passes, then granted at once', async () => {
  const lic = await t.license({ seats: 1, leaseTtlSeconds: 120, heartbeatIntervalSeconds: 30 });
  const start = t.clock.now();
  const crashed = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: newFingerprint(), instanceId: 'app' });
  assert.equal(crashed.status, 201);
  const other = newFingerprint();
  t.clock.set(start + 119 * S);
  const denied = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: other, instanceId: 'app' });
  assert.equal(denied.status, 409);
  assert.equal(denied.body.error.seatsTotal, 1);
  assert.equal(denied.body.error.seatsUsed, 1);
  assert.equal(denied.body.error.earliestExpiryAt, new Date(start + 120 * S).toISOString());
  // The moment the TTL ends, with no reclaimer tick in between, the zombie seat is usable.
  t.clock.set(start + 120 * S);
  const granted = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: other, instanceId: 'app' });
  assert.equal(granted.status, 201);
  assert.deepEqual(await seats(lic.id), { used: 1, offline: 0 });
  const gone = await t.client(lic.key, 'POST', `/v1/client/leases/${crashed.body.lease.id}/heartbeat`, { instanceId: 'app' });
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error.code, 'LEASE_NOT_FOUND');
  const audit = await t.admin('GET', `/v1/admin/audit?leaseId=${crashed.body.lease.id}&type=release`);
  assert.equal(audit.body.items[0].reason, 'expired');
});

test('story 4 — two instances on one device hold one seat: 1→2→1→0, freed at 0; orphans dropped by sync and by expiry', async () => {
  const lic = await t.license({ seats: 1, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
  const dev = newFingerprint();
  const first = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: dev, instanceId: 'p1' });
  assert.equal(first.body.lease.instances, 1);
  const second = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: dev, instanceId: 'p2' });
  assert.equal(second.status, 200);
  assert.equal(second.body.lease.id, first.body.lease.id);
  assert.equal(second.body.lease.instances, 2);
  assert.equal((await seats(lic.id)).used, 1);
  const leaseId = first.body.lease.id;
  const one = await t.client(lic.key, 'POST', `/v1/client/leases/${leaseId}/checkin`, { instanceId: 'p1' });
  assert.deepEqual(one.body, { released: false, instances: 1 });
  assert.equal((await seats(lic.id)).used, 1);
  const zero = await t.client(lic.key, 'POST', `/v1/client/leases/${leaseId}/checkin`, { instanceId: 'p2' });
  assert.deepEqual(zero.body, { released: true, instances: 0 });
  assert.equal((await seats(lic.id)).used, 0);

  // Orphan dropped by sync: p3 crashed, p4 runs.
  const p3 = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: dev, instanceId: 'p3' });
  await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: dev, instanceId: 'p4' });
  const synced = await t.client(lic.key, 'POST', '/v1/client/devices/sync', { fingerprint: dev, instanceIds: ['p4'] });
  assert.deepEqual(synced.body, { dropped: ['p3'], released: [], instances: 1 });
  const orphanHb = await t.client(lic.key, 'POST', `/v1/client/leases/${p3.body.lease.id}/heartbeat`, { instanceId: 'p3' });
  assert.equal(orphanHb.body.error.code, 'LEASE_NOT_FOUND');

  // Orphan dropped by its own expiry, by the reclaimer: p5 stops heartbeating while p4 keeps the lease alive.
  await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: dev, instanceId: 'p5' });
  t.clock.advance(50 * S);
  assert.equal((await t.client(lic.key, 'POST', `/v1/client/leases/${leaseId2(p3)}/heartbeat`, { instanceId: 'p4' })).status, 200);
  t.clock.advance(20 * S); // p5 is 70 s silent (TTL 60), p4 20 s
  const swept = await t.admin('POST', '/v1/admin/reclaim');
  assert.equal(swept.body.instancesDropped, 1);
  assert.deepEqual(swept.body.freed, []);
  const instancesNow = async () =>
    (await t.admin('GET', `/v1/admin/licenses/${lic.id}/leases`)).body.items[0].instances.map((i: { instanceId: string }) => i.instanceId);
  assert.deepEqual(await instancesNow(), ['p4']);

  // ... and by a sibling's heartbeat, which prunes dead instances of its lease on the way.
  await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: dev, instanceId: 'p6' });
  t.clock.advance(50 * S);
  await t.client(lic.key, 'POST', `/v1/client/leases/${leaseId2(p3)}/heartbeat`, { instanceId: 'p4' });
  t.clock.advance(50 * S);
  await t.client(lic.key, 'POST', `/v1/client/leases/${leaseId2(p3)}/heartbeat`, { instanceId: 'p4' });
  assert.deepEqual(await instancesNow(), ['p4']);
  const dropped = await t.admin('GET', `/v1/admin/audit?licenseId=${lic.id}&type=instance-dropped`);
  assert.deepEqual(
    dropped.body.items.map((e: { data: { instanceId: string }; reason: string }) => `${e.data.instanceId}:${e.reason}`),
    ['p6:expired', 'p5:expired', 'p3:synced'],
  );
  assert.equal((await seats(lic.id)).used, 1);
});
