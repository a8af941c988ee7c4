/**
 * Sharing rules, clone policy and VM policy through the real HTTP server (issue #21), on the store of
 * the run (SQLite, then PostgreSQL: scripts/test-suites.mjs), with real parallel requests; on PostgreSQL
 * the exactness tests split their requests between two server processes' worth of nodes on one database.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterOf, startTestServer, type HttpAnswer, type TestServer } from '../testing/harness.js';
import { createTempDatabase } from '../testing/pg.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t.close();
});

/** A client call from a chosen loopback address (127.0.0.x), as a clone on another machine would come. */
function fromAddress(server: TestServer, address: string, key: string, path: string, body: unknown): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const url = new URL(server.url + path);
    const text = JSON.stringify(body);
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        localAddress: address,
        headers: { authorization: `License ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        let data = '';
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data ? JSON.parse(data) : undefined, headers: new Headers() }));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

const checkout = (key: string, body: Record<string, unknown>, server = t) => server.client(key, 'POST', '/v1/client/checkout', body);
const leasesOf = async (licenseId: string, server = t) =>
  (await server.admin('GET', `/v1/admin/licenses/${licenseId}/leases`)).body.items as {
    id: string;
    shareGroup: string;
    instances: { instanceId: string; deviceId: string; meta: { user: string | null } }[];
  }[];
const seatsUsed = async (licenseId: string) => (await t.admin('GET', `/v1/admin/licenses/${licenseId}`)).body.seatsUsed as number;

test('a rule by user: one person on two workstations takes one seat; another user is refused; the seat frees with its last use', async () => {
  const lic = await t.license({ seats: 1, sharing: { by: ['user'], cap: null } });
  assert.equal(lic.counting, 'shared');
  assert.deepEqual(lic.sharing, { by: ['user'], cap: null });
  const a = await checkout(lic.key, { fingerprint: 'ws-alice-1', instanceId: 'cad-1', user: 'alice', hostname: 'ws1' });
  const b = await checkout(lic.key, { fingerprint: 'ws-alice-2', instanceId: 'cad-2', user: 'alice', hostname: 'ws2' });
  assert.equal(a.status, 201, JSON.stringify(a.body));
  assert.equal(b.status, 200, JSON.stringify(b.body));
  assert.equal(b.body.lease.id, a.body.lease.id, 'the same seat');
  assert.equal(b.body.lease.shareGroup, 'user=alice');
  assert.equal(b.body.lease.instances, 2, 'two uses on the seat');
  assert.notEqual(b.body.lease.deviceId, a.body.lease.deviceId, 'each use is answered as its own device');
  const bob = await checkout(lic.key, { fingerprint: 'ws-bob-1', instanceId: 'cad-1', user: 'bob' });
  assert.equal(bob.status, 409);
  assert.equal(bob.body.error.code, 'NO_SEATS_AVAILABLE');
  // No user sent: shares with no one (an absent user must not match another absent user).
  const anonymous = await checkout(lic.key, { fingerprint: 'ws-anon-1', instanceId: 'x' });
  assert.equal(anonymous.body.error.code, 'NO_SEATS_AVAILABLE');
  // The second workstation's heartbeat renews its own use; the lease token names its own device.
  const hb = await t.client(lic.key, 'POST', `/v1/client/leases/${a.body.lease.id}/heartbeat`, { instanceId: 'cad-2' });
  assert.equal(hb.status, 200, JSON.stringify(hb.body));
  assert.equal(hb.body.lease.deviceId, b.body.lease.deviceId);
  const [seat] = await leasesOf(lic.id);
  assert.deepEqual(seat!.instances.map((i) => i.deviceId).sort(), [a.body.lease.deviceId, b.body.lease.deviceId].sort());
  // The first check-in leaves the seat to the other use; the last one frees it.
  const first = await t.client(lic.key, 'POST', `/v1/client/leases/${a.body.lease.id}/checkin`, { instanceId: 'cad-1' });
  assert.deepEqual(first.body, { released: false, instances: 1 });
  const last = await t.client(lic.key, 'POST', `/v1/client/leases/${a.body.lease.id}/checkin`, { instanceId: 'cad-2' });
  assert.equal(last.body.released, true);
  assert.equal(await seatsUsed(lic.id), 0);
  assert.equal((await checkout(lic.key, { fingerprint: 'ws-bob-1', instanceId: 'cad-1', user: 'bob' })).status, 201);
});

test("orphan sync works per device on a shared seat: it drops only the syncing device's uses; the seat frees with the last one", async () => {
  const lic = await t.license({ seats: 2, sharing: { by: ['user'], cap: null } });
  const a = await checkout(lic.key, { fingerprint: 'sync-ws-1', instanceId: 'a-1', user: 'uma' });
  await checkout(lic.key, { fingerprint: 'sync-ws-1', instanceId: 'a-2', user: 'uma' });
  const b = await checkout(lic.key, { fingerprint: 'sync-ws-2', instanceId: 'b-1', user: 'uma' });
  assert.equal(b.body.lease.id, a.body.lease.id);
  // device 1 says only a-2 runs: a-1 goes, b-1 (device 2's) stays
  const sync1 = await t.client(lic.key, 'POST', '/v1/client/devices/sync', { fingerprint: 'sync-ws-1', instanceIds: ['a-2'] });
  assert.deepEqual(sync1.body, { dropped: ['a-1'], released: [], instances: 1 });
  let [seat] = await leasesOf(lic.id);
  assert.deepEqual(seat!.instances.map((i) => i.instanceId).sort(), ['a-2', 'b-1']);
  // device 2 says nothing runs: b-1 goes, the seat stays for a-2
  const sync2 = await t.client(lic.key, 'POST', '/v1/client/devices/sync', { fingerprint: 'sync-ws-2', instanceIds: [] });
  assert.deepEqual(sync2.body, { dropped: ['b-1'], released: [], instances: 0 });
  [seat] = await leasesOf(lic.id);
  assert.deepEqual(
    seat!.instances.map((i) => i.instanceId),
    ['a-2'],
  );
  // device 1 says nothing runs: the last use goes and the seat with it
  const sync3 = await t.client(lic.key, 'POST', '/v1/client/devices/sync', { fingerprint: 'sync-ws-1', instanceIds: [] });
  assert.deepEqual(sync3.body.released, [a.body.lease.id]);
  assert.equal(await seatsUsed(lic.id), 0);
});

test('a cap: up to three uses by one user share a seat, the fourth takes another (RLM share=u:3)', async () => {
  const lic = await t.license({ seats: 5, sharing: { by: ['user'], cap: 3 } });
  const ids: string[] = [];
  for (let i = 0; i < 7; i++) {
    const r = await checkout(lic.key, { fingerprint: `cap-host-${i}`, instanceId: `use-${i}`, user: 'carol' });
    assert.ok(r.status === 200 || r.status === 201, JSON.stringify(r.body));
    ids.push(r.body.lease.id);
  }
  const seats = await leasesOf(lic.id);
  assert.deepEqual(seats.map((s) => s.instances.length).sort(), [1, 3, 3], 'seven uses on three seats');
  assert.equal(await seatsUsed(lic.id), 3);
  assert.equal(new Set(ids).size, 3);
});

test('rules by key, by user and host, and site; the per-device instance maximum holds under each', async () => {
  const byKey = await t.license({ seats: 1, sharing: { by: ['key'], cap: null } });
  assert.equal((await checkout(byKey.key, { fingerprint: 'key-dev-1', instanceId: 'a1', shareKey: 'project-x' })).status, 201);
  assert.equal((await checkout(byKey.key, { fingerprint: 'key-dev-2', instanceId: 'a2', shareKey: 'project-x' })).status, 200);
  const other = await checkout(byKey.key, { fingerprint: 'key-dev-3', instanceId: 'a3', shareKey: 'project-y' });
  assert.equal(other.body.error.code, 'NO_SEATS_AVAILABLE');
  // Two devices that send the same instance id cannot be two uses of one seat (a use is named by its instance id
  // on the seat): the second takes a seat of its own, or is refused; never a free seat. The SDKs' ids are random.
  const same = await checkout(byKey.key, { fingerprint: 'key-dev-4', instanceId: 'a1', shareKey: 'project-x' });
  assert.equal(same.body.error.code, 'NO_SEATS_AVAILABLE');

  const userHost = await t.license({ seats: 2, sharing: { by: ['host', 'user'], cap: null } });
  assert.deepEqual(userHost.sharing.by, ['user', 'host'], 'the rule in its one spelling');
  const uh = (fp: string, user: string, hostname: string) =>
    checkout(userHost.key, { fingerprint: fp, instanceId: `a-${fp}`, user, hostname });
  assert.equal((await uh('user-host-1', 'dan', 'h1')).status, 201);
  assert.equal((await uh('user-host-2', 'dan', 'h1')).status, 200);
  assert.equal((await uh('user-host-3', 'dan', 'h2')).status, 201, 'another host: another seat');
  assert.equal((await uh('user-host-4', 'erin', 'h1')).body.error.code, 'NO_SEATS_AVAILABLE');

  const site = await t.license({ seats: 1, sharing: { by: ['site'], cap: null }, maxInstancesPerDevice: 2 });
  for (let i = 0; i < 4; i++) {
    const r = await checkout(site.key, { fingerprint: `site-dev-${i}`, instanceId: `a${i}`, user: `u${i}` });
    assert.ok(r.status === 200 || r.status === 201);
    assert.equal(r.body.lease.shareGroup, 'site');
  }
  assert.equal(await seatsUsed(site.id), 1, 'a site license is counted once');
  assert.equal((await checkout(site.key, { fingerprint: 'site-dev-0', instanceId: 'b0' })).status, 200);
  const third = await checkout(site.key, { fingerprint: 'site-dev-0', instanceId: 'c0' });
  assert.equal(third.body.error.code, 'INSTANCE_LIMIT_REACHED', 'the per-device maximum still holds');
});

test('bad rules are refused with INVALID_POLICY or VALIDATION_FAILED and change nothing; counting and sharing must agree', async () => {
  const before = await t.snapshot();
  const product = (await t.admin('POST', '/v1/admin/products', { name: 'bad rules' })).body;
  const after1 = await t.snapshot();
  const cases: [unknown, number, string][] = [
    [{ by: ['instance', 'user'], cap: null }, 422, 'INVALID_POLICY'],
    [{ by: ['site', 'device'], cap: null }, 422, 'INVALID_POLICY'],
    [{ by: ['instance'], cap: 2 }, 422, 'INVALID_POLICY'],
    [{ by: [], cap: null }, 400, 'VALIDATION_FAILED'],
    [{ by: ['user', 'user'], cap: null }, 400, 'VALIDATION_FAILED'],
    [{ by: ['planet'], cap: null }, 400, 'VALIDATION_FAILED'],
    [{ by: ['user'], cap: 0 }, 400, 'VALIDATION_FAILED'],
    [{ by: ['user'] }, 400, 'VALIDATION_FAILED'],
  ];
  for (const [sharing, status, code] of cases) {
    const r = await t.admin('POST', '/v1/admin/licenses', { productId: product.id, seats: 2, sharing });
    assert.equal(r.status, status, JSON.stringify(sharing));
    assert.equal(r.body.error.code, code);
  }
  const clash = await t.admin('POST', '/v1/admin/licenses', {
    productId: product.id,
    seats: 2,
    counting: 'per-instance',
    sharing: { by: ['user'], cap: null },
  });
  assert.equal(clash.status, 422);
  assert.deepEqual(await t.snapshot(), after1, 'nothing stored');
  assert.notDeepEqual(before, after1);
  // counting alone still works, and sets the matching rule
  const classic = await t.admin('POST', '/v1/admin/licenses', { productId: product.id, seats: 2, counting: 'per-instance' });
  assert.equal(classic.status, 201);
  assert.deepEqual(classic.body.sharing, { by: ['instance'], cap: null });
  assert.equal(classic.body.counting, 'per-instance');
  assert.equal(classic.body.clonePolicy, 'separate');
  assert.equal(classic.body.vmPolicy, 'allow');
});

test('a rule change applies to new checkouts and strands no held lease', async () => {
  const lic = await t.license({ seats: 3 });
  const a = await checkout(lic.key, { fingerprint: 'change-1', instanceId: 'a', user: 'fay' });
  const patched = await t.admin('PATCH', `/v1/admin/licenses/${lic.id}`, { sharing: { by: ['user'], cap: null } });
  assert.equal(patched.status, 200);
  assert.equal(patched.body.counting, 'shared');
  // the held lease keeps heartbeating under its old group
  const hb = await t.client(lic.key, 'POST', `/v1/client/leases/${a.body.lease.id}/heartbeat`, { instanceId: 'a' });
  assert.equal(hb.status, 200);
  assert.equal(hb.body.lease.shareGroup, `device=${a.body.lease.deviceId}`);
  const b = await checkout(lic.key, { fingerprint: 'change-2', instanceId: 'b', user: 'fay' });
  const c = await checkout(lic.key, { fingerprint: 'change-3', instanceId: 'c', user: 'fay' });
  assert.equal(b.body.lease.shareGroup, 'user=fay');
  assert.equal(c.body.lease.id, b.body.lease.id);
  assert.equal(await seatsUsed(lic.id), 2);
  const back = await t.admin('PATCH', `/v1/admin/licenses/${lic.id}`, { counting: 'per-device' });
  assert.deepEqual(back.body.sharing, { by: ['device'], cap: null });
  assert.equal((await t.client(lic.key, 'POST', `/v1/client/leases/${b.body.lease.id}/heartbeat`, { instanceId: 'b' })).status, 200);
});

/** The clone experiment of issue #21: one fingerprint, 12 host names, 12 users, 12 client addresses. */
async function cloneRun(key: string) {
  const answers: HttpAnswer[] = [];
  for (let i = 0; i < 12; i++)
    answers.push(
      await fromAddress(t, `127.0.0.${i + 2}`, key, '/v1/client/checkout', {
        fingerprint: 'cloned-vm-image',
        instanceId: `app-${i}`,
        hostname: `clone-${i}`,
        user: `user-${i}`,
      }),
    );
  return answers;
}

test('clones: one fingerprint from 12 machines on a 1-seat license, under each clone policy', async (c) => {
  // separate (the default): each machine needs a seat of its own
  const separate = await t.license({ seats: 1 });
  const s = await cloneRun(separate.key);
  assert.deepEqual(
    s.map((a) => a.status),
    [201, ...Array(11).fill(409)],
  );
  assert.ok(s.slice(1).every((a) => a.body.error.code === 'NO_SEATS_AVAILABLE'));
  const devices = (await t.admin('GET', `/v1/admin/licenses/${separate.id}/devices`)).body.items;
  assert.equal(devices.length, 1);
  assert.ok(devices[0].cloneSuspectedAt, 'the device is flagged');
  assert.ok(devices[0].machinesSeen.length >= 2, JSON.stringify(devices[0].machinesSeen));
  assert.ok(devices[0].machinesSeen.some((m: string) => m.startsWith('clone-0')));
  const audit = (await t.admin('GET', `/v1/admin/audit?licenseId=${separate.id}&type=clone-detected`)).body.items;
  assert.ok(audit.length >= 1);
  assert.equal(audit[0].data.action, 'separate-seat');
  c.diagnostic(`separate: ${s.filter((a) => a.status < 300).length} of 12 clones served on 1 seat`);

  // a 12-seat license under separate: a seat per clone, never one for all; the fingerprint's instance maximum
  // (10 by default) still counts every use of the fingerprint, wherever it runs
  const roomy = await t.license({ seats: 12 });
  const r = await cloneRun(roomy.key);
  assert.deepEqual(
    r.map((a) => a.status),
    [...Array(10).fill(201), 409, 409],
  );
  assert.equal(r[11]!.body.error.code, 'INSTANCE_LIMIT_REACHED');
  assert.equal(await seatsUsed(roomy.id), 10, 'each clone holds its own seat');

  // refuse: the first machine keeps its seat, every clone is refused with a distinct code
  const refuse = await t.license({ seats: 12, clonePolicy: 'refuse' });
  const f = await cloneRun(refuse.key);
  assert.equal(f[0]!.status, 201);
  assert.ok(
    f.slice(1).every((a) => a.status === 409 && a.body.error.code === 'DEVICE_CLONE_REFUSED'),
    JSON.stringify(f[1]!.body),
  );
  assert.equal(await seatsUsed(refuse.id), 1);

  // allow: they share (as before #21), up to the per-device instance maximum
  const allow = await t.license({ seats: 1, clonePolicy: 'allow' });
  const w = await cloneRun(allow.key);
  assert.deepEqual(
    w.map((a) => a.status),
    [201, ...Array(9).fill(200), 409, 409],
  );
  const allowDevices = (await t.admin('GET', `/v1/admin/licenses/${allow.id}/devices`)).body.items;
  assert.ok(allowDevices[0].cloneSuspectedAt, 'allowed, but still flagged');
  const allowAudit = (await t.admin('GET', `/v1/admin/audit?licenseId=${allow.id}&type=clone-detected`)).body.items;
  assert.equal(allowAudit[0].data.action, 'shared');

  // one real machine (same host, same address) running several copies still shares one seat
  const real = await t.license({ seats: 1 });
  for (let i = 0; i < 3; i++) {
    const a = await fromAddress(t, '127.0.0.9', real.key, '/v1/client/checkout', {
      fingerprint: 'one-real-box',
      instanceId: `copy-${i}`,
      hostname: 'box',
      bootId: 'b00t-1',
    });
    assert.ok(a.status === 201 || a.status === 200, JSON.stringify(a.body));
  }
  assert.equal(await seatsUsed(real.id), 1);
  assert.equal((await t.admin('GET', `/v1/admin/licenses/${real.id}/devices`)).body.items[0].cloneSuspectedAt, null);
  // the same host name after a reboot (another boot id) while the old boot's seat is live: counted apart, as the docs say
  const rebooted = await fromAddress(t, '127.0.0.9', real.key, '/v1/client/checkout', {
    fingerprint: 'one-real-box',
    instanceId: 'copy-after-boot',
    hostname: 'box',
    bootId: 'b00t-2',
  });
  assert.equal(rebooted.body.error?.code, 'NO_SEATS_AVAILABLE');
});

test('VM policy: deny refuses a VM or container use; count-per-instance gives each its own seat; allow shares', async () => {
  const deny = await t.license({ seats: 3, vmPolicy: 'deny' });
  const before = (await t.admin('GET', `/v1/admin/licenses/${deny.id}/leases`)).body.items.length;
  const vm = await checkout(deny.key, { fingerprint: 'vm-guest-1', instanceId: 'a', vm: true });
  assert.equal(vm.status, 403);
  assert.equal(vm.body.error.code, 'VM_NOT_ALLOWED');
  const ct = await checkout(deny.key, { fingerprint: 'container-1', instanceId: 'a', container: true });
  assert.equal(ct.body.error.code, 'VM_NOT_ALLOWED');
  assert.equal((await t.admin('GET', `/v1/admin/licenses/${deny.id}/leases`)).body.items.length, before);
  assert.equal((await checkout(deny.key, { fingerprint: 'bare-metal-1', instanceId: 'a', vm: false })).status, 201);
  const refusals = (await t.admin('GET', `/v1/admin/audit?licenseId=${deny.id}&type=vm-refused`)).body.items;
  assert.equal(refusals.length, 2);

  const perInstance = await t.license({ seats: 3, vmPolicy: 'count-per-instance' });
  const one = await checkout(perInstance.key, { fingerprint: 'vm-guest-2', instanceId: 'a', vm: true });
  const two = await checkout(perInstance.key, { fingerprint: 'vm-guest-2', instanceId: 'b', vm: true });
  assert.equal(one.status, 201);
  assert.equal(two.status, 201);
  assert.notEqual(one.body.lease.id, two.body.lease.id);
  assert.match(two.body.lease.shareGroup, /^instance=/);
  const metalA = await checkout(perInstance.key, { fingerprint: 'bare-metal-2', instanceId: 'a' });
  const metalB = await checkout(perInstance.key, { fingerprint: 'bare-metal-2', instanceId: 'b' });
  assert.equal(metalB.body.lease.id, metalA.body.lease.id, 'a machine that is no VM shares by the rule');

  const allow = await t.license({ seats: 1 });
  await checkout(allow.key, { fingerprint: 'vm-guest-3', instanceId: 'a', vm: true });
  assert.equal((await checkout(allow.key, { fingerprint: 'vm-guest-3', instanceId: 'b', vm: true })).status, 200);
});

test('exactness under parallel checkouts: never more seats than the count, never more uses on a seat than the cap, every use on its own group', async (c) => {
  // PostgreSQL: a second node on the same database
  const cluster = await clusterOf(t);
  const nodes = cluster.nodes;
  try {
    for (const sharing of [
      { by: ['instance'], cap: null },
      { by: ['user', 'display'], cap: 2 },
      { by: ['user'], cap: 2 },
      { by: ['user', 'host'], cap: null },
      { by: ['key'], cap: 3 },
      { by: ['device'], cap: null },
      { by: ['site'], cap: 4 },
    ]) {
      const lic = await t.license({ seats: 5, sharing, maxInstancesPerDevice: 3 });
      const requests = Array.from({ length: 120 }, (_, i) => ({
        fingerprint: `parallel-${i % 17}`,
        instanceId: `use-${i}`,
        user: `user-${i % 6}`,
        hostname: `host-${i % 4}`,
        shareKey: `key-${i % 5}`,
        display: `:${i % 3}`,
      }));
      const answers = await Promise.all(requests.map((body, i) => checkout(lic.key, body, nodes[i % nodes.length])));
      for (const a of answers) assert.ok([200, 201, 409].includes(a.status), JSON.stringify(a.body));
      const seats = await leasesOf(lic.id);
      assert.ok(seats.length <= 5, `${seats.length} seats on a 5-seat license`);
      assert.equal(await seatsUsed(lic.id), seats.length);
      const granted = answers.filter((a) => a.status < 300).length;
      const uses = seats.reduce((n, s) => n + s.instances.length, 0);
      assert.equal(uses, granted, 'every granted use is on a seat');
      for (const s of seats) {
        if (sharing.cap !== null) assert.ok(s.instances.length <= sharing.cap, `${s.instances.length} uses > cap ${sharing.cap}`);
        const groupOf = (i: number) =>
          sharing.by[0] === 'site'
            ? 'site'
            : sharing.by
                .map((a) =>
                  a === 'user'
                    ? `user=user-${i % 6}`
                    : a === 'host'
                      ? `host=host-${i % 4}`
                      : a === 'key'
                        ? `key=key-${i % 5}`
                        : a === 'display'
                          ? `display=${encodeURIComponent(`:${i % 3}`)}`
                          : null,
                )
                .filter(Boolean)
                .join('&');
        if (sharing.by[0] === 'instance') assert.equal(s.instances.length, 1, 'per instance: one use a seat');
        else if (sharing.by[0] !== 'device')
          for (const u of s.instances)
            assert.equal(s.shareGroup, groupOf(Number(u.instanceId.slice(4))), 'a use on a seat of its own group');
      }
      const groups = new Set(seats.map((s) => s.shareGroup));
      if (sharing.cap === null)
        assert.equal(groups.size, seats.length, 'without a cap, one seat per group (per instance: one group a seat)');
      c.diagnostic(
        `${JSON.stringify(sharing)}: 120 parallel checkouts on ${nodes.length} node(s): ${granted} granted on ${seats.length} seats, ${120 - granted} refused`,
      );
    }
  } finally {
    await cluster.close();
  }
});

test('a customer who wants a free seat: one user name from many hosts, many share keys, no user, reused instance ids; restarted in between', async (c) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-freeseat-'));
  const database = t.store === 'postgres' ? await createTempDatabase() : undefined;
  const start = () => startTestServer({ dataDir, ...(database ? { database } : {}) });
  let s = await start();
  try {
    const byUser = await s.license({ seats: 3, sharing: { by: ['user'], cap: 2 } });
    const byKey = await s.license({ seats: 3, sharing: { by: ['key'], cap: null } });
    const use = (key: string, i: number, extra: Record<string, unknown>) =>
      s.client(key, 'POST', '/v1/client/checkout', {
        fingerprint: `cheater-host-${i}`,
        instanceId: `run-${i}`,
        hostname: `host-${i}`,
        ...extra,
      });
    // Ten machines all claim to be alice: two uses a seat (the cap), three seats, the rest refused.
    const alice = await Promise.all(Array.from({ length: 10 }, (_, i) => use(byUser.key, i, { user: 'alice' })));
    assert.equal(alice.filter((a) => a.status < 300).length, 6);
    assert.ok(alice.filter((a) => a.status >= 300).every((a) => a.body.error.code === 'NO_SEATS_AVAILABLE'));
    // Ten fresh share keys: each costs a seat.
    const keys = await Promise.all(Array.from({ length: 10 }, (_, i) => use(byKey.key, i, { shareKey: `k${i}` })));
    assert.equal(keys.filter((a) => a.status < 300).length, 3);

    await s.close();
    s = await start();
    // After a restart: the same figures, and nothing new gets in by leaving the user out or reusing an instance id.
    const seatsOf = async (id: string) => (await s.admin('GET', `/v1/admin/licenses/${id}`)).body.seatsUsed;
    assert.equal(await seatsOf(byUser.id), 3);
    assert.equal(await seatsOf(byKey.id), 3);
    const anonymous = await s.client(byUser.key, 'POST', '/v1/client/checkout', { fingerprint: 'no-user-host', instanceId: 'x' });
    assert.equal(anonymous.body.error.code, 'NO_SEATS_AVAILABLE');
    const seats = (await s.admin('GET', `/v1/admin/licenses/${byUser.id}/leases`)).body.items as { instances: { instanceId: string }[] }[];
    const taken = seats[0]!.instances[0]!.instanceId;
    const reuse = await s.client(byUser.key, 'POST', '/v1/client/checkout', {
      fingerprint: 'reuse-host-1',
      instanceId: taken,
      user: 'alice',
    });
    assert.equal(reuse.body.error?.code, 'NO_SEATS_AVAILABLE', "another device sending a held use's instance id gets no seat");
    const after = (await s.admin('GET', `/v1/admin/licenses/${byUser.id}/leases`)).body.items as { instances: unknown[] }[];
    assert.ok(
      after.every((seat) => seat.instances.length <= 2),
      'the cap holds',
    );
    assert.equal(
      after.reduce((n, seat) => n + seat.instances.length, 0),
      6,
    );
    c.diagnostic('10 machines claiming one user: 6 uses on 3 seats (cap 2); 10 share keys: 3 seats; both after a restart');
  } finally {
    await s.close();
    await database?.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
});
