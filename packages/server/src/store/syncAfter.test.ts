/** SyncAfter: each caller hears of a sync that began after its call; callers during a sync share the next one. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SyncAfter } from './syncAfter.js';

/** A sync whose end the test decides; it records when each began (as a count of `writes` made before it). */
function controlled() {
  const syncs: { beganAfterWrites: number; end(err?: Error): void }[] = [];
  let writes = 0;
  const s = new SyncAfter(
    () =>
      new Promise<void>((resolve, reject) => {
        syncs.push({ beganAfterWrites: writes, end: (err) => (err ? reject(err) : resolve()) });
      }),
  );
  return { s, syncs, write: () => ++writes };
}
const tick = () => new Promise((r) => setImmediate(r));

test('a call while idle starts a sync; calls during it share the one after it, which begins when it ends', async () => {
  const { s, syncs, write } = controlled();
  const heard: string[] = [];
  write();
  const a = s.after().then(() => heard.push('a'));
  assert.equal(syncs.length, 1);
  write();
  const b = s.after().then(() => heard.push('b'));
  write();
  const c = s.after().then(() => heard.push('c'));
  await tick();
  assert.equal(syncs.length, 1, 'no second sync while one runs');
  syncs[0]!.end();
  await a;
  assert.deepEqual(heard, ['a'], 'b and c wrote after the first sync began: it does not cover them');
  await tick();
  assert.equal(syncs.length, 2);
  assert.equal(syncs[1]!.beganAfterWrites, 3, 'the second sync began after every write b and c made');
  syncs[1]!.end();
  await Promise.all([b, c]);
  assert.deepEqual(heard, ['a', 'b', 'c']);
  assert.equal(s.started, 2);
  await s.idle();
  // idle again: the next call starts a sync at once
  const d = s.after();
  assert.equal(syncs.length, 3);
  syncs[2]!.end();
  await d;
});

test('a failed sync fails its own callers only; the next sync serves the next callers', async () => {
  const { s, syncs } = controlled();
  const a = s.after();
  const b = s.after();
  syncs[0]!.end(new Error('EIO'));
  await assert.rejects(a, /EIO/);
  await tick();
  syncs[1]!.end();
  await b;
  const c = s.after();
  syncs[2]!.end();
  await c;
  await s.idle();
});

test('a sync function that throws at once fails the call, and the next call starts afresh', async () => {
  let n = 0;
  const s = new SyncAfter(() => {
    if (n++ === 0) throw new Error('ENOENT');
    return Promise.resolve();
  });
  await assert.rejects(s.after(), /ENOENT/);
  await tick();
  await s.after();
  assert.equal(s.started, 2);
});
