/**
 * Clients cannot tell an on-premise floatd from a hosted one: the SDK and
 * floatd-run, unchanged, against a real on-premise server whose seats come from a
 * vendor-signed license file.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { ManualClock } from '@floatd/server';
import { startOnPremServer, testVendor } from '@floatd/server/testing';
import { FloatingLicense } from './index.js';
import { Cleanup, RUN_CLI, tempDir } from './testsupport.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

test('the SDK and floatd-run work against an on-premise server as against a hosted one', { timeout: 60_000 }, async () => {
  const vendor = await testVendor();
  cleanup.add(() => rm(vendor.dir, { recursive: true, force: true }));
  // floatd-run and the SDK run on the system clock: so does the server here.
  const ts = await startOnPremServer(vendor, { clock: new ManualClock(Date.now()) });
  cleanup.add(() => ts.close());
  const spec = vendor.spec([{ seats: 1, maxOfflineSeconds: 86_400, leaseTtlSeconds: 120, heartbeatIntervalSeconds: 30 }]);
  const key = spec.licenses[0]!.key!;
  const loaded = await ts.admin('POST', '/v1/admin/entitlements', { licenseFile: vendor.issue(spec, { serial: 1, now: Date.now() }) });
  assert.equal(loaded.status, 200, JSON.stringify(loaded.body));

  const a = new FloatingLicense({ serverUrl: ts.url, licenseKey: key, stateDir: await tempDir(cleanup), fingerprint: 'onprem-device-a1' });
  cleanup.add(() => a.close({ checkin: false }));
  const seat = await a.checkout();
  assert.ok(seat.ok, JSON.stringify(seat));
  assert.equal(a.status().valid, true, "the token verifies against the on-prem server's JWKS");

  const b = new FloatingLicense({
    serverUrl: ts.url,
    licenseKey: key,
    stateDir: await tempDir(cleanup),
    fingerprint: 'onprem-device-b2',
    retry: { maxAttempts: 1 },
  });
  cleanup.add(() => b.close({ checkin: false }));
  const denied = await b.checkout();
  assert.equal(denied.ok, false);
  if (!denied.ok) assert.equal(denied.code, 'NO_SEATS_AVAILABLE');

  // Raising the seats in the on-prem database does not help b: the file says 1.
  await ts.tamper('UPDATE licenses SET seats = 10');
  const still = await b.checkout();
  assert.equal(still.ok, false);

  // Offline borrowing within the file's limit (one day), whatever the database says.
  await ts.tamper('UPDATE licenses SET max_offline_seconds = 9999999');
  await assert.rejects(
    a.checkoutOffline({ durationSeconds: 2 * 86_400 }),
    (err: { code?: string }) => err.code === 'OFFLINE_DURATION_EXCEEDED',
  );
  const borrowed = await a.checkoutOffline({ durationSeconds: 3600 });
  assert.ok(borrowed.offlineExpiresAt, JSON.stringify(borrowed));
  assert.deepEqual(await a.returnOffline(), { released: true });

  // floatd-run: checks out, runs the command, passes its exit code, checks in.
  const child = spawn(
    process.execPath,
    [
      RUN_CLI,
      '--server',
      ts.url,
      '--key',
      key,
      '--state-dir',
      await tempDir(cleanup),
      '--quiet',
      '--',
      process.execPath,
      '-e',
      'process.exit(7)',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  assert.equal(code, 7, stderr);
  const lic = (await ts.admin('GET', '/v1/admin/entitlements')).body.licenseFile.licenses[0];
  assert.equal((await ts.admin('GET', `/v1/admin/licenses/${lic.id}`)).body.seatsUsed, 0);
});
