/** Operations endpoints: health, readiness, metrics, OpenAPI, JWKS and key rotation. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../testing/harness.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(() => t.close());

test('healthz and readyz answer', async () => {
  assert.equal((await t.raw('GET', '/healthz')).body.status, 'ok');
  assert.deepEqual((await t.raw('GET', '/readyz')).body, { status: 'ready', store: t.store });
});

test('metrics expose requests, grants, denials, releases and seats in use', async () => {
  const lic = await t.license({ seats: 1 });
  const g = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'metrics-dev-1', instanceId: 'a' });
  await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'metrics-dev-2', instanceId: 'a' });
  const text = (await t.raw('GET', '/metrics')).body as string;
  assert.match(text, /floatd_seat_grants_total 1/);
  assert.match(text, /floatd_seat_denials_total 1/);
  assert.match(text, /floatd_seats_in_use\{mode="all"\} 1/);
  assert.match(text, /floatd_http_requests_total\{method="POST",route="\/v1\/client\/checkout",status="201"\} 1/);
  await t.client(lic.key, 'POST', `/v1/client/leases/${g.body.lease.id}/checkin`, { instanceId: 'a' });
  const after = (await t.raw('GET', '/metrics')).body as string;
  assert.match(after, /floatd_seat_releases_total\{reason="checkin"\} 1/);
  assert.match(after, /floatd_seats_in_use\{mode="all"\} 0/);
});

test('openapi.json documents every route with its schemas and security', async () => {
  const doc = (await t.raw('GET', '/openapi.json')).body;
  assert.equal(doc.openapi, '3.1.0', 'OpenAPI 3.1: JSON Schema 2020-12, so null unions and propertyNames are valid');
  const paths = Object.keys(doc.paths);
  for (const p of [
    '/v1/client/checkout',
    '/v1/client/leases/{leaseId}/heartbeat',
    '/v1/admin/licenses',
    '/v1/admin/reclaim',
    '/.well-known/jwks.json',
  ]) {
    assert.ok(paths.includes(p), `${p} is documented`);
  }
  const checkout = doc.paths['/v1/client/checkout'].post;
  assert.deepEqual(checkout.security, [{ licenseKey: [] }]);
  assert.ok(checkout.requestBody.content['application/json'].schema.properties.fingerprint);
  assert.ok(checkout.responses['201']);
});

test('the signing key is private on disk; rotation publishes the new key and keeps the old one until its tokens expire', async () => {
  assert.equal((await stat(join(t.dataDir, 'admin-token'))).mode & 0o777, 0o600);
  if (t.store === 'sqlite') {
    assert.equal((await stat(join(t.dataDir, 'signing-keys.json'))).mode & 0o777, 0o600);
  } else {
    // In a cluster the keys live in the database, the private part encrypted.
    const stored = await t.rows('SELECT private_jwk_encrypted AS p FROM signing_keys');
    assert.equal(stored.length, 1);
    assert.match(String(stored[0]!.p), /^v1\./);
    assert.ok(!String(stored[0]!.p).includes('"d"'));
  }

  const lic = await t.license({ seats: 2, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 });
  const before = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'rot-dev-1', instanceId: 'a' });
  const oldKid = JSON.parse(Buffer.from(before.body.token.split('.')[0], 'base64url').toString()).kid;
  const rotated = await t.admin('POST', '/v1/admin/signing-keys/rotate');
  assert.notEqual(rotated.body.kid, oldKid);
  const jwks = (await t.raw('GET', '/.well-known/jwks.json')).body;
  assert.deepEqual(jwks.keys.map((k: { kid: string }) => k.kid).sort(), [oldKid, rotated.body.kid].sort());
  for (const k of jwks.keys) assert.equal(k.d, undefined, 'no private part is ever published');

  const afterRotation = await t.client(lic.key, 'POST', `/v1/client/leases/${before.body.lease.id}/heartbeat`, { instanceId: 'a' });
  const newKid = JSON.parse(Buffer.from(afterRotation.body.token.split('.')[0], 'base64url').toString()).kid;
  assert.equal(newKid, rotated.body.kid);
  const set = createLocalJWKSet(jwks);
  await jwtVerify(before.body.token, set, { currentDate: new Date(t.clock.now()) });
  await jwtVerify(afterRotation.body.token, set, { currentDate: new Date(t.clock.now()) });

  // After the retention period (at least a day) the old key leaves the JWKS.
  t.clock.advance(86_400_000 + 1000);
  const later = (await t.raw('GET', '/.well-known/jwks.json')).body;
  assert.deepEqual(
    later.keys.map((k: { kid: string }) => k.kid),
    [rotated.body.kid],
  );
  const audit = await t.admin('GET', '/v1/admin/audit?type=signing-key.rotated');
  assert.equal(audit.body.items[0].data.kid, rotated.body.kid);
  assert.equal(audit.body.items[0].data.previous, oldKid);

  // With a license whose tokens never expire (no TTL), a retired key stays published for good.
  await t.license({ seats: 1, leaseTtlSeconds: null });
  const again = await t.admin('POST', '/v1/admin/signing-keys/rotate');
  t.clock.advance(10 * 365 * 86_400_000);
  const forever = (await t.raw('GET', '/.well-known/jwks.json')).body;
  assert.deepEqual(
    forever.keys.map((k: { kid: string }) => k.kid),
    [again.body.kid, rotated.body.kid],
  );
});
