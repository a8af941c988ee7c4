#!/usr/bin/env node
// Runs every compiled test file (packages/*/dist/**/*.test.js) and the end-to-end tests (test/e2e/**/*.test.mjs)
// with node's test runner, each file in its own process. Then runs the suites that exercise a store through a
// real server a second time on PostgreSQL: the files listed in scripts/test-suites.mjs (STORE_SENSITIVE).
//   node scripts/test.mjs [substring…]     only files whose path contains one of the substrings
//   node scripts/test.mjs --fast [substring…]  only the FAST list (domain, Store contract on SQLite, in-process
//                                            HTTP), SQLite only: `npm run test:fast`
//   FLOATD_TEST_PG=0                         skip the PostgreSQL pass (never in CI)
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { FAST, NOT_STORE_SENSITIVE, STARTS_HARNESS_SERVER, STORE_SENSITIVE } from './test-suites.mjs';

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
const args = process.argv.slice(2);
const fast = args.includes('--fast');
const filter = args.filter((a) => a !== '--fast');

// The lists are explicit: a listed file that is gone, or a harness-server suite in no list, stops the run.
const rel = (f) => relative(root, f);
const known = new Set(files.map(rel));
const problems = [];
for (const [name, list] of [
  ['STORE_SENSITIVE', STORE_SENSITIVE],
  ['NOT_STORE_SENSITIVE', Object.keys(NOT_STORE_SENSITIVE)],
  ['FAST', FAST],
]) {
  for (const f of list)
    if (!known.has(f)) problems.push(`${name} lists ${f}, which does not exist (build first, or update scripts/test-suites.mjs)`);
}
for (const f of files) {
  const r = rel(f);
  if (STORE_SENSITIVE.includes(r) || r in NOT_STORE_SENSITIVE) continue;
  if (STARTS_HARNESS_SERVER.test(readFileSync(f, 'utf8'))) {
    problems.push(
      `${r} starts a server through the test harness: add it to STORE_SENSITIVE (rerun on PostgreSQL) or NOT_STORE_SENSITIVE (say why) in scripts/test-suites.mjs`,
    );
  }
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}

const pool = fast ? files.filter((f) => FAST.includes(rel(f))) : files;
const selected = filter.length ? pool.filter((f) => filter.some((s) => rel(f).includes(s))) : pool;
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

// --fast: SQLite only (the Store contract skips its PostgreSQL adapter under FLOATD_TEST_PG=0).
let status = run('SQLite (default store)', selected, fast ? { FLOATD_TEST_PG: '0' } : {});

// Suites whose servers come from the test harness: they run again on PostgreSQL.
const storeSensitive = selected.filter((f) => STORE_SENSITIVE.includes(rel(f)));
if (!fast && storeSensitive.length && process.env.FLOATD_TEST_PG !== '0') {
  const { default: postgres } = await import('postgres');
  const sql = postgres(process.env.FLOATD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', {
    max: 1,
    connect_timeout: 3,
    onnotice: () => {},
  });
  const up = await sql`SELECT 1`.then(
    () => true,
    () => false,
  );
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
