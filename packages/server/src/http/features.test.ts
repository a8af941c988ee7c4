/**
 * Feature pools (issue #15) through the real HTTP server, on the store of the run (SQLite, then PostgreSQL):
 * a license with `render` 3 beside its base pool; checkouts that name pools get all of them or none; a seat's
 * features grow when a use that needs more joins and shrink when it leaves; a held use adds and drops features;
 * dead seats of a full pool are freed for the next checkout; and exactness under real parallel requests (two
 * nodes of one database on PostgreSQL), checked against the lease rows.
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
const change = (key: string, leaseId: string, instanceId: string, features: string[], server = t) =>
  server.client(key, 'POST', `/v1/client/leases/${leaseId}/features`, { instanceId, features });
const license = async (id: string) => (await t.admin('GET', `/v1/admin/licenses/${id}`)).body;
const RENDER = [{ name: 'render', seats: 3 }];

/** Seats held per pool, counted from the lease rows (the truth the answers must agree with). */
async function heldInRows(licenseId: string): Promise<{ base: number; features: Record<string, number> }> {
  const rows = await t.rows('SELECT base, features FROM leases WHERE license_id = ?', licenseId);
  const features: Record<string, number> = {};
  let base = 0;
  for (const r of rows) {
    if (r.base === true || r.base === 1) base++;
    for (const f of r.features ? (JSON.parse(String(r.features)) as string[]) : []) features[f] = (features[f] ?? 0) + 1;
  }
  return { base, features };
}

test('a license holds feature pools; bad ones are refused with INVALID_POLICY and change nothing', async () => {
  const lic = await t.license({
    seats: 4,
    features: [
      { name: 'render', seats: 3 },
      { name: 'analysis', seats: 1 },
    ],
  });
  assert.deepEqual(
    lic.features.map((f: { name: string }) => f.name),
    ['analysis', 'render'],
  );
  assert.deepEqual(lic.featureSeatsUsed, { analysis: 0, render: 0 });
  for (const features of [[{ name: 'base', seats: 1 }], RENDER.concat(RENDER)]) {
    const bad = await t.admin('PATCH', `/v1/admin/licenses/${lic.id}`, { features });
    assert.equal(bad.status, 422, JSON.stringify(bad.body));
    assert.equal(bad.body.error.code, 'INVALID_POLICY');
  }
  const badName = await t.admin('PATCH', `/v1/admin/licenses/${lic.id}`, { features: [{ name: 'Render Farm', seats: 1 }] });
  assert.equal(badName.body.error.code, 'VALIDATION_FAILED');
  assert.deepEqual((await license(lic.id)).features, lic.features);
  // A checkout naming a feature the license lacks: 400, nothing taken.
  const unknown = await checkout(lic.key, 'feat-dev-unknown', 'app', { features: ['base', 'simulate'] });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.body.error.code, 'UNKNOWN_FEATURE');
  assert.deepEqual(unknown.body.error.features, ['base', 'analysis', 'render']);
  assert.equal((await license(lic.id)).seatsUsed, 0);
  assert.equal((await t.rows('SELECT id FROM leases WHERE license_id = ?', lic.id)).length, 0);
});

test('pools by name: base by default, base+render on one seat, render alone takes no base seat; the token and the views list them', async () => {
  const lic = await t.license({ seats: 2, features: RENDER });
  const plain = await checkout(lic.key, 'feat-dev-1', 'cad');
  assert.equal(plain.status, 201);
  assert.deepEqual(plain.body.lease.features, ['base']);
  assert.deepEqual(decodeJwt(plain.body.token).fts, ['base']);

  const both = await checkout(lic.key, 'feat-dev-2', 'cad', { features: ['render', 'base'] });
  assert.equal(both.status, 201);
  assert.deepEqual(both.body.lease.features, ['base', 'render']);
  assert.deepEqual(decodeJwt(both.body.token).fts, ['base', 'render']);

  // A render node: a render seat, no base seat.
  const farm = await checkout(lic.key, 'feat-farm-1', 'job', { features: ['render'] });
  assert.equal(farm.status, 201);
  assert.deepEqual(farm.body.lease.features, ['render']);
  const now = await license(lic.id);
  assert.equal(now.seatsUsed, 2, 'two base seats');
  assert.deepEqual(now.featureSeatsUsed, { render: 2 });
  assert.deepEqual(await heldInRows(lic.id), { base: 2, features: { render: 2 } });

  // The base pool is full, render is not: a base checkout is denied, a render-only one is granted.
  assert.equal((await checkout(lic.key, 'feat-dev-3', 'cad')).body.error.code, 'NO_SEATS_AVAILABLE');
  assert.equal((await checkout(lic.key, 'feat-farm-2', 'job', { features: ['render'] })).status, 201);
  // Render is full now: all or nothing, so a base+render checkout takes no base seat either (one is freed first).
  await checkin(lic.key, plain.body.lease.id, 'cad');
  const refused = await checkout(lic.key, 'feat-dev-4', 'cad', { features: ['base', 'render'] });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error.code, 'NO_FEATURE_SEATS_AVAILABLE');
  assert.equal(refused.body.error.feature, 'render');
  assert.equal(refused.body.error.seatsTotal, 3);
  assert.equal(refused.body.error.seatsUsed, 3);
  assert.equal((await license(lic.id)).seatsUsed, 1, 'the base seat freed by the check-in is still free');
  assert.equal((await checkout(lic.key, 'feat-dev-4', 'cad')).status, 201);

  // Heartbeats keep the pools (the token re-issued lists them), also a revival after the TTL.
  const hb = await t.client(lic.key, 'POST', `/v1/client/leases/${both.body.lease.id}/heartbeat`, { instanceId: 'cad' });
  assert.equal(hb.status, 200);
  assert.deepEqual(decodeJwt(hb.body.token).fts, ['base', 'render']);
  assert.deepEqual(hb.body.lease.features, ['base', 'render']);
  t.clock.advance(16 * 60 * S);
  const revived = await t.client(lic.key, 'POST', `/v1/client/leases/${both.body.lease.id}/heartbeat`, { instanceId: 'cad' });
  assert.equal(revived.status, 200, JSON.stringify(revived.body));
  assert.deepEqual(decodeJwt(revived.body.token).fts, ['base', 'render']);
  assert.deepEqual((await license(lic.id)).featureSeatsUsed, { render: 3 });
  const leases = (await t.admin('GET', `/v1/admin/licenses/${lic.id}/leases`)).body.items;
  const bothView = leases.find((l: { id: string }) => l.id === both.body.lease.id);
  assert.deepEqual(bothView.features, ['base', 'render']);
  assert.deepEqual(bothView.instances[0].features, ['base', 'render']);
  const audit = (await t.admin('GET', `/v1/admin/audit?licenseId=${lic.id}&type=denied`)).body.items;
  assert.ok(audit.some((e: { reason: string }) => e.reason === 'NO_FEATURE_SEATS_AVAILABLE'));
});

test("a seat's features are its uses' together: a use needing render joins the device's seat and takes a render seat; it leaves, the seat gives render back", async () => {
  const lic = await t.license({ seats: 1, features: [{ name: 'render', seats: 1 }] });
  const cad = await checkout(lic.key, 'feat-ws-1', 'cad');
  const render = await checkout(lic.key, 'feat-ws-1', 'render-job', { features: ['base', 'render'] });
  assert.equal(render.status, 200, 'joined the device seat');
  assert.equal(render.body.lease.id, cad.body.lease.id);
  assert.deepEqual(render.body.lease.features, ['base', 'render']);
  assert.deepEqual((await license(lic.id)).featureSeatsUsed, { render: 1 });
  assert.equal((await license(lic.id)).seatsUsed, 1);
  // Another workstation cannot render now.
  const other = await checkout(lic.key, 'feat-ws-2', 'job', { features: ['render'] });
  assert.equal(other.body.error.code, 'NO_FEATURE_SEATS_AVAILABLE');
  // The render job ends; the CAD session keeps the base seat, render goes back to its pool.
  const back = await checkin(lic.key, cad.body.lease.id, 'render-job');
  assert.equal(back.body.released, false);
  assert.deepEqual((await license(lic.id)).featureSeatsUsed, { render: 0 });
  assert.deepEqual(await heldInRows(lic.id), { base: 1, features: {} });
  assert.equal((await checkout(lic.key, 'feat-ws-2', 'job', { features: ['render'] })).status, 201);
});

test('a feature counted per instance: two uses on one seat take two of its seats, and their check-ins give them back one by one', async () => {
  const lic = await t.license({ seats: 2, features: [{ name: 'render', seats: 2, counting: 'instance' }] });
  assert.equal(lic.features[0].counting, 'instance');
  const a = await checkout(lic.key, 'feat-pi-ws-1', 'job-1', { features: ['base', 'render'] });
  const b = await checkout(lic.key, 'feat-pi-ws-1', 'job-2', { features: ['base', 'render'] });
  assert.equal(b.status, 200, 'the second use joins the device seat');
  assert.equal(b.body.lease.id, a.body.lease.id);
  let view = await license(lic.id);
  assert.equal(view.seatsUsed, 1, 'one base seat');
  assert.deepEqual(view.featureSeatsUsed, { render: 2 }, 'two render seats: one per instance');
  const c = await checkout(lic.key, 'feat-pi-ws-2', 'job-1', { features: ['base', 'render'] });
  assert.equal(c.body.error.code, 'NO_FEATURE_SEATS_AVAILABLE');
  assert.equal((await license(lic.id)).seatsUsed, 1, 'all or nothing: no base seat taken');
  // A third use on the same seat that needs no render joins freely; one that adds render by a change is refused.
  const d = await checkout(lic.key, 'feat-pi-ws-1', 'cad', {});
  assert.equal(d.status, 200);
  assert.equal((await change(lic.key, a.body.lease.id, 'cad', ['base', 'render'])).body.error.code, 'NO_FEATURE_SEATS_AVAILABLE');
  await checkin(lic.key, a.body.lease.id, 'job-1');
  view = await license(lic.id);
  assert.deepEqual(view.featureSeatsUsed, { render: 1 });
  assert.equal((await checkout(lic.key, 'feat-pi-ws-2', 'job-1', { features: ['base', 'render'] })).status, 201);
  assert.deepEqual((await license(lic.id)).featureSeatsUsed, { render: 2 });
});

test("a feature's own lease lifetime: a seat that holds it expires by the shortest of its pools' lifetimes", async () => {
  const lic = await t.license({
    seats: 2,
    leaseTtlSeconds: 900,
    heartbeatIntervalSeconds: 30,
    features: [{ name: 'render', seats: 1, leaseTtlSeconds: 60 }],
  });
  const bad = await t.admin('PATCH', `/v1/admin/licenses/${lic.id}`, { features: [{ name: 'render', seats: 1, leaseTtlSeconds: 30 }] });
  assert.equal(bad.body.error.code, 'INVALID_POLICY', 'the heartbeat interval must be shorter than every lifetime');
  const now = t.clock.now();
  const both = await checkout(lic.key, 'feat-ttl-1', 'app', { features: ['base', 'render'] });
  assert.equal(Date.parse(both.body.lease.expiresAt), now + 60 * S);
  const plain = await checkout(lic.key, 'feat-ttl-2', 'app');
  assert.equal(Date.parse(plain.body.lease.expiresAt), now + 900 * S);
  // Dropping render gives the seat the license's lifetime again; adding it back, render's.
  const dropped = await change(lic.key, both.body.lease.id, 'app', ['base']);
  assert.equal(Date.parse(dropped.body.lease.expiresAt), now + 900 * S);
  const added = await change(lic.key, both.body.lease.id, 'app', ['base', 'render']);
  assert.equal(Date.parse(added.body.lease.expiresAt), now + 60 * S);
  // Silent past render's lifetime (and past the first TTL after the start): the seat is reclaimed with its render seat.
  t.clock.advance(901 * S);
  await t.client(lic.key, 'POST', `/v1/client/leases/${plain.body.lease.id}/heartbeat`, { instanceId: 'app' });
  const freed = (await t.admin('POST', '/v1/admin/reclaim')).body.freed.map((f: { leaseId: string }) => f.leaseId);
  assert.ok(freed.includes(both.body.lease.id));
  assert.ok(!freed.includes(plain.body.lease.id));
  assert.deepEqual((await license(lic.id)).featureSeatsUsed, { render: 0 });
});

test("a feature's own access policy: allow list by group, a maximum per user, reservations; exact under parallel checkouts (two nodes on PostgreSQL)", async (c) => {
  assert.equal((await t.admin('PUT', '/v1/admin/groups/render-team', { users: ['ann', 'bo', 'cy'], hosts: [] })).status, 200);
  const access = {
    allow: ['group:render-team'],
    deny: [],
    limits: [{ principal: 'user:ann', max: 1 }],
    reservations: [{ principal: 'user:bo', seats: 1 }],
  };
  const lic = await t.license({ seats: 50, features: [{ name: 'render', seats: 3, access }] });
  assert.deepEqual(lic.features[0].access, access);
  const asUser = (fingerprint: string, user: string, features: string[], server = t) =>
    server.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint, instanceId: 'app', user, features });
  // Not in the group: no render seat, but the base seats are open to everyone.
  const out = await asUser('feat-acc-dee-1', 'dee', ['base', 'render']);
  assert.equal(out.status, 403);
  assert.equal(out.body.error.code, 'CHECKOUT_NOT_ALLOWED');
  assert.equal(out.body.error.feature, 'render');
  assert.equal((await asUser('feat-acc-dee-1', 'dee', ['base'])).status, 201);

  const cluster = await clusterOf(t);
  const nodes = cluster.nodes;
  try {
    const users = ['ann', 'ann', 'ann', 'bo', 'cy', 'cy', 'cy', 'cy', 'dee'];
    const answers = await Promise.all(
      Array.from({ length: 45 }, (_, i) => {
        const user = users[i % users.length]!;
        return asUser(`feat-acc-par-${i}`, user, ['render'], nodes[i % nodes.length]).then((r) => ({ user, r }));
      }),
    );
    const granted = answers.filter(({ r }) => r.status === 201);
    const byUser = (u: string) => granted.filter((g) => g.user === u).length;
    assert.ok(granted.length <= 3, `${granted.length} render seats granted`);
    assert.ok(byUser('ann') <= 1, `ann holds ${byUser('ann')}`);
    assert.equal(byUser('dee'), 0);
    assert.equal(byUser('bo'), 1, 'the seat reserved for bo went to bo');
    assert.ok(
      answers.every(
        ({ r }) =>
          r.status === 201 ||
          ['NO_FEATURE_SEATS_AVAILABLE', 'SEAT_LIMIT_REACHED', 'RESERVED_FOR_OTHERS', 'CHECKOUT_NOT_ALLOWED'].includes(r.body.error.code),
      ),
    );
    assert.deepEqual((await license(lic.id)).featureSeatsUsed, { render: granted.length });
    c.diagnostic(
      `45 parallel render checkouts on ${nodes.length} node(s): ${granted.length} granted (ann ${byUser('ann')}, bo ${byUser('bo')}, cy ${byUser('cy')})`,
    );
  } finally {
    await cluster.close();
    await t.admin('DELETE', '/v1/admin/groups/render-team');
  }
});

test('a held use adds and drops features: added ones all or nothing, the base pool fixed, the token re-issued', async () => {
  const lic = await t.license({
    seats: 3,
    features: [
      { name: 'render', seats: 1 },
      { name: 'sim', seats: 2 },
    ],
  });
  const a = await checkout(lic.key, 'feat-chg-1', 'app');
  const b = await checkout(lic.key, 'feat-chg-2', 'app');
  const add = await change(lic.key, a.body.lease.id, 'app', ['base', 'render', 'sim']);
  assert.equal(add.status, 200, JSON.stringify(add.body));
  assert.deepEqual(add.body.lease.features, ['base', 'render', 'sim']);
  assert.deepEqual(decodeJwt(add.body.token).fts, ['base', 'render', 'sim']);
  // render is full: b's change to render+sim takes neither.
  const full = await change(lic.key, b.body.lease.id, 'app', ['base', 'sim', 'render']);
  assert.equal(full.body.error.code, 'NO_FEATURE_SEATS_AVAILABLE');
  assert.deepEqual((await license(lic.id)).featureSeatsUsed, { render: 1, sim: 1 });
  // The base pool of a held seat stays as it is.
  const fixed = await change(lic.key, b.body.lease.id, 'app', ['sim']);
  assert.equal(fixed.status, 409);
  assert.equal(fixed.body.error.code, 'BASE_POOL_FIXED');
  const unknown = await change(lic.key, b.body.lease.id, 'app', ['base', 'nope']);
  assert.equal(unknown.body.error.code, 'UNKNOWN_FEATURE');
  // a drops render: b gets it.
  const drop = await change(lic.key, a.body.lease.id, 'app', ['base', 'sim']);
  assert.deepEqual(drop.body.lease.features, ['base', 'sim']);
  assert.equal((await change(lic.key, b.body.lease.id, 'app', ['base', 'render'])).status, 200);
  assert.deepEqual((await license(lic.id)).featureSeatsUsed, { render: 1, sim: 1 });
  assert.deepEqual(await heldInRows(lic.id), { base: 2, features: { render: 1, sim: 1 } });
  // An unknown lease or instance: LEASE_NOT_FOUND.
  assert.equal((await change(lic.key, a.body.lease.id, 'nobody', ['base'])).body.error.code, 'LEASE_NOT_FOUND');
  const audit = (await t.admin('GET', `/v1/admin/audit?licenseId=${lic.id}&type=features.changed`)).body.items;
  assert.equal(audit.length, 3);
});

test('a full feature pool frees a dead seat for the next checkout; the reclaimer and the hourly usage count per feature', async () => {
  const lic = await t.license({ seats: 5, leaseTtlSeconds: 60, features: [{ name: 'render', seats: 1 }] });
  const silent = await checkout(lic.key, 'feat-dead-1', 'job', { features: ['render'] });
  assert.equal(silent.status, 201);
  assert.equal((await checkout(lic.key, 'feat-dead-2', 'job', { features: ['render'] })).status, 409);
  // The holder goes silent past its TTL (and past the first TTL after the start, when a lease may be a restarted holder's).
  t.clock.advance(10 * 60 * S);
  const next = await checkout(lic.key, 'feat-dead-2', 'job', { features: ['render'] });
  assert.equal(next.status, 201, JSON.stringify(next.body));
  assert.equal((await t.rows('SELECT id FROM leases WHERE id = ?', silent.body.lease.id)).length, 0, 'the dead seat was freed');
  assert.deepEqual((await license(lic.id)).featureSeatsUsed, { render: 1 });
  const from = new Date(t.clock.now() - 2 * 3600 * S).toISOString();
  const usage = (await t.admin('GET', `/v1/admin/licenses/${lic.id}/usage?from=${from}`)).body.items;
  const total = { peak: 0, checkouts: 0, denials: 0 };
  for (const h of usage) {
    const r = h.features.render;
    if (!r) continue;
    total.peak = Math.max(total.peak, r.peak);
    total.checkouts += r.checkouts;
    total.denials += r.denials;
  }
  assert.deepEqual(total, { peak: 1, checkouts: 2, denials: 1 });
  // A render-only seat took no base seat, so the base usage saw no checkout.
  assert.equal(
    usage.reduce((n: number, h: { checkouts: number }) => n + h.checkouts, 0),
    0,
  );
});

test('exactness: 90 parallel checkouts of base, render and base+render on 5 base / 3 render seats never pass either pool (two nodes on PostgreSQL)', async (c) => {
  const cluster = await clusterOf(t);
  const nodes = cluster.nodes;
  try {
    const lic = await t.license({ seats: 5, features: RENDER });
    const asks = [['base'], ['render'], ['base', 'render']];
    const answers = await Promise.all(
      Array.from({ length: 90 }, (_, i) =>
        checkout(lic.key, `feat-par-${i}`, 'app', { features: asks[i % 3] }, nodes[i % nodes.length]).then((a) => ({
          a,
          ask: asks[i % 3]!,
        })),
      ),
    );
    const granted = answers.filter(({ a }) => a.status === 201);
    const rows = await heldInRows(lic.id);
    const base = granted.filter(({ ask }) => ask.includes('base')).length;
    const render = granted.filter(({ ask }) => ask.includes('render')).length;
    assert.ok(base <= 5 && render <= 3, `granted ${base} base, ${render} render`);
    assert.deepEqual(rows, { base, features: render ? { render } : {} });
    // Both pools fill: base ends at 5 unless only render+base asks were left when render ran out.
    assert.equal(render, 3);
    assert.ok(
      answers.every(({ a }) => a.status === 201 || ['NO_SEATS_AVAILABLE', 'NO_FEATURE_SEATS_AVAILABLE'].includes(a.body.error.code)),
    );
    const view = await license(lic.id);
    assert.equal(view.seatsUsed, base);
    assert.deepEqual(view.featureSeatsUsed, { render });
    c.diagnostic(`90 parallel checkouts on ${nodes.length} node(s): ${base} base and ${render} render seats granted (5 and 3 exist)`);

    // Parallel feature changes on held base seats: render is full, so none gets it until seats are dropped;
    // then 20 parallel adds on 3 free render seats grant exactly 3.
    const holders = granted.filter(({ ask }) => ask.includes('render'));
    await Promise.all(
      holders.map(({ a }) =>
        a.body.lease.features.includes('base')
          ? change(lic.key, a.body.lease.id, 'app', ['base'])
          : checkin(lic.key, a.body.lease.id, 'app'),
      ),
    );
    assert.deepEqual((await license(lic.id)).featureSeatsUsed, { render: 0 });
    const baseOnly = granted
      .filter(({ ask }) => ask.length === 1 && ask[0] === 'base')
      .concat(granted.filter(({ ask }) => ask.length === 2));
    const adds = await Promise.all(
      baseOnly.map(({ a }, i) => change(lic.key, a.body.lease.id, 'app', ['base', 'render'], nodes[i % nodes.length])),
    );
    const added = adds.filter((a) => a.status === 200).length;
    assert.equal(added, Math.min(3, baseOnly.length));
    assert.ok(adds.every((a) => a.status === 200 || a.body.error.code === 'NO_FEATURE_SEATS_AVAILABLE'));
    assert.deepEqual((await heldInRows(lic.id)).features, { render: added });
    c.diagnostic(`${baseOnly.length} parallel feature adds on 3 free render seats: ${added} granted`);
  } finally {
    await cluster.close();
  }
});
