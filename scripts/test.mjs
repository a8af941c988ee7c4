#!/usr/bin/env node
// Runs every compiled test file (packages/*/dist/**/*.test.js) and the end-to-end tests (test/e2e/**/*.test.mjs)
// with node's test runner, each file in its own process. Then runs the suites that exercise a store through a
// real server (server HTTP and service tests, the SDK's tests) a second time on PostgreSQL.
//   node scripts/test.mjs [substring…]     only files whose path contains one of the substrings
//   FLOATD_TEST_PG=0                         skip the PostgreSQL pass (never in CI)
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const files = [];
function walk(dir, match) {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, match);
    else if (match(name)) files.push(p);
  }
}
for (const pkg of readdirSync(join(root, 'packages'))) walk(join(root, 'packages', pkg, 'dist'), (n) => n.endsWith('.test.js'));
walk(join(root, 'test'), (n) => n.endsWith('.test.mjs'));
const filter = process.argv.slice(2);
const selected = filter.length ? files.filter((f) => filter.some((s) => f.includes(s))) : files;
if (selected.length === 0) {
  console.error('no test files found');
  process.exit(1);
}

function run(label, list, env = {}) {
  console.log(`\n=== ${label}: ${list.length} test files ===`);
  const r = spawnSync(process.execPath, ['--enable-source-maps', '--test', '--test-concurrency=2', ...list], {
    stdio: 'inherit',
    cwd: root,
    env: { ...process.env, ...env },
  });
  return r.status ?? 1;
}

let status = run('SQLite (default store)', selected);

// Suites whose servers come from the test harness: they run again on PostgreSQL.
const storeSensitive = selected.filter((f) => {
  const rel = relative(root, f);
  return /^packages\/server\/dist\/(http|service)\//.test(rel) || /^packages\/client\/dist\//.test(rel) || /^test\/e2e\/(conformance|python)\.test\.mjs$/.test(rel);
});
if (storeSensitive.length && process.env.FLOATD_TEST_PG !== '0') {
  const { default: postgres } = await import('postgres');
  const sql = postgres(process.env.FLOATD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', { max: 1, connect_timeout: 3, onnotice: () => {} });
  const up = await sql`SELECT 1`.then(() => true, () => false);
  await sql.end({ timeout: 1 }).catch(() => {});
  if (up) {
    status = run('PostgreSQL', storeSensitive, { FLOATD_TEST_STORE: 'postgres' }) || status;
  } else if (process.env.CI === 'true') {
    console.error('\n!!! PostgreSQL is not reachable at 127.0.0.1:5432 — the PostgreSQL pass is required in CI !!!\n');
    status = 1;
  } else {
    console.warn('\n!!! PostgreSQL is not reachable at 127.0.0.1:5432 — the PostgreSQL pass was SKIPPED !!!\n');
  }
}
process.exit(status);
