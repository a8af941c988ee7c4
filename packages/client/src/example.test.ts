/** examples/electron-like runs as documented: online, borrowing offline, and restarted with the server gone. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ManualClock } from '@floatd/server';
import { startTestServer } from '@floatd/server/testing';
import { Cleanup, TestProxy, tempDir } from './testsupport.js';

const MAIN = join(import.meta.dirname, '..', '..', '..', 'examples', 'electron-like', 'main.mjs');
const cleanup = new Cleanup();
after(() => cleanup.run());

function runExample(env: Record<string, string>, args: string[]): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.add(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, out })));
}

test('examples/electron-like: online, offline borrow, and a restart with the server unreachable', { timeout: 30_000 }, async () => {
  const ts = await startTestServer({ clock: new ManualClock(Date.now()) });
  cleanup.add(() => ts.close());
  const proxy = await new TestProxy(ts.url).start();
  cleanup.add(() => proxy.close());
  const lic = await ts.license({ seats: 2, maxOfflineSeconds: 7 * 86400 });
  const env = { FLOATD_SERVER: proxy.url, LICENSE_KEY: lic.key, APP_DATA_DIR: await tempDir(cleanup) };
  const seats = async () => (await ts.admin('GET', `/v1/admin/licenses/${lic.id}`)).body.seatsUsed as number;

  const online = await runExample(env, ['--seconds', '0']);
  assert.equal(online.code, 0);
  assert.match(online.out, /licensed: online, lease lse_\w+, 1\/2 seats in use/);
  assert.equal(await seats(), 0, 'checked in on quit');

  const offline = await runExample(env, ['--offline', '2', '--seconds', '0']);
  assert.equal(offline.code, 0);
  assert.match(offline.out, /working offline until/);
  assert.equal(await seats(), 1, 'the borrowed seat stays borrowed after the app quits');

  proxy.down();
  const plane = await runExample(env, ['--seconds', '0']);
  assert.equal(plane.code, 0);
  assert.match(plane.out, /licensed: offline/);
});
