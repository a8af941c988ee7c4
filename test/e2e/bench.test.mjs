// Smoke run of the benchmark harness (npm run bench): a second per scenario, so it cannot rot.
// It checks the shape of `--json`, that every scenario ran against a real server without a 5xx,
// and the scale mode on a small store. Figures are not asserted (timing never is in tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

function bench(args) {
  // The harness itself turns rate limits off for its servers (one key from one address at full speed).
  const r = spawnSync(process.execPath, ['bench/run.mjs', '--json', ...args], { cwd: root, encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `bench exited ${r.status}: ${r.stderr}`);
  const last = r.stdout.trim().split('\n').at(-1);
  return JSON.parse(last);
}

test('npm run bench -- --json: every scenario with rps, p50, p99 and ratios to a baseline and a reference from the same run', () => {
  const r = bench(['--duration', '1', '--connections', '8', '--leases', '300']);
  assert.ok(r.baseline_rps > 0);
  assert.equal(typeof r.node, 'string');
  assert.ok(r.cpus >= 1);
  assert.deepEqual(Object.keys(r.scenarios).sort(), ['checkout-checkin', 'contended', 'heartbeat', 'mixed']);
  for (const [name, s] of Object.entries(r.scenarios)) {
    assert.ok(s.rps > 0, `${name} served requests`);
    assert.ok(s.p50_ms >= 0 && s.p99_ms >= s.p50_ms, `${name} latencies`);
    assert.equal(s.ratio, +(s.rps / r.baseline_rps).toFixed(3));
    assert.equal(s.server_errors, 0, `${name}: no 5xx`);
    assert.equal(s.errors, 0, `${name}: no connection errors`);
    if (name !== 'contended') assert.equal(s.non2xx, 0, `${name}: every answer 2xx`);
    // CPU per request, from /proc: the server's and the load generator's are measured (never their values)
    assert.ok(s.cpu_us.server > 0 && s.cpu_us.loadgen > 0, `${name}: CPU per request ${JSON.stringify(s.cpu_us)}`);
  }
  assert.ok(r.baseline_cpu_us.server > 0, 'the baseline server used CPU');
  assert.ok(r.scenarios.contended.non2xx > 0, 'contended: 10 seats for 1,000 devices means denials');
  // The reference server (bench/reference.mjs) under the same scenarios, and floatd's ratio to it.
  assert.deepEqual(Object.keys(r.reference).sort(), ['checkout-checkin', 'heartbeat', 'mixed']);
  for (const [name, s] of Object.entries(r.reference)) {
    assert.ok(s.rps > 0, `reference ${name} served requests`);
    assert.equal(s.non2xx, 0, `reference ${name}: every answer 2xx`);
    assert.equal(s.errors, 0, `reference ${name}: no connection errors`);
    assert.equal(r.scenarios[name].reference_ratio, +(r.scenarios[name].rps / s.rps).toFixed(3));
  }
});

test('npm run bench -- --scale: RSS, sweep of the expired leases, checkout p99 at scale against 1k', () => {
  const r = bench(['--scale', '--scale-leases', '6000', '--scale-expired', '2000', '--duration', '1']).scale;
  assert.equal(r.leases, 6000);
  assert.equal(r.sweep_freed, 2000, 'the sweep freed exactly the expired leases');
  assert.ok(r.rss_mb > 0 && r.sweep_s > 0);
  assert.ok(r.checkout_p99_ms_at_scale >= 0 && r.checkout_p99_ms_at_1k >= 0);
  assert.ok(r.checkout_rps_at_scale > 0 && r.checkout_rps_at_1k > 0);
});

test('npm run bench -- --before DIR: an older build (bench/before.mjs) measured in the same run, side by side', () => {
  // HEAD stands for the older build here: the mechanism (a worktree, this checkout's packages, its own compiled server,
  // its clients offering no session key) is what is checked, not a revision's figures.
  const dir = join(mkdtempSync(join(tmpdir(), 'floatd-before-test-')), 'tree');
  try {
    const made = execFileSync(process.execPath, ['bench/before.mjs', 'HEAD', dir], { cwd: root, encoding: 'utf8', timeout: 240_000 });
    assert.match(made, /built in /);
    const label = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const r = bench(['--before', dir, '--only', 'heartbeat', '--no-reference', '--duration', '1', '--connections', '8', '--leases', '300']);
    assert.equal(r.before_label, label);
    assert.deepEqual(Object.keys(r.before), ['heartbeat']);
    const b = r.before.heartbeat;
    assert.ok(b.rps > 0, 'the older build served requests');
    assert.equal(b.non2xx, 0, 'every answer 2xx (its clients offer no session key)');
    assert.equal(b.server_errors, 0);
    assert.equal(b.ratio, +(b.rps / r.baseline_rps).toFixed(3));
    assert.ok(b.cpu_us.server > 0, "the older build's own processes were measured");
  } finally {
    spawnSync('git', ['-C', root, 'worktree', 'remove', '--force', dir]);
    rmSync(dirname(dir), { recursive: true, force: true });
    spawnSync('git', ['-C', root, 'worktree', 'prune']);
  }
});
