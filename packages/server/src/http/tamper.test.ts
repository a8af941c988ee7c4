/**
 * A customer who owns the machine tries to buy seats with its own state (issue #12):
 * SQL edits of the seat counters, of the license-file copy and of the trusted time,
 * with the server running and while it is stopped, and edits of the usage rows
 * before a signed usage report. Real servers on a real SQLite file (and PostgreSQL
 * in the second pass), restarted on the same data in between.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
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

const checkout = (t: TestServer, key: string, fingerprint: string) =>
  t.client(key, 'POST', '/v1/client/checkout', { fingerprint, instanceId: 'app' });
const live = async (t: TestServer, licId: string) =>
  Number((await t.rows('SELECT COUNT(*) AS n FROM leases WHERE license_id = ?', licId))[0]!.n);

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
  assert.equal(await live(t, licId), 3, "never more leases than the file's seats");
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

test("on-prem: 100 parallel checkouts after the counter is zeroed never pass the file's seats", async () => {
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
  assert.ok(
    answers.every((a) => a.status === 409),
    JSON.stringify(answers.find((a) => a.status !== 409)?.body),
  );
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

test('on-prem: an older license file put back while stopped (database copy and file, or the copy deleted) does not load; the state is flagged tampered until a newer file', async () => {
  const v = await vendor();
  const clock = new ManualClock(T0);
  const s = await restartable(v, clock);
  let t = await s.start();
  const spec5 = v.spec([{ seats: 5 }]);
  const spec3 = { ...spec5, licenses: spec5.licenses.map((l) => ({ ...l, seats: 3 })) };
  const key = spec5.licenses[0]!.key!;
  const old = v.issue(spec5, { serial: 1, now: T0 });
  assert.equal((await t.admin('POST', '/v1/admin/entitlements', { licenseFile: old })).status, 200);
  assert.equal((await t.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec3, { serial: 2, now: T0 }) })).status, 200);
  assert.equal((await t.admin('GET', '/v1/admin/entitlements')).body.licenseFile.serial, 2);
  await s.stop();

  // Both copies replaced by serial 1 (more seats).
  await writeFile(join(s.dataDir, 'license.json'), JSON.stringify(old));
  await t.tamper("UPDATE kv SET value = ? WHERE name = 'onprem/license-file'", JSON.stringify(old));
  t = await s.start();
  const status = (await t.admin('GET', '/v1/admin/entitlements')).body;
  assert.notEqual(status.licenseFile?.serial, 1, 'serial 1 never comes back into force');
  const refused = await checkout(t, key, 'fp-rollback-1');
  assert.equal(refused.status, 503, JSON.stringify(refused.body));
  assert.equal(refused.body.error.code, 'STATE_TAMPERED');
  assert.match((await t.raw('GET', '/metrics')).body as string, /floatd_state_tampered 1/);
  assert.ok((await t.admin('GET', '/v1/admin/audit?type=state.tampered')).body.items.length >= 1);
  await s.stop();

  // The database copy deleted instead, the file on disk at serial 1: still refused, still tampered after another restart.
  await t.tamper("DELETE FROM kv WHERE name = 'onprem/license-file'");
  t = await s.start();
  assert.equal((await checkout(t, key, 'fp-rollback-2')).body.error.code, 'STATE_TAMPERED');
  assert.notEqual((await t.admin('GET', '/v1/admin/entitlements')).body.licenseFile?.serial, 1);
  // Loading serial 1 through the API is refused too.
  const api = await t.admin('POST', '/v1/admin/entitlements', { licenseFile: old });
  assert.equal(api.body.error.code, 'ENTITLEMENT_ROLLBACK');

  // The vendor issues serial 3: the state is repaired, grants resume, both are audited.
  assert.equal((await t.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec3, { serial: 3, now: T0 }) })).status, 200);
  assert.equal((await checkout(t, key, 'fp-rollback-3')).status, 201);
  assert.equal((await t.admin('GET', '/v1/admin/audit?type=state.repaired')).body.items.length, 1);
  assert.match((await t.raw('GET', '/metrics')).body as string, /floatd_state_tampered 0/);
});

test('on-prem: deleting the trusted time while stopped gives no time back (sealed copy, newest recorded time); deleting the seal too is tampering', async () => {
  const v = await vendor();
  const clock = new ManualClock(T0);
  const s = await restartable(v, clock);
  let t = await s.start();
  // A server that enforces its clock check (tolerance 900 s, as in production).
  const spec = v.spec([{ seats: 2, model: 'subscription', expiresAt: new Date(T0 + 86_400_000).toISOString() } as never]);
  const key = spec.licenses[0]!.key!;
  assert.equal((await t.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec, { serial: 1, now: T0 }) })).status, 200);
  assert.equal((await checkout(t, key, 'fp-time-1')).status, 201);
  clock.set(T0 + 86_400_000 - 600_000);
  assert.equal((await checkout(t, key, 'fp-time-1b')).status, 201, 'the last grant, ten minutes before the end (audited)');
  // The subscription ends; the server keeps running an hour past the end.
  clock.set(T0 + 86_400_000 + 3_600_000);
  assert.equal((await checkout(t, key, 'fp-time-2')).body.error.code, 'LICENSE_EXPIRED');
  await t.server.clockGuard.tick();
  await t.server.seal!.tick(t.server.clockGuard.state().trustedTime);
  await s.stop();

  // Stopped: the trusted-time record deleted, the clock set back 2 h (inside the subscription again).
  await t.tamper("DELETE FROM kv WHERE name = 'server/trusted-time'");
  clock.set(T0 + 86_400_000 - 3_600_000);
  t = await s.start();
  const r = await checkout(t, key, 'fp-time-3');
  assert.equal(r.status, 503, JSON.stringify(r.body));
  assert.ok(['SERVER_CLOCK_ROLLBACK', 'STATE_TAMPERED'].includes(r.body.error.code), r.body.error.code);
  assert.ok(t.server.clockGuard.state().trustedTime >= T0 + 86_400_000 + 3_600_000 - 60_000, 'the sealed trusted time came back');
  await s.stop();

  // Stopped again: the trusted time and the seal (database and data directory) deleted: tampering, not a fresh install.
  await t.tamper("DELETE FROM kv WHERE name IN ('server/trusted-time', 'onprem/state')");
  await rm(join(s.dataDir, 'onprem-state.json'), { force: true });
  t = await s.start();
  const again = await checkout(t, key, 'fp-time-4');
  assert.equal(again.status, 503);
  assert.ok(['SERVER_CLOCK_ROLLBACK', 'STATE_TAMPERED'].includes(again.body.error.code));
  assert.equal(t.server.seal!.tampered, true);
  // And the newest time recorded in the data still bounds the clock.
  assert.ok(
    t.server.clockGuard.state().trustedTime >= T0 + 86_400_000 - 600_000,
    'floor from the newest time in the audit, usage and lease rows',
  );
});

test('on-prem: a database restored to an older seal (the data directory keeps the newer) is tampering', async () => {
  const v = await vendor();
  const clock = new ManualClock(T0);
  const s = await restartable(v, clock);
  let t = await s.start();
  const spec = v.spec([{ seats: 2 }]);
  const key = spec.licenses[0]!.key!;
  assert.equal((await t.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec, { serial: 1, now: T0 }) })).status, 200);
  const before = (await t.rows("SELECT value FROM kv WHERE name = 'onprem/state'"))[0]!.value as string;
  assert.equal((await checkout(t, key, 'fp-seal-1')).status, 201);
  clock.advance(120_000);
  await t.server.seal!.tick(t.server.clockGuard.state().trustedTime);
  // Running: the database copy is put back to the older seal; the next tick sees it.
  await t.tamper("UPDATE kv SET value = ? WHERE name = 'onprem/state'", before);
  await t.server.seal!.tick(t.server.clockGuard.state().trustedTime);
  assert.equal((await checkout(t, key, 'fp-seal-2')).body.error.code, 'STATE_TAMPERED');
  await s.stop();
  // The tampered state is sealed: a restart does not clear it, nor does putting the old seal back again.
  await t.tamper("UPDATE kv SET value = ? WHERE name = 'onprem/state'", before);
  t = await s.start();
  assert.equal((await checkout(t, key, 'fp-seal-3')).body.error.code, 'STATE_TAMPERED');
  const held = (await t.admin('GET', '/v1/admin/audit?type=checkout')).body.items[0];
  assert.equal(
    (await t.client(key, 'POST', `/v1/client/leases/${held.leaseId}/heartbeat`, { instanceId: 'app' })).status,
    200,
    'held leases keep working',
  );
});

test('on-prem: hourly usage rows edited before a signed usage report: the report shows the sealed peak and says so; the vendor checks the sequence', async () => {
  const v = await vendor();
  const vendorServer = await startTestServer({ clock: new ManualClock(T0), config: { vendorPrivateKey: v.privateKeyFile } });
  cleanups.push(() => vendorServer.close());
  const spec = {
    customer: { name: 'Initech' },
    vendorUrl: vendorServer.url,
    products: [{ name: 'Acme CAD' }],
    licenses: [{ product: 'Acme CAD', seats: 8 }],
  };
  const created = await vendorServer.admin('POST', '/v1/admin/deployments', { name: 'Initech HQ', spec });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const clock = new ManualClock(T0);
  const t = await startOnPremServer(v, { clock });
  cleanups.push(() => t.close());
  const act = await t.admin('POST', '/v1/admin/entitlements/activate', {
    vendorUrl: vendorServer.url,
    activationKey: created.body.activationKey,
  });
  assert.equal(act.status, 200, JSON.stringify(act.body));
  const lic = (await t.admin('GET', '/v1/admin/entitlements')).body.licenseFile.licenses[0];
  for (let i = 0; i < 6; i++) assert.equal((await checkout(t, lic.key, `fp-usage-${i}`)).status, 201);
  clock.advance(60_000);
  await t.server.seal!.tick(t.server.clockGuard.state().trustedTime);
  // The customer lowers the hourly rows.
  await t.tamper('UPDATE usage_hourly SET peak_seats = 1, seats_at_end = 1, checkouts = 1');
  const report = (await t.admin('GET', `/v1/admin/usage-report?from=${new Date(T0 - 86_400_000).toISOString()}`)).body;
  const line = report.payload.licenses[0];
  assert.equal(line.peakSeats, 6, 'the sealed peak, not the edited rows');
  assert.equal(line.checkouts, 6);
  assert.equal(report.payload.integrity.usageBelowSeal.length, 1);
  assert.equal(report.payload.sequence, 1);
  assert.equal(report.payload.previousReportHash, null);

  // The vendor: the first report, then the next in sequence, then one replayed (a rollback), then a gap.
  const imp = (doc: unknown) => vendorServer.admin('POST', '/v1/admin/usage-reports', { report: doc });
  assert.equal((await imp(report)).body.continuity, 'first');
  const second = (await t.admin('GET', '/v1/admin/usage-report')).body;
  assert.equal(second.payload.sequence, 2);
  assert.equal((await imp(second)).body.continuity, 'ok');
  assert.equal((await imp(report)).body.continuity, 'rollback');
  await t.admin('GET', '/v1/admin/usage-report'); // sequence 3, never sent
  clock.advance(1000);
  const fourth = (await t.admin('GET', '/v1/admin/usage-report')).body;
  assert.equal(fourth.payload.sequence, 4);
  assert.equal((await imp(fourth)).body.continuity, 'gap');
});

test("on-prem: floatd restore of an older backup is seen as the rollback it is (STATE_TAMPERED); the vendor's next file repairs it", {
  skip: TEST_STORE === 'postgres' ? 'SQLite backups (PostgreSQL: pg_dump)' : false,
}, async () => {
  const { backup, restore } = await import('../ops/backup.js');
  const { parseConfig } = await import('../config.js');
  const v = await vendor();
  const clock = new ManualClock(T0);
  const s = await restartable(v, clock);
  let t = await s.start();
  const spec = v.spec([{ seats: 2 }]);
  const key = spec.licenses[0]!.key!;
  assert.equal((await t.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec, { serial: 1, now: T0 }) })).status, 200);
  const config = parseConfig({ dataDir: s.dataDir, mode: 'on-prem', vendorPublicKey: v.publicKeyFile });
  const file = join(s.dataDir, '..', `backup-${Date.now()}.db`);
  cleanups.push(() => rm(file, { force: true }));
  await backup(config, file);
  // After the backup: a grant, a usage report (sequence 1), a sealed tick.
  assert.equal((await checkout(t, key, 'fp-restore-1')).status, 201);
  clock.advance(60_000);
  assert.equal((await t.admin('GET', '/v1/admin/usage-report')).body.payload.sequence, 1);
  await s.stop();
  await restore(config, file);
  t = await s.start();
  const refused = await checkout(t, key, 'fp-restore-2');
  assert.equal(refused.body.error?.code, 'STATE_TAMPERED', JSON.stringify(refused.body));
  // The honest way back: the vendor issues a newer file.
  assert.equal(
    (await t.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec, { serial: 2, now: clock.now() }) })).status,
    200,
  );
  assert.equal((await checkout(t, key, 'fp-restore-2')).status, 201);
  const report = (await t.admin('GET', '/v1/admin/usage-report')).body.payload;
  assert.equal(report.sequence, 2, 'the report sequence did not go back with the restore');
  assert.ok(
    report.integrity.events.some((e: { event: string }) => e.event === 'tampered'),
    'the rollback is told to the vendor',
  );
});
