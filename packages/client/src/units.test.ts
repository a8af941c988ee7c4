/** Pieces of the SDK that need no server: fingerprint, back-off, the test clock, sealed state files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { backoff, DEFAULT_RETRY, deviceFingerprint, FINGERPRINT_PATTERN, hashMachineId, osMachineId } from './index.js';
import { StateDir } from './state.js';
import { FakeClock } from './testing.js';
import { Cleanup, tempDir } from './testsupport.js';

test('fingerprint: stable on one machine, different across machines, hashed, accepted by the server', async () => {
  assert.equal(deviceFingerprint(), deviceFingerprint(), 'stable across calls (and restarts: same inputs)');
  const a = deviceFingerprint({ machineId: '4c4c4544-0042-3510-8052-b7c04f4e3332' });
  const b = deviceFingerprint({ machineId: '4c4c4544-0042-3510-8052-b7c04f4e3333' });
  assert.notEqual(a, b);
  assert.equal(a, hashMachineId('4C4C4544-0042-3510-8052-B7C04F4E3332 '), 'case and whitespace do not matter');
  for (const fp of [a, b, deviceFingerprint()]) {
    assert.match(fp, FINGERPRINT_PATTERN);
    assert.match(fp, /^fp1:[A-Za-z0-9_-]{43}$/);
  }
  assert.ok(!a.includes('4c4c4544'), 'the raw machine id is never sent');
  const raw = osMachineId();
  if (raw) assert.ok(!deviceFingerprint().includes(raw));
});

test('fingerprint without an OS machine id: a generated id kept in the state dir, stable across restarts', async () => {
  const cleanup = new Cleanup();
  try {
    const one = await tempDir(cleanup);
    const two = await tempDir(cleanup);
    const first = deviceFingerprint({ stateDir: one, ignoreOsMachineId: true });
    assert.equal(deviceFingerprint({ stateDir: one, ignoreOsMachineId: true }), first);
    assert.notEqual(deviceFingerprint({ stateDir: two, ignoreOsMachineId: true }), first);
    assert.match(await readFile(join(one, 'device-id'), 'utf8'), /^[0-9a-f]{32}\n$/);
  } finally {
    await cleanup.run();
  }
});

test('back-off doubles up to the cap, with jitter between half and all of the step', () => {
  assert.equal(
    backoff(1, DEFAULT_RETRY, () => 0),
    500,
  );
  assert.equal(
    backoff(1, DEFAULT_RETRY, () => 1),
    1000,
  );
  assert.equal(
    backoff(3, DEFAULT_RETRY, () => 1),
    4000,
  );
  assert.equal(
    backoff(30, DEFAULT_RETRY, () => 1),
    60_000,
  );
  assert.equal(
    backoff(30, DEFAULT_RETRY, () => 0),
    30_000,
  );
});

test('FakeClock: timers fire in order on elapsed time, await their work, and ignore wall-clock changes', async () => {
  const clock = new FakeClock(1_000_000);
  const order: string[] = [];
  clock.setTimeout(() => void order.push('b@200'), 200);
  clock.setTimeout(async () => {
    await new Promise((r) => setImmediate(r));
    order.push('a@100');
    clock.setTimeout(() => void order.push('c@150'), 50);
  }, 100);
  const cancelled = clock.setTimeout(() => void order.push('never'), 120);
  clock.clearTimeout(cancelled);
  clock.shiftWall(-500_000); // the user moves the clock: nothing fires
  assert.deepEqual(order, []);
  await clock.advance(199);
  assert.deepEqual(order, ['a@100', 'c@150']);
  assert.equal(clock.now(), 1_000_000 - 500_000 + 199);
  assert.equal(clock.monotonic(), 199, 'monotonic time moves with advance only, not with the wall clock');
  await clock.advance(1);
  assert.deepEqual(order, ['a@100', 'c@150', 'b@200']);
  assert.equal(clock.pending(), 0);
  const linked: number[] = [];
  clock.link({ advance: (ms) => linked.push(ms) });
  clock.setTimeout(() => undefined, 10);
  await clock.advance(25);
  assert.deepEqual(linked, [10, 15]);
});

test('sealed state files: written atomically (0600), an edit or a swap between files is detected', async () => {
  const cleanup = new Cleanup();
  try {
    const root = await tempDir(cleanup);
    const s = new StateDir(root, 'http://x', 'KEY', 'fp-1234567');
    await s.ensure();
    await s.writeSealed('clock.json', { t: 42 });
    assert.deepEqual(await s.readSealed('clock.json'), { kind: 'ok', data: { t: 42 } });
    assert.equal((await stat(s.path('clock.json'))).mode & 0o777, 0o600);
    assert.equal((await stat(s.dir)).mode & 0o777, 0o700);
    const text = await readFile(s.path('clock.json'), 'utf8');
    await writeFile(s.path('clock.json'), text.replace('42', '43'));
    assert.equal((await s.readSealed('clock.json')).kind, 'tampered');
    await writeFile(s.path('lease.json'), text); // a valid file under another name
    assert.equal((await s.readSealed('lease.json')).kind, 'tampered');
    assert.equal((await s.readSealed('missing.json')).kind, 'missing');
    // another license or device on the same machine has its own namespace
    assert.notEqual(new StateDir(root, 'http://x', 'KEY', 'fp-7654321').dir, s.dir);
    assert.notEqual(new StateDir(root, 'http://x', 'KEY2', 'fp-1234567').dir, s.dir);
  } finally {
    await cleanup.run();
  }
});
