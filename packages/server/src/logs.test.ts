/**
 * Secrets never reach the logs: a real `floatd serve` process at LOG_LEVEL=debug with
 * every request logged serves admin calls (bearer tokens), client calls (license keys,
 * lease tokens) and failed authentications; its whole stdout and stderr must hold none
 * of those secrets. (The first start prints the initial admin token once, by design:
 * that start is not the one examined.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_STORE } from './testing/harness.js';
import { createTempDatabase, TEST_KEY_ENCRYPTION_KEY } from './testing/pg.js';
import { freePort, startFloatdProcess } from './testing/process.js';

/** `floatd serve` at the log level `env` says (no --log-level flag), rate limits as the environment says. */
async function serve(dataDir: string, env: Record<string, string>) {
  return startFloatdProcess({
    dataDir,
    port: await freePort(),
    logLevel: null,
    env: { FLOATD_RATE_LIMIT: process.env.FLOATD_RATE_LIMIT, ...env },
  });
}

test('no admin token, license key or lease token appears in a debug log with request logging on', { timeout: 120_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-logs-'));
  const pg = TEST_STORE === 'postgres' ? await createTempDatabase() : undefined;
  const env: Record<string, string> = {
    FLOATD_LOG_LEVEL: 'debug',
    LOG_LEVEL: 'debug',
    FLOATD_LOG_REQUESTS: '1',
    ...(pg ? { FLOATD_DATABASE_URL: pg.url, FLOATD_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY } : {}),
  };
  try {
    // first start: makes (and prints, once) the initial admin token
    const first = await serve(dataDir, env);
    await first.stop();
    const initial = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    assert.ok(first.output().includes(initial), 'the first start shows the initial token once (documented)');

    const s = await serve(dataDir, env);
    const call = async (auth: string, method: string, path: string, body?: unknown) => {
      const r = await fetch(s.url + path, {
        method,
        headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : undefined };
    };
    const secrets: [string, string][] = [['initial admin token', initial]];
    const admin = (method: string, path: string, body?: unknown) => call(`Bearer ${initial}`, method, path, body);

    const op = await admin('POST', '/v1/admin/tokens', { name: 'ops', role: 'operator' });
    assert.equal(op.status, 201, JSON.stringify(op.body));
    secrets.push(['operator token', op.body.token]);
    const product = await admin('POST', '/v1/admin/products', { name: 'Logged product' });
    const lic = await admin('POST', '/v1/admin/licenses', { productId: product.body.id, seats: 3, maxOfflineSeconds: 3600 });
    assert.equal(lic.status, 201);
    secrets.push(['license key', lic.body.key]);
    assert.equal((await admin('GET', `/v1/admin/licenses/${lic.body.id}`)).status, 200);
    assert.equal((await call(`Bearer ${secrets[1]![1]}`, 'POST', '/v1/admin/reclaim', {})).status, 200);

    const client = (method: string, path: string, body?: unknown) => call(`License ${lic.body.key}`, method, path, body);
    const grant = await client('POST', '/v1/client/checkout', { fingerprint: 'fp-logs-0001', instanceId: 'i-1', hostname: 'h', user: 'u' });
    assert.equal(grant.status, 201);
    secrets.push(['lease token (checkout)', grant.body.token]);
    const hb = await client('POST', `/v1/client/leases/${grant.body.lease.id}/heartbeat`, { instanceId: 'i-1' });
    secrets.push(['lease token (heartbeat)', hb.body.token]);
    const off = await client('POST', '/v1/client/offline-checkout', {
      fingerprint: 'fp-logs-0002',
      instanceId: 'i-2',
      durationSeconds: 600,
    });
    secrets.push(['offline lease token', off.body.token]);
    await client('GET', '/v1/client/license?fingerprint=fp-logs-0001');
    await client('POST', `/v1/client/leases/${grant.body.lease.id}/checkin`, { instanceId: 'i-1' });
    // an error inside a client route with the key in hand
    await client('POST', '/v1/client/checkout', { fingerprint: 1 });

    // failed authentications: near misses of real secrets and plain guesses
    const nearToken = initial.slice(0, -3) + 'abc';
    const nearKey = lic.body.key.slice(0, -1) + (lic.body.key.endsWith('A') ? 'B' : 'A');
    secrets.push(['wrong admin token', nearToken], ['wrong license key', nearKey]);
    assert.equal((await call(`Bearer ${nearToken}`, 'GET', '/v1/admin/whoami')).status, 401);
    assert.equal(
      (await call(`License ${nearKey}`, 'POST', '/v1/client/checkout', { fingerprint: 'fp-logs-0003', instanceId: 'i' })).status,
      401,
    );
    assert.equal((await call(`Bearer ${lic.body.key}`, 'GET', '/v1/admin/licenses')).status, 401);
    // revoking shows the token once more nowhere
    await admin('POST', `/v1/admin/tokens/${op.body.token?.id ?? op.body.id}/revoke`, {});
    assert.equal((await call(`Bearer ${secrets[1]![1]}`, 'GET', '/v1/admin/whoami')).status, 401);
    await s.stop();

    const out = s.output();
    assert.ok(out.split('\n').filter((l) => l.includes('"reqId"')).length >= 20, `requests were logged:\n${out.slice(0, 2000)}`);
    for (const [what, secret] of secrets) {
      assert.ok(typeof secret === 'string' && secret.length >= 20, `${what} is a real value`);
      // the secret part of an admin token is everything after its id
      const needle = secret.startsWith('fdt_') ? secret.split('_').slice(2).join('_') : secret;
      assert.ok(!out.includes(needle), `${what} appears in the log`);
      if (what.startsWith('lease token')) assert.ok(!out.includes(secret.split('.')[2]!), `${what}'s signature appears in the log`);
    }
    const compact = (k: string) => k.replace(/-/g, '');
    assert.ok(!out.includes(compact(lic.body.key)), 'the license key without dashes appears in the log');
  } finally {
    await pg?.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
});
