/** Admin tokens and roles: every admin route (from the OpenAPI document) × every role. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../testing/harness.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(() => t.close());

const OPERATOR_EXTRA = new Set([
  'POST /v1/admin/leases/{leaseId}/release',
  'POST /v1/admin/reclaim',
  'POST /v1/admin/webhook-deliveries/{deliveryId}/redeliver',
]);
const ADMIN_ONLY_READS = new Set(['GET /v1/admin/tokens']);
const allowed = (role: string, route: string): boolean => {
  const [method] = route.split(' ');
  if (role === 'admin') return true;
  const read = method === 'GET' && !ADMIN_ONLY_READS.has(route);
  return role === 'viewer' ? read : read || OPERATOR_EXTRA.has(route);
};

const sampleId = (name: string) =>
  `${{ webhookId: 'whk', deliveryId: 'dlv', customerId: 'cus', productId: 'prd', licenseId: 'lic', leaseId: 'lse', tokenId: 'tok' }[name] ?? 'xxx'}_${'0'.repeat(20)}`;

test('every admin route checks the role: viewer reads, operator also releases and reclaims, admin does everything', async () => {
  const tokens: Record<string, string> = { admin: t.adminToken };
  for (const role of ['viewer', 'operator']) {
    const r = await t.admin('POST', '/v1/admin/tokens', { name: `${role} token`, role });
    assert.equal(r.status, 201);
    tokens[role] = r.body.token;
  }
  const doc = (await t.raw('GET', '/openapi.json')).body;
  const routes: string[] = [];
  for (const [path, ops] of Object.entries<Record<string, { security?: unknown[] }>>(doc.paths)) {
    for (const [method, op] of Object.entries(ops))
      if (JSON.stringify(op.security ?? []).includes('adminToken')) routes.push(`${method.toUpperCase()} ${path}`);
  }
  assert.ok(routes.length >= 25, `enumerated ${routes.length} admin routes`);
  let checks = 0;
  for (const route of routes) {
    const [method, path] = route.split(' ') as [string, string];
    const url = path.replace(/\{(\w+)\}/g, (_, name: string) => sampleId(name));
    for (const role of ['viewer', 'operator', 'admin']) {
      // Only refusals are sent for writes a role may do, so this walk changes nothing it should not: allowed writes get ids that do not exist.
      const ctrl = new AbortController();
      const res = await fetch(t.url + url, {
        method,
        headers: {
          authorization: `Bearer ${tokens[role]}`,
          ...(method !== 'GET' && method !== 'DELETE' ? { 'content-type': 'application/json' } : {}),
        },
        body: method !== 'GET' && method !== 'DELETE' ? '{"__probe": true}' : null,
        signal: ctrl.signal,
      });
      const isStream = (res.headers.get('content-type') ?? '').includes('event-stream');
      const body = isStream ? null : ((await res.json()) as { error?: { code: string } });
      ctrl.abort();
      if (allowed(role, route)) {
        assert.notEqual(res.status, 401, `${role} ${route}`);
        assert.notEqual(res.status, 403, `${role} may ${route} (got ${JSON.stringify(body)})`);
      } else {
        assert.equal(res.status, 403, `${role} may not ${route}`);
        assert.equal(body?.error?.code, 'INSUFFICIENT_ROLE');
      }
      checks++;
    }
  }
  assert.ok(checks >= 75);
});

test('admin tokens: created with a role and shown once, listed without secrets, revoked at once; the last admin token stays', async () => {
  const made = await t.admin('POST', '/v1/admin/tokens', { name: 'ci robot', role: 'operator' });
  assert.equal(made.status, 201);
  assert.match(made.body.token, /^fdt_[0-9A-Za-z]{20}_[A-Za-z0-9_-]{43}$/);
  const list = await t.admin('GET', '/v1/admin/tokens');
  const listed = list.body.items.find((i: { id: string }) => i.id === made.body.id);
  assert.deepEqual(Object.keys(listed).sort(), ['createdAt', 'customerId', 'id', 'lastUsedAt', 'name', 'revokedAt', 'role']);
  assert.ok(!JSON.stringify(list.body).includes(made.body.token.slice(-43)), 'no secret in the listing');

  const who = await t.raw('GET', '/v1/admin/whoami', { headers: { authorization: `Bearer ${made.body.token}` } });
  assert.deepEqual([who.body.id, who.body.role], [made.body.id, 'operator']);
  const touched = (await t.admin('GET', '/v1/admin/tokens')).body.items.find((i: { id: string }) => i.id === made.body.id);
  assert.equal(touched.lastUsedAt, new Date(t.clock.now()).toISOString());

  const revoked = await t.admin('POST', `/v1/admin/tokens/${made.body.id}/revoke`);
  assert.ok(revoked.body.revokedAt);
  const after = await t.raw('GET', '/v1/admin/whoami', { headers: { authorization: `Bearer ${made.body.token}` } });
  assert.equal(after.status, 401);

  const first = (await t.admin('GET', '/v1/admin/whoami')).body;
  const last = await t.admin('POST', `/v1/admin/tokens/${first.id}/revoke`);
  assert.equal(last.status, 409);
  assert.equal(last.body.error.code, 'LAST_ADMIN_TOKEN');
  const audit = await t.admin('GET', '/v1/admin/audit?type=token.revoked');
  assert.equal(audit.body.items[0].data.tokenId, made.body.id);
  const missing = await t.admin('POST', `/v1/admin/tokens/tok_${'1'.repeat(20)}/revoke`);
  assert.equal(missing.body.error.code, 'ADMIN_TOKEN_NOT_FOUND');
});

test('dashboard and settings: seats per key and denials today', async () => {
  const lic = await t.license({ seats: 1 });
  await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'dash-device-1', instanceId: 'a' });
  await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'dash-device-2', instanceId: 'a' });
  const dash = await t.admin('GET', '/v1/admin/dashboard?limit=500');
  const row = dash.body.items.find((r: { license: { id: string } }) => r.license.id === lic.id);
  assert.deepEqual([row.license.seatsUsed, row.license.seats, row.denialsToday, row.productName], [1, 1, 1, 'Test product']);
  const settings = await t.admin('GET', '/v1/admin/settings');
  assert.deepEqual([settings.body.store, settings.body.reclaimIntervalSeconds], [t.store, 30]);
});
