/**
 * Customers (issue #16): records that every license belongs to, search, the customer page's figures,
 * and customer-scoped admin tokens. The scope test walks every admin route the protocol declares with
 * the token of one customer's own administrator, against that customer's ids and another's: a route
 * closed to customers is refused, another customer's license, lease or customer does not exist for
 * the token, and the lists, the dashboard, the audit, reclamation and the event stream show only its own.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as wire from '@floatd/protocol';
import { startTestServer, type TestServer } from '../testing/harness.js';
import { readEvents } from '../testing/sse.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(() => t.close());

const DEFAULT = wire.DEFAULT_CUSTOMER_ID;
const as = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
async function call(token: string, method: string, path: string, body?: unknown) {
  return t.raw(method, path, { headers: as(token), body: body === undefined ? undefined : JSON.stringify(body) });
}
const checkout = (key: string, fingerprint: string, extra: Record<string, unknown> = {}) =>
  t.client(key, 'POST', '/v1/client/checkout', { fingerprint, instanceId: `${fingerprint}-1`, ...extra });

test('customers: created with a contact, every license belongs to one (the built-in one by default), moved, searched by name, key, host or user; refusals change nothing', async () => {
  const acme = await t.admin('POST', '/v1/admin/customers', {
    name: 'Acme Engineering 100%',
    contact: { name: 'Ann IT', email: 'it@acme.example', phone: '+44 20 7946 0000' },
    metadata: { crm: 'A-17' },
  });
  assert.equal(acme.status, 201, JSON.stringify(acme.body));
  assert.match(acme.body.id, /^cus_[0-9A-Za-z]{20}$/);
  assert.deepEqual(acme.body.contact, { name: 'Ann IT', email: 'it@acme.example', phone: '+44 20 7946 0000' });
  const initech = (await t.admin('POST', '/v1/admin/customers', { name: 'Initech' })).body;

  // A license made without a customer is the built-in customer's; one made for Acme is Acme's.
  const loose = await t.license({ seats: 2 });
  assert.equal(loose.customerId, DEFAULT);
  const acmeCad = await t.license({ seats: 3, customerId: acme.body.id });
  assert.equal(acmeCad.customerId, acme.body.id);
  assert.equal((await t.admin('GET', `/v1/admin/licenses/${acmeCad.id}`)).body.customerId, acme.body.id);
  const listed = await t.admin('GET', `/v1/admin/licenses?customerId=${acme.body.id}`);
  assert.deepEqual(
    listed.body.items.map((l: { id: string }) => l.id),
    [acmeCad.id],
  );
  // Moved to Initech, and back.
  const moved = await t.admin('PATCH', `/v1/admin/licenses/${loose.id}`, { customerId: initech.id });
  assert.equal(moved.status, 200);
  assert.equal(moved.body.customerId, initech.id);

  // Search: a device's host and user come from its checkouts.
  assert.equal((await checkout(acmeCad.key, 'fp-acme-ws-0001', { hostname: 'ws-design-07', user: 'bo.lind' })).status, 201);
  const search = async (q: string) =>
    (await t.admin('GET', `/v1/admin/customers?q=${encodeURIComponent(q)}`)).body.items.map((c: { name: string }) => c.name);
  assert.deepEqual(await search('acme'), ['Acme Engineering 100%'], 'name, any case');
  assert.deepEqual(await search('ENGINEERING'), ['Acme Engineering 100%']);
  assert.deepEqual(await search(acmeCad.key), ['Acme Engineering 100%'], 'a license key');
  assert.deepEqual(await search('design-07'), ['Acme Engineering 100%'], "a device's host");
  assert.deepEqual(await search('bo.lind'), ['Acme Engineering 100%'], "a device's user");
  assert.deepEqual(await search('Initech'), ['Initech']);
  assert.deepEqual(await search('%'), ['Acme Engineering 100%'], 'a % in the search is a %, not a wildcard');
  assert.deepEqual(await search('_'), [], 'an _ is an _');
  assert.deepEqual(await search('nobody-has-this'), []);
  const all = (await t.admin('GET', '/v1/admin/customers')).body.items.map((c: { id: string }) => c.id);
  assert.ok(all.includes(DEFAULT) && all.includes(acme.body.id) && all.includes(initech.id));

  // Refusals: 4xx with a stable code, nothing written.
  const before = await t.snapshot();
  const refusals: [string, string, unknown, number, string][] = [
    ['POST', '/v1/admin/customers', { name: '' }, 400, 'VALIDATION_FAILED'],
    ['POST', '/v1/admin/customers', { name: 'X', contact: { email: 'not an address' } }, 400, 'VALIDATION_FAILED'],
    ['POST', '/v1/admin/customers', { name: 'X', contact: { fax: '1' } }, 400, 'VALIDATION_FAILED'],
    ['POST', '/v1/admin/customers', { name: 'X\u0000' }, 400, 'VALIDATION_FAILED'],
    ['PATCH', `/v1/admin/customers/${acme.body.id}`, {}, 400, 'VALIDATION_FAILED'],
    ['PATCH', `/v1/admin/customers/cus_${'z'.repeat(20)}`, { name: 'Y' }, 404, 'CUSTOMER_NOT_FOUND'],
    ['GET', `/v1/admin/customers/cus_${'z'.repeat(20)}`, undefined, 404, 'CUSTOMER_NOT_FOUND'],
    ['GET', '/v1/admin/customers/not-an-id', undefined, 400, 'VALIDATION_FAILED'],
    ['DELETE', `/v1/admin/customers/${acme.body.id}`, undefined, 409, 'CUSTOMER_HAS_LICENSES'],
    ['DELETE', `/v1/admin/customers/${DEFAULT}`, undefined, 409, 'DEFAULT_CUSTOMER'],
    [
      'POST',
      '/v1/admin/licenses',
      { productId: acmeCad.productId, seats: 1, customerId: `cus_${'z'.repeat(20)}` },
      404,
      'CUSTOMER_NOT_FOUND',
    ],
    ['PATCH', `/v1/admin/licenses/${acmeCad.id}`, { customerId: `cus_${'z'.repeat(20)}` }, 404, 'CUSTOMER_NOT_FOUND'],
    ['POST', '/v1/admin/tokens', { name: 'x', role: 'viewer', customerId: `cus_${'z'.repeat(20)}` }, 404, 'CUSTOMER_NOT_FOUND'],
  ];
  for (const [method, path, body, status, code] of refusals) {
    const r = await t.admin(method, path, body);
    assert.equal(r.status, status, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, code);
  }
  assert.deepEqual(await t.snapshot(), before, 'the refusals changed nothing');

  // Renamed (the built-in one too); deleted once it owns nothing, its own administrators' tokens revoked with it.
  assert.equal((await t.admin('PATCH', `/v1/admin/customers/${DEFAULT}`, { name: 'Direct sales' })).body.name, 'Direct sales');
  const upd = await t.admin('PATCH', `/v1/admin/customers/${initech.id}`, { contact: { email: 'ops@initech.example' } });
  assert.deepEqual(upd.body.contact, { email: 'ops@initech.example' });
  const initechToken = (await t.admin('POST', '/v1/admin/tokens', { name: 'initech it', role: 'viewer', customerId: initech.id })).body;
  assert.equal(initechToken.customerId, initech.id);
  assert.equal((await t.admin('PATCH', `/v1/admin/licenses/${loose.id}`, { customerId: DEFAULT })).status, 200);
  const gone = await t.admin('DELETE', `/v1/admin/customers/${initech.id}`);
  assert.deepEqual(gone.body, { deleted: true, tokensRevoked: 1 });
  assert.equal((await call(initechToken.token, 'GET', '/v1/admin/whoami')).status, 401, "a deleted customer's token is revoked");
  const audit = await t.admin('GET', '/v1/admin/audit?type=customer.deleted');
  assert.equal(audit.body.items[0].data.customerId, initech.id);
});

test('the customer page: its licenses with seats in use, the next expiry and 30 days of usage', async () => {
  const c = (await t.admin('POST', '/v1/admin/customers', { name: 'Globex' })).body;
  const soon = new Date(Date.parse('2026-03-02T09:00:00Z') + 10 * 86_400_000).toISOString();
  const later = new Date(Date.parse('2026-03-02T09:00:00Z') + 40 * 86_400_000).toISOString();
  const a = await t.license({ seats: 2, customerId: c.id, model: 'subscription', expiresAt: later });
  const b = await t.license({ seats: 1, customerId: c.id, model: 'subscription', expiresAt: soon });
  assert.equal((await checkout(a.key, 'fp-globex-0001')).status, 201);
  assert.equal((await checkout(a.key, 'fp-globex-0002')).status, 201);
  assert.equal((await checkout(a.key, 'fp-globex-0003')).status, 409, 'denied: the pool is full');
  assert.equal((await checkout(b.key, 'fp-globex-0004')).status, 201);
  const d = (await t.admin('GET', `/v1/admin/customers/${c.id}`)).body;
  assert.equal(d.customer.name, 'Globex');
  assert.deepEqual(
    d.licenses.map((l: { id: string; seats: number; seatsUsed: number }) => [l.id, l.seats, l.seatsUsed]),
    [
      [a.id, 2, 2],
      [b.id, 1, 1],
    ],
  );
  assert.equal(d.licenses[0].productName, 'Test product');
  assert.equal(d.seats, 3);
  assert.equal(d.seatsUsed, 3);
  assert.deepEqual(d.nextExpiry, { licenseId: b.id, at: soon });
  assert.equal(d.usage.checkouts, 3);
  assert.equal(d.usage.denials, 1);
  assert.equal(d.usage.peakSeats, 3, 'the busiest hour of its licenses together');
});

test("a customer's own administrator: every admin route, with its own ids and another customer's", async (ctx) => {
  const A = (await t.admin('POST', '/v1/admin/customers', { name: 'Customer A' })).body;
  const B = (await t.admin('POST', '/v1/admin/customers', { name: 'Customer B' })).body;
  const licA = await t.license({ seats: 2, customerId: A.id, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
  const licB = await t.license({ seats: 2, customerId: B.id, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
  const leaseA = (await checkout(licA.key, 'fp-scope-a-0001', { hostname: 'host-a', user: 'ann' })).body.lease.id;
  const leaseB = (await checkout(licB.key, 'fp-scope-b-0001', { hostname: 'host-b', user: 'bob' })).body.lease.id;
  const tokenA = (await t.admin('POST', '/v1/admin/tokens', { name: 'A it', role: 'admin', customerId: A.id })).body.token as string;
  const viewerA = (await t.admin('POST', '/v1/admin/tokens', { name: 'A desk', role: 'viewer', customerId: A.id })).body.token as string;

  const own = { licenseId: licA.id, leaseId: leaseA, customerId: A.id };
  const other = { licenseId: licB.id, leaseId: leaseB, customerId: B.id };
  const sample = {
    productId: licA.productId,
    tokenId: `tok_${'a'.repeat(20)}`,
    deploymentId: `dpl_${'a'.repeat(20)}`,
    webhookId: `whk_${'a'.repeat(20)}`,
    deliveryId: `dlv_${'a'.repeat(20)}`,
    name: 'scope-group',
  };
  assert.equal((await call(tokenA, 'GET', '/v1/admin/whoami')).status, 200); // its first use is recorded (last used) before the snapshot
  const dbBefore = await t.snapshot();
  const checked = new Map<string, string>();
  const admin = wire.routes.ALL_ROUTES.filter((r) => r.auth === 'admin');
  for (const r of admin) {
    const name = wire.routeName(r);
    const scope = r.scope ?? 'vendor';
    const body = r.method === 'GET' || r.method === 'DELETE' ? undefined : {};
    if (scope === 'vendor') {
      // Refused before anything is read or written, whatever the ids (its own or not).
      for (const ids of [own, other]) {
        const res = await call(tokenA, r.method, wire.pathOf(r, { ...sample, ...ids }), body);
        assert.equal(res.status, 403, `${name}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'CUSTOMER_SCOPE', name);
        assert.equal(res.body.error.customerId, A.id);
      }
      checked.set(name, 'refused');
    } else if (scope === 'license' || scope === 'lease' || scope === 'customer') {
      const notFound = { license: 'LICENSE_NOT_FOUND', lease: 'LEASE_NOT_FOUND', customer: 'CUSTOMER_NOT_FOUND' }[scope];
      const theirs = await call(tokenA, r.method, wire.pathOf(r, { ...sample, ...other }), body);
      assert.equal(theirs.status, 404, `${name} with B's id: ${JSON.stringify(theirs.body)}`);
      assert.equal(theirs.body.error.code, notFound, name);
      // What an id that exists nowhere answers: the same (another customer's ids are not disclosed).
      const nowhere = { licenseId: `lic_${'q'.repeat(20)}`, leaseId: `lse_${'q'.repeat(20)}`, customerId: `cus_${'q'.repeat(20)}` };
      const none = await call(tokenA, r.method, wire.pathOf(r, { ...sample, ...nowhere }), body);
      assert.deepEqual([none.status, none.body.error.code], [404, notFound], name);
      if (r.method === 'GET') {
        const mine = await call(tokenA, r.method, wire.pathOf(r, { ...sample, ...own }));
        assert.equal(mine.status, 200, `${name} with A's id: ${JSON.stringify(mine.body)}`);
      }
      checked.set(name, 'own ids only');
    } else {
      checked.set(name, scope);
    }
  }
  assert.deepEqual(await t.snapshot(), dbBefore, "refused calls and another customer's ids changed nothing");

  // `own` routes: each shows only A's.
  const licenses = await call(tokenA, 'GET', '/v1/admin/licenses');
  assert.deepEqual(
    licenses.body.items.map((l: { id: string }) => l.id),
    [licA.id],
  );
  assert.deepEqual((await call(tokenA, 'GET', `/v1/admin/licenses?customerId=${B.id}`)).body.items, []);
  const dash = await call(tokenA, 'GET', '/v1/admin/dashboard');
  assert.deepEqual(
    dash.body.items.map((row: { license: { id: string } }) => row.license.id),
    [licA.id],
  );
  const customers = await call(tokenA, 'GET', '/v1/admin/customers');
  assert.deepEqual(
    customers.body.items.map((c: { id: string }) => c.id),
    [A.id],
  );
  assert.deepEqual((await call(tokenA, 'GET', '/v1/admin/customers?q=Customer')).body.items.length, 1);
  const audit = await call(tokenA, 'GET', '/v1/admin/audit?limit=500');
  assert.ok(audit.body.items.length > 0);
  assert.ok(
    audit.body.items.every((e: { licenseId: string | null }) => e.licenseId === licA.id),
    'only audit entries about its own licenses',
  );
  assert.deepEqual((await call(tokenA, 'GET', `/v1/admin/audit?licenseId=${licB.id}`)).body.items, []);
  const me = await call(tokenA, 'GET', '/v1/admin/whoami');
  assert.equal(me.body.customerId, A.id);
  assert.equal((await call(tokenA, 'GET', '/v1/admin/settings')).status, 200);

  // The event stream: B's changes are not heard, A's are.
  const stream = await fetch(`${t.url}/v1/admin/events`, { headers: { authorization: `Bearer ${tokenA}` } });
  assert.equal(stream.status, 200);
  const reading = readEvents(stream, (ev) => ev.some((e) => e.licenseId === licA.id && e.kind === 'seats'));
  assert.equal((await checkout(licB.key, 'fp-scope-b-0002')).status, 201);
  assert.equal((await checkout(licA.key, 'fp-scope-a-0002')).status, 201);
  const events = await reading;
  assert.ok(events.length >= 1);
  assert.ok(
    events.every((e) => e.licenseId === licA.id),
    `only A's events: ${JSON.stringify(events)}`,
  );

  // Reclamation: both licenses have a dead lease; A's reclaim frees A's only, and reports nothing of B's.
  t.clock.advance(61_000);
  const swept = await call(tokenA, 'POST', '/v1/admin/reclaim');
  assert.equal(swept.status, 200);
  assert.ok(swept.body.freed.length >= 1);
  assert.ok(swept.body.freed.every((f: { licenseId: string }) => f.licenseId === licA.id));
  assert.equal((await t.admin('GET', `/v1/admin/licenses/${licB.id}`)).body.seatsUsed, 2, "B's dead seats wait for the vendor's reclaimer");

  // Force release of its own lease with the role that may; the viewer may not (roles still apply).
  const leaseA2 = (await checkout(licA.key, 'fp-scope-a-0003')).body.lease.id;
  const byViewer = await call(viewerA, 'POST', `/v1/admin/leases/${leaseA2}/release`, {});
  assert.equal(byViewer.body.error.code, 'INSUFFICIENT_ROLE');
  const released = await call(tokenA, 'POST', `/v1/admin/leases/${leaseA2}/release`, {});
  assert.equal(released.status, 200, JSON.stringify(released.body));
  const usage = await call(tokenA, 'GET', `/v1/admin/licenses/${licA.id}/usage`);
  assert.equal(usage.status, 200);

  // Every admin route was tried.
  assert.equal(checked.size, admin.length);
  const kinds = [...checked.values()];
  ctx.diagnostic(
    `${admin.length} admin routes: ${kinds.filter((k) => k === 'refused').length} refused to a customer token, ` +
      `${kinds.filter((k) => k === 'own ids only').length} reach its own ids only, ${kinds.filter((k) => k === 'own').length} show its own only, ` +
      `${kinds.filter((k) => k === 'any').length} customer-neutral`,
  );
});

test("a customer's admin token is not the vendor's: it does not keep the last vendor admin token revocable, and it cannot make tokens", async () => {
  const c = (await t.admin('POST', '/v1/admin/customers', { name: 'Hooli' })).body;
  const theirs = (await t.admin('POST', '/v1/admin/tokens', { name: 'hooli admin', role: 'admin', customerId: c.id })).body;
  const tokens = (await t.admin('GET', '/v1/admin/tokens')).body.items as {
    id: string;
    role: string;
    customerId: string | null;
    revokedAt: string | null;
  }[];
  const vendorAdmins = tokens.filter((x) => x.role === 'admin' && x.customerId === null && x.revokedAt === null);
  assert.equal(vendorAdmins.length, 1, 'only the initial token is a vendor admin here');
  const last = await t.admin('POST', `/v1/admin/tokens/${vendorAdmins[0]!.id}/revoke`);
  assert.equal(last.body.error.code, 'LAST_ADMIN_TOKEN', "a customer's admin token does not count as the vendor's");
  const made = await call(theirs.token, 'POST', '/v1/admin/tokens', { name: 'sneaky', role: 'admin' });
  assert.equal(made.body.error.code, 'CUSTOMER_SCOPE');
  const escalate = await call(theirs.token, 'PATCH', `/v1/admin/customers/${c.id}`, { name: 'renamed' });
  assert.equal(escalate.body.error.code, 'CUSTOMER_SCOPE');
});

test('the seat recommendation from real checkouts and refusals: the count that would have served them, with its reason', async () => {
  const lic = await t.license({ seats: 2 });
  for (const fp of ['fp-reco-0001', 'fp-reco-0002']) assert.equal((await checkout(lic.key, fp)).status, 201);
  assert.equal((await checkout(lic.key, 'fp-reco-0003')).status, 409);
  const r = await t.admin('GET', `/v1/admin/licenses/${lic.id}/recommendation`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.seats, 2);
  assert.equal(r.body.recommendedSeats, 3);
  assert.equal(r.body.reason, '3 seats would have turned away no checkouts (today 33%, with 2; full in 1 of 1 busy hours).');
  assert.deepEqual([r.body.checkouts, r.body.denials, r.body.peakDemand], [2, 1, 3]);
  assert.equal(Date.parse(r.body.to) - Date.parse(r.body.from), 30 * 86_400_000);
  const week = await t.admin('GET', `/v1/admin/licenses/${lic.id}/recommendation?days=7`);
  assert.equal(Date.parse(week.body.to) - Date.parse(week.body.from), 7 * 86_400_000);
  for (const bad of ['days=0', 'days=367', 'days=x'])
    assert.equal((await t.admin('GET', `/v1/admin/licenses/${lic.id}/recommendation?${bad}`)).body.error.code, 'VALIDATION_FAILED', bad);
  assert.equal((await t.admin('GET', `/v1/admin/licenses/lic_${'z'.repeat(20)}/recommendation`)).body.error.code, 'LICENSE_NOT_FOUND');
});
