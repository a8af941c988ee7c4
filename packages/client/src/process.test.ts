/**
 * The SDK against a real `floatd serve` process: the server is killed with -9
 * (and, separately, stopped gracefully) and restarted in the middle of a run.
 * The application must not notice: no violation, same lease, heartbeats resume.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FloatingLicense } from './index.js';
import { FakeClock } from './testing.js';
import { Cleanup, processLicense, record, serverProcess, tempDir } from './testsupport.js';

// This suite starts its own server processes on SQLite: the PostgreSQL pass has nothing to add.
const skip = process.env.FLOATD_TEST_STORE === 'postgres' ? 'server processes run on SQLite here; covered by the SQLite pass' : false;

test('a server kill -9 and restart in the middle of a run is invisible to the app', { timeout: 60_000, skip }, async () => {
  const cleanup = new Cleanup();
  try {
    const dataDir = await tempDir(cleanup, 'floatd-server-');
    const srv = await serverProcess(cleanup, dataDir);
    const l = await processLicense(srv, { seats: 2, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
    // The server runs on the real clock; the SDK's clock starts there and is moved by hand.
    const clock = new FakeClock(Date.now());
    const lic = new FloatingLicense({
      serverUrl: srv.url,
      licenseKey: l.key,
      stateDir: await tempDir(cleanup),
      clock,
      fingerprint: 'process-test-device',
    });
    cleanup.add(() => lic.close({ checkin: false }));
    const log = record(lic);
    const r = await lic.checkout();
    assert.ok(r.ok);
    const leaseId = r.status.leaseId;
    await clock.advance(20_000);
    assert.equal(log.renewed, 1);

    // kill -9 between two heartbeats; the next heartbeat finds nobody
    await srv.kill9();
    await clock.advance(20_000);
    assert.ok(
      log.events.some((e) => e.startsWith('retry:heartbeat:NETWORK_ERROR')),
      log.events.join(),
    );
    assert.equal(lic.status().valid, true);
    assert.equal(lic.status().serverReachable, false);

    // restarted on the same port and data: the next retry renews the same lease
    const again = await serverProcess(cleanup, dataDir, srv.port);
    await clock.advance(20_000);
    assert.equal(lic.status().serverReachable, true);
    assert.equal(lic.status().leaseId, leaseId);
    assert.ok(log.renewed >= 2);

    // a graceful stop and start: the same
    await again.stop();
    await clock.advance(20_000);
    assert.equal(lic.status().serverReachable, false);
    const renewedBefore = log.renewed;
    const third = await serverProcess(cleanup, dataDir, srv.port);
    await clock.advance(20_000);
    assert.ok(log.renewed > renewedBefore);
    assert.equal(lic.status().serverReachable, true);
    assert.equal(lic.status().leaseId, leaseId);

    assert.equal(log.violations.length, 0, 'no violation');
    assert.equal(log.reacquired, 0, 'the seat was never lost');
    assert.equal(lic.status().valid, true);
    const leases = (await third.admin('GET', `/v1/admin/licenses/${l.id}/leases`)).body.items;
    assert.deepEqual(
      leases.map((x: { id: string }) => x.id),
      [leaseId],
    );
    assert.deepEqual(await lic.checkin(), { released: true, instances: 0, reachedServer: true });
    assert.equal((await third.admin('GET', `/v1/admin/licenses/${l.id}`)).body.seatsUsed, 0);
  } finally {
    await cleanup.run();
  }
});
