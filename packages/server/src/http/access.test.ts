/**
 * Access policies of issue #15 through the real HTTP server (SQLite, then PostgreSQL): allow and deny
 * lists, per-principal maxima and reservations, over users, hosts and admin-managed groups; exact under
 * real parallel checkouts, on two nodes of one database in the PostgreSQL pass.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { clusterOf, startTestServer, type TestServer } from '../testing/harness.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t.close();
});

const use = (key: string, fingerprint: string, user: string, hostname = `${fingerprint}-host`, server = t) =>
  server.client(key, 'POST', '/v1/client/checkout', { fingerprint, instanceId: `i-${fingerprint}`, user, hostname });
const open = { allow: null, deny: [], limits: [], reservations: [] };

test('groups: put, read, list, delete; bad names and members are refused; a missing group is 404', async () => {
  const put = await t.admin('PUT', '/v1/admin/groups/cad-team', { users: ['bob', 'cid'], hosts: ['ws-cad-1'] });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.deepEqual([put.body.name, put.body.users, put.body.hosts], ['cad-team', ['bob', 'cid'], ['ws-cad-1']]);
  assert.deepEqual((await t.admin('GET', '/v1/admin/groups/cad-team')).body.users, ['bob', 'cid']);
  assert.ok((await t.admin('GET', '/v1/admin/groups')).body.items.some((g: { name: string }) => g.name === 'cad-team'));
  const before = await t.snapshot();
  for (const [path, body] of [
    ['/v1/admin/groups/bad name', { users: [], hosts: [] }],
    ['/v1/admin/groups/ok', { users: ['a', 'a'], hosts: [] }],
    ['/v1/admin/groups/ok', { users: ['\u001b[2J'], hosts: [] }],
    ['/v1/admin/groups/ok', { users: [] }],
  ] as const) {
    const r = await t.admin('PUT', path, body);
    assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
    assert.equal(r.body.error.code, 'VALIDATION_FAILED');
  }
  assert.deepEqual(await t.snapshot(), before, 'nothing stored');
  assert.equal((await t.admin('GET', '/v1/admin/groups/nobody')).body.error.code, 'GROUP_NOT_FOUND');
  assert.equal((await t.admin('DELETE', '/v1/admin/groups/nobody')).status, 404);
  await t.admin('PUT', '/v1/admin/groups/tmp', { users: ['x'], hosts: [] });
  assert.deepEqual((await t.admin('DELETE', '/v1/admin/groups/tmp')).body, { deleted: 'tmp' });
  assert.equal((await t.admin('GET', '/v1/admin/groups/tmp')).status, 404);
  const audit = (await t.admin('GET', '/v1/admin/audit?type=group.updated')).body.items;
  assert.ok(audit.some((e: { data: { group: string } }) => e.data.group === 'cad-team'));
});

test('allow and deny lists: users, hosts and groups; deny wins; a group change applies at the next checkout', async () => {
  await t.admin('PUT', '/v1/admin/groups/render', { users: ['rita'], hosts: ['farm-1'] });
  const lic = await t.license({ seats: 10, access: { ...open, allow: ['user:ann', 'group:render'], deny: ['host:kiosk'] } });
  assert.deepEqual(lic.access.allow, ['user:ann', 'group:render']);
  assert.equal((await use(lic.key, 'allow-ann-1', 'ann')).status, 201);
  assert.equal((await use(lic.key, 'allow-rita-1', 'rita')).status, 201, 'a member by user');
  assert.equal((await use(lic.key, 'allow-zed-1', 'zed', 'farm-1')).status, 201, 'a member by host');
  const zed = await use(lic.key, 'allow-zed-2', 'zed');
  assert.equal(zed.status, 403);
  assert.equal(zed.body.error.code, 'CHECKOUT_NOT_ALLOWED');
  const kiosk = await use(lic.key, 'allow-ann-2', 'ann', 'kiosk');
  assert.equal(kiosk.body.error.code, 'CHECKOUT_NOT_ALLOWED', 'deny wins over allow');
  const anonymous = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'allow-anon-1', instanceId: 'x' });
  assert.equal(anonymous.body.error.code, 'CHECKOUT_NOT_ALLOWED', 'no user and no host: on no list');
  await t.admin('PUT', '/v1/admin/groups/render', { users: ['rita', 'zed'], hosts: [] });
  assert.equal((await use(lic.key, 'allow-zed-3', 'zed')).status, 201, 'added to the group');
  assert.match((await t.raw('GET', '/metrics')).body as string, /^floatd_policy_refusals_total\{code="CHECKOUT_NOT_ALLOWED"\} [1-9]/m);
  const denied = (await t.admin('GET', `/v1/admin/audit?licenseId=${lic.id}&type=denied`)).body.items;
  assert.ok(denied.some((e: { reason: string }) => e.reason === 'CHECKOUT_NOT_ALLOWED'));
});

test('maxima: a user holds at most N seats; joining a seat it holds takes none; others are not limited', async () => {
  const lic = await t.license({ seats: 10, access: { ...open, limits: [{ principal: 'user:max', max: 2 }] } });
  assert.equal((await use(lic.key, 'limit-max-1', 'max')).status, 201);
  assert.equal((await use(lic.key, 'limit-max-2', 'max')).status, 201);
  const third = await use(lic.key, 'limit-max-3', 'max');
  assert.equal(third.status, 409);
  assert.equal(third.body.error.code, 'SEAT_LIMIT_REACHED');
  assert.equal(third.body.error.principal, 'user:max');
  // a second instance on a device max already holds joins its seat
  const join = await t.client(lic.key, 'POST', '/v1/client/checkout', {
    fingerprint: 'limit-max-1',
    instanceId: 'second-window',
    user: 'max',
    hostname: 'limit-max-1-host',
  });
  assert.equal(join.status, 200);
  assert.equal((await use(lic.key, 'limit-other-1', 'ola')).status, 201);
  // a seat frees: max may take another
  const held = (await t.admin('GET', `/v1/admin/licenses/${lic.id}/leases`)).body.items.find(
    (l: { deviceId: string; instances: { instanceId: string }[] }) => l.instances.some((i) => i.instanceId === 'i-limit-max-2'),
  );
  await t.client(lic.key, 'POST', `/v1/client/leases/${held.id}/checkin`, { instanceId: 'i-limit-max-2' });
  assert.equal((await use(lic.key, 'limit-max-3', 'max')).status, 201);
});

test('reservations: seats kept for a group; others are refused with RESERVED_FOR_OTHERS once only reserved seats remain', async () => {
  await t.admin('PUT', '/v1/admin/groups/oncall', { users: ['opal', 'otto'], hosts: [] });
  const lic = await t.license({ seats: 3, access: { ...open, reservations: [{ principal: 'group:oncall', seats: 2 }] } });
  assert.equal((await use(lic.key, 'resv-x-1', 'xan')).status, 201, 'one unreserved seat');
  const xan2 = await use(lic.key, 'resv-x-2', 'yul');
  assert.equal(xan2.status, 409);
  assert.equal(xan2.body.error.code, 'RESERVED_FOR_OTHERS');
  assert.equal(xan2.body.error.seatsReserved, 2);
  assert.equal((await use(lic.key, 'resv-o-1', 'opal')).status, 201);
  assert.equal((await use(lic.key, 'resv-o-2', 'otto')).status, 201);
  assert.equal((await use(lic.key, 'resv-o-3', 'opal')).body.error.code, 'NO_SEATS_AVAILABLE', 'the pool is full');
  // the reservation is used by its holders, not taken by others, even after a member frees a seat
  const leases = (await t.admin('GET', `/v1/admin/licenses/${lic.id}/leases`)).body.items;
  const opal = leases.find((l: { instances: { instanceId: string }[] }) => l.instances.some((i) => i.instanceId === 'i-resv-o-1'));
  await t.client(lic.key, 'POST', `/v1/client/leases/${opal.id}/checkin`, { instanceId: 'i-resv-o-1' });
  assert.equal((await use(lic.key, 'resv-x-3', 'yul')).body.error.code, 'RESERVED_FOR_OTHERS');
  assert.equal((await use(lic.key, 'resv-o-4', 'otto')).status, 201);
});

test('bad access policies are refused with VALIDATION_FAILED and change nothing', async () => {
  const product = (await t.admin('POST', '/v1/admin/products', { name: 'bad access' })).body;
  const before = await t.snapshot();
  for (const access of [
    { ...open, allow: ['ann'] },
    { ...open, deny: ['team:x'] },
    { ...open, limits: [{ principal: 'user:a', max: -1 }] },
    { ...open, reservations: [{ principal: 'user:a', seats: 0 }] },
    { allow: null, deny: [] },
    { ...open, allow: ['user:\u0007'] },
  ]) {
    const r = await t.admin('POST', '/v1/admin/licenses', { productId: product.id, seats: 2, access });
    assert.equal(r.status, 400, JSON.stringify(access));
    assert.equal(r.body.error.code, 'VALIDATION_FAILED');
  }
  assert.deepEqual(await t.snapshot(), before);
});

test('exactness under parallel checkouts: reservations and maxima hold, never more seats than the count (two nodes on PostgreSQL)', async (c) => {
  // PostgreSQL: a second node on the same database
  const cluster = await clusterOf(t);
  const nodes = cluster.nodes;
  try {
    await t.admin('PUT', '/v1/admin/groups/par-team', { users: ['m0', 'm1', 'm2', 'm3', 'm4'], hosts: [] });
    const lic = await t.license({
      seats: 8,
      access: { ...open, reservations: [{ principal: 'group:par-team', seats: 4 }], limits: [{ principal: 'user:o0', max: 1 }] },
    });
    // 60 parallel checkouts: 30 by team members (m0..m4), 30 by others (o0..o4), each from its own device
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const user = i % 2 === 0 ? `m${i % 5}` : `o${i % 5}`;
        return use(lic.key, `par-acc-${i}`, user, `par-host-${i}`, nodes[i % nodes.length]);
      }),
    );
    for (const a of answers) assert.ok([201, 409].includes(a.status), JSON.stringify(a.body));
    const seats = (await t.admin('GET', `/v1/admin/licenses/${lic.id}/leases`)).body.items as { instances: { meta: { user: string } }[] }[];
    const users = seats.map((s) => s.instances[0]!.meta.user);
    const members = users.filter((u) => u.startsWith('m')).length;
    const others = users.length - members;
    assert.equal(seats.length, 8, 'the pool is filled, never past it');
    assert.ok(others <= 4, `${others} seats went to others while 4 were reserved`);
    assert.ok(members >= 4, `${members} members hold seats`);
    assert.ok(users.filter((u) => u === 'o0').length <= 1, 'the maximum of o0 holds');
    const codes = answers.filter((a) => a.status === 409).map((a) => a.body.error.code);
    c.diagnostic(
      `60 parallel checkouts on ${nodes.length} node(s): ${members} seats to members, ${others} to others; refusals ${JSON.stringify(
        Object.fromEntries([...new Set(codes)].map((k) => [k, codes.filter((x) => x === k).length])),
      )}`,
    );
  } finally {
    await cluster.close();
  }
});
