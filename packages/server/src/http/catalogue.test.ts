/** Products and license keys through the admin API, and the license rules clients meet. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeKey } from '@floatd/protocol';
import { startTestServer, type TestServer } from '../testing/harness.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(() => t.close());

const DAY = 86_400_000;

test('license keys are random, human-typable, with a check symbol that catches typos', async () => {
  const keys = new Set<string>();
  for (let i = 0; i < 20; i++) keys.add((await t.license()).key);
  assert.equal(keys.size, 20);
  for (const k of keys) {
    assert.match(k, /^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}$/);
    assert.equal(normalizeKey(k.toLowerCase().replace(/-/g, ' ')), k, 'case, spaces and dashes do not matter');
    const typo = k.slice(0, 3) + (k[3] === 'A' ? 'B' : 'A') + k.slice(4);
    assert.equal(normalizeKey(typo), undefined, 'a one-symbol typo is caught by the check symbol');
  }
  const [some] = [...keys];
  const lowered = await t.client(some!.toLowerCase(), 'GET', '/v1/client/license');
  assert.equal(lowered.status, 200, 'the key works however it is typed');
});

test('create applies defaults; read, list with paging, update and delete work', async () => {
  const product = (await t.admin('POST', '/v1/admin/products', { name: 'Paging product', metadata: { tier: 'pro' } })).body;
  const created = await t.admin('POST', '/v1/admin/licenses', { productId: product.id, seats: 20 });
  assert.equal(created.status, 201);
  assert.deepEqual(
    {
      model: created.body.model,
      counting: created.body.counting,
      leaseTtlSeconds: created.body.leaseTtlSeconds,
      heartbeatIntervalSeconds: created.body.heartbeatIntervalSeconds,
      maxOfflineSeconds: created.body.maxOfflineSeconds,
      maxInstancesPerDevice: created.body.maxInstancesPerDevice,
      suspended: created.body.suspended,
    },
    {
      model: 'permanent',
      counting: 'per-device',
      leaseTtlSeconds: 900,
      heartbeatIntervalSeconds: 300,
      maxOfflineSeconds: 0,
      maxInstancesPerDevice: 10,
      suspended: false,
    },
  );
  for (let i = 0; i < 4; i++) await t.admin('POST', '/v1/admin/licenses', { productId: product.id, seats: i + 1 });
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { body: { items: { id: string }[]; nextCursor: string | null } } = await t.admin(
      'GET',
      `/v1/admin/licenses?productId=${product.id}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
    );
    assert.ok(page.body.items.length <= 2);
    seen.push(...page.body.items.map((l) => l.id));
    cursor = page.body.nextCursor;
  } while (cursor);
  assert.equal(seen.length, 5);
  assert.equal(new Set(seen).size, 5);

  const updated = await t.admin('PATCH', `/v1/admin/licenses/${created.body.id}`, { seats: 25, metadata: { customer: 'ACME' } });
  assert.equal(updated.body.seats, 25);
  assert.deepEqual(updated.body.metadata, { customer: 'ACME' });
  const read = await t.admin('GET', `/v1/admin/licenses/${created.body.id}`);
  assert.equal(read.body.seats, 25);

  const hasLicenses = await t.admin('DELETE', `/v1/admin/products/${product.id}`);
  assert.equal(hasLicenses.status, 409);
  assert.equal(hasLicenses.body.error.code, 'PRODUCT_HAS_LICENSES');
  for (const id of seen) assert.equal((await t.admin('DELETE', `/v1/admin/licenses/${id}`)).status, 200);
  assert.equal((await t.admin('DELETE', `/v1/admin/products/${product.id}`)).status, 200);
  assert.equal((await t.admin('GET', `/v1/admin/products/${product.id}`)).body.error.code, 'PRODUCT_NOT_FOUND');
});

test('contradictory policies are refused with INVALID_POLICY and nothing is stored', async () => {
  const product = (await t.admin('POST', '/v1/admin/products', { name: 'Policy product' })).body;
  const bad = [
    { seats: 1, model: 'subscription' },
    { seats: 1, model: 'trial' },
    { seats: 1, model: 'permanent', expiresAt: '2027-01-01T00:00:00Z' },
    { seats: 1, trialDays: 3 },
    { seats: 1, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 60 },
  ];
  for (const body of bad) {
    const r = await t.admin('POST', '/v1/admin/licenses', { productId: product.id, ...body });
    assert.equal(r.status, 422, JSON.stringify(body));
    assert.equal(r.body.error.code, 'INVALID_POLICY');
  }
  const list = await t.admin('GET', `/v1/admin/licenses?productId=${product.id}`);
  assert.equal(list.body.items.length, 0);
  const missing = await t.admin('POST', '/v1/admin/licenses', { productId: 'prd_00000000000000000000', seats: 1 });
  assert.equal(missing.body.error.code, 'PRODUCT_NOT_FOUND');
});

test('suspension refuses checkouts and heartbeats with LICENSE_SUSPENDED; resume restores them; check-in always works', async () => {
  const lic = await t.license({ seats: 2 });
  const g = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'suspend-dev-1', instanceId: 'a' });
  assert.equal((await t.admin('POST', `/v1/admin/licenses/${lic.id}/suspend`)).body.suspended, true);
  const co = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'suspend-dev-2', instanceId: 'a' });
  assert.equal(co.status, 403);
  assert.equal(co.body.error.code, 'LICENSE_SUSPENDED');
  const hb = await t.client(lic.key, 'POST', `/v1/client/leases/${g.body.lease.id}/heartbeat`, { instanceId: 'a' });
  assert.equal(hb.body.error.code, 'LICENSE_SUSPENDED');
  assert.equal((await t.admin('POST', `/v1/admin/licenses/${lic.id}/resume`)).body.suspended, false);
  assert.equal((await t.client(lic.key, 'POST', `/v1/client/leases/${g.body.lease.id}/heartbeat`, { instanceId: 'a' })).status, 200);
  await t.admin('POST', `/v1/admin/licenses/${lic.id}/suspend`);
  const ci = await t.client(lic.key, 'POST', `/v1/client/leases/${g.body.lease.id}/checkin`, { instanceId: 'a' });
  assert.deepEqual(ci.body, { released: true, instances: 0 });
});

test('subscription: granted until its end, then LICENSE_EXPIRED; tokens never outlive it', async () => {
  const end = t.clock.now() + 1800_000;
  const lic = await t.license({
    seats: 2,
    model: 'subscription',
    expiresAt: new Date(end).toISOString(),
    leaseTtlSeconds: 3600,
    heartbeatIntervalSeconds: 600,
  });
  const g = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'sub-dev-1', instanceId: 'a' });
  assert.equal(g.status, 201);
  const exp = JSON.parse(Buffer.from(g.body.token.split('.')[1], 'base64url').toString()).exp;
  assert.equal(exp, Math.floor(end / 1000), 'the token expires with the subscription, before the lease TTL');
  t.clock.set(end);
  const denied = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'sub-dev-2', instanceId: 'a' });
  assert.equal(denied.status, 403);
  assert.equal(denied.body.error.code, 'LICENSE_EXPIRED');
  const hb = await t.client(lic.key, 'POST', `/v1/client/leases/${g.body.lease.id}/heartbeat`, { instanceId: 'a' });
  assert.equal(hb.body.error.code, 'LICENSE_EXPIRED');
  const renewed = await t.admin('PATCH', `/v1/admin/licenses/${lic.id}`, { expiresAt: new Date(end + 30 * DAY).toISOString() });
  assert.equal(renewed.status, 200);
  assert.equal((await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'sub-dev-2', instanceId: 'a' })).status, 201);
});

test('trial: days count from the first checkout, then TRIAL_EXPIRED', async () => {
  const lic = await t.license({ seats: 1, model: 'trial', trialDays: 14 });
  assert.equal((await t.admin('GET', `/v1/admin/licenses/${lic.id}`)).body.trialStartedAt, null);
  t.clock.advance(100 * DAY); // an unused trial does not age
  const first = t.clock.now();
  const g = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'trial-dev-1', instanceId: 'a' });
  assert.equal(g.status, 201);
  assert.equal(g.body.license.expiresAt, new Date(first + 14 * DAY).toISOString());
  assert.equal((await t.admin('GET', `/v1/admin/licenses/${lic.id}`)).body.trialStartedAt, new Date(first).toISOString());
  await t.client(lic.key, 'POST', `/v1/client/leases/${g.body.lease.id}/checkin`, { instanceId: 'a' });
  t.clock.set(first + 14 * DAY);
  const late = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'trial-dev-1', instanceId: 'a' });
  assert.equal(late.status, 403);
  assert.equal(late.body.error.code, 'TRIAL_EXPIRED');
});

test('deleting a license with held seats is refused unless forced; forced delete releases and audits', async () => {
  const lic = await t.license({ seats: 3 });
  await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'del-dev-1', instanceId: 'a' });
  await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'del-dev-2', instanceId: 'a' });
  const refused = await t.admin('DELETE', `/v1/admin/licenses/${lic.id}`);
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error.code, 'SEATS_HELD');
  assert.equal(refused.body.error.seatsUsed, 2);
  const forced = await t.admin('DELETE', `/v1/admin/licenses/${lic.id}?force=true`);
  assert.deepEqual(forced.body, { deleted: true, released: 2 });
  assert.equal((await t.admin('GET', `/v1/admin/licenses/${lic.id}`)).status, 404);
  const audit = await t.admin('GET', `/v1/admin/audit?licenseId=${lic.id}`);
  const types = audit.body.items.map((e: { type: string; reason: string | null }) => `${e.type}:${e.reason ?? ''}`);
  assert.deepEqual(types.slice(0, 3), ['license.deleted:', 'release:license-deleted', 'release:license-deleted']);
  const gone = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'del-dev-3', instanceId: 'a' });
  assert.equal(gone.body.error.code, 'INVALID_LICENSE_KEY');
});

test('admin views: devices with instance counts and last access; usage by hour with peak and denials; audit filters', async () => {
  const lic = await t.license({ seats: 2, maxOfflineSeconds: 86400 });
  const hourStart = Math.floor(t.clock.now() / 3_600_000) * 3_600_000;
  t.clock.set(hourStart + 60_000);
  await t.client(lic.key, 'POST', '/v1/client/checkout', {
    fingerprint: 'view-dev-1',
    instanceId: 'a',
    hostname: 'ws-1',
    user: 'ann',
    appVersion: '3.1',
  });
  await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'view-dev-1', instanceId: 'b' });
  await t.client(lic.key, 'POST', '/v1/client/offline-checkout', { fingerprint: 'view-dev-2', instanceId: 'a', durationSeconds: 3600 });
  const denied = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'view-dev-3', instanceId: 'a' });
  assert.equal(denied.status, 409);

  const devices = (await t.admin('GET', `/v1/admin/licenses/${lic.id}/devices`)).body.items;
  const d1 = devices.find((d: { fingerprint: string }) => d.fingerprint === 'view-dev-1');
  assert.deepEqual([d1.hostname, d1.user, d1.appVersion, d1.seatsHeld, d1.instanceCount], ['ws-1', 'ann', '3.1', 1, 2]);
  const d2 = devices.find((d: { fingerprint: string }) => d.fingerprint === 'view-dev-2');
  assert.equal(d2.offlineExpiresAt, new Date(hourStart + 60_000 + 3_600_000).toISOString());

  t.clock.set(hourStart + 2 * 3_600_000 + 5_000); // two hours later, the first device leaves
  const leases = (await t.admin('GET', `/v1/admin/licenses/${lic.id}/leases`)).body.items;
  const online = leases.find((l: { offline: boolean }) => !l.offline);
  await t.admin('POST', `/v1/admin/leases/${online.id}/release`, {});

  const usage = await t.admin(
    'GET',
    `/v1/admin/licenses/${lic.id}/usage?from=${new Date(hourStart).toISOString()}&to=${new Date(hourStart + 3 * 3_600_000).toISOString()}`,
  );
  assert.equal(usage.status, 200);
  assert.deepEqual(
    usage.body.items.map((h: { peakSeats: number; seatsAtEnd: number; denials: number }) => [h.peakSeats, h.seatsAtEnd, h.denials]),
    [
      [2, 2, 1],
      [2, 2, 0],
      [2, 1, 0],
    ],
  );
  assert.deepEqual([usage.body.peakSeats, usage.body.denials, usage.body.checkouts], [2, 1, 2]);

  const onlyDenied = await t.admin('GET', `/v1/admin/audit?licenseId=${lic.id}&type=denied`);
  assert.equal(onlyDenied.body.items.length, 1);
  const since = await t.admin('GET', `/v1/admin/audit?licenseId=${lic.id}&from=${new Date(hourStart + 3_600_000).toISOString()}`);
  assert.deepEqual(
    since.body.items.map((e: { type: string }) => e.type),
    ['release'],
  );
  const badRange = await t.admin(
    'GET',
    `/v1/admin/licenses/${lic.id}/usage?from=${new Date(hourStart).toISOString()}&to=${new Date(hourStart).toISOString()}`,
  );
  assert.equal(badRange.body.error.code, 'VALIDATION_FAILED');
});

test("license info shows the model, seats and the device's own lease", async () => {
  const lic = await t.license({ seats: 4 });
  await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'info-dev-1', instanceId: 'a' });
  const info = await t.client(lic.key, 'GET', '/v1/client/license?fingerprint=info-dev-1');
  assert.equal(info.body.license.seatsTotal, 4);
  assert.equal(info.body.license.seatsUsed, 1);
  assert.equal(info.body.lease.instanceId, 'a');
  const none = await t.client(lic.key, 'GET', '/v1/client/license?fingerprint=info-dev-2');
  assert.equal(none.body.lease, null);
});

test('a force release racing the holder’s own check-in and heartbeat of the same lease: one of them ends it, never a 500 (a deadlock on PostgreSQL, found by the fuzzer)', async () => {
  const lic = await t.license({ seats: 3, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 });
  const statuses = new Map<number, number>();
  for (let round = 0; round < 40; round++) {
    const fp = `fp-race-${String(round).padStart(4, '0')}`;
    const got = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: fp, instanceId: 'a' });
    assert.equal(got.status, 201, JSON.stringify(got.body));
    const id = got.body.lease.id as string;
    const answers = await Promise.all([
      t.admin('POST', `/v1/admin/leases/${id}/release`, {}),
      t.client(lic.key, 'POST', `/v1/client/leases/${id}/heartbeat`, { instanceId: 'a' }),
      t.client(lic.key, 'POST', `/v1/client/leases/${id}/checkin`, { instanceId: 'a' }),
    ]);
    for (const a of answers) {
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      assert.ok(a.status < 500, `round ${round}: ${a.status} ${JSON.stringify(a.body)}`);
    }
  }
  const license = (await t.admin('GET', `/v1/admin/licenses/${lic.id}`)).body;
  assert.equal(license.seatsUsed, 0, 'every raced lease ended');
});
