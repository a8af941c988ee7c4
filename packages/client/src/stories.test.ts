/**
 * The seed stories from the SDK's side, against a real server over HTTP: the
 * laptop that leaves the office, offline borrowing (and its expiry with the
 * server down), a crashed instance, and two instances on one device.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { record, closeSharedServer, withWorld } from './testsupport.js';

after(() => closeSharedServer());

async function stateFile(stateDir: string, name: string): Promise<string | undefined> {
  for (const ns of await readdir(stateDir)) {
    const p = join(stateDir, ns, name);
    try {
      await stat(p);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

const HOUR = 3600_000;

test('laptop: checked out at the office, app closed and reopened with no network, checked in back at the office', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    // A lease without TTL: held until check-in, as in QLM's cloud floating licenses.
    const l = await w.license({ seats: 1, leaseTtlSeconds: null, heartbeatIntervalSeconds: 60 });
    // retries back off to 2 minutes apart (an hour and a half of outage stays a few dozen attempts)
    const patient = { retry: { initialDelayMs: 1000, maxDelayMs: 120_000, maxAttempts: 3 }, guardIntervalSeconds: 600 };
    const first = w.client({ licenseKey: l.key, ...patient });
    const log1 = record(first);
    const r1 = await first.checkout();
    assert.ok(r1.ok);
    assert.equal(r1.status.leaseExpiresAt, null, 'the token does not expire');
    const leaseId = r1.status.leaseId;

    // He closes the laptop and leaves: no network, the app keeps running.
    w.proxy.down();
    await w.clock.advance(HOUR / 2);
    assert.equal(log1.violations.length, 0);
    assert.equal(first.status().valid, true);
    // He closes the application on the road: check-in cannot reach the server.
    const c1 = await first.checkin();
    assert.deepEqual(c1, { released: false, instances: null, reachedServer: false });

    // He reopens it with no network: it runs on the lease the laptop still holds.
    const second = w.client({ licenseKey: l.key, ...patient });
    const log2 = record(second);
    const r2 = await second.checkout();
    assert.ok(r2.ok);
    assert.equal(r2.source, 'cached-token');
    assert.equal(r2.status.state, 'cached');
    assert.equal(r2.status.valid, true);
    assert.equal(r2.status.leaseId, leaseId);
    await w.clock.advance(HOUR);
    assert.equal(log2.violations.length, 0);
    assert.equal(second.status().valid, true);
    // Meanwhile the seat stayed his on the server.
    assert.deepEqual(
      (await w.leases(l.id)).map((x) => x.id),
      [leaseId],
    );

    // Back at the office: the SDK reconnects by itself, joins its lease, and checks in the closed run's instance.
    w.proxy.up();
    await w.clock.advance(120_000);
    assert.equal(second.status().state, 'online');
    assert.equal(second.status().leaseId, leaseId);
    assert.equal(log2.renewed >= 1, true);
    assert.equal(log2.violations.length, 0);
    const leases = await w.leases(l.id);
    assert.deepEqual(
      leases[0].instances.map((i: { instanceId: string }) => i.instanceId),
      [second.instanceId],
    );
    // He closes the application: the license goes back to the pool.
    assert.deepEqual(await second.checkin(), { released: true, instances: 0, reachedServer: true });
    assert.equal(await w.seatsUsed(l.id), 0);
  }),
);

test(
  'offline: borrow, exit, restart with no network on the stored token, run until the Offline Expiry Date, then OFFLINE_EXPIRED with the server down',
  { timeout: 30_000 },
  () =>
    withWorld(async (w) => {
      const l = await w.license({ seats: 2, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20, maxOfflineSeconds: 7 * 86400 });
      const app = w.client({ licenseKey: l.key, guardIntervalSeconds: 600 });
      assert.ok((await app.checkout()).ok);
      const s = await app.checkoutOffline({ durationSeconds: 86400 });
      assert.equal(s.state, 'offline');
      assert.equal(s.offline, true);
      assert.equal(s.offlineExpiresAt?.getTime(), w.t0 + 86400_000);
      const file = await stateFile(w.stateDir, 'offline.json');
      assert.ok(file, 'the offline token is stored');
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      // no heartbeats while offline
      const hb = w.proxy.count('/heartbeat');
      await w.clock.advance(HOUR);
      assert.equal(w.proxy.count('/heartbeat'), hb);
      // the app exits: its instance leaves, the seat stays borrowed
      assert.equal((await app.checkin()).released, false);
      assert.equal(await w.seatsUsed(l.id), 1);

      // a later start with no network
      w.proxy.down();
      const later = w.client({ licenseKey: l.key, guardIntervalSeconds: 600 });
      const log = record(later);
      const r = await later.checkout();
      assert.ok(r.ok);
      assert.equal(r.source, 'offline-token');
      assert.equal(r.status.offlineExpiresAt?.getTime(), w.t0 + 86400_000);
      assert.equal(log.retries, 0, 'no network needed');
      // runs until the Offline Expiry Date
      await w.clock.advance(w.t0 + 86400_000 - w.clock.now() - 1);
      assert.equal(log.violations.length, 0);
      assert.equal(later.status().valid, true);
      // at the date it tries to go online and cannot
      await w.clock.advance(1);
      assert.deepEqual(
        log.violations.map((v) => v.code),
        ['OFFLINE_EXPIRED'],
      );
      assert.equal(later.status().valid, false);
      assert.equal(await stateFile(w.stateDir, 'offline.json'), undefined, 'the expired token is gone');
      // the network comes back: the seat is reacquired online
      w.proxy.up();
      await w.clock.advance(30_000);
      assert.equal(log.reacquired, 1);
      assert.equal(later.status().state, 'online');
      assert.equal(later.status().valid, true);
    }),
);

test('offline: at the Offline Expiry Date with the server up, the SDK goes back online without a violation', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license({ seats: 2, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20, maxOfflineSeconds: 86400 });
    const app = w.client({ licenseKey: l.key });
    const log = record(app);
    await app.checkoutOffline({ durationSeconds: HOUR / 1000 });
    assert.equal(app.status().state, 'offline');
    await w.clock.advance(HOUR);
    assert.equal(log.violations.length, 0);
    assert.equal(app.status().state, 'online');
    assert.equal(app.status().offline, false);
    assert.equal(log.renewed, 1);
    // heartbeats again
    const hb = w.proxy.count('/heartbeat');
    await w.clock.advance(20_000);
    assert.equal(w.proxy.count('/heartbeat'), hb + 1);
  }),
);

test('offline: returnOffline gives the seat back early and deletes the stored token', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license({ seats: 2, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20, maxOfflineSeconds: 86400 });
    const app = w.client({ licenseKey: l.key });
    await app.checkoutOffline({ durationSeconds: 3600 });
    assert.equal(await w.seatsUsed(l.id), 1);
    assert.deepEqual(await app.returnOffline(), { released: true });
    assert.equal(await w.seatsUsed(l.id), 0);
    assert.equal(await stateFile(w.stateDir, 'offline.json'), undefined);
    assert.equal(app.status().state, 'idle');
    assert.equal(w.clock.pending(), 0);
    // and it can go on online
    assert.ok((await app.checkout()).ok);
  }),
);

test('two instances on one device share one seat; the seat frees when the last one checks in', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license({ seats: 1, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
    const a = w.client({ licenseKey: l.key });
    const b = w.client({ licenseKey: l.key });
    const ra = await a.checkout();
    const rb = await b.checkout();
    assert.ok(ra.ok && rb.ok);
    assert.equal(ra.created, true);
    assert.equal(rb.created, false);
    assert.equal(rb.status.leaseId, ra.status.leaseId);
    assert.equal(rb.status.instances, 2);
    assert.equal(await w.seatsUsed(l.id), 1);
    // both heartbeat on the same lease
    await w.clock.advance(60_000);
    assert.equal(a.status().valid && b.status().valid, true);
    assert.deepEqual(await a.checkin(), { released: false, instances: 1, reachedServer: true });
    assert.equal(await w.seatsUsed(l.id), 1);
    assert.deepEqual(await b.checkin(), { released: true, instances: 0, reachedServer: true });
    assert.equal(await w.seatsUsed(l.id), 0);
  }),
);

test(
  'crash: an instance killed with -9 is checked in by the next start; syncInstances drops instances nothing runs',
  { timeout: 30_000 },
  () =>
    withWorld(
      async (w) => {
        const l = await w.license({ seats: 1, leaseTtlSeconds: null, heartbeatIntervalSeconds: 20 });
        const sdk = pathToFileURL(join(import.meta.dirname, 'index.js')).href;
        const script = `
        import { FloatingLicense } from ${JSON.stringify(sdk)};
        // the same machine as the world's clients (their host name is 'test-host'; another one would be a clone)
        const lic = new FloatingLicense({ serverUrl: process.env.URL, licenseKey: process.env.KEY, stateDir: process.env.DIR, fingerprint: 'fp-test-device-0001', hostname: 'test-host', user: 'tester' });
        const r = await lic.checkout();
        console.log(JSON.stringify({ ok: r.ok, leaseId: r.status?.leaseId, instanceId: lic.instanceId }));
        setInterval(() => {}, 1000);`;
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
          env: { ...process.env, URL: w.proxy.url, KEY: l.key, DIR: w.stateDir },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        const exited = new Promise((r) => child.once('exit', r));
        w.cleanup.add(() => child.kill('SIGKILL'));
        const line = await new Promise<string>((resolve, reject) => {
          let out = '';
          child.stdout!.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('\n')) resolve(out.trim());
          });
          child.once('exit', () => reject(new Error('child exited before checkout')));
        });
        const crashed = JSON.parse(line) as { ok: boolean; leaseId: string; instanceId: string };
        assert.equal(crashed.ok, true);
        child.kill('SIGKILL');
        await exited;
        // The crashed instance still holds the seat (no TTL: it would hold it forever).
        assert.equal(await w.seatsUsed(l.id), 1);

        const next = w.client({ licenseKey: l.key });
        const r = await next.checkout();
        assert.ok(r.ok);
        assert.equal(r.status.leaseId, crashed.leaseId, "joined the device's seat");
        const instances = (await w.leases(l.id))[0].instances.map((i: { instanceId: string }) => i.instanceId);
        assert.deepEqual(instances, [next.instanceId], 'the crashed instance was checked in');
        assert.equal(next.status().instances, 1);

        // An instance the server knows but nothing on this device runs (e.g. its state dir was wiped): sync drops it.
        const ghost = await w.ts.client(l.key, 'POST', '/v1/client/checkout', {
          fingerprint: 'fp-test-device-0001',
          instanceId: 'ghost-instance',
        });
        assert.equal(ghost.body.lease.instances, 2);
        const sync = await next.syncInstances();
        assert.deepEqual(sync, { dropped: ['ghost-instance'], released: [], instances: 1 });
        assert.deepEqual(await next.checkin(), { released: true, instances: 0, reachedServer: true });
        assert.equal(await w.seatsUsed(l.id), 0);
      },
      // the child runs on the real clock: start both clocks at the real time
      { wall: Date.now() },
    ),
);
