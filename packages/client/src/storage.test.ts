/**
 * The SDK when the server's storage fails: the server answers
 * `503 STORAGE_UNAVAILABLE` (here its data directory is a real tmpfs filled to
 * the last byte). The SDK treats it like any 5xx: it retries, keeps running on
 * its lease token, raises no violation, and renews the same lease once space returns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mountSmallDisk, TEST_STORE } from '@floatd/server/testing';
import { FloatingLicenseError } from './index.js';
import { record, world } from './testsupport.js';

test('STORAGE_UNAVAILABLE is retried like a 503: the lease is kept, no violation, the same lease renews after recovery', {
  timeout: 60_000,
  skip: TEST_STORE === 'postgres' && 'the disk-full server runs on SQLite; covered by the SQLite pass',
}, async (c) => {
  const disk = await mountSmallDisk(8);
  if (!disk) {
    c.skip('mounting a tmpfs was refused here (needs root or CAP_SYS_ADMIN)');
    return;
  }
  const w = await world({ dataDir: disk.dir });
  try {
    const l = await w.license({ seats: 2, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
    const lic = w.client({ licenseKey: l.key });
    const log = record(lic);
    const errors: FloatingLicenseError[] = [];
    lic.on('retry', (r) => errors.push(r.error));
    const r = await lic.checkout();
    assert.ok(r.ok);
    const leaseId = r.status.leaseId;

    await disk.fill();
    await w.clock.advance(20_000); // the heartbeat is due: refused
    // the SDK retries after Retry-After (a few seconds), still within the lease's 60 s TTL
    for (let i = 0; i < 6 && errors.length < 2; i++) await w.clock.advance(5_000);
    assert.ok(errors.length >= 2, `the heartbeats were retried (${log.events.join()})`);
    for (const e of errors) {
      assert.equal(e.code, 'STORAGE_UNAVAILABLE');
      assert.equal(e.status, 503);
      assert.equal(e.transient, true);
    }
    assert.equal(lic.status().valid, true, 'still running on its token');
    assert.equal(lic.status().leaseId, leaseId);
    assert.equal(log.violations.length, 0);

    await disk.free();
    await w.clock.advance(20_000);
    assert.equal(lic.status().serverReachable, true);
    assert.equal(lic.status().leaseId, leaseId, 'the same lease, never lost');
    assert.ok(log.renewed >= 1);
    assert.equal(log.violations.length, 0, 'no violation');
    assert.equal(log.reacquired, 0);
    assert.deepEqual(
      (await w.leases(l.id)).map((x: { id: string }) => x.id),
      [leaseId],
    );
  } finally {
    await w.cleanup.run();
    await disk.unmount();
  }
});
