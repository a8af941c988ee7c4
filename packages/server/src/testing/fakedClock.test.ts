import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fakedClockEnv, libfaketime, startFloatdProcess } from './process.js';

test('a server on a faked clock (fakedClockEnv) runs without the event-loop delay histogram; a normal one keeps it', {
  skip: libfaketime() ? false : 'libfaketime is not installed',
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-faked-env-'));
  const lag = async (env: Record<string, string>, name: string) => {
    const p = await startFloatdProcess({ dataDir: join(dir, name), env, adminToken: true });
    try {
      await new Promise((r) => setTimeout(r, 300)); // a few of the histogram's 10-ms samples
      const text = await (await fetch(`${p.url}/metrics`, { headers: { authorization: `Bearer ${p.adminToken}` } })).text();
      const line = text.split('\n').find((l) => l.startsWith('floatd_nodejs_eventloop_lag_max_seconds '));
      assert.ok(line, 'the metric is exported either way');
      return Number(line.split(' ')[1]);
    } finally {
      p.child.kill('SIGKILL');
    }
  };
  try {
    await writeFile(join(dir, 'offset'), '+0\n');
    assert.equal(await lag(fakedClockEnv(join(dir, 'offset')), 'faked'), 0);
    assert.ok((await lag({}, 'real')) > 0, 'a normal server measures its event loop');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
