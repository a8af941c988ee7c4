/**
 * Signed answers against a hostile network: a real node:http proxy between the SDK
 * and a real server alters bodies, statuses and headers, strips signatures and
 * replays old answers; the SDK believes none of it (no grant, no lost seat, no
 * release). And `429 RATE_LIMITED` from a real rate-limited server: the SDK waits
 * the Retry-After and carries on, without a violation.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock } from '@floatd/server';
import { startTestServer } from '@floatd/server/testing';
import { FloatingLicense, FloatingLicenseError } from './index.js';
import { FakeClock } from './testing.js';
import { autoAdvance, Cleanup, closeSharedServer, record, T0, tempDir, type Rewritten, withWorld } from './testsupport.js';

const POLICY = { seats: 2, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20, maxOfflineSeconds: 86400 };

after(() => closeSharedServer());

const rejectsWith = (code: string) => (e: unknown) => {
  assert.ok(e instanceof FloatingLicenseError, String(e));
  assert.equal(e.code, code, e.message);
  return true;
};

const hasLeaseFile = (dir: string) =>
  readdirSync(dir, { withFileTypes: true }).some((d) => d.isDirectory() && existsSync(join(dir, d.name, 'lease.json')));

test('an altered checkout answer grants nothing: changed body, changed status, stripped signature', { timeout: 60_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license(POLICY);
    const lic = w.client({ licenseKey: l.key });
    autoAdvance(lic, w.clock);
    let altered = 0;
    // 1. one field of a genuine grant changed (more seats than bought), signature headers left as they were
    w.proxy.rewrite = (req, res) => {
      if (!req.path.endsWith('/checkout')) return undefined;
      altered++;
      return { status: res.status, body: { ...res.body, license: { ...res.body.license, seatsTotal: 1000 } } };
    };
    await assert.rejects(lic.checkout(), rejectsWith('INVALID_SIGNATURE'));
    assert.equal(altered, 1, 'a tampered answer is not retried');
    assert.equal(lic.status().state, 'idle');
    assert.equal(lic.status().token, null);
    assert.ok(!hasLeaseFile(w.stateDir), 'nothing stored');

    // 2. a genuine refusal turned into a 200 (status is signed)
    w.proxy.rewrite = (req, res) =>
      req.path.endsWith('/checkout') ? { status: res.status === 200 ? 201 : 200, body: res.body } : undefined;
    await assert.rejects(lic.checkout(), rejectsWith('INVALID_SIGNATURE'));

    // 3. the signature removed: not floatd's answer; retried like a captive portal, then given up
    w.proxy.rewrite = (req, res) =>
      req.path.endsWith('/checkout')
        ? { status: res.status, body: res.body, headers: { 'floatd-signature': null, signature: null, 'signature-input': null } }
        : undefined;
    await assert.rejects(lic.checkout(), rejectsWith('BAD_RESPONSE'));
    assert.equal(lic.status().state, 'idle');
    assert.ok(!hasLeaseFile(w.stateDir));

    // the seats taken by those genuine checkouts are the server's business; the client took none
    w.proxy.rewrite = undefined;
    const ok = await lic.checkout();
    assert.ok(ok.ok, 'an untouched answer is accepted');
  }),
);

test('forged and replayed answers to heartbeat and check-in cannot take the seat away or release it', { timeout: 60_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license(POLICY);
    const lic = w.client({ licenseKey: l.key });
    const log = record(lic);
    assert.ok((await lic.checkout()).ok);
    const first = lic.status().token;

    // record one genuine signed heartbeat answer
    let saved: Rewritten | undefined;
    w.proxy.rewrite = (req, res) => {
      if (req.path.endsWith('/heartbeat') && !saved) saved = { status: res.status, body: res.body, headers: res.headers };
      return undefined;
    };
    await w.clock.advance(20_000);
    assert.equal(log.renewed, 1);
    assert.ok(saved);
    // signed with HMAC-SHA256 under the session key, and no new token (the held one has 40 of its 60 s left)
    assert.match(String(saved.headers?.['signature-input']), /;alg="hmac-sha256"/);
    assert.equal((saved.body as { token?: string }).token, undefined);
    const second = lic.status().token;
    assert.equal(second, first);

    // a forged "your lease is gone" with the genuine headers of a real answer
    w.proxy.rewrite = (req) =>
      req.path.endsWith('/heartbeat')
        ? { status: 404, body: { error: { code: 'LEASE_NOT_FOUND', message: 'gone', requestId: 'req_x' } } }
        : undefined;
    await w.clock.advance(20_000);
    assert.deepEqual(log.violations, [], 'no SEAT_LOST from a forged refusal');
    assert.ok(log.events.includes('retry:heartbeat:INVALID_SIGNATURE'), log.events.join());
    assert.equal(lic.status().state, 'online');
    assert.equal(lic.status().token, second, 'the trusted token is kept');

    // the genuine answer of an earlier heartbeat, replayed whole (its signature is real, for another request)
    w.proxy.rewrite = (req) => (req.path.endsWith('/heartbeat') ? saved : undefined);
    const before = log.events.length;
    await w.clock.advance(20_000);
    assert.ok(log.events.slice(before).includes('retry:heartbeat:INVALID_SIGNATURE'), log.events.join());
    assert.equal(lic.status().token, second, 'the replayed (older) token is not taken');

    // the network heals: the next heartbeat renews; nothing was lost
    w.proxy.rewrite = undefined;
    await w.clock.advance(20_000);
    assert.equal(lic.status().state, 'online');
    assert.deepEqual(log.violations, []);

    // a second instance joins the device's seat; this one's check-in genuinely answers "not released, 1 instance left".
    // A forged "released, 0 instances" is not believed.
    const join = await w.ts.client(l.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-test-device-0001', instanceId: 'i-second' });
    assert.equal(join.status, 200);
    w.proxy.rewrite = (req, res) => {
      if (!req.path.endsWith('/checkin')) return undefined;
      assert.deepEqual(res.body, { released: false, instances: 1 });
      return { status: 200, body: { released: true, instances: 0 } };
    };
    const r = await lic.checkin();
    assert.deepEqual(r, { released: false, instances: null, reachedServer: false });
    assert.equal(await w.seatsUsed(l.id), 1, 'the other instance still holds the seat');
  }),
);

test('429 RATE_LIMITED from a rate-limited server: the SDK waits Retry-After, keeps its seat, reports no violation', {
  timeout: 60_000,
}, async () => {
  const cleanup = new Cleanup();
  try {
    // one request back every 30 s per license key
    const ts = await startTestServer({ clock: new ManualClock(T0), securityEnv: { FLOATD_RATE_LIMIT_CLIENT_KEY: '2/60' } });
    cleanup.add(() => ts.close());
    const clock = new FakeClock(T0).link(ts.clock);
    cleanup.add(() => clock.unlink(ts.clock));
    const l = await ts.license(POLICY);
    const lic = new FloatingLicense({
      serverUrl: ts.url,
      licenseKey: l.key,
      stateDir: await tempDir(cleanup),
      clock,
      fingerprint: 'fp-limited-0001',
      hostname: null,
      user: null,
      random: () => 0.5,
      heartbeatJitter: 0,
    });
    cleanup.add(() => lic.close({ checkin: false }));
    const log = record(lic);
    const retries: { operation: string; code: string; delayMs: number }[] = [];
    lic.on('retry', (r) => retries.push({ operation: r.operation, code: r.error.code, delayMs: r.delayMs }));

    assert.ok((await lic.checkout()).ok); // token 1
    await lic.info(); // token 2: the bucket is empty
    await assert.rejects(
      lic.info(),
      (e: unknown) => e instanceof FloatingLicenseError && e.code === 'RATE_LIMITED' && e.transient && e.retryAfterMs === 30_000,
    );

    // the heartbeat 20 s later finds the bucket at 2/3 of a token: 429, Retry-After 10 s
    await clock.advance(20_000);
    assert.deepEqual(retries, [{ operation: 'heartbeat', code: 'RATE_LIMITED', delayMs: 10_000 }]);
    assert.deepEqual(log.violations, [], 'being asked to slow down is not a violation');
    assert.equal(lic.status().state, 'online');
    assert.equal(lic.status().serverReachable, true);
    assert.equal(log.renewed, 0);
    // not before Retry-After
    await clock.advance(9_000);
    assert.equal(log.renewed, 0);
    await clock.advance(1_000);
    assert.equal(log.renewed, 1, 'renewed once Retry-After passed');
    assert.equal(ts.clock.now(), clock.now());

    // a checkout refused with 429 is retried after Retry-After, not given up
    const other = new FloatingLicense({
      serverUrl: ts.url,
      licenseKey: l.key,
      stateDir: await tempDir(cleanup),
      clock,
      fingerprint: 'fp-limited-0002',
      hostname: null,
      user: null,
      random: () => 0.5,
    });
    cleanup.add(() => other.close({ checkin: false }));
    autoAdvance(other, clock);
    other.on('retry', (r) => retries.push({ operation: r.operation, code: r.error.code, delayMs: r.delayMs }));
    const got = await other.checkout();
    assert.ok(got.ok);
    assert.ok(
      retries.some((r) => r.operation === 'checkout' && r.code === 'RATE_LIMITED' && r.delayMs >= 1000),
      JSON.stringify(retries),
    );
    assert.deepEqual(log.violations, []);
  } finally {
    await cleanup.run();
  }
});
