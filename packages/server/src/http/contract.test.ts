/**
 * The wire contract is declared once, in @floatd/protocol: every route the server
 * publishes in /openapi.json is a declaration there (and every declaration is
 * served), with the declared role, security scheme and schemas.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as wire from '@floatd/protocol';
import { startTestServer } from '../testing/harness.js';

const t = await startTestServer();
after(() => t.close());

test('every route in /openapi.json is declared once in @floatd/protocol, and every declaration is served', async () => {
  const doc = (await t.raw('GET', '/openapi.json')).body as {
    paths: Record<string, Record<string, { security?: unknown; summary?: string }>>;
  };
  const served = new Set<string>();
  // The console's static files (and the redirect to it) are pages, not API.
  const isPage = (path: string) => path === '/' || path === '/console' || path.startsWith('/console/');
  for (const [path, item] of Object.entries(doc.paths))
    if (!isPage(path)) for (const method of Object.keys(item)) served.add(`${method.toUpperCase()} ${path}`);
  const declared = wire.routes.ALL_ROUTES.map(wire.routeName);
  assert.equal(new Set(declared).size, declared.length, 'no route is declared twice');
  assert.deepEqual(
    [...served].filter((r) => !declared.includes(r)),
    [],
    'served but not declared',
  );
  assert.deepEqual(
    declared.filter((r) => !served.has(r)),
    [],
    'declared but not served',
  );
  for (const r of wire.routes.ALL_ROUTES) {
    const op = doc.paths[wire.routeName(r).split(' ')[1]!]![r.method.toLowerCase()]!;
    assert.equal(op.summary, r.summary, `${wire.routeName(r)}: summary from the declaration`);
    if (r.auth === 'admin') assert.deepEqual(op.security, [{ adminToken: [] }], `${wire.routeName(r)}: admin security`);
    if (r.auth === 'license') assert.deepEqual(op.security, [{ licenseKey: [] }], `${wire.routeName(r)}: license security`);
    if (r.auth === 'admin') assert.ok(r.role, `${wire.routeName(r)} declares a role`);
  }
});

test('the role an admin route needs comes from its declaration: a viewer token is refused exactly the routes declared above viewer', async () => {
  const viewer = (await t.admin('POST', '/v1/admin/tokens', { name: 'contract-viewer', role: 'viewer' })).body.token as string;
  for (const r of wire.routes.ALL_ROUTES.filter((x) => x.auth === 'admin' && x.role !== 'viewer')) {
    const path = wire.pathOf(r, {
      customerId: 'cus_' + 'a'.repeat(20),
      webhookId: 'whk_' + 'a'.repeat(20),
      deliveryId: 'dlv_' + 'a'.repeat(20),
      productId: 'prd_' + 'a'.repeat(20),
      licenseId: 'lic_' + 'a'.repeat(20),
      leaseId: 'lse_' + 'a'.repeat(20),
      tokenId: 'tok_' + 'a'.repeat(20),
      deploymentId: 'dpl_' + 'a'.repeat(20),
      name: 'contract-group',
    });
    const res = await t.raw(r.method, path, {
      headers: { authorization: `Bearer ${viewer}`, 'content-type': 'application/json' },
      body: r.method === 'GET' || r.method === 'DELETE' ? undefined : '{}',
    });
    assert.equal(res.body?.error?.code, 'INSUFFICIENT_ROLE', `${wire.routeName(r)} (${r.role}) refuses a viewer`);
  }
});

test('/openapi.json is a valid OpenAPI 3.1 document: every operation has an operationId, a summary and its security', async () => {
  const { default: SwaggerParser } = await import('@apidevtools/swagger-parser');
  const doc = (await t.raw('GET', '/openapi.json')).body as {
    openapi: string;
    paths: Record<string, Record<string, { operationId?: string; summary?: string; security?: unknown }>>;
  };
  assert.equal(doc.openapi, '3.1.0');
  await SwaggerParser.validate(structuredClone(doc) as never);
  const ids = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    assert.ok(!path.startsWith('/console'), "the console's pages are not in the API document");
    for (const [method, op] of Object.entries(item)) {
      assert.ok(op.operationId && !ids.has(op.operationId), `${method} ${path}: a unique operationId`);
      ids.add(op.operationId!);
      assert.ok(op.summary, `${method} ${path}: a summary`);
      assert.ok(Array.isArray(op.security), `${method} ${path}: its security (an empty list when none)`);
    }
  }
});
