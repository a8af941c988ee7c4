// The short soak of the default test run: `scripts/soak.mjs` for ~12 s with a few hundred simulated clients
// against a real server process. It fails on any 5xx or network error, an inconsistent seat counter, or RSS
// growth after the warm-up beyond the threshold. The long version: npm run soak -- --duration 3m
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const root = new URL('../..', import.meta.url).pathname;

test('short soak: 300 clients for 12 s, no failed request, counters consistent, RSS stable after warm-up', { timeout: 120_000 }, (t) => {
  const r = spawnSync(
    process.execPath,
    [
      'scripts/soak.mjs',
      '--duration',
      '12s',
      '--clients',
      '300',
      '--interval',
      '2',
      '--warmup',
      '4s',
      '--every',
      '2s',
      '--max-growth-mb',
      '48',
      '--json',
    ],
    {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, FLOATD_DATABASE_URL: '' },
    },
  );
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let summary;
  try {
    summary = JSON.parse(line);
  } catch {
    assert.fail(`soak printed no summary (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  t.diagnostic(
    `${summary.requests} requests (${summary.grants} grants, ${summary.heartbeats} heartbeats, ${summary.checkins} check-ins, ${summary.crashes} crashed clients); ` +
      `RSS ${summary.rss.baselineMb} → ${summary.rss.finalMb} MB; worst p50 ${summary.latencyAfterWarmup.p50WorstMs.toFixed(1)} ms, worst p99 ${summary.latencyAfterWarmup.p99WorstMs.toFixed(1)} ms`,
  );
  assert.deepEqual(summary.problems, []);
  assert.equal(r.status, 0);
  assert.ok(summary.grants > 100 && summary.heartbeats > 300 && summary.checkins > 50 && summary.crashes > 0, 'the load was real');
});
