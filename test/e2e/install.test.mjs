// What a new user and a vendor get from an install (README "Quick start", docs/operations.md "Installing"):
// - every dependency in package-lock.json accepts Node 20, 22 and 24 (no EBADENGINE);
// - `npm ci` in a fresh clone links `floatd` and `floatd-run` into node_modules/.bin before anything is built
//   (committed bin files), which say how to build when the code is not built yet;
// - in this built clone `npx floatd` and `npx floatd-run` run the real commands;
// - `npm pack` of protocol, server and client installs globally (`npm install -g` into a temporary prefix)
//   and puts `floatd` and `floatd-run` on PATH: the packed server serves the built console, and the packed
//   floatd-run checks out a seat from it.
// Installs are offline where npm allows it (`--offline` for the clone, whose lock file names every tarball;
// `--prefer-offline` for the global install, which resolves ranges and so may ask the npm registry for metadata).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFloatdProcess } from '../../packages/server/dist/testing/process.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const require = createRequire(join(ROOT, 'package.json'));
const NPM_QUIET = ['--no-audit', '--no-fund', '--loglevel=warn'];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: 180_000,
    ...opts,
    env: { ...process.env, npm_config_update_notifier: 'false', ...opts.env },
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

test('every locked dependency accepts Node 20.19, 22.13 and 24', () => {
  const semver = require('semver');
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
  const refused = [];
  for (const [path, pkg] of Object.entries(lock.packages)) {
    const range = pkg.engines?.node;
    if (!range) continue;
    for (const v of ['20.19.0', '22.13.0', '24.0.0'])
      if (!semver.satisfies(v, range)) refused.push(`${path || '(root)'} wants node ${range}, not ${v}`);
  }
  assert.deepEqual(refused, []);
});

test('npm ci in a fresh clone links floatd and floatd-run before any build, without EBADENGINE', { timeout: 240_000 }, () => {
  const clone = mkdtempSync(join(tmpdir(), 'floatd-clone-'));
  try {
    // What a clone holds that npm ci reads: the manifests, the lock file, the committed bin files.
    for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(clone, f));
    for (const p of readdirSync(join(ROOT, 'packages'))) {
      mkdirSync(join(clone, 'packages', p), { recursive: true });
      cpSync(join(ROOT, 'packages', p, 'package.json'), join(clone, 'packages', p, 'package.json'));
      if (existsSync(join(ROOT, 'packages', p, 'bin')))
        cpSync(join(ROOT, 'packages', p, 'bin'), join(clone, 'packages', p, 'bin'), { recursive: true });
    }
    const ci = run('npm', ['ci', '--offline', '--ignore-scripts', ...NPM_QUIET], { cwd: clone });
    assert.equal(ci.status, 0, ci.stderr);
    assert.doesNotMatch(ci.stdout + ci.stderr, /EBADENGINE/);
    for (const bin of ['floatd', 'floatd-run'])
      assert.ok(existsSync(join(clone, 'node_modules', '.bin', bin)), `node_modules/.bin/${bin} is missing`);
    const floatd = run('npx', ['--no-install', 'floatd', '--version'], { cwd: clone });
    assert.equal(floatd.status, 1);
    assert.equal(
      floatd.stderr,
      'floatd: the server is not built yet: run `npm run build` in the floatd clone first (`npm start` does it too)\n',
    );
    const wrapper = run('npx', ['--no-install', 'floatd-run', '--help'], { cwd: clone });
    assert.equal(wrapper.status, 69);
    assert.equal(wrapper.stderr, 'floatd-run: the client is not built yet: run `npm run build` in the floatd clone first\n');
  } finally {
    rmSync(clone, { recursive: true, force: true });
  }
});

test('in the built clone, npx floatd and npx floatd-run run the commands', () => {
  const version = JSON.parse(readFileSync(join(ROOT, 'packages/server/package.json'), 'utf8')).version;
  const floatd = run('npx', ['--no-install', 'floatd', '--version'], { cwd: ROOT });
  assert.equal(floatd.status, 0, floatd.stderr);
  assert.equal(floatd.stdout, `${version}\n`);
  const wrapper = run('npx', ['--no-install', 'floatd-run', '--help'], { cwd: ROOT });
  assert.equal(wrapper.status, 0, wrapper.stderr);
  assert.match(wrapper.stdout, /^usage: floatd-run --server URL --key KEY/);
});

test('packed tarballs install globally: floatd serves the console, floatd-run checks out a seat', { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'floatd-pack-'));
  const prefix = join(dir, 'prefix');
  const dataDir = join(dir, 'data');
  let server;
  t.after(() => {
    server?.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const tarballs = [];
  for (const p of ['protocol', 'server', 'client']) {
    const r = run('npm', ['pack', '-w', `@floatd/${p}`, '--pack-destination', dir, '--json', ...NPM_QUIET], { cwd: ROOT });
    assert.equal(r.status, 0, r.stderr);
    const [info] = JSON.parse(r.stdout);
    tarballs.push(join(dir, info.filename));
    const files = info.files.map((f) => f.path);
    // No compiled tests (nor their maps and declarations) and no test support in any tarball.
    const testFiles = files.filter(
      (f) => /\.test\.(js|d\.ts|js\.map)$/.test(f) || f.startsWith('dist/testing/') || f.startsWith('dist/testsupport.'),
    );
    assert.deepEqual(testFiles, [], `no test files in the ${p} tarball`);
    if (p === 'server') {
      assert.ok(files.includes('console/index.html'), 'the server tarball carries the built console');
      assert.ok(files.includes('bin/floatd.js'));
    }
  }
  // prepack copied the console into the server package; postpack removed it, so this clone keeps serving packages/console/dist.
  assert.ok(!existsSync(join(ROOT, 'packages', 'server', 'console')), 'no copy of the console left in the clone');
  // --ignore-scripts: better-sqlite3 would compile its addon again (minutes); the one this clone compiled for this
  // very Node is copied in instead. A real install runs the script (a C/C++ toolchain, see README Requirements).
  const install = run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--ignore-scripts', ...NPM_QUIET, ...tarballs], {
    cwd: dir,
  });
  assert.equal(install.status, 0, install.stderr);
  // Resolved afresh from the registry (no lock file travels in a tarball): still no dependency that refuses this Node.
  assert.doesNotMatch(install.stdout + install.stderr, /EBADENGINE/, 'the global install warns of no engine mismatch');
  const lib = join(prefix, 'lib', 'node_modules');
  const sqliteDirs = [join(lib, 'better-sqlite3'), join(lib, '@floatd', 'server', 'node_modules', 'better-sqlite3')].filter(existsSync);
  assert.equal(sqliteDirs.length, 1, 'better-sqlite3 is installed once');
  cpSync(join(realpathSync(join(ROOT, 'node_modules', 'better-sqlite3')), 'build'), join(sqliteDirs[0], 'build'), { recursive: true });
  assert.equal(realpathSync(join(lib, '@floatd', 'protocol')).startsWith(lib), true, '@floatd/protocol comes from the packed tarball');

  const bin = join(prefix, 'bin');
  for (const b of ['floatd', 'floatd-run']) assert.ok(statSync(join(bin, b)).isFile(), `${b} is on PATH`);
  const env = { PATH: `${bin}:${process.env.PATH}`, HOME: dir, FLOATD_SERVER: '', FLOATD_TOKEN: '' };

  // The floatd on PATH (the global install), rate limits as the environment says.
  server = await startFloatdProcess({
    command: ['floatd'],
    cwd: dir,
    dataDir,
    baseEnv: { ...process.env, ...env },
    env: { FLOATD_RATE_LIMIT: process.env.FLOATD_RATE_LIMIT },
  });
  const { url } = server;
  const out = server.output();
  assert.match(out, new RegExp(`floatd: web console at ${url}/console/ — sign in with the admin token kept in `));
  const root = await fetch(`${url}/`, { redirect: 'manual' });
  assert.equal(root.status, 302);
  assert.equal(root.headers.get('location'), '/console/');
  const page = await fetch(`${url}/console/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<div id="root">/);

  const token = server.adminToken;
  const admin = (args) => run('floatd', [...args, '--server', url, '--token', token, '--json'], { cwd: dir, env });
  const product = admin(['products', 'create', 'Packed CAD']);
  assert.equal(product.status, 0, product.stderr);
  const key = admin(['keys', 'create', '--product', JSON.parse(product.stdout).id, '--seats', '1']);
  assert.equal(key.status, 0, key.stderr);
  const wrapped = run(
    'floatd-run',
    ['--server', url, '--key', JSON.parse(key.stdout).key, '--', process.execPath, '-e', 'process.exit(7)'],
    {
      cwd: dir,
      env: { ...env, XDG_STATE_HOME: join(dir, 'state') },
    },
  );
  assert.equal(wrapped.status, 7, wrapped.stderr);
});
