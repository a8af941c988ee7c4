/**
 * An offline borrow used up by many short runs (issue 12, item 5). The user
 * borrows a seat, goes offline, and starts the application again and again,
 * each run shorter than any periodic bookkeeping, resetting the system clock to
 * the borrow time (or a little back) before each start. Each run is a fresh
 * `FloatingLicense` on the same state directory with a fresh clock (its own
 * monotonic time starts at zero, as a new process's does), so nothing carries
 * over but what the SDK wrote to disk.
 *
 * The borrow must end when the real time used by all runs together passes the
 * Offline Expiry Date: OFFLINE_EXPIRED in the run that crosses it, and a refusal
 * to start offline afterwards.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FloatingLicenseError } from './index.js';
import { StateDir } from './state.js';
import { FakeClock } from './testing.js';
import { autoAdvance, closeSharedServer, record, withWorld, type World } from './testsupport.js';

after(() => closeSharedServer());

const POLICY = { seats: 2, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20, maxOfflineSeconds: 86400 };
const BORROW_S = 60;
const RUN_MS = 7_000;

interface Outcome {
  /** real time used by all runs when the seat stopped being valid (ms), or undefined */
  endedAfterMs: number | undefined;
  /** the violations each run reported */
  violations: string[][];
  /** the error a start refused with, after the end */
  refusal: string | undefined;
  runs: number;
}

/** Borrows a seat for BORROW_S seconds, then takes the server away. Returns the borrow time. */
async function borrow(w: World): Promise<{ key: string; at: number; oed: number }> {
  w.proxy.up();
  const l = await w.license(POLICY);
  const app = w.client({ licenseKey: l.key });
  const s = await app.checkoutOffline({ durationSeconds: BORROW_S });
  assert.equal(s.state, 'offline');
  await app.checkin(); // the app exits; the seat stays borrowed
  await app.close();
  w.proxy.down();
  return { key: l.key, at: w.clock.now(), oed: s.offlineExpiresAt!.getTime() };
}

/**
 * Starts the application `maxRuns` times, each run on a fresh clock whose wall time
 * `startWall(k, lastWallEnd)` gives, each lasting RUN_MS of real time (checked
 * second by second), ended as `end(k)` says.
 */
async function shortRuns(
  w: World,
  key: string,
  maxRuns: number,
  startWall: (k: number, lastWallEnd: number) => number,
  end: (k: number) => 'checkin' | 'close' = () => 'checkin',
  beforeStart: (k: number) => Promise<void> = async () => undefined,
): Promise<Outcome> {
  const out: Outcome = { endedAfterMs: undefined, violations: [], refusal: undefined, runs: 0 };
  let used = 0;
  let lastWallEnd = w.clock.now();
  for (let k = 0; k < maxRuns; k++) {
    await beforeStart(k);
    const clock = new FakeClock(startWall(k, lastWallEnd));
    const app = w.client({ licenseKey: key, clock });
    const log = record(app);
    autoAdvance(app, clock); // the server is down: let the checkout's retries run out
    out.runs++;
    let r;
    try {
      r = await app.checkout();
    } catch (err) {
      out.refusal = err instanceof FloatingLicenseError ? err.code : String(err);
      out.violations.push(log.violations.map((v) => v.code));
      break;
    }
    assert.ok(r.ok);
    if (out.endedAfterMs === undefined) assert.equal(r.source, 'offline-token', `run ${k + 1} starts on the borrowed seat`);
    for (let s = 0; s < RUN_MS / 1000; s++) {
      await clock.advance(1000);
      used += 1000;
      if (out.endedAfterMs === undefined && !app.status().valid) out.endedAfterMs = used;
    }
    out.violations.push(log.violations.map((v) => v.code));
    lastWallEnd = clock.now();
    if (end(k) === 'checkin') {
      const c = await app.checkin();
      assert.equal(c.reachedServer, false);
    }
    await app.close({ checkin: false });
  }
  return out;
}

function assertEndsAtTheOed(out: Outcome): void {
  assert.notEqual(
    out.endedAfterMs,
    undefined,
    `the borrow never ended over ${out.runs} runs (${(out.runs * RUN_MS) / 1000} s of real time for a ${BORROW_S} s borrow); violations: ${JSON.stringify(out.violations)}`,
  );
  // the server's times are whole seconds: the end may come up to a second early or late
  assert.ok(Math.abs(out.endedAfterMs! - BORROW_S * 1000) <= 1000, `ended after ${out.endedAfterMs} ms of real time, borrow ${BORROW_S} s`);
  const flat = out.violations.flat();
  assert.ok(flat.includes('OFFLINE_EXPIRED'), `OFFLINE_EXPIRED reported (got ${JSON.stringify(out.violations)})`);
  assert.ok(!flat.includes('CLOCK_TAMPERED'), 'no set-back here exceeds the tolerance');
  assert.equal(out.refusal, 'NETWORK_ERROR', 'a start after the end has no borrowed seat and no server');
}

test(
  `short runs with the clock reset to the borrow time each start: a ${BORROW_S} s borrow ends after ${BORROW_S} s of real use`,
  { timeout: 60_000 },
  () =>
    withWorld(async (w) => {
      const b = await borrow(w);
      const out = await shortRuns(w, b.key, 12, () => b.at);
      assertEndsAtTheOed(out);
      // nine 7 s runs: the ninth crosses the Offline Expiry Date
      assert.equal(out.runs, 10, 'the tenth start is refused');
    }),
);

test('short runs that end without a check-in (close) add up the same way', { timeout: 60_000 }, () =>
  withWorld(async (w) => {
    const b = await borrow(w);
    const out = await shortRuns(
      w,
      b.key,
      12,
      () => b.at,
      () => 'close',
    );
    assertEndsAtTheOed(out);
  }),
);

test('deleting clock.json before each start gives nothing back: the copy beside the offline token is as recent', { timeout: 60_000 }, () =>
  withWorld(async (w) => {
    const b = await borrow(w);
    const state = new StateDir(w.stateDir, w.proxy.url, b.key, 'fp-test-device-0001');
    let deleted = 0;
    const out = await shortRuns(
      w,
      b.key,
      12,
      () => b.at,
      () => 'close',
      async () => {
        if ((await state.readSealed('clock.json')).kind === 'ok') deleted++;
        await rm(state.path('clock.json'), { force: true });
      },
    );
    assertEndsAtTheOed(out);
    assert.ok(deleted >= 9);
  }),
);

test(
  'deleting the whole state directory gains nothing: the borrowed token goes with it, and the server is needed',
  { timeout: 60_000 },
  () =>
    withWorld(async (w) => {
      const b = await borrow(w);
      await rm(w.stateDir, { recursive: true, force: true });
      const clock = new FakeClock(b.at);
      const app = w.client({ licenseKey: b.key, clock });
      autoAdvance(app, clock);
      await assert.rejects(app.checkout(), (e: unknown) => e instanceof FloatingLicenseError && e.code === 'NETWORK_ERROR');
    }),
);

test(
  'a 31 s set-back between runs (inside the 600 s tolerance) does not move the end; neither does one inside a run',
  { timeout: 60_000 },
  () =>
    withWorld(async (w) => {
      const b = await borrow(w);
      const out = await shortRuns(w, b.key, 12, (k, lastWallEnd) => (k === 0 ? b.at : lastWallEnd - 31_000));
      assertEndsAtTheOed(out);

      // Inside one run: the clock is set back 31 s half way through a long run.
      const c = await borrow(w);
      const clock = new FakeClock(c.at);
      const app = w.client({ licenseKey: c.key, clock });
      const log = record(app);
      assert.ok((await app.checkout()).ok);
      await clock.advance(20_000);
      clock.shiftWall(-31_000);
      await clock.advance(BORROW_S * 1000 - 20_000 - 1000);
      assert.equal(app.status().valid, true);
      await clock.advance(2000);
      assert.equal(app.status().valid, false, 'ended after the real time of the borrow, not 31 s later');
      assert.deepEqual(
        log.violations.map((v) => v.code),
        ['OFFLINE_EXPIRED'],
      );
    }),
);

test(
  'the trusted time is written at every guard check, and it never moves backward across runs, nor when two runs overlap',
  { timeout: 60_000 },
  () =>
    withWorld(async (w) => {
      const b = await borrow(w);
      const state = new StateDir(w.stateDir, w.proxy.url, b.key, 'fp-test-device-0001');
      const trusted = async () => {
        const r = await state.readSealed<{ t: number }>('clock.json');
        assert.equal(r.kind, 'ok');
        return (r as { data: { t: number } }).data.t;
      };
      const t0 = await trusted();
      const clock = new FakeClock(b.at - 5_000);
      const app = w.client({ licenseKey: b.key, clock, guardIntervalSeconds: 10 });
      assert.ok((await app.checkout()).ok);
      assert.ok((await trusted()) >= t0, 'a clock 5 s behind does not lower it at start');
      await clock.advance(10_000);
      const t1 = await trusted();
      assert.ok(t1 >= t0 + 10_000, `written at the guard check: ${t1 - t0} ms after the borrow`);
      // A second process, its clock reset again, starts from there, not from its clock.
      const clock2 = new FakeClock(b.at);
      const app2 = w.client({ licenseKey: b.key, clock: clock2 });
      assert.ok((await app2.checkout()).ok);
      assert.ok((await trusted()) >= t1);
      await app2.close({ checkin: false });
      await app.close({ checkin: false });
      assert.ok((await trusted()) >= t1);

      // Two runs at once: one that started earlier and knows only an older time does not lower what the other wrote.
      const clockA = new FakeClock(b.at);
      const clockB = new FakeClock(b.at);
      const a = w.client({ licenseKey: b.key, clock: clockA, guardIntervalSeconds: 10 });
      const bb = w.client({ licenseKey: b.key, clock: clockB, guardIntervalSeconds: 10 });
      assert.ok((await a.checkout()).ok);
      assert.ok((await bb.checkout()).ok);
      const t2 = await trusted();
      await clockA.advance(30_000);
      assert.ok((await trusted()) >= t2 + 30_000);
      await clockB.advance(1_000);
      await bb.close({ checkin: false });
      assert.ok((await trusted()) >= t2 + 30_000, 'the later time stays');
      await a.close({ checkin: false });
    }),
);

test('a process that ends without check-in or close still leaves its time behind (written at exit)', { timeout: 60_000 }, () =>
  withWorld(async (w) => {
    const b = await borrow(w);
    const state = new StateDir(w.stateDir, w.proxy.url, b.key, 'fp-test-device-0001');
    const before = await state.readSealed<{ t: number }>('clock.json');
    assert.equal(before.kind, 'ok');
    const sdk = pathToFileURL(join(import.meta.dirname, 'index.js')).href;
    const testing = pathToFileURL(join(import.meta.dirname, 'testing.js')).href;
    // 8 s of (fake) run time, under the default 60 s guard: nothing periodic writes; the process just ends.
    const script = `
      import { FloatingLicense } from ${JSON.stringify(sdk)};
      import { FakeClock } from ${JSON.stringify(testing)};
      const clock = new FakeClock(Number(process.env.WALL));
      const lic = new FloatingLicense({ serverUrl: process.env.URL, licenseKey: process.env.KEY, stateDir: process.env.DIR, fingerprint: 'fp-test-device-0001', clock });
      const r = await lic.checkout();
      if (!r.ok || r.source !== 'offline-token') throw new Error('no offline seat: ' + JSON.stringify(r));
      await clock.advance(8000);
      console.log('ran');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, URL: w.proxy.url, KEY: b.key, DIR: w.stateDir, WALL: String(b.at) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    w.cleanup.add(() => child.kill('SIGKILL'));
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 0);
    assert.equal(stdout.trim(), 'ran');
    const afterRun = await state.readSealed<{ t: number }>('clock.json');
    assert.equal(afterRun.kind, 'ok');
    const gained = (afterRun as { data: { t: number } }).data.t - (before as { data: { t: number } }).data.t;
    assert.ok(gained >= 8000, `the run's 8 s were recorded (trusted time moved ${gained} ms)`);
    // and the next run, clock reset, has 8 s less left
    const clock = new FakeClock(b.at);
    const app = w.client({ licenseKey: b.key, clock });
    const r = await app.checkout();
    assert.ok(r.ok);
    assert.equal(r.source, 'offline-token');
    await clock.advance(BORROW_S * 1000 - 8000 - 1500);
    assert.equal(app.status().valid, true);
    await clock.advance(2500);
    assert.equal(app.status().valid, false, 'the borrow ends 8 s early: the time the first process used');
  }),
);
