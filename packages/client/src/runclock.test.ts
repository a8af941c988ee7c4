/**
 * floatd-run over an offline borrow, with short programs and the system clock
 * reset to the borrow time before every start (issue 12, item 5). Each run is a
 * real `floatd-run` process on the real system clock, faked by libfaketime: its
 * wall clock starts at the borrow time, its monotonic clock is the real one
 * (FAKETIME_DONT_FAKE_MONOTONIC=1), as on a machine whose user sets the date back.
 *
 * The borrow must end when the real time used by all runs together passes the
 * Offline Expiry Date: the run that crosses it reports OFFLINE_EXPIRED and is
 * stopped (--enforce), and the next start is refused (server unreachable, no
 * borrowed seat left).
 *
 * Needs libfaketime (Debian package `faketime`; .ci/run installs it). Without it
 * the test fails under CI and is skipped elsewhere.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { ManualClock } from '@floatd/server';
import { startTestServer } from '@floatd/server/testing';
import { deviceFingerprint, FloatingLicense } from './index.js';
import { StateDir } from './state.js';
import { FakeClock } from './testing.js';
import { Cleanup, RUN_CLI, tempDir, TestProxy } from './testsupport.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

function libfaketime(): string | undefined {
  const dirs = ['/usr/lib/faketime', ...(existsSync('/usr/lib') ? readdirSync('/usr/lib').map((d) => `/usr/lib/${d}/faketime`) : [])];
  return dirs.map((d) => `${d}/libfaketime.so.1`).find((p) => existsSync(p));
}

/** "YYYY-MM-DD HH:MM:SS" in UTC, libfaketime's absolute start time. */
const fakeStart = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');

/** the shortest borrow the server grants */
const BORROW_S = 60;
/** used by a first run before the short ones (on the SDK's test clock, to keep this test short) */
const FIRST_RUN_MS = 50_000;
const LEFT_MS = BORROW_S * 1000 - FIRST_RUN_MS;
const PROGRAM_MS = 3_000;

const LIB = libfaketime();

test(`floatd-run, ${PROGRAM_MS / 1000} s programs, the clock reset to the borrow time before each: the last ${LEFT_MS / 1000} s of a borrow end after ${LEFT_MS / 1000} s of real use`, {
  timeout: 90_000,
  skip: !LIB && !process.env.CI ? 'libfaketime is not installed (apt-get install faketime)' : false,
}, async (t) => {
  assert.ok(LIB, 'libfaketime is required under CI (.ci/run installs the faketime package)');
  const ts = await startTestServer({ clock: new ManualClock(Date.now()) });
  cleanup.add(() => ts.close());
  const proxy = await new TestProxy(ts.url).start();
  cleanup.add(() => proxy.close());
  const stateDir = await tempDir(cleanup);
  const lic = await ts.license({ seats: 1, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20, maxOfflineSeconds: 86400 });

  // Borrow at the real time, with the fingerprint floatd-run will compute; this first run then
  // uses FIRST_RUN_MS of the borrow (its clock is the SDK's test clock, so the test need not wait).
  const borrowedAt = Date.now();
  const clock = new FakeClock(borrowedAt);
  const borrower = new FloatingLicense({ serverUrl: proxy.url, licenseKey: lic.key, stateDir, clock });
  const s = await borrower.checkoutOffline({ durationSeconds: BORROW_S });
  assert.equal(s.offlineExpiresAt!.getTime() - borrowedAt <= BORROW_S * 1000, true);
  proxy.down();
  await clock.advance(FIRST_RUN_MS);
  assert.equal(borrower.status().valid, true);
  await borrower.close();

  const state = new StateDir(stateDir, proxy.url, lic.key, deviceFingerprint({ stateDir }));
  const trusted = async () => {
    const r = await state.readSealed<{ t: number }>('clock.json');
    assert.equal(r.kind, 'ok');
    return (r as { data: { t: number } }).data.t;
  };
  const start = await trusted();

  const runs: { code: number | null; signal: NodeJS.Signals | null; ms: number; stderr: string; gainedMs: number }[] = [];
  let used = 0;
  let endedAfterMs: number | undefined;
  for (let k = 0; k < 8; k++) {
    const before = await trusted();
    const began = performance.now();
    const child = spawn(
      process.execPath,
      [
        RUN_CLI,
        '--server',
        proxy.url,
        '--key',
        lic.key,
        '--state-dir',
        stateDir,
        '--enforce',
        '--',
        process.execPath,
        '-e',
        `setTimeout(() => {}, ${PROGRAM_MS})`,
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: {
          ...process.env,
          TZ: 'UTC',
          LD_PRELOAD: LIB!,
          FAKETIME: `@${fakeStart(borrowedAt)}`,
          FAKETIME_DONT_FAKE_MONOTONIC: '1',
          FAKETIME_NO_CACHE: '1',
        },
      },
    );
    cleanup.add(() => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (endedAfterMs === undefined && stderr.includes('OFFLINE_EXPIRED')) endedAfterMs = used + (performance.now() - began);
    });
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.once('close', (code, signal) => r({ code, signal })),
    );
    const ms = performance.now() - began;
    used += ms;
    runs.push({ code, signal, ms, stderr, gainedMs: (await trusted()) - before });
    if (code === 69) break;
  }
  const report = JSON.stringify(runs.map((r) => ({ code: r.code, signal: r.signal, ms: Math.round(r.ms), gained: r.gainedMs })));
  t.diagnostic(
    `runs: ${report}; ended after ${endedAfterMs === undefined ? 'never' : Math.round(endedAfterMs)} ms of real time, ${LEFT_MS} ms were left`,
  );

  // Every run on the borrowed seat added its real duration to the trusted time (not 0, as the reset clock
  // would have it), and no more than its real duration.
  const seated = runs.filter((r) => r.code !== 69);
  for (const r of seated) {
    assert.match(r.stderr, /running on the seat borrowed offline until/, report);
    assert.ok(
      r.gainedMs >= (r.code === 0 ? PROGRAM_MS : 0) && r.gainedMs <= r.ms + 50,
      `a run of ${Math.round(r.ms)} ms moved the trusted time by ${r.gainedMs} ms; runs: ${report}`,
    );
  }
  // The borrow ended: a start was refused (no borrowed seat left, no server), and only after the runs
  // before it had used up what was left; every run that got the seat started before that.
  const refused = runs.findIndex((r) => r.code === 69);
  assert.ok(refused > 0, `no start was refused; runs: ${report}`);
  assert.equal(refused, runs.length - 1);
  assert.match(runs[refused]!.stderr, /cannot check out a seat/);
  const usedBefore = (i: number) => runs.slice(0, i).reduce((sum, r) => sum + r.gainedMs, 0);
  assert.ok(
    usedBefore(refused) >= LEFT_MS - 1000,
    `refused after ${usedBefore(refused)} ms of use, ${LEFT_MS} ms were left; runs: ${report}`,
  );
  assert.ok(
    usedBefore(refused - 1) < LEFT_MS + 1000,
    `the last seated run started after ${usedBefore(refused - 1)} ms of use, ${LEFT_MS} ms were left; runs: ${report}`,
  );
  assert.ok((await trusted()) - start >= LEFT_MS - 1000);
  // The run that crossed the Offline Expiry Date reported OFFLINE_EXPIRED and was stopped (--enforce), unless
  // the date fell while it was shutting down (after its command ended, timers stopped for the check-in): on a
  // loaded machine that happens; the next start is refused either way.
  const crossed = runs[refused - 1]!;
  if (endedAfterMs !== undefined) {
    assert.match(crossed.stderr, /OFFLINE_EXPIRED/, report);
    if (/stopping the command \(--enforce\)/.test(crossed.stderr)) assert.equal(crossed.signal, 'SIGTERM', report);
    else assert.equal(crossed.code, 0, report);
    // in the test's own measure (from each spawn), never before the time that was left
    assert.ok(endedAfterMs >= LEFT_MS - 1000, `ended after ${Math.round(endedAfterMs)} ms of real time; runs: ${report}`);
  } else {
    assert.equal(crossed.code, 0, report);
  }
});
