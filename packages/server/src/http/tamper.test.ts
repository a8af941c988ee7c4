/**
 * A customer who owns the machine tries to buy seats with its own state (issue #12):
 * SQL edits of the seat counters, of the license-file copy and of the trusted time,
 * with the server running and while it is stopped, and edits of the usage rows
 * before a signed usage report. Real servers on a real SQLite file (and PostgreSQL
 * in the second pass), restarted on the same data in between.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ManualClock } from '../domain/clock.js';
import { createTempDatabase, startTestServer, TEST_STORE, type TempDatabase, type TestServer } from '../testing/harness.js';
import { startOnPremServer, testVendor, type TestVendor } from '../testing/onprem.js';

const T0 = Date.parse('2026-03-02T09:00:00Z');
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function vendor(): Promise<TestVendor> {
  const v = await testVendor();
  cleanups.push(() => rm(v.dir, { recursive: true, force: true }));
  return v;
}

/** A database both starts share (PostgreSQL); SQLite keeps its file in the data directory. */
async function sharedDatabase(): Promise<TempDatabase | undefined> {
  if (TEST_STORE !== 'postgres') return undefined;
  const db = await createTempDatabase();
  cleanups.push(() => db.drop());
  return db;
}

/** An on-prem server that can be stopped and started again on the same data directory and database. */
async function restartable(v: TestVendor, clock: ManualClock) {
  const { mkdtemp } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-tamper-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const database = await sharedDatabase();
  let current: TestServer | undefined;
  const start = async () => {
    current = await startOnPremServer(v, { clock, dataDir, ...(database ? { database } : {}) });
    cleanups.push(() => current!.close());
    return current;
  };
  return { dataDir, start, stop: async () => current?.close() };
}

const checkout = (t: TestServer, key: string, fp: string) => t.client(key, 'POST', '/v1/client/checkout', { fingerprint: fp, instanceId: 'app' });
const live = async (t: TestServer, licId: string) => Number((await t.rows('SELECT COUNT(*) AS n FROM leases WHERE license_id = ?', licId))[0]!.n);

test('on-prem: setting seats_used = 0 by SQL grants nothing, running or stopped; the counter is repaired, audited and counted', async () => {
  const v = await vendor();
  const clock = new ManualClock(T0);
  const s = await restartable(v, clock);
  let t = await s.start();
  const spec = v.spec([{ seats: 3 }]);
  const key = spec.licenses[0]!.key!;
  const licId = spec.licenses[0]!.id!;
  assert.equal((await t.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec, { serial: 1, now: T0 }) })).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await checkout(t, key, `fp-held-${i}`)).status, 201);

  // While the server runs.
  await t.tamper('UPDATE licenses SET seats_used = 0 WHERE id = ?', licId);
  for (let i = 0; i < 3; i++) {
    const r = await checkout(t, key, `fp-extra-${i}`);
    assert.equal(r.status, 409, `extra device ${i}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'NO_SEATS_AVAILABLE');
  }
  assert.equal(await live(t, licId), 3, 'never more leases than the file\'s seats');
  assert.equal((await t.rows('SELECT seats_used FROM licenses WHERE id = ?', licId))[0]!.seats_used, 3, 'the counter was repaired');
  const repaired = (await t.admin('GET', '/v1/admin/audit?type=seats.repaired')).body.items;
  assert.equal(repaired.length, 1);
  assert.deepEqual(repaired[0].data, { stored: { used: 0, offline: 0 }, counted: { used: 3, offline: 0 } });
  assert.match((await t.raw('GET', '/metrics')).body as string, /floatd_seat_counter_repairs_total 1/);

  // While it is stopped.
  await s.stop();
  await t.tamper('UPDATE licenses SET seats_used = 0, seats_offline = 0 WHERE id = ?', licId);
  t = await s.start();
  for (let i = 0; i < 3; i++) assert.equal((await checkout(t, key, `fp-extra-b${i}`)).status, 409);
  assert.equal(await live(t, licId), 3);

  // A force release after an edit is answered honestly (it answered 409 NO_SEATS_AVAILABLE before), and frees exactly one seat.
  await t.tamper('UPDATE licenses SET seats_used = 0 WHERE id = ?', licId);
  const leases = (await t.admin('GET', `/v1/admin/licenses/${licId}/leases`)).body.items;
  const released = await t.admin('POST', `/v1/admin/leases/${leases[0].id}/release`);
  assert.equal(released.status, 200, JSON.stringify(released.body));
  assert.equal((await checkout(t, key, 'fp-after-release')).status, 201);
  assert.equal((await checkout(t, key, 'fp-after-release-2')).status, 409);
  assert.equal(await live(t, licId), 3);

  // A counter set too high (a denial of service by hand) denies no one: the rows decide.
  await t.admin('POST', `/v1/admin/leases/${leases[1].id}/release`);
  await t.tamper('UPDATE licenses SET seats_used = 3 WHERE id = ?', licId);
  assert.equal((await checkout(t, key, 'fp-high-1')).status, 201);
});

test('on-prem: 100 parallel checkouts after the counter is zeroed never pass the file\'s seats', async () => {
  const v = await vendor();
  const t = await startOnPremServer(v, { clock: new ManualClock(T0) });
  cleanups.push(() => t.close());
  const spec = v.spec([{ seats: 5 }]);
  const key = spec.licenses[0]!.key!;
  const licId = spec.licenses[0]!.id!;
  assert.equal((await t.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec, { serial: 1, now: T0 }) })).status, 200);
  for (let i = 0; i < 5; i++) assert.equal((await checkout(t, key, `fp-pre-${i}`)).status, 201);
  await t.tamper('UPDATE licenses SET seats_used = 0 WHERE id = ?', licId);
  const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => checkout(t, key, `fp-query-${i}`)));
  assert.equal(answers.filter((a) => a.status === 201).length, 0);
  assert.ok(answers.every((a) => a.status === 409), JSON.stringify(answers.find((a) => a.status !== 409)?.body));
  assert.equal(await live(t, licId), 5);
});

test('hosted: a drifted counter is found and repaired the same way', async () => {
  const t = await startTestServer({ clock: new ManualClock(T0) });
  cleanups.push(() => t.close());
  const lic = await t.license({ seats: 2 });
  assert.equal((await checkout(t, lic.key, 'fp-host-1')).status, 201);
  assert.equal((await checkout(t, lic.key, 'fp-host-2')).status, 201);
  await t.tamper('UPDATE licenses SET seats_used = 1 WHERE id = ?', lic.id);
  assert.equal((await checkout(t, lic.key, 'fp-host-3')).status, 409);
  assert.equal(await live(t, lic.id), 2);
  assert.equal((await t.admin('GET', '/v1/admin/audit?type=seats.repaired')).body.items.length, 1);
  assert.equal((await t.admin('GET', `/v1/admin/licenses/${lic.id}`)).body.seatsUsed, 2);
});
