/**
 * The SDK online, against a real floatd server over HTTP (in-process, real
 * SQLite), with the server's clock and the SDK's clock moved together.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { checkSymbol } from '@floatd/protocol';
import { FloatingLicenseError } from './index.js';
import { autoAdvance, record, closeSharedServer, withWorld } from './testsupport.js';

const POLICY = { seats: 2, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 };

after(() => closeSharedServer());

test('checkout takes a seat; heartbeats run by themselves at the advised interval and keep the newest token', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license(POLICY);
    const lic = w.client({ licenseKey: l.key });
    const log = record(lic);
    const r = await lic.checkout();
    assert.ok(r.ok);
    assert.equal(r.source, 'server');
    assert.equal(r.created, true);
    const s0 = r.status;
    assert.equal(s0.state, 'online');
    assert.equal(s0.valid, true);
    assert.equal(s0.seatsUsed, 1);
    assert.equal(s0.seatsTotal, 2);
    assert.equal(s0.heartbeatIntervalSeconds, 20);
    assert.equal(s0.leaseExpiresAt?.getTime(), w.t0 + 60_000);
    assert.match(s0.leaseId!, /^lse_/);
    assert.equal(await w.seatsUsed(l.id), 1);

    // Jitter only shortens the interval (at most 10%): nothing before 18 s, one heartbeat by 20 s.
    await w.clock.advance(17_900);
    assert.equal(log.renewed, 0);
    await w.clock.advance(2_100);
    assert.equal(log.renewed, 1);
    const s1 = lic.status();
    // Renewed on the answer's HMAC under the session key agreed at checkout: the lease is extended, and the
    // checkout's token (40 s of its 60 left) is kept.
    assert.equal(s1.token, s0.token);
    assert.equal(s1.leaseId, s0.leaseId);
    assert.ok(s1.leaseExpiresAt!.getTime() >= w.t0 + 78_000);
    assert.equal(s1.lastContactAt!.getTime() > w.t0, true);
    // The next heartbeat finds less than two intervals left on the token: it asks for a new one.
    await w.clock.advance(20_000);
    assert.equal(log.renewed, 2);
    assert.notEqual(lic.status().token, s0.token);

    // Ten minutes: about 30 heartbeats, the lease never lapses, the token held is never expired, nothing to report.
    const before = log.renewed;
    for (let s = 0; s < 60; s++) {
      await w.clock.advance(10_000);
      const exp = (JSON.parse(Buffer.from(lic.status().token!.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp;
      assert.ok(exp * 1000 > w.clock.now(), `the held token expired at ${s * 10 + 10} s`);
    }
    assert.ok(log.renewed - before >= 30 && log.renewed - before <= 35, `renewed ${log.renewed - before}`);
    assert.equal(log.violations.length, 0);
    const leases = await w.leases(l.id);
    assert.equal(leases.length, 1);
    assert.equal(leases[0].id, s0.leaseId);
    assert.equal(leases[0].instances[0].instanceId, lic.instanceId);
    assert.equal(leases[0].hostname, 'test-host');
  }),
);

test('no seat free: checkout resolves with a denial the app can show, and never retries it', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license({ ...POLICY, seats: 1 });
    const a = w.client({ licenseKey: l.key, fingerprint: 'device-a-000001' });
    assert.ok((await a.checkout()).ok);
    const b = w.client({ licenseKey: l.key, fingerprint: 'device-b-000001' });
    const before = w.proxy.count('/checkout');
    const r = await b.checkout();
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.code, 'NO_SEATS_AVAILABLE');
    assert.equal(r.seatsTotal, 1);
    assert.equal(r.seatsUsed, 1);
    assert.equal(r.earliestExpiryAt?.toISOString(), new Date(w.t0 + 60_000).toISOString());
    assert.equal(
      r.message,
      `all 1 seats are in use; the earliest lease expires at ${new Date(w.t0 + 60_000).toISOString()} unless its holder renews it`,
    );
    assert.equal(r.timedOut, false);
    assert.equal(w.proxy.count('/checkout') - before, 1);
    assert.equal(b.status().state, 'idle');
    assert.equal(w.clock.pending(), 3, "only a's heartbeat, expiry and guard timers");
  }),
);

test('checkout({ wait: true }) keeps asking until a seat frees; with a timeout it gives up with the denial', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license({ ...POLICY, seats: 1 });
    const a = w.client({ licenseKey: l.key, fingerprint: 'device-a-000001' });
    assert.ok((await a.checkout()).ok);
    const b = w.client({ licenseKey: l.key, fingerprint: 'device-b-000001', waitIntervalSeconds: 5 });
    const waits: number[] = [];
    b.on('waiting', (info) => waits.push(info.retryInMs));
    let polls = 0;
    autoAdvance(b, w.clock, async () => {
      // the holder leaves after the third time b was told to wait
      if (++polls === 3) assert.equal((await a.checkin()).released, true);
    });
    const r = await b.checkout({ wait: true });
    assert.ok(r.ok);
    assert.equal(waits.length, 3);
    assert.ok(
      waits.every((ms) => ms >= 4000 && ms <= 5000),
      String(waits),
    );
    assert.equal(await w.seatsUsed(l.id), 1);

    // c waits with a timeout shorter than anyone's stay
    const c = w.client({ licenseKey: l.key, fingerprint: 'device-c-000001', waitIntervalSeconds: 5 });
    autoAdvance(c, w.clock);
    const denied = await c.checkout({ wait: true, timeoutMs: 12_000 });
    assert.equal(denied.ok, false);
    if (!denied.ok) assert.equal(denied.timedOut, true);
  }),
);

test('a 4xx is never retried: a suspended license rejects at once with LICENSE_SUSPENDED', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license(POLICY);
    await w.ts.admin('POST', `/v1/admin/licenses/${l.id}/suspend`, {});
    const lic = w.client({ licenseKey: l.key });
    const log = record(lic);
    await assert.rejects(
      lic.checkout(),
      (e: unknown) => e instanceof FloatingLicenseError && e.code === 'LICENSE_SUSPENDED' && e.status === 403,
    );
    assert.equal(w.proxy.count('/checkout'), 1);
    assert.equal(log.retries, 0);
    // a key the server does not know: INVALID_LICENSE_KEY, once
    const other = w.client({ licenseKey: 'ABCDE-FGHJK-MNPQR-STVWX-YZ01' + checkDigitFor('ABCDEFGHJKMNPQRSTVWXYZ01') });
    await assert.rejects(other.checkout(), (e: unknown) => e instanceof FloatingLicenseError && e.code === 'INVALID_LICENSE_KEY');
    assert.equal(w.proxy.count('/checkout'), 2);
    // a malformed key is refused before any network call
    assert.throws(
      () => w.client({ licenseKey: 'not-a-key' }),
      (e: unknown) => e instanceof FloatingLicenseError && e.code === 'INVALID_LICENSE_KEY',
    );
  }),
);

function checkDigitFor(body: string): string {
  return checkSymbol(body);
}

test('5xx and network errors are retried with back-off and jitter; after maxAttempts the error surfaces', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license(POLICY);
    const lic = w.client({ licenseKey: l.key });
    const delays: number[] = [];
    lic.on('retry', (r) => delays.push(r.delayMs));
    autoAdvance(lic, w.clock);
    w.proxy.failNext = { count: 2, status: 503 };
    const r = await lic.checkout();
    assert.ok(r.ok);
    assert.equal(w.proxy.count('/checkout'), 3);
    assert.equal(delays.length, 2);
    assert.ok(delays[0]! >= 500 && delays[0]! <= 1000, String(delays));
    assert.ok(delays[1]! >= 1000 && delays[1]! <= 2000, String(delays));
    await lic.checkin();

    // the network is gone and nothing is stored: three attempts (maxAttempts), then NETWORK_ERROR
    const fresh = w.client({ licenseKey: l.key, fingerprint: 'device-x-000001' });
    autoAdvance(fresh, w.clock);
    w.proxy.down();
    await assert.rejects(fresh.checkout(), (e: unknown) => e instanceof FloatingLicenseError && e.code === 'NETWORK_ERROR');
  }),
);

test('the server drops the lease: the SDK checks out again at once and emits reacquired', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license(POLICY);
    const lic = w.client({ licenseKey: l.key });
    const log = record(lic);
    const r = await lic.checkout();
    assert.ok(r.ok);
    const first = r.status.leaseId!;
    const rel = await w.ts.admin('POST', `/v1/admin/leases/${first}/release`, {});
    assert.equal(rel.status, 200);
    assert.equal(await w.seatsUsed(l.id), 0);
    await w.clock.advance(20_000);
    assert.equal(log.reacquired, 1);
    assert.equal(log.violations.length, 0);
    const s = lic.status();
    assert.equal(s.state, 'online');
    assert.notEqual(s.leaseId, first);
    assert.equal(await w.seatsUsed(l.id), 1);
  }),
);

test('the lease is gone and every seat is taken: violation SEAT_LOST; the seat comes back when one frees', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license({ ...POLICY, seats: 1 });
    const lic = w.client({ licenseKey: l.key });
    const log = record(lic);
    const r = await lic.checkout();
    assert.ok(r.ok);
    await w.ts.admin('POST', `/v1/admin/leases/${r.status.leaseId}/release`, {});
    const other = w.client({ licenseKey: l.key, fingerprint: 'device-o-000001' });
    assert.ok((await other.checkout()).ok);
    await w.clock.advance(20_000);
    assert.deepEqual(
      log.violations.map((v) => [v.code, v.cause]),
      [['SEAT_LOST', 'NO_SEATS_AVAILABLE']],
    );
    assert.equal(lic.status().state, 'lost');
    assert.equal(lic.status().valid, false);
    // still trying, but the violation is reported once
    await w.clock.advance(40_000);
    assert.equal(log.violations.length, 1);
    await other.checkin();
    await w.clock.advance(20_000);
    assert.equal(log.reacquired, 1);
    assert.equal(lic.status().state, 'online');
    assert.deepEqual(lic.status().violations, []);
  }),
);

test('suspension and subscription end during a run: LICENSE_SUSPENDED, then LICENSE_EXPIRED', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license({ ...POLICY, model: 'subscription', expiresAt: new Date(w.t0 + 300_000).toISOString() });
    const lic = w.client({ licenseKey: l.key });
    const log = record(lic);
    assert.ok((await lic.checkout()).ok);
    await w.ts.admin('POST', `/v1/admin/licenses/${l.id}/suspend`, {});
    await w.clock.advance(20_000);
    assert.deepEqual(
      log.violations.map((v) => v.code),
      ['LICENSE_SUSPENDED'],
    );
    assert.equal(lic.status().state, 'lost');
    await w.ts.admin('POST', `/v1/admin/licenses/${l.id}/resume`, {});
    await w.clock.advance(20_000);
    assert.equal(log.reacquired, 1);
    assert.equal(lic.status().state, 'online');
    // the subscription ends at w.t0 + 5 min
    await w.clock.advance(300_000);
    assert.deepEqual(
      log.violations.map((v) => v.code),
      ['LICENSE_SUSPENDED', 'LICENSE_EXPIRED'],
    );
    assert.equal(lic.status().valid, false);
  }),
);

test(
  'server outage: the app keeps running on its token, reports SERVER_UNREACHABLE only when the token expires, and recovers',
  { timeout: 30_000 },
  () =>
    withWorld(async (w) => {
      const l = await w.license(POLICY);
      const lic = w.client({ licenseKey: l.key });
      const log = record(lic);
      assert.ok((await lic.checkout()).ok);
      await w.clock.advance(20_000); // one heartbeat at 18-20 s
      const expiresAt = lic.status().leaseExpiresAt!.getTime();
      w.proxy.down();
      // until the token's expiry: retries, no violation, still valid
      await w.clock.advance(expiresAt - w.clock.now() - 1);
      assert.ok(log.retries >= 2, `retries ${log.retries}`);
      assert.equal(log.violations.length, 0);
      assert.equal(lic.status().valid, true);
      assert.equal(lic.status().serverReachable, false);
      await w.clock.advance(1);
      assert.deepEqual(
        log.violations.map((v) => [v.code, v.cause]),
        [['SERVER_UNREACHABLE', 'NETWORK_ERROR']],
      );
      assert.equal(log.violations[0]!.at.getTime(), expiresAt);
      assert.equal(lic.status().valid, false);
      // the server is back: the next retry renews (the lease was not reclaimed) and the app hears it
      w.proxy.up();
      await w.clock.advance(20_000);
      assert.equal(log.reacquired, 1);
      assert.equal(lic.status().valid, true);
      assert.deepEqual(lic.status().violations, []);
    }),
);

test('checkin gives the seat back and stops every timer', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license(POLICY);
    const lic = w.client({ licenseKey: l.key });
    assert.ok((await lic.checkout()).ok);
    assert.ok(w.clock.pending() > 0);
    const r = await lic.checkin();
    assert.deepEqual(r, { released: true, instances: 0, reachedServer: true });
    assert.equal(await w.seatsUsed(l.id), 0);
    assert.equal(w.clock.pending(), 0);
    assert.equal(lic.status().state, 'idle');
    const hb = w.proxy.count('/heartbeat');
    await w.clock.advance(120_000);
    assert.equal(w.proxy.count('/heartbeat'), hb);
  }),
);

test('lic.info() reads the license state without a seat', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license(POLICY);
    const lic = w.client({ licenseKey: l.key });
    const info = await lic.info();
    assert.equal(info.license.seatsTotal, 2);
    assert.equal(info.lease, null);
  }),
);

test(
  'a license that ends mid-second: the last renewals bring already-expired tokens, and the SDK does not spin on them',
  { timeout: 30_000 },
  () =>
    withWorld(async (w) => {
      // check out at a whole second + 100 ms; the license ends 120.4 s later, in the same second as the 6th heartbeat
      await w.clock.advance(1000 - (w.clock.now() % 1000) + 100);
      const end = w.clock.now() + 120_400;
      const l = await w.license({ ...POLICY, model: 'subscription', expiresAt: new Date(end).toISOString() });
      const lic = w.client({ licenseKey: l.key, heartbeatJitter: 0 });
      const log = record(lic);
      assert.ok((await lic.checkout()).ok);
      // heartbeats at 20 s steps; at 120 s the token is cut to the license end, which is in the same second
      await w.clock.advance(end - w.clock.now() - 300);
      const before = w.proxy.count('/heartbeat');
      await w.clock.advance(5_000);
      assert.ok(w.proxy.count('/heartbeat') - before <= 3, `heartbeats in the last seconds: ${w.proxy.count('/heartbeat') - before}`);
      assert.deepEqual(
        log.violations.map((v) => v.code),
        ['LICENSE_EXPIRED'],
      );
    }),
);
