/**
 * Feature pools from the SDK and floatd-run against a real server (issue #15): `features` at construction and
 * per checkout, `setFeatures()` on a held seat, `hasFeature()`, a full feature pool answered as a denial that
 * `wait` waits out, and floatd-run's `--feature` / FLOATD_FEATURES.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '@floatd/server';
import { startTestServer } from '@floatd/server/testing';
import type { FloatingLicenseError } from './errors.js';
import { closeSharedServer, floatdRuns, withWorld } from './testsupport.js';

after(() => closeSharedServer());

test('the SDK checks out pools by name, changes them on a held seat, and reads them from the token', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license({ seats: 2, features: [{ name: 'render', seats: 1 }] });
    const cad = w.client({ licenseKey: l.key, fingerprint: 'sdk-feat-device-1' });
    const r = await cad.checkout();
    assert.ok(r.ok);
    assert.deepEqual(r.status.features, ['base']);
    assert.equal(cad.hasFeature('render'), false);
    const added = await cad.setFeatures(['base', 'render']);
    assert.deepEqual(added.features, ['base', 'render']);
    assert.equal(cad.hasFeature('render'), true);

    // A render node asks for render only: the pool is full, a denial with the feature named (not a throw).
    const farm = w.client({ licenseKey: l.key, fingerprint: 'sdk-feat-farm-1', features: ['render'] });
    const denied = await farm.checkout();
    assert.equal(denied.ok, false);
    assert.equal(!denied.ok && denied.code, 'NO_FEATURE_SEATS_AVAILABLE');
    assert.equal(!denied.ok && denied.feature, 'render');
    assert.match(!denied.ok ? denied.message : '', /all 1 seats of feature render are in use/);
    // Waiting: the CAD user drops render, the farm node gets it.
    const waiting = farm.checkout({ wait: true, timeoutMs: 120_000 });
    await cad.setFeatures(['base']);
    await w.clock.advance(60_000);
    const got = await waiting;
    assert.ok(got.ok, JSON.stringify(got));
    assert.deepEqual(got.status.features, ['render']);
    const view = (await w.ts.admin('GET', `/v1/admin/licenses/${l.id}`)).body;
    assert.equal(view.seatsUsed, 1, 'the farm node took no base seat');
    assert.deepEqual(view.featureSeatsUsed, { render: 1 });

    // A change that cannot be granted rejects with the server's code and leaves the seat as it was.
    await assert.rejects(cad.setFeatures(['base', 'render']), (err: FloatingLicenseError) => err.code === 'NO_FEATURE_SEATS_AVAILABLE');
    assert.deepEqual(cad.status().features, ['base']);
    await assert.rejects(cad.setFeatures(['render']), (err: FloatingLicenseError) => err.code === 'BASE_POOL_FIXED');
    // checkout({ features }) on a held seat changes its features.
    await farm.checkin();
    const again = await cad.checkout({ features: ['base', 'render'] });
    assert.ok(again.ok);
    assert.equal(again.source, 'current');
    assert.deepEqual(again.status.features, ['base', 'render']);
  }),
);

test('floatd-run --feature (or FLOATD_FEATURES): a render job takes a render seat and no base seat; none free exits 75', {
  timeout: 60_000,
}, async () => {
  const ts = await startTestServer({ clock: new ManualClock(Date.now()) });
  const l = await ts.license({ seats: 1, features: [{ name: 'render', seats: 1 }] });
  const runs = await floatdRuns(ts.url, l.key);
  const run = runs.run;
  try {
    // The render job runs until the test says stop (a fixed time would end it early on a loaded machine).
    const render = await run(['--feature', 'render'], runs.holdUntilStopped);
    await render.started;
    const view = (await ts.admin('GET', `/v1/admin/licenses/${l.id}`)).body;
    assert.equal(view.seatsUsed, 0);
    assert.deepEqual(view.featureSeatsUsed, { render: 1 });
    // the base pool is free: a plain run gets it while the render job runs
    const plain = await (await run([], 'process.exit(0)')).done;
    assert.equal(plain.code, 0, plain.err);
    // render is taken: another render job (named by the environment) finds none
    const second = await (await run([], 'process.exit(0)', { FLOATD_FEATURES: 'base,render' })).done;
    assert.equal(second.code, 75, second.err);
    const unknown = await (await run(['--feature', 'simulate'], 'process.exit(0)')).done;
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.err, /simulate/);
    await runs.stop();
    const first = await render.done;
    assert.equal(first.code, 0, first.err);
  } finally {
    await ts.close();
    await runs.cleanup();
  }
});

test(
  'checkout({ wait: true }) waits in the server queue: it reports its place, gets the seat before a newcomer, and the holder hears that others wait',
  {
    timeout: 30_000,
  },
  () =>
    withWorld(async (w) => {
      const l = await w.license({ seats: 1, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
      const holder = w.client({ licenseKey: l.key, fingerprint: 'sdk-queue-holder' });
      const heard: number[] = [];
      holder.on('othersWaiting', (i) => heard.push(i.waiting));
      assert.ok((await holder.checkout()).ok);
      const waiter = w.client({ licenseKey: l.key, fingerprint: 'sdk-queue-waiter' });
      const places: number[] = [];
      waiter.on('waiting', (info) => {
        if (info.queue) places.push(info.queue.position);
      });
      const queued = new Promise((resolve) => waiter.once('waiting', resolve));
      const pending = waiter.checkout({ wait: true, timeoutMs: 300_000 });
      pending.catch(() => undefined); // a failure below must not leave it unhandled when the world closes it
      await queued;
      // A second waiter arrives later: behind the first.
      const second = w.client({ licenseKey: l.key, fingerprint: 'sdk-queue-second' });
      const secondPlaces: number[] = [];
      second.on('waiting', (info) => {
        if (info.queue) secondPlaces.push(info.queue.position);
      });
      const queued2 = new Promise((resolve) => second.once('waiting', resolve));
      const pending2 = second.checkout({ wait: true, timeoutMs: 300_000 });
      pending2.catch(() => undefined);
      await queued2;
      // In steps: the waiters' asks (real HTTP requests) land before the server's clock moves past their window.
      const step = async (ms: number) => {
        for (let t = 0; t < ms; t += 500) {
          await w.clock.advance(500);
          await new Promise((r) => setTimeout(r, 25)); // real time for an ask in flight to reach the server
        }
      };
      await step(21_000); // the holder's heartbeat: two wait
      assert.equal(holder.status().othersWaiting, 2, JSON.stringify({ heard, places, secondPlaces, leases: await w.leases(l.id) }));
      assert.ok(heard.includes(2), JSON.stringify(heard));
      assert.ok(places.length > 0 && places.every((p) => p === 1), JSON.stringify(places));
      assert.ok(secondPlaces.length > 0 && secondPlaces.every((p) => p === 2), JSON.stringify(secondPlaces));
      // The seat frees: a newcomer without a place does not get it; the first waiter does, on its next ask.
      await holder.checkin();
      const newcomer = w.client({ licenseKey: l.key, fingerprint: 'sdk-queue-newcomer' });
      const n = await newcomer.checkout();
      assert.equal(n.ok, false);
      await step(6_000);
      const got = await pending;
      assert.ok(got.ok, JSON.stringify(got));
      assert.equal(got.status.othersWaiting, 1);
      // Cancelling the second waiter (check-in while waiting) stops its asks; past the claim window it is out of the queue.
      await second.checkin();
      await assert.rejects(pending2, (err: FloatingLicenseError) => err.code === 'NOT_CHECKED_OUT');
      await step(20_000);
      await waiter.checkin();
      assert.ok((await newcomer.checkout()).ok, 'with nobody waiting, a newcomer gets the free seat');
    }),
);

test('floatd-run --wait waits in the server queue, says its place, and runs the command when the seat frees', {
  timeout: 60_000,
}, async () => {
  const ts = await startTestServer({ clock: new ManualClock(Date.now()) });
  // Per instance: both runs are on this machine (one device), and each needs a seat of its own.
  const l = await ts.license({ seats: 1, sharing: { by: ['instance'], cap: null } });
  const runs = await floatdRuns(ts.url, l.key);
  try {
    const holder = await runs.run([], runs.holdUntilStopped);
    await holder.started;
    const waiter = await runs.run(['--wait', '--timeout', '50'], 'console.log("got it")', {}, { quiet: false });
    const said = await waiter.said(/number 1 of 1 waiting for base/);
    assert.match(said, /no seat free: number 1 of 1 waiting for base; asking again in/);
    assert.equal((await ts.admin('GET', `/v1/admin/licenses/${l.id}`)).body.waiting, 1);
    await runs.stop();
    assert.equal((await holder.done).code, 0);
    const r = await waiter.done;
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /got it/);
  } finally {
    await ts.close();
    await runs.cleanup();
  }
});
