/** The per-license queue: FIFO within the bound, and a bounded wait (a stuck key answers 503 instead of holding clients). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LicenseBusyError, LicenseQueue } from './licenseQueue.js';

test('at most `limit` run at once per key; others wait in order; other keys do not wait', async () => {
  const q = new LicenseQueue(1);
  const order: string[] = [];
  let release!: () => void;
  const first = q.run('A', () => new Promise<void>((r) => (release = r)).then(() => order.push('a1')));
  const second = q.run('A', async () => order.push('a2'));
  await q.run('B', async () => order.push('b1'));
  assert.deepEqual(q.depth('A'), { active: 1, waiting: 1 });
  release();
  await Promise.all([first, second]);
  assert.deepEqual(order, ['b1', 'a1', 'a2']);
  assert.deepEqual(q.depth('A'), { active: 0, waiting: 0 });
});

test('a wait past the bound gives up with LicenseBusyError and leaves the line; the slot still goes to the next one', async () => {
  const q = new LicenseQueue(1, undefined, 50);
  let release!: () => void;
  const stuck = q.run('A', () => new Promise<void>((r) => (release = r)));
  await assert.rejects(
    q.run('A', async () => 'never'),
    LicenseBusyError,
  );
  assert.deepEqual(q.depth('A'), { active: 1, waiting: 0 }, 'the one that gave up is out of the line');
  const later = q.run('A', async () => 'ran');
  release();
  await stuck;
  assert.equal(await later, 'ran');
});

test('an operation that does not settle holds its slot only for the hold bound: the next one runs', async () => {
  const q = new LicenseQueue(1, undefined, 5_000, 50);
  void q.run('A', () => new Promise<void>(() => undefined)); // a connection cut under it: never settles
  const started = performance.now();
  assert.equal(await q.run('A', async () => 'next'), 'next');
  assert.ok(performance.now() - started < 2_000);
});
