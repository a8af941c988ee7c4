/**
 * The HTTP layer's defences over real HTTP on a real store: signed client answers,
 * license keys that cannot be told apart or used on another license's leases,
 * rate limits (with the ManualClock: no sleeping), security headers and CORS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { ERRORS, formatKey, parseSignatureHeader, signingInput } from '@floatd/protocol';
import { startTestServer, type HttpAnswer, type TestServer } from '../testing/harness.js';
import { ManualClock } from '../domain/clock.js';
import { TokenBuckets } from './rateLimit.js';
import { CONSOLE_CSP, Guards } from './security.js';
import { Registry } from 'prom-client';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseConfig } from '../config.js';
import type { AppContext } from './context.js';

async function withServer(securityEnv: Record<string, string> | undefined, fn: (ts: TestServer) => Promise<void>): Promise<void> {
  const ts = await startTestServer(securityEnv ? { securityEnv } : {});
  try {
    await fn(ts);
  } finally {
    await ts.close();
  }
}

/** Sends a client API request the way the SDK does (with a nonce) and returns the raw body text too. */
async function clientCall(
  ts: TestServer,
  key: string | null,
  method: string,
  path: string,
  body?: unknown,
  nonce = 'n-' + Math.random().toString(36).slice(2),
) {
  const headers: Record<string, string> = { 'floatd-nonce': nonce };
  if (key !== null) headers.authorization = `License ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(ts.url + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : undefined, nonce };
}

/** Checks the answer's signature exactly as docs/api.md says a client must. */
async function assertSigned(
  ts: TestServer,
  method: string,
  path: string,
  a: { status: number; headers: Headers; text: string; nonce: string },
  what: string,
) {
  const sig = parseSignatureHeader(a.headers.get('floatd-signature'));
  assert.ok(sig, `${what}: Floatd-Signature present and well formed (${a.headers.get('floatd-signature')})`);
  const date = a.headers.get('floatd-date')!;
  const digest = a.headers.get('content-digest')!;
  assert.equal(digest, `sha-256=:${createHash('sha256').update(a.text).digest('base64')}:`, `${what}: digest of the body`);
  assert.equal(date, new Date(ts.clock.now()).toISOString(), `${what}: Floatd-Date is the server clock`);
  const jwks = (await (await fetch(ts.url + '/.well-known/jwks.json')).json()) as { keys: { kid: string; x: string }[] };
  const jwk = jwks.keys.find((k) => k.kid === sig.kid);
  assert.ok(jwk, `${what}: signed by a published key`);
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
  const input = signingInput(a.status, method, path, a.nonce, date, digest);
  assert.ok(verify(null, Buffer.from(input), key, Buffer.from(sig.sig, 'base64url')), `${what}: signature verifies`);
  // and it would not verify for another status, path or nonce
  assert.ok(
    !verify(
      null,
      Buffer.from(signingInput(a.status === 200 ? 404 : 200, method, path, a.nonce, date, digest)),
      key,
      Buffer.from(sig.sig, 'base64url'),
    ),
  );
  assert.ok(
    !verify(null, Buffer.from(signingInput(a.status, method, path, a.nonce + 'x', date, digest)), key, Buffer.from(sig.sig, 'base64url')),
  );
  return sig.kid;
}

test(
  'every client API answer, success or error, is signed over status, method, path, nonce, date and body digest',
  { timeout: 60_000 },
  () =>
    withServer(undefined, async (ts) => {
      const l = await ts.license({ seats: 1, leaseTtlSeconds: 120, heartbeatIntervalSeconds: 30, maxOfflineSeconds: 3600 });
      const checkoutBody = { fingerprint: 'fp-signed-0001', instanceId: 'i-1' };
      const calls: [string | null, string, string, unknown, number][] = [
        [l.key, 'POST', '/v1/client/checkout', checkoutBody, 201],
        [l.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-signed-0002', instanceId: 'i-2' }, 409],
        [l.key, 'GET', '/v1/client/license?fingerprint=fp-signed-0001', undefined, 200],
        [null, 'POST', '/v1/client/checkout', checkoutBody, 401],
        ['NOT-A-KEY', 'POST', '/v1/client/checkout', checkoutBody, 401],
        [l.key, 'POST', '/v1/client/checkout', { fingerprint: 1 }, 400],
        [l.key, 'POST', '/v1/client/leases/lse_00000000000000000000/heartbeat', { instanceId: 'i-1' }, 404],
        [l.key, 'POST', '/v1/client/devices/sync', { fingerprint: 'fp-signed-0001', instanceIds: ['i-1'] }, 200],
      ];
      let leaseId = '';
      for (const [key, method, path, body, status] of calls) {
        const a = await clientCall(ts, key, method, path, body);
        assert.equal(a.status, status, `${method} ${path}: ${a.text}`);
        await assertSigned(ts, method, path, a, `${method} ${path} → ${status}`);
        if (status === 201) leaseId = a.body.lease.id;
      }
      for (const verb of ['heartbeat', 'checkin']) {
        const path = `/v1/client/leases/${leaseId}/${verb}`;
        const a = await clientCall(ts, l.key, 'POST', path, { instanceId: 'i-1' });
        assert.equal(a.status, 200, a.text);
        await assertSigned(ts, 'POST', path, a, path);
      }
      // a request without a nonce is signed with an empty one
      const bare = await ts.client(l.key, 'GET', '/v1/client/license');
      const sig = parseSignatureHeader(bare.headers.get('floatd-signature'));
      assert.ok(sig);
      // after a rotation the new key signs, and the JWKS publishes it
      const before = await assertSigned(
        ts,
        'GET',
        '/v1/client/license',
        await clientCall(ts, l.key, 'GET', '/v1/client/license', undefined, 'n1'),
        'before rotation',
      );
      assert.equal((await ts.admin('POST', '/v1/admin/signing-keys/rotate', {})).status, 200);
      const after = await assertSigned(
        ts,
        'GET',
        '/v1/client/license',
        await clientCall(ts, l.key, 'GET', '/v1/client/license', undefined, 'n2'),
        'after rotation',
      );
      assert.notEqual(after, before);
      // admin and operations answers are not client answers: not signed
      assert.equal((await ts.admin('GET', '/v1/admin/whoami')).headers.get('floatd-signature'), null);
    }),
);

test(
  'a missing, malformed, mistyped or unknown license key gets byte-for-byte the same answer, through the same path',
  { timeout: 60_000 },
  () =>
    withServer(undefined, async (ts) => {
      const real = await ts.license({ seats: 1 });
      const raw = real.key.replace(/-/g, '');
      const typo = formatKey(raw.slice(0, 23) + (raw[23] === 'A' ? 'B' : 'A')); // check symbol no longer fits
      const unknown = formatKey('0123456789ABCDEFGHJKMNPQ'); // well formed, never issued
      const variants: [string, string | null][] = [
        ['missing', null],
        ['garbage', 'hello'],
        ['too long', 'X'.repeat(200)],
        ['bad check symbol', typo],
        ['unknown', unknown],
      ];
      const bodies = [
        { fingerprint: 'fp-enum-0001', instanceId: 'i-1' }, // valid body: the key decides
        { fingerprint: 7 }, // invalid body: validation answers first for every key alike
      ];
      const strip = (a: { status: number; body: any; headers: Headers }) => {
        const { requestId: _r, ...rest } = a.body.error;
        const names = [...a.headers.keys()]
          .filter((h) => !['date', 'x-request-id', 'floatd-date', 'content-digest', 'floatd-signature', 'content-length'].includes(h))
          .sort();
        return JSON.stringify({ status: a.status, error: rest, names });
      };
      for (const body of bodies) {
        const seen = new Map<string, string>();
        for (const [name, key] of variants) seen.set(name, strip(await clientCall(ts, key, 'POST', '/v1/client/checkout', body)));
        assert.equal(new Set(seen.values()).size, 1, `one answer for every bad key: ${JSON.stringify([...seen])}`);
        const first = JSON.parse([...seen.values()][0]!);
        assert.equal(first.error.code, body.instanceId ? 'INVALID_LICENSE_KEY' : 'VALIDATION_FAILED');
      }
      for (const path of ['/v1/client/license', '/v1/client/leases/lse_00000000000000000000/heartbeat']) {
        const seen = new Set<string>();
        for (const [, key] of variants) {
          const a = path.endsWith('heartbeat')
            ? await clientCall(ts, key, 'POST', path, { instanceId: 'i' })
            : await clientCall(ts, key, 'GET', path);
          assert.equal(a.body.error.code, 'INVALID_LICENSE_KEY');
          seen.add(strip(a));
        }
        assert.equal(seen.size, 1, path);
      }
    }),
);

test("another license's lease id is refused for heartbeat, check-in, return and info, and changes nothing", { timeout: 60_000 }, () =>
  withServer(undefined, async (ts) => {
    const a = await ts.license({ seats: 2, maxOfflineSeconds: 3600 });
    const b = await ts.license({ seats: 2, maxOfflineSeconds: 3600 });
    const online = await ts.client(a.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-owner-0001', instanceId: 'i-a' });
    const offline = await ts.client(a.key, 'POST', '/v1/client/offline-checkout', {
      fingerprint: 'fp-owner-0002',
      instanceId: 'i-o',
      durationSeconds: 600,
    });
    assert.equal(online.status, 201);
    assert.equal(offline.status, 201);
    await ts.client(b.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-other-0001', instanceId: 'i-b' });
    const before = await ts.snapshot();
    const attempts: [string, string, unknown][] = [
      ['POST', `/v1/client/leases/${online.body.lease.id}/heartbeat`, { instanceId: 'i-a' }],
      ['POST', `/v1/client/leases/${online.body.lease.id}/checkin`, { instanceId: 'i-a' }],
      ['POST', `/v1/client/leases/${offline.body.lease.id}/return`, {}],
      ['POST', `/v1/client/leases/${offline.body.lease.id}/heartbeat`, { instanceId: 'i-o' }],
    ];
    for (const [method, path, body] of attempts) {
      const r = await ts.client(b.key, method, path, body);
      assert.equal(r.status, 404, `${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'LEASE_NOT_FOUND');
    }
    // license B's view of A's device shows nothing of A
    const info = await ts.client(b.key, 'GET', '/v1/client/license?fingerprint=fp-owner-0001');
    assert.equal(info.status, 200);
    assert.equal(info.body.lease, null);
    assert.equal(info.body.license.seatsUsed, 1);
    // sync with B's key on A's fingerprint touches no lease of A
    const sync = await ts.client(b.key, 'POST', '/v1/client/devices/sync', { fingerprint: 'fp-owner-0001', instanceIds: [] });
    assert.deepEqual([sync.status, sync.body.dropped], [200, []]);
    assert.deepEqual(await ts.snapshot(), before, 'nothing changed');
  }),
);

// --- rate limits ----------------------------------------------------------------

function assertLimited(r: HttpAnswer, what: string) {
  assert.equal(r.status, 429, `${what}: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.error.code, 'RATE_LIMITED');
  assert.equal(ERRORS.RATE_LIMITED.status, 429);
  const after = Number(r.headers.get('retry-after'));
  assert.ok(Number.isInteger(after) && after >= 1, `${what}: Retry-After ${r.headers.get('retry-after')}`);
  assert.equal(r.body.error.retryAfterSeconds, after);
  assert.equal(r.body.error.requestId, r.headers.get('x-request-id'));
  return after;
}

test(
  'client API: per address and per license key token buckets answer 429 with Retry-After, and refill with the clock',
  { timeout: 60_000 },
  () =>
    withServer({ FLOATD_RATE_LIMIT_CLIENT_IP: '6/60', FLOATD_RATE_LIMIT_CLIENT_KEY: '1000/60' }, async (ts) => {
      const l = await ts.license({ seats: 5 });
      const info = () => ts.client(l.key, 'GET', '/v1/client/license');
      for (let i = 0; i < 6; i++) assert.equal((await info()).status, 200, `request ${i + 1}`);
      const limited = await info();
      const after = assertLimited(limited, 'the 7th from one address');
      assert.equal(after, 10, 'one token comes back every 10 s');
      assert.ok(limited.headers.get('floatd-signature'), 'the 429 is signed like every client answer');
      // the admin API is not limited per address
      assert.equal((await ts.admin('GET', '/v1/admin/whoami')).status, 200);
      ts.clock.advance(9_999);
      assertLimited(await info(), 'just before the token is back');
      ts.clock.advance(1);
      assert.equal((await info()).status, 200, 'a token is back after 10 s');
      assertLimited(await info(), 'and only one');
      ts.clock.advance(60_000);
      for (let i = 0; i < 6; i++) assert.equal((await info()).status, 200, `full bucket again, ${i + 1}`);
    }).then(() =>
      withServer({ FLOATD_RATE_LIMIT_CLIENT_IP: '1000/60', FLOATD_RATE_LIMIT_CLIENT_KEY: '3/60' }, async (ts) => {
        const a = await ts.license({ seats: 5 });
        const b = await ts.license({ seats: 5 });
        // the bucket is the canonical key: other spellings of the same key share it
        const spellings = [a.key, a.key.toLowerCase(), a.key.replace(/-/g, ' ')];
        for (const k of spellings) assert.equal((await ts.client(k, 'GET', '/v1/client/license')).status, 200);
        assertLimited(await ts.client(a.key, 'GET', '/v1/client/license'), 'key A, 4th');
        assertLimited(
          await ts.client(a.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-limit-0001', instanceId: 'i' }),
          'key A checkout',
        );
        assert.equal((await ts.client(b.key, 'GET', '/v1/client/license')).status, 200, 'key B has its own bucket');
        ts.clock.advance(20_000);
        assert.equal(
          (await ts.client(a.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-limit-0001', instanceId: 'i' })).status,
          201,
        );
        const m = await (await fetch(ts.url + '/metrics')).text();
        assert.match(m, /floatd_rate_limited_total\{limit="client-key"\} 2/);
      }),
    ),
);

test(
  'failed authentication per address: bad admin tokens and bad license keys lock the address out of both APIs for a while',
  { timeout: 60_000 },
  () =>
    withServer({ FLOATD_RATE_LIMIT_AUTH_FAILURES: '3/60' }, async (ts) => {
      const l = await ts.license({ seats: 5 });
      const bad = (token: string) => ts.raw('GET', '/v1/admin/whoami', { headers: { authorization: `Bearer ${token}` } });
      assert.equal((await bad('fdt_nope')).status, 401);
      assert.equal((await ts.client('BAD-KEY', 'GET', '/v1/client/license')).status, 401);
      assert.equal((await bad(ts.adminToken.slice(0, -2) + 'xx')).status, 401);
      // 3 failures: this address is refused before any credential is looked at, even the right ones
      assertLimited(await ts.admin('GET', '/v1/admin/whoami'), 'admin with the right token');
      assertLimited(await ts.client(l.key, 'GET', '/v1/client/license'), 'client with the right key');
      assertLimited(await bad('fdt_again'), 'more guessing');
      // operations endpoints stay open
      assert.equal((await ts.raw('GET', '/healthz')).status, 200);
      ts.clock.advance(20_000);
      assert.equal((await ts.admin('GET', '/v1/admin/whoami')).status, 200, 'one failure forgiven every 20 s');
      assert.equal((await ts.client(l.key, 'GET', '/v1/client/license')).status, 200, 'successes cost nothing');
      assert.equal((await bad('fdt_once_more')).status, 401);
      assertLimited(await ts.admin('GET', '/v1/admin/whoami'), 'locked again after one more failure');
    }),
);

test('FLOATD_RATE_LIMIT=off turns every limit off', { timeout: 60_000 }, () =>
  withServer(
    {
      FLOATD_RATE_LIMIT: 'off',
      FLOATD_RATE_LIMIT_CLIENT_IP: '1/60',
      FLOATD_RATE_LIMIT_CLIENT_KEY: '1/60',
      FLOATD_RATE_LIMIT_AUTH_FAILURES: '1/60',
    },
    async (ts) => {
      const l = await ts.license({ seats: 5 });
      for (let i = 0; i < 20; i++) assert.equal((await ts.client(l.key, 'GET', '/v1/client/license')).status, 200);
      for (let i = 0; i < 5; i++) assert.equal((await ts.client('BAD', 'GET', '/v1/client/license')).status, 401);
      assert.equal((await ts.admin('GET', '/v1/admin/whoami')).status, 200);
    },
  ),
);

test('token buckets: bounded memory (least recently used keys dropped), refill capped at the burst, O(1) state per key', () => {
  const clock = new ManualClock(0);
  const b = new TokenBuckets({ max: 2, perSeconds: 10 }, clock, 100);
  for (let i = 0; i < 1000; i++) b.take(`k${i}`);
  assert.equal(b.size, 100, 'never more than maxKeys');
  assert.equal(b.take('k999'), 0, 'the recent key still has its second token');
  assert.equal(b.take('k999'), 5, 'then waits 5 s for the next');
  assert.equal(b.check('k999'), 5, 'check takes nothing');
  clock.advance(5000);
  assert.equal(b.check('k999'), 0);
  clock.advance(3_600_000);
  assert.equal(b.take('k999'), 0);
  assert.equal(b.take('k999'), 0);
  assert.equal(b.take('k999'), 5, 'refill never exceeds the burst');
  assert.equal(b.take('k0'), 0, 'an evicted key starts again full');
});

// --- headers, CORS, CSRF ----------------------------------------------------------

test(
  'security headers: the console gets a CSP fit for its build and no framing; API answers are no-store, nosniff; no cookie anywhere',
  { timeout: 60_000 },
  () =>
    withServer(undefined, async (ts) => {
      const html = await ts.raw('GET', '/console/');
      assert.equal(html.status, 200);
      assert.equal(html.headers.get('content-security-policy'), CONSOLE_CSP);
      assert.match(CONSOLE_CSP, /frame-ancestors 'none'/);
      assert.match(CONSOLE_CSP, /script-src 'self'(;|$)/, 'no unsafe-inline, no unsafe-eval');
      assert.equal(html.headers.get('x-frame-options'), 'DENY');
      assert.equal(html.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(html.headers.get('referrer-policy'), 'no-referrer');
      // the built page has nothing inline that the CSP would block
      assert.doesNotMatch(String(html.body), /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
      assert.doesNotMatch(String(html.body), /<style|style="/, 'no inline style');
      const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(String(html.body))![1]!;
      const js = await ts.raw('GET', asset);
      assert.equal(js.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(js.headers.get('content-security-policy'), CONSOLE_CSP);
      const deep = await ts.raw('GET', '/console/licenses/lic_x');
      assert.equal(deep.headers.get('x-frame-options'), 'DENY');

      const admin = await ts.admin('GET', '/v1/admin/licenses');
      for (const [h, v] of [
        ['cache-control', 'no-store'],
        ['x-content-type-options', 'nosniff'],
        ['x-frame-options', 'DENY'],
        ['referrer-policy', 'no-referrer'],
        ['content-security-policy', "default-src 'none'; frame-ancestors 'none'"],
      ]) {
        assert.equal(admin.headers.get(h!), v, `admin ${h}`);
      }
      assert.equal((await ts.raw('GET', '/v1/admin/whoami')).headers.get('cache-control'), 'no-store', 'on a 401 too');
      const l = await ts.license({ seats: 1 });
      const client = await ts.client(l.key, 'GET', '/v1/client/license');
      assert.equal(client.headers.get('cache-control'), 'no-store');
      assert.equal(client.headers.get('x-content-type-options'), 'nosniff');
      for (const r of [html, js, admin, client]) assert.equal(r.headers.get('set-cookie'), null, 'no cookie: authentication is a header');
    }),
);

test('CORS: the admin API is not usable cross-origin unless the origin is in FLOATD_CORS_ORIGINS', { timeout: 60_000 }, async () => {
  const preflight = (ts: TestServer, origin: string) =>
    ts.raw('OPTIONS', '/v1/admin/licenses', {
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
  await withServer(undefined, async (ts) => {
    const p = await preflight(ts, 'https://evil.example');
    assert.equal(p.status, 403);
    assert.equal(p.body.error.code, 'CORS_ORIGIN_NOT_ALLOWED');
    assert.equal(p.headers.get('access-control-allow-origin'), null);
    assert.equal(p.headers.get('access-control-allow-headers'), null);
    const get = await ts.raw('GET', '/v1/admin/whoami', {
      headers: { origin: 'https://evil.example', authorization: `Bearer ${ts.adminToken}` },
    });
    assert.equal(get.headers.get('access-control-allow-origin'), null, 'a browser would not hand the answer to the page');
    // same-origin use (the console) needs no CORS at all
    assert.equal((await ts.raw('GET', '/v1/admin/whoami', { headers: { authorization: `Bearer ${ts.adminToken}` } })).status, 200);
  });
  await withServer({ FLOATD_RATE_LIMIT: 'off', FLOATD_CORS_ORIGINS: 'https://admin.example.com' }, async (ts) => {
    const ok = await preflight(ts, 'https://admin.example.com');
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://admin.example.com');
    assert.match(ok.headers.get('access-control-allow-headers') ?? '', /authorization/);
    assert.match(ok.headers.get('access-control-allow-methods') ?? '', /PATCH/);
    assert.equal(ok.headers.get('access-control-allow-credentials'), null, 'no credentials mode: nothing ambient to send');
    assert.equal((await preflight(ts, 'https://admin.example.com.evil.example')).status, 403);
    const get = await ts.raw('GET', '/v1/admin/whoami', {
      headers: { origin: 'https://admin.example.com', authorization: `Bearer ${ts.adminToken}` },
    });
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('access-control-allow-origin'), 'https://admin.example.com');
    assert.match(get.headers.get('vary') ?? '', /Origin/);
    // the client API never answers preflights
    assert.equal(
      (await ts.raw('OPTIONS', '/v1/client/checkout', { headers: { origin: 'https://admin.example.com' } })).headers.get(
        'access-control-allow-origin',
      ),
      null,
    );
  });
});

test('failed authentication: requests in flight from one address with the same key share one reservation; malformed keys reserve one each', () => {
  const clock = new ManualClock(0);
  const { security } = parseConfig({ rateLimitAuthFailures: '3/60' });
  const guards = new Guards({ clock, metrics: { registry: new Registry() } } as unknown as AppContext, security);
  const reply = (statusCode: number) => ({ statusCode }) as FastifyReply;
  const request = (licenseKey: string) => ({ ip: '192.0.2.7', licenseKey }) as FastifyRequest;
  const key = formatKey('0'.repeat(23) + '1'); // 24 symbols: the check symbol makes it well-formed
  // 100 requests with one well-formed key, all in flight before any is answered (what a site's checkouts waiting
  // for their license's turn look like): one reservation, none refused; the key valid, so nothing kept.
  const burst = Array.from({ length: 100 }, () => request(key));
  for (const r of burst) guards.gate(r, reply(0));
  for (const r of burst) guards.failed(r, reply(200));
  // The same with an unknown well-formed key: one guess, one token kept (not 100).
  const other = formatKey('1'.repeat(23) + '2');
  const guesses = Array.from({ length: 100 }, () => request(other));
  for (const r of guesses) guards.gate(r, reply(0));
  for (const r of guesses) guards.failed(r, reply(401));
  // Malformed keys (normalised to '') each reserve their own: 2 tokens left, the third request is refused.
  const malformed = [request(''), request('')];
  for (const r of malformed) guards.gate(r, reply(0));
  assert.throws(() => guards.gate(request(''), reply(0)), /too many failed authentications/);
  for (const r of malformed) guards.failed(r, reply(401));
});

test(
  "failed authentication under concurrency: a burst of 250 bad keys at once is looked up at most the limit's number of times",
  { timeout: 60_000 },
  () =>
    withServer({ FLOATD_RATE_LIMIT_AUTH_FAILURES: '30/60', FLOATD_RATE_LIMIT_CLIENT_IP: '100000/1' }, async (ts) => {
      const l = await ts.license({ seats: 5 });
      assert.equal((await ts.client(l.key, 'GET', '/v1/client/license')).status, 200);
      // 250 at once: under the per-address connection cap (256), so every request reaches the limiter together.
      const answers = await Promise.all(Array.from({ length: 250 }, (_, i) => ts.client(`BAD-KEY-${i}`, 'GET', '/v1/client/license')));
      const looked = answers.filter((a) => a.status === 401).length;
      const limited = answers.filter((a) => a.status === 429).length;
      assert.equal(looked + limited, 250, `every answer is a 401 or a 429: ${JSON.stringify([...new Set(answers.map((a) => a.status))])}`);
      assert.ok(looked <= 30, `${looked} bad keys were looked up, against a limit of 30`);
      assert.ok(looked >= 1);
      // The address is locked out now, but a burst of good requests from a site whose key is known never was the problem:
      // after the lockout ends, 100 concurrent requests with the known key reserve nothing and all pass.
      ts.clock.advance(60_000);
      const good = await Promise.all(Array.from({ length: 100 }, () => ts.client(l.key, 'GET', '/v1/client/license')));
      assert.deepEqual([...new Set(good.map((g) => g.status))], [200]);
      const m = await (await fetch(ts.url + '/metrics')).text();
      assert.match(m, new RegExp(`floatd_rate_limited_total\\{limit="auth-failures"\\} ${limited}`));
    }),
);
