import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TickBatch } from './tickBatch.js';

test('calls of one turn of the loop go to one run, in order, each answered with its own value or error', async () => {
  const runs: number[][] = [];
  const batch = new TickBatch<number, string>(async (items) => {
    runs.push([...items]);
    return items.map((n) => (n === 3 ? new Error('three') : `v${n}`));
  });
  const calls = [1, 2, 3, 4].map((n) => batch.call(n));
  const out = await Promise.allSettled(calls);
  assert.deepEqual(runs, [[1, 2, 3, 4]]);
  assert.deepEqual(
    out.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message)),
    ['v1', 'v2', 'three', 'v4'],
  );
  // The next turn is a new batch.
  assert.equal(await batch.call(5), 'v5');
  assert.deepEqual(runs.at(-1), [5]);
});

test('a turn with more calls than `max` is split; a failed run fails its own batch only', async () => {
  const runs: number[][] = [];
  const batch = new TickBatch<number, number>(async (items) => {
    runs.push([...items]);
    if (items.includes(4)) throw new Error('lost connection');
    return items.map((n) => n * 10);
  }, 3);
  const out = await Promise.allSettled([1, 2, 3, 4, 5, 6, 7].map((n) => batch.call(n)));
  assert.deepEqual(runs, [[1, 2, 3], [4, 5, 6], [7]]);
  assert.deepEqual(
    out.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message)),
    [10, 20, 30, 'lost connection', 'lost connection', 'lost connection', 70],
  );
});

test('a run that answers the wrong number of items fails them all rather than misattribute an answer', async () => {
  const batch = new TickBatch<number, number>(async (items) => items.slice(1));
  const out = await Promise.allSettled([1, 2].map((n) => batch.call(n)));
  assert.ok(out.every((o) => o.status === 'rejected' && /got 1 answers/.test(String(o.reason))));
});
