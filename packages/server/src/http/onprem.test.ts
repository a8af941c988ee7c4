/**
 * On-premise mode against real servers (SQLite, and PostgreSQL in the second pass):
 * seats only from the vendor-signed file whatever the database or the file on disk
 * say; renewal without restart; no serial rollback; offline and online activation
 * (a real HTTP round trip between two floatd servers); the signed usage report
 * back to the vendor; the server clock set back.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatKey } from '@floatd/protocol';
import { ManualClock } from '../domain/clock.js';
import { startTestServer, type TestServer } from '../testing/harness.js';
import { startOnPremServer, testVendor, type TestVendor } from '../testing/onprem.js';
import { runFloatd } from '../testing/process.js';

const T0 = Date.parse('2026-03-02T09:00:00Z');
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function vendor(): Promise<TestVendor> {
  const v = await testVendor();
  cleanups.push(() => rm(v.dir, { recursive: true, force: true }));
  return v;
}
async function onPrem(v: TestVendor, opts: { clock?: ManualClock; dataDir?: string } = {}): Promise<TestServer> {
  const t = await startOnPremServer(v, { clock: opts.clock ?? new ManualClock(T0), ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) });
  cleanups.push(() => t.close());
  return t;
}

/** Runs the real `floatd` command against a server (async: the server answers from this process). */
function floatd(t: TestServer | undefined, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const conn = t ? ['--server', t.url, '--token', t.adminToken] : [];
  return runFloatd([...args, ...conn]);
}

const checkout = (t: TestServer, key: string, fingerprint: string) =>
  t.client(key, 'POST', '/v1/client/checkout', { fingerprint, instanceId: 'app' });

test('the sharing rule, clone and VM policies come from the signed file: widening them in the database grants nothing', async () => {
  const v = await vendor();
  const t = await onPrem(v);
  const spec = v.spec([{ seats: 1, sharing: { by: ['user'], cap: 2 }, vmPolicy: 'deny', clonePolicy: 'refuse' }]);
  const key = spec.licenses[0]!.key!;
  const licId = spec.licenses[0]!.id!;
  const file = v.issue(spec, { serial: 1, now: t.clock.now() });
  assert.equal((await t.admin('POST', '/v1/admin/entitlements', { licenseFile: file })).status, 200);
  const shown = (await t.admin('GET', `/v1/admin/licenses/${licId}`)).body;
  assert.deepEqual(shown.sharing, { by: ['user'], cap: 2 });
  const use = (fingerprint: string, instanceId: string, extra: Record<string, unknown> = {}) =>
    t.client(key, 'POST', '/v1/client/checkout', { fingerprint, instanceId, ...extra });
  assert.equal((await use('fp-share-1', 'a', { user: 'gus' })).status, 201);
  assert.equal((await use('fp-share-2', 'b', { user: 'gus' })).status, 200);
  // The customer widens the rule in the database (one seat for the whole site, no cap, VMs and clones welcome).
  await t.tamper(
    `UPDATE licenses SET sharing = '{"by":["site"],"cap":null}', counting = 'shared', vm_policy = 'allow', clone_policy = 'allow' WHERE id = ?`,
    licId,
  );
  const third = await use('fp-share-3', 'c', { user: 'gus' });
  assert.equal(third.body.error?.code, 'NO_SEATS_AVAILABLE', "the file's cap of 2 uses still holds");
  const other = await use('fp-share-4', 'd', { user: 'hal' });
  assert.equal(other.body.error?.code, 'NO_SEATS_AVAILABLE', "another user needs another seat: the file's rule, not site");
  const vm = await use('fp-share-5', 'e', { user: 'gus', vm: true });
  assert.equal(vm.body.error?.code, 'VM_NOT_ALLOWED', "the file's VM policy");
  // The file is read again: it still decides.
  await t.server.entitlements!.poll();
  assert.equal((await use('fp-share-6', 'f', { user: 'ivy' })).body.error?.code, 'NO_SEATS_AVAILABLE');
});

test('feature pools come from the signed file: more feature seats or a new feature in the database grant nothing past the file', async () => {
  const v = await vendor();
  const t = await onPrem(v);
  const spec = v.spec([{ seats: 2, features: [{ name: 'render', seats: 1 }] }]);
  const key = spec.licenses[0]!.key!;
  const licId = spec.licenses[0]!.id!;
  assert.equal(
    (await t.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec, { serial: 1, now: t.clock.now() }) })).status,
    200,
  );
  assert.deepEqual((await t.admin('GET', `/v1/admin/licenses/${licId}`)).body.features, [{ name: 'render', seats: 1 }]);
  const use = (fingerprint: string, features: string[]) =>
    t.client(key, 'POST', '/v1/client/checkout', { fingerprint, instanceId: 'app', features });
  assert.equal((await use('fp-feat-1', ['base', 'render'])).status, 201);
  // The customer gives render 9 seats and adds a feature in the database.
  await t.tamper(`UPDATE licenses SET features = '[{"name":"render","seats":9},{"name":"sim","seats":5}]' WHERE id = ?`, licId);
  assert.equal((await use('fp-feat-2', ['render'])).body.error?.code, 'NO_FEATURE_SEATS_AVAILABLE', "the file's 1 render seat");
  assert.equal((await use('fp-feat-3', ['sim'])).body.error?.code, 'UNKNOWN_FEATURE', 'no sim in the file');
  // The admin API cannot change them either (the file owns the policy).
  assert.equal((await t.admin('PATCH', `/v1/admin/licenses/${licId}`, { features: [{ name: 'render', seats: 9 }] })).status, 403);
  assert.equal((await use('fp-feat-4', ['render'])).body.error?.code, 'NO_FEATURE_SEATS_AVAILABLE');
});

test("an access policy in the signed file is the vendor's: it is enforced and the site cannot change it; without one the site sets its own", async () => {
  const v = await vendor();
  const t = await onPrem(v);
  const access = { allow: null, deny: ['user:eve'], limits: [], reservations: [] };
  const spec = v.spec([{ seats: 3, access }, { seats: 3 }]);
  const [guarded, open] = spec.licenses;
  assert.equal(
    (await t.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec, { serial: 1, now: t.clock.now() }) })).status,
    200,
  );
  const use = (key: string, fingerprint: string, user: string) =>
    t.client(key, 'POST', '/v1/client/checkout', { fingerprint, instanceId: 'app', user });
  assert.equal((await use(guarded!.key!, 'fp-acc-eve-1', 'eve')).body.error?.code, 'CHECKOUT_NOT_ALLOWED');
  assert.equal((await use(guarded!.key!, 'fp-acc-ann-1', 'ann')).status, 201);
  const change = await t.admin('PATCH', `/v1/admin/licenses/${guarded!.id}`, { access: { ...access, deny: [] } });
  assert.equal(change.status, 403);
  assert.equal(change.body.error.code, 'ENTITLEMENT_MANAGED');
  // The database edited by hand: the file still decides.
  await t.tamper(`UPDATE licenses SET access = NULL WHERE id = ?`, guarded!.id);
  assert.equal((await use(guarded!.key!, 'fp-acc-eve-2', 'eve')).body.error?.code, 'CHECKOUT_NOT_ALLOWED');
  // A license whose file entry has no access policy: the site's own, as before.
  assert.equal((await t.admin('PATCH', `/v1/admin/licenses/${open!.id}`, { access: { ...access, deny: ['user:zed'] } })).status, 200);
  assert.equal((await use(open!.key!, 'fp-acc-zed-1', 'zed')).body.error?.code, 'CHECKOUT_NOT_ALLOWED');
  assert.equal((await use(open!.key!, 'fp-acc-eve-3', 'eve')).status, 201);
});

test('overdraft on-premise: the file decides how many seats past the count; the signed usage report carries the true-up', async () => {
  const v = await vendor();
  const t = await onPrem(v);
  const spec = v.spec([{ seats: 1, overdraftSeats: 1 }]);
  const key = spec.licenses[0]!.key!;
  const licId = spec.licenses[0]!.id!;
  assert.equal(
    (await t.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec, { serial: 1, now: t.clock.now() }) })).status,
    200,
  );
  assert.equal((await checkout(t, key, 'fp-overdraft-1')).status, 201);
  const second = await checkout(t, key, 'fp-overdraft-2');
  assert.equal(second.status, 201);
  assert.equal(second.body.lease.overdraft, true);
  // The customer raises the overdraft (and the seats) in the database: the guard's columns, not the file.
  await t.tamper('UPDATE licenses SET overdraft_seats = 50, seats = 50 WHERE id = ?', licId);
  const third = await checkout(t, key, 'fp-overdraft-3');
  assert.equal(third.body.error?.code, 'NO_SEATS_AVAILABLE', "the file's overdraft");
  const report = (
    await t.admin(
      'GET',
      `/v1/admin/usage-report?from=${encodeURIComponent(new Date(T0 - 86_400_000).toISOString())}&to=${encodeURIComponent(new Date(T0 + 86_400_000).toISOString())}`,
    )
  ).body;
  const line = report.payload.licenses[0];
  assert.equal(line.peakSeats, 2);
  assert.equal(line.peakOverdraft, 1, 'one seat beyond the count, for the true-up');
  assert.equal(line.overdraftCheckouts, 1);
});

test('seats come from the signed file: raising them in the database or editing the file grants no extra seat', async () => {
  const v = await vendor();
  const t = await onPrem(v);
  // Before any file: nothing is granted, and the admin sees why.
  const spec = v.spec([{ seats: 2, maxOfflineSeconds: 3600 }]);
  const key = spec.licenses[0]!.key!;
  const licId = spec.licenses[0]!.id!;
  const status0 = await t.admin('GET', '/v1/admin/entitlements');
  assert.equal(status0.body.mode, 'on-prem');
  assert.equal(status0.body.licenseFile, null);
  assert.match(status0.body.fingerprint, /^fsv1-/);

  const file = v.issue(spec, { serial: 1, now: t.clock.now() });
  const loaded = await t.admin('POST', '/v1/admin/entitlements', { licenseFile: file });
  assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
  assert.equal(loaded.body.loaded.serial, 1);
  assert.equal((await checkout(t, key, 'fp-onprem-1')).status, 201);
  assert.equal((await checkout(t, key, 'fp-onprem-2')).status, 201);
  const third = await checkout(t, key, 'fp-onprem-3');
  assert.equal(third.status, 409);
  assert.equal(third.body.error.code, 'NO_SEATS_AVAILABLE');

  // The customer owns the database: raise the seats, the offline limit and the expiry with SQL.
  await t.tamper('UPDATE licenses SET seats = 50, max_offline_seconds = 999999 WHERE id = ?', licId);
  assert.equal((await t.rows('SELECT seats FROM licenses WHERE id = ?', licId))[0]!.seats, 50);
  const still = await checkout(t, key, 'fp-onprem-3');
  assert.equal(still.status, 409, 'no extra seat from the database');
  assert.equal(still.body.error.code, 'NO_SEATS_AVAILABLE');
  assert.equal(still.body.error.seatsTotal, 2, "the seat count is the file's");
  const borrow = await t.client(key, 'POST', '/v1/client/offline-checkout', {
    fingerprint: 'fp-onprem-1',
    instanceId: 'app',
    durationSeconds: 7200,
  });
  assert.equal(borrow.status, 422, "the offline limit is the file's too");
  assert.equal(borrow.body.error.code, 'OFFLINE_DURATION_EXCEEDED');
  // A key inserted into the database by hand is unknown.
  await t.tamper(
    `INSERT INTO licenses (id, product_id, key, seats, model, lease_ttl_seconds, heartbeat_interval_seconds, max_offline_seconds, max_instances_per_device, counting, suspended, metadata, created_at, updated_at)
     VALUES ('lic_handmadehandmadehand', ?, '${formatKey('Z'.repeat(24))}', 100, 'permanent', 900, 300, 0, 10, 'per-device', ${t.store === 'postgres' ? 'false' : '0'}, '{}', 0, 0)`,
    spec.products[0]!.id,
  );
  const handmade = (await t.rows("SELECT key FROM licenses WHERE id = 'lic_handmadehandmadehand'"))[0]!.key as string;
  const forged = await checkout(t, handmade, 'fp-onprem-4');
  assert.equal(forged.status, 401);
  assert.equal(forged.body.error.code, 'INVALID_LICENSE_KEY');

  // The customer owns the file too: raise the seats in it. The signature breaks; the file in force stays.
  const onDisk = join(t.dataDir, 'license.json');
  const edited = (await readFile(onDisk, 'utf8')).replace('"seats": 2', '"seats": 50');
  assert.notEqual(edited, await readFile(onDisk, 'utf8'), 'the loaded file was written to the data directory');
  await writeFile(onDisk, edited);
  await t.server.entitlements!.poll();
  assert.equal((await checkout(t, key, 'fp-onprem-3')).status, 409);
  const before = await t.snapshot();
  const refused = await t.admin('POST', '/v1/admin/entitlements', { licenseFile: JSON.parse(edited) });
  assert.equal(refused.status, 422);
  assert.equal(refused.body.error.code, 'ENTITLEMENT_INVALID');
  assert.match(refused.body.error.message, /signature does not match/);
  assert.deepEqual(await t.snapshot(), before, 'a refused file changes nothing');
  assert.equal((await t.admin('GET', '/v1/admin/entitlements')).body.licenseFile.licenses[0].seats, 2);

  // The local admin runs leases, devices, reclamation, audit and usage, and may suspend; not seats or the catalogue.
  const managed = [
    await t.admin('PATCH', `/v1/admin/licenses/${licId}`, { seats: 10 }),
    await t.admin('PATCH', `/v1/admin/licenses/${licId}`, { maxOfflineSeconds: 86400, metadata: { a: 1 } }),
    await t.admin('POST', '/v1/admin/licenses', { productId: spec.products[0]!.id, seats: 5 }),
    await t.admin('DELETE', `/v1/admin/licenses/${licId}?force=true`),
    await t.admin('POST', '/v1/admin/products', { name: 'Mine' }),
  ];
  for (const r of managed) {
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'ENTITLEMENT_MANAGED');
  }
  assert.equal((await t.admin('PATCH', `/v1/admin/licenses/${licId}`, { metadata: { site: 'plant 2' } })).status, 200);
  assert.equal((await t.admin('POST', `/v1/admin/licenses/${licId}/suspend`)).status, 200);
  assert.equal((await checkout(t, key, 'fp-onprem-1')).body.error.code, 'LICENSE_SUSPENDED');
  assert.equal((await t.admin('POST', `/v1/admin/licenses/${licId}/resume`)).status, 200);
  const leases = (await t.admin('GET', `/v1/admin/licenses/${licId}/leases`)).body.items;
  assert.equal(leases.length, 2);
  assert.equal((await t.admin('POST', `/v1/admin/leases/${leases[0].id}/release`)).status, 200);
  assert.equal((await t.admin('GET', `/v1/admin/licenses/${licId}/devices`)).status, 200);
  assert.equal((await t.admin('POST', '/v1/admin/reclaim')).status, 200);
  assert.equal((await checkout(t, key, 'fp-onprem-3')).status, 201, 'the released seat is free again');
  const audit = (await t.admin('GET', '/v1/admin/audit?type=entitlements.loaded')).body.items;
  assert.equal(audit.length, 1);
  assert.equal(audit[0].data.serial, 1);
});

test("the license end a client is shown is the gate's: never past the license file's end (checkout, heartbeat, info)", async () => {
  const v = await vendor();
  const t = await onPrem(v);
  const DAY = 86_400_000;
  const iso = (ms: number) => new Date(ms).toISOString();
  const now = t.clock.now();
  const fileEnd = iso(now + 30 * DAY);
  const subscriptionEnd = iso(now + 10 * DAY);
  const spec = v.spec(
    [
      { seats: 1 }, // permanent: ends with the file
      { seats: 1, model: 'trial', trialDays: 60 }, // a trial longer than the file: ends with the file
      { seats: 1, model: 'subscription', expiresAt: subscriptionEnd }, // ends before the file: its own end
    ],
    { validDays: 30 },
  );
  const loaded = await t.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec, { serial: 1, now }) });
  assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
  const expected = [fileEnd, fileEnd, subscriptionEnd];
  for (const [i, l] of spec.licenses.entries()) {
    const key = l.key!;
    const granted = await checkout(t, key, `fp-end-${i}`);
    assert.equal(granted.status, 201, JSON.stringify(granted.body));
    assert.equal(granted.body.license.expiresAt, expected[i], `checkout, license ${i}`);
    const renewed = await t.client(key, 'POST', `/v1/client/leases/${granted.body.lease.id}/heartbeat`, { instanceId: 'app' });
    assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
    assert.equal(renewed.body.license.expiresAt, expected[i], `heartbeat, license ${i}`);
    const info = await t.client(key, 'GET', '/v1/client/license');
    assert.equal(info.status, 200);
    assert.equal(info.body.license.expiresAt, expected[i], `license info, license ${i}`);
    // The token never outlives the license either (its lease's TTL is shorter here, so the lease bounds it).
    const claims = JSON.parse(Buffer.from(String(granted.body.token).split('.')[1]!, 'base64url').toString());
    assert.ok(claims.exp * 1000 <= Date.parse(expected[i]!));
  }
});

test('a renewal is loaded without a restart (file on disk, API, CLI); a lower serial is refused', async () => {
  const v = await vendor();
  const t = await onPrem(v);
  const spec = v.spec([{ seats: 1 }]);
  const key = spec.licenses[0]!.key!;
  const onDisk = join(t.dataDir, 'license.json');
  // Serial 1 dropped into the data directory: picked up by the periodic check.
  await writeFile(onDisk, JSON.stringify(v.issue(spec, { serial: 1, now: t.clock.now() })));
  await t.server.entitlements!.poll();
  assert.equal((await checkout(t, key, 'fp-renew-1')).status, 201);
  assert.equal((await checkout(t, key, 'fp-renew-2')).status, 409);

  // Serial 2 with 3 seats, same keys (the vendor's completed spec), through the file: no restart.
  spec.licenses[0]!.seats = 3;
  await writeFile(onDisk, JSON.stringify(v.issue(spec, { serial: 2, now: t.clock.now() })));
  await t.server.entitlements!.poll();
  assert.equal((await checkout(t, key, 'fp-renew-2')).status, 201);
  assert.equal((await checkout(t, key, 'fp-renew-3')).status, 201);
  assert.equal((await checkout(t, key, 'fp-renew-4')).status, 409);

  // Back to serial 1 (fewer seats... or more, from an older contract): refused, by the API and from disk.
  spec.licenses[0]!.seats = 10;
  const old = v.issue(spec, { serial: 1, now: t.clock.now() });
  const back = await t.admin('POST', '/v1/admin/entitlements', { licenseFile: old });
  assert.equal(back.status, 409);
  assert.equal(back.body.error.code, 'ENTITLEMENT_ROLLBACK');
  assert.equal(back.body.error.current, 2);
  await writeFile(onDisk, JSON.stringify(old));
  await t.server.entitlements!.poll();
  assert.equal((await checkout(t, key, 'fp-renew-4')).status, 409, 'still serial 2 and 3 seats');
  assert.equal((await t.admin('GET', '/v1/admin/entitlements')).body.licenseFile.serial, 2);

  // Serial 3 through the admin command; loading the same file again changes nothing.
  spec.licenses[0]!.seats = 4;
  const third = join(v.dir, 'serial3.json');
  await writeFile(third, JSON.stringify(v.issue(spec, { serial: 3, now: t.clock.now() }), null, 2));
  const cli = await floatd(t, ['entitlements', 'load', third]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /loaded serial 3/);
  assert.equal((await checkout(t, key, 'fp-renew-4')).status, 201);
  const again = await floatd(t, ['entitlements', 'load', third]);
  assert.equal(again.code, 0);
  assert.match(again.stdout, /already loaded/);
  const rollbackCli = await floatd(t, ['entitlements', 'load', join(t.dataDir, 'license.json')]);
  // license.json was rewritten with serial 3 by the load; write serial 1 to another file for the CLI refusal.
  const oldFile = join(v.dir, 'serial1.json');
  await writeFile(oldFile, JSON.stringify(old));
  const refused = await floatd(t, ['entitlements', 'load', oldFile]);
  assert.equal(rollbackCli.code, 0);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /ENTITLEMENT_ROLLBACK|lower than serial 3/);

  // A restart keeps serial 3 (SQLite: same data directory).
  if (t.store === 'sqlite') {
    const dataDir = t.dataDir;
    const clock = t.clock;
    await t.server.close();
    const again2 = await onPrem(v, { clock, dataDir });
    assert.equal((await again2.admin('GET', '/v1/admin/entitlements')).body.licenseFile.serial, 3);
    assert.equal((await checkout(again2, key, 'fp-renew-5')).status, 409, '4 seats held, 4 in the file');
  }
});

test('offline activation: request file from the on-prem server, vendor CLI issues a bound file, the admin loads it', async () => {
  const v = await vendor();
  // The vendor's command signs with its own clock (the real one): the server runs on real time here.
  const t = await onPrem(v, { clock: new ManualClock(Date.now()) });
  const requestFile = join(v.dir, 'request.json');
  const req = await floatd(t, ['entitlements', 'request', '--out', requestFile]);
  assert.equal(req.code, 0, req.stderr);
  const request = JSON.parse(await readFile(requestFile, 'utf8'));
  assert.equal(request.format, 'floatd-activation-request/1');
  assert.equal(request.payload.fingerprint, (await t.admin('GET', '/v1/admin/entitlements')).body.fingerprint);

  // The vendor, on its own machine: a spec, its private key, the request.
  const specFile = join(v.dir, 'spec.json');
  await writeFile(
    specFile,
    JSON.stringify({
      customer: { name: 'Air-gapped plant' },
      products: [{ name: 'Acme CAD' }],
      licenses: [{ product: 'Acme CAD', seats: 2 }],
    }),
  );
  const licenseOut = join(v.dir, 'plant.license.json');
  const issued = await floatd(undefined, [
    'entitlements',
    'issue',
    '--spec',
    specFile,
    '--private-key',
    v.privateKeyFile,
    '--serial',
    '1',
    '--request',
    requestFile,
    '--out',
    licenseOut,
  ]);
  assert.equal(issued.code, 0, issued.stderr);
  assert.match(issued.stdout, /bound to fsv1-/);

  const load = await floatd(t, ['entitlements', 'load', licenseOut]);
  assert.equal(load.code, 0, load.stderr);
  const key = JSON.parse(await readFile(specFile, 'utf8')).licenses[0].key as string;
  assert.equal((await checkout(t, key, 'fp-airgap-1')).status, 201);
  const status = await floatd(t, ['entitlements', 'status']);
  assert.match(status.stdout, /Air-gapped plant/);
  assert.match(status.stdout, new RegExp(`bound to\\s+${request.payload.fingerprint}`));

  // The same file on another server (a copy of the install) does not load: it is bound to the first.
  const other = await onPrem(v, { clock: new ManualClock(Date.now()) });
  const copy = await other.admin('POST', '/v1/admin/entitlements', { licenseFile: JSON.parse(await readFile(licenseOut, 'utf8')) });
  assert.equal(copy.status, 422);
  assert.match(copy.body.error.message, /bound to server/);
  // A request edited on the way (another fingerprint) does not verify at the vendor.
  const forged = { ...request, payload: { ...request.payload, fingerprint: 'fsv1-forged-forged-forged-forged' } };
  await writeFile(requestFile, JSON.stringify(forged));
  const bad = await floatd(undefined, [
    'entitlements',
    'issue',
    '--spec',
    specFile,
    '--private-key',
    v.privateKeyFile,
    '--serial',
    '2',
    '--request',
    requestFile,
  ]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /activation request does not verify/);
});

test("online activation and usage report: two real servers, the vendor's and the customer's", async () => {
  const v = await vendor();
  const vendorServer = await startTestServer({ clock: new ManualClock(T0), config: { vendorPrivateKey: v.privateKeyFile } });
  cleanups.push(() => vendorServer.close());
  const spec = {
    customer: { name: 'Initech', id: 'cust-42' },
    vendorUrl: vendorServer.url,
    products: [{ name: 'Acme CAD' }],
    licenses: [{ product: 'Acme CAD', seats: 2 }],
  };
  const created = await vendorServer.admin('POST', '/v1/admin/deployments', { name: 'Initech HQ', spec });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const { activationKey, deployment } = created.body;
  assert.match(activationKey, /^fak_/);
  assert.ok(
    !JSON.stringify((await vendorServer.admin('GET', `/v1/admin/deployments/${deployment.id}`)).body).includes(activationKey),
    'the key is kept hashed',
  );

  const t = await onPrem(v);
  const wrong = await t.admin('POST', '/v1/admin/entitlements/activate', {
    vendorUrl: vendorServer.url,
    activationKey: 'fak_wrongwrongwrong',
  });
  assert.equal(wrong.status, 502);
  assert.equal(wrong.body.error.code, 'ACTIVATION_FAILED');
  assert.equal(wrong.body.error.vendorCode, 'ACTIVATION_KEY_INVALID');
  const act = await floatd(t, ['entitlements', 'activate', '--vendor-url', vendorServer.url, '--activation-key', activationKey]);
  assert.equal(act.code, 0, act.stderr);
  assert.match(act.stdout, /activated: serial 1/);
  const fingerprint = (await t.admin('GET', '/v1/admin/entitlements')).body.fingerprint;
  const dep = (await vendorServer.admin('GET', `/v1/admin/deployments/${deployment.id}`)).body;
  assert.equal(dep.fingerprint, fingerprint, 'the vendor bound the deployment to this server');
  assert.equal(dep.serial, 1);
  // Another server with the same activation key is refused.
  const thief = await onPrem(v);
  const stolen = await thief.admin('POST', '/v1/admin/entitlements/activate', { vendorUrl: vendorServer.url, activationKey });
  assert.equal(stolen.status, 502);
  assert.equal(stolen.body.error.vendorCode, 'FINGERPRINT_MISMATCH');

  // Use: 2 seats, one denial, one check-in.
  const key = (await t.admin('GET', '/v1/admin/entitlements')).body.licenseFile.licenses[0].key as string;
  assert.equal((await checkout(t, key, 'fp-usage-1')).status, 201);
  t.clock.advance(60_000);
  assert.equal((await checkout(t, key, 'fp-usage-2')).status, 201);
  assert.equal((await checkout(t, key, 'fp-usage-3')).status, 409);

  // Renewal online: the vendor raises the seats; activating again fetches serial 2.
  const full = (await vendorServer.admin('GET', `/v1/admin/deployments/${deployment.id}`)).body.spec;
  full.licenses[0].seats = 3;
  assert.equal((await vendorServer.admin('PUT', `/v1/admin/deployments/${deployment.id}/spec`, { spec: full })).status, 200);
  const renewed = await t.admin('POST', '/v1/admin/entitlements/activate', { vendorUrl: vendorServer.url, activationKey });
  assert.equal(renewed.body.loaded.serial, 2);
  assert.equal((await checkout(t, key, 'fp-usage-3')).status, 201);

  // The signed usage report: per key and day, peak seats and denials.
  const report = (
    await t.admin(
      'GET',
      `/v1/admin/usage-report?from=${encodeURIComponent(new Date(T0 - 86_400_000).toISOString())}&to=${encodeURIComponent(new Date(T0 + 86_400_000).toISOString())}`,
    )
  ).body;
  assert.equal(report.format, 'floatd-usage-report/1');
  assert.equal(report.payload.deploymentId, deployment.id);
  const line = report.payload.licenses[0];
  assert.equal(line.key, key);
  assert.equal(line.peakSeats, 3);
  assert.equal(line.denials, 1);
  const days = line.days.map((d: { day: string }) => d.day);
  assert.equal(days[0], '2026-03-02', 'no day before the first checkout');
  assert.deepEqual(line.days[0], { day: '2026-03-02', peakSeats: 3, checkouts: 3, denials: 1, peakOverdraft: 0, overdraftCheckouts: 0 });

  // Online: sent to the vendor named in the file.
  const sent = await floatd(t, [
    'usage',
    'send',
    '--from',
    new Date(T0 - 86_400_000).toISOString(),
    '--to',
    new Date(T0 + 86_400_000).toISOString(),
  ]);
  assert.equal(sent.code, 0, sent.stderr);
  // By file: exported, carried over, imported with `floatd usage import`.
  const reportFile = join(v.dir, 'usage.json');
  t.clock.advance(60_000);
  const exported = await floatd(t, ['usage', 'export', '--out', reportFile]);
  assert.equal(exported.code, 0, exported.stderr);
  const imported = await floatd(vendorServer, ['usage', 'import', reportFile]);
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, new RegExp(`${key}\\s+3\\s+3\\s+1`));
  // A report edited on the way (fewer denials, lower peak) is refused.
  const doc = JSON.parse(await readFile(reportFile, 'utf8'));
  doc.payload.licenses[0].peakSeats = 1;
  const tampered = await vendorServer.admin('POST', '/v1/admin/usage-reports', { report: doc });
  assert.equal(tampered.status, 422);
  assert.equal(tampered.body.error.code, 'USAGE_REPORT_INVALID');
  const reports = (await vendorServer.admin('GET', `/v1/admin/deployments/${deployment.id}/usage-reports`)).body.items;
  assert.deepEqual(reports.map((r: { via: string }) => r.via).sort(), ['file', 'online']);
  assert.ok(reports.every((r: { report: { licenses: { peakSeats: number }[] } }) => r.report.licenses[0]!.peakSeats === 3));
  const audit = (await vendorServer.admin('GET', '/v1/admin/audit?type=usage-report.imported')).body.items;
  assert.equal(audit.length, 2);
});

test('server clock set back on an on-prem server: new seats refused, held leases keep working, signed trusted time, recovery', async () => {
  const v = await vendor();
  const clock = new ManualClock(T0);
  const t = await onPrem(v, { clock });
  const spec = v.spec([{ seats: 3, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 }], { validDays: 30 });
  const key = spec.licenses[0]!.key!;
  assert.equal((await t.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec, { serial: 1, now: T0 }) })).status, 200);
  const held = await checkout(t, key, 'fp-clock-1');
  assert.equal(held.status, 201);
  clock.advance(10 * 86_400_000); // ten days of work…
  assert.equal((await t.client(key, 'POST', `/v1/client/leases/${held.body.lease.id}/heartbeat`, { instanceId: 'app' })).status, 200);
  await t.server.clockGuard.tick();
  const stored = (await t.rows("SELECT value FROM kv WHERE name = 'server/trusted-time'"))[0]!.value as string;
  assert.equal(JSON.parse(stored).format, 'floatd-trusted-time/1', 'stored signed');
  assert.equal(JSON.parse(stored).payload.at, T0 + 10 * 86_400_000);

  // …then someone sets the clock back a week (to stretch the file, or a trial).
  clock.advance(-7 * 86_400_000);
  const refused = await checkout(t, key, 'fp-clock-2');
  assert.equal(refused.status, 503);
  assert.equal(refused.body.error.code, 'SERVER_CLOCK_ROLLBACK');
  assert.equal(refused.body.error.trustedTime, new Date(T0 + 10 * 86_400_000).toISOString());
  const offline = await t.client(key, 'POST', '/v1/client/offline-checkout', {
    fingerprint: 'fp-clock-2',
    instanceId: 'app',
    durationSeconds: 60,
  });
  assert.equal(offline.body.error.code, 'SERVER_CLOCK_ROLLBACK');
  assert.equal(
    (await t.client(key, 'POST', `/v1/client/leases/${held.body.lease.id}/heartbeat`, { instanceId: 'app' })).status,
    200,
    'the held lease keeps working',
  );
  const metrics = (await t.raw('GET', '/metrics')).body as string;
  assert.match(metrics, /floatd_server_clock_rollback 1/);
  assert.match(metrics, /floatd_server_clock_rollback_refusals_total 2/);
  assert.equal((await t.admin('GET', '/v1/admin/entitlements')).body.clock.rolledBack, true);
  assert.equal((await floatd(t, ['entitlements', 'status'])).stdout.includes('SET BACK'), true);

  // Editing the stored trusted time down in the database breaks its signature: grants stay refused, even after a restart.
  if (t.store === 'sqlite') {
    const doc = JSON.parse(stored);
    doc.payload.at = T0;
    await t.tamper("UPDATE kv SET value = ? WHERE name = 'server/trusted-time'", JSON.stringify(doc));
    const dataDir = t.dataDir;
    await t.server.close();
    const t2 = await onPrem(v, { clock, dataDir });
    const tampered = await checkout(t2, key, 'fp-clock-2');
    assert.equal(tampered.body.error.code, 'SERVER_CLOCK_ROLLBACK');
    assert.match(tampered.body.error.message, /failed its signature check/);
    // A new vendor-signed file resets it (its issue time is vouched for by the vendor).
    clock.set(T0 + 11 * 86_400_000);
    assert.equal(
      (await t2.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec, { serial: 2, now: clock.now() }) })).status,
      200,
    );
    assert.equal((await checkout(t2, key, 'fp-clock-2')).status, 201);
    return;
  }
  // The clock is corrected: grants resume, the metric falls back, both transitions are audited.
  clock.set(T0 + 10 * 86_400_000 + 60_000);
  assert.equal((await checkout(t, key, 'fp-clock-2')).status, 201);
  await t.server.clockGuard.tick();
  assert.match((await t.raw('GET', '/metrics')).body as string, /floatd_server_clock_rollback 0/);
  const types = (await t.admin('GET', '/v1/admin/audit')).body.items.map((e: { type: string }) => e.type);
  assert.ok(types.includes('server-clock.rollback') && types.includes('server-clock.recovered'));
});

test('hostile documents to every route that takes one are refused with a 4xx and change nothing', async (c) => {
  const v = await vendor();
  const vendorServer = await startTestServer({ clock: new ManualClock(T0), config: { vendorPrivateKey: v.privateKeyFile } });
  cleanups.push(() => vendorServer.close());
  const t = await onPrem(v);
  const spec = v.spec([{ seats: 2 }]);
  const good = v.issue(spec, { serial: 5, now: T0 });
  assert.equal((await t.admin('POST', '/v1/admin/entitlements', { licenseFile: good })).status, 200);
  const dep = (
    await vendorServer.admin('POST', '/v1/admin/deployments', {
      name: 'Hostile Inc.',
      spec: { customer: { name: 'H' }, products: [{ name: 'P' }], licenses: [{ product: 'P', seats: 1 }] },
    })
  ).body;
  const request = (await t.admin('GET', '/v1/admin/entitlements/request')).body;

  const sig = good.signature;
  const docs: [string, unknown][] = [
    ['empty object', {}],
    ['format only', { format: 'floatd-license-file/1' }],
    ['payload a string', { format: 'floatd-license-file/1', payload: 'x', signature: sig }],
    ['payload an array', { format: 'floatd-license-file/1', payload: [], signature: sig }],
    ['a float in the payload', { ...good, payload: { ...good.payload, serial: 5.5 } }],
    ['a huge number', { ...good, payload: { ...good.payload, serial: 1e308 } }],
    ['signature not base64', { ...good, signature: { ...sig, value: '!!!' } }],
    ['signature of another algorithm', { ...good, signature: { ...sig, alg: 'none' } }],
    ['signature a string', { ...good, signature: 'x' }],
    ['signature of the activation request', { ...good, signature: request.signature }],
    ['another kind of document', request],
    ['a payload with an extra field, signed by nobody', { ...good, payload: { ...good.payload, seats: 99 } }],
    ['a license with a broken key', { ...good, payload: { ...good.payload, licenses: [{ ...good.payload.licenses[0], key: 'AAAAA' }] } }],
    ['a NUL in a string', { ...good, payload: { ...good.payload, customer: { name: 'a\u0000b' } } }],
    [
      'keys that look like prototypes',
      JSON.parse(
        '{"format":"floatd-license-file/1","payload":{"constructor":{"a":1}},"signature":{"alg":"EdDSA","kid":"x","value":"AAAA"}}',
      ),
    ],
  ];
  const beforeOnPrem = await t.snapshot();
  const beforeVendor = await vendorServer.snapshot();
  let sent = 0;
  const expect4xx = (r: { status: number; body: any }, what: string) => {
    sent++;
    assert.ok(r.status >= 400 && r.status < 500, `${what}: ${r.status} ${JSON.stringify(r.body)}`);
    assert.match(r.body.error.code, /^[A-Z_]+$/, what);
  };
  for (const [what, doc] of docs) {
    expect4xx(await t.admin('POST', '/v1/admin/entitlements', { licenseFile: doc }), `load: ${what}`);
    expect4xx(await vendorServer.admin('POST', '/v1/admin/usage-reports', { report: doc }), `usage import: ${what}`);
    expect4xx(
      await vendorServer.raw('POST', '/v1/vendor/usage-reports', {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ report: doc }),
      }),
      `usage upload: ${what}`,
    );
    if (doc === request) continue; // a genuine activation request is what the next two routes take
    expect4xx(await vendorServer.admin('POST', `/v1/admin/deployments/${dep.deployment.id}/issue`, { request: doc }), `issue: ${what}`);
    for (const auth of [`Activation ${dep.activationKey}`, 'Activation fak_notakeynotakey', 'Bearer x']) {
      expect4xx(
        await vendorServer.raw('POST', '/v1/vendor/activate', {
          headers: { 'content-type': 'application/json', authorization: auth },
          body: JSON.stringify({ request: doc }),
        }),
        `activate (${auth.slice(0, 12)}): ${what}`,
      );
    }
  }
  for (const spec of [
    {},
    { customer: { name: 'x' }, products: [], licenses: [] },
    { customer: { name: 'x' }, products: [{ name: 'A' }], licenses: [{ product: 'A', seats: 1, model: 'subscription' }] },
    { customer: { name: 'x' }, products: [{ name: 'A' }], licenses: [{ product: 'A', seats: 1, key: 'not-a-key' }] },
    {
      customer: { name: 'x' },
      notBefore: '2027-01-01T00:00:00Z',
      notAfter: '2026-01-01T00:00:00Z',
      products: [{ name: 'A' }],
      licenses: [{ product: 'A', seats: 1 }],
    },
  ]) {
    expect4xx(await vendorServer.admin('POST', '/v1/admin/deployments', { name: 'bad', spec }), `deployment spec ${JSON.stringify(spec)}`);
    expect4xx(
      await vendorServer.admin('PUT', `/v1/admin/deployments/${dep.deployment.id}/spec`, { spec }),
      `spec update ${JSON.stringify(spec)}`,
    );
  }
  expect4xx(
    await t.admin('POST', '/v1/admin/entitlements/activate', { vendorUrl: 'ftp://example.invalid/x', activationKey: 'fak_whatever1' }),
    'activate with a non-http vendor URL',
  );
  assert.deepEqual(await t.snapshot(), beforeOnPrem, 'the on-prem database is unchanged');
  assert.deepEqual(await vendorServer.snapshot(), beforeVendor, 'the vendor database is unchanged');
  assert.ok(sent >= 100, `${sent} hostile requests`);
  c.diagnostic(`${sent} hostile requests, all refused with a 4xx`);
});
