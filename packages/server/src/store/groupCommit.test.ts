/**
 * The per-license group commit's scheduling (store/groupCommit.ts), with a turn runner that records what it
 * is given: one turn at a time per group, every waiting unit in the next turn (FIFO, up to the bound), other
 * groups never wait, a unit's own failure is its own, a failed turn fails all of its units, and a wait past
 * the bound is refused with LicenseBusyError. What a turn does in PostgreSQL (one COMMIT, a failing unit rolled back alone,
 * NOTIFY of committed units only) is tested on a real database in store/noisyNeighbour.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommit, type GroupUnit, type UnitOutcome } from './groupCommit.js';
import { LicenseBusyError } from './errors.js';

type Tx = { turn: number };

/** A runner that runs each unit in order with the turn's number as its "transaction", optionally held open. */
function recorder() {
  const turns: number[] = [];
  let hold: Promise<void> | undefined;
  let failNext: Error | undefined;
  const runner = async (_group: string, units: readonly GroupUnit<Tx>[]): Promise<UnitOutcome[]> => {
    turns.push(units.length);
    const tx = { turn: turns.length };
    const outcomes: UnitOutcome[] = [];
    for (const unit of units) {
      try {
        outcomes.push({ ok: true, value: await unit.run(tx) });
      } catch (error) {
        outcomes.push({ ok: false, error });
      }
    }
    if (hold) await hold;
    if (failNext) {
      const err = failNext;
      failNext = undefined;
      throw err;
    }
    return outcomes;
  };
  return {
    runner,
    turns,
    holdWith(p: Promise<void> | undefined) {
      hold = p;
    },
    failCommit(err: Error) {
      failNext = err;
    },
  };
}

test('units that arrive together share one turn, in order; the next arrivals wait for the next turn', async () => {
  const r = recorder();
  const g = new GroupCommit<Tx>(r.runner);
  let release!: () => void;
  r.holdWith(new Promise<void>((res) => (release = res)));
  const first = Array.from({ length: 5 }, (_, i) => g.run('A', async (tx) => `a${i}@${tx.turn}`));
  await new Promise((res) => setImmediate(res));
  // The first turn is open (held before its commit): these wait for the next one.
  r.holdWith(undefined);
  const second = Array.from({ length: 3 }, (_, i) => g.run('A', async (tx) => `b${i}@${tx.turn}`));
  assert.equal(g.depth('A'), 3);
  release();
  assert.deepEqual(await Promise.all(first), ['a0@1', 'a1@1', 'a2@1', 'a3@1', 'a4@1']);
  assert.deepEqual(await Promise.all(second), ['b0@2', 'b1@2', 'b2@2']);
  assert.deepEqual(r.turns, [5, 3]);
  assert.equal(g.maxRunning, 1);
});

test('a turn takes at most maxGroup units; the rest go in the following turns', async () => {
  const r = recorder();
  const g = new GroupCommit<Tx>(r.runner, 4);
  const all = await Promise.all(Array.from({ length: 10 }, (_, i) => g.run('A', async () => i)));
  assert.deepEqual(all, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(r.turns, [4, 4, 2]);
  assert.equal(g.maxTurn, 4);
});

test('other groups never wait for a busy one', async () => {
  const r = recorder();
  const g = new GroupCommit<Tx>(r.runner);
  r.holdWith(new Promise<void>(() => undefined)); // A's turn never commits
  void g.run('A', async () => 'stuck').catch(() => undefined);
  await new Promise((res) => setImmediate(res));
  r.holdWith(undefined);
  assert.equal(await g.run('B', async () => 'b'), 'b');
});

test("a unit that throws hears its own error; the turn's other units commit", async () => {
  const r = recorder();
  const g = new GroupCommit<Tx>(r.runner);
  const results = await Promise.allSettled([
    g.run('A', async () => 1),
    g.run('A', async () => {
      throw new Error('mine');
    }),
    g.run('A', async () => 3),
  ]);
  assert.deepEqual(
    results.map((x) => (x.status === 'fulfilled' ? x.value : (x.reason as Error).message)),
    [1, 'mine', 3],
  );
  assert.deepEqual(r.turns, [3]);
});

test('a turn whose transaction fails (the connection, the COMMIT) fails every unit in it: nobody hears a success that did not commit', async () => {
  const r = recorder();
  const g = new GroupCommit<Tx>(r.runner);
  r.failCommit(Object.assign(new Error('connection lost'), { code: 'CONNECTION_CLOSED' }));
  const results = await Promise.allSettled([g.run('A', async () => 1), g.run('A', async () => 2)]);
  assert.deepEqual(
    results.map((x) => x.status === 'rejected' && (x.reason as { code?: string }).code),
    ['CONNECTION_CLOSED', 'CONNECTION_CLOSED'],
  );
  // The group serves again afterwards.
  assert.equal(await g.run('A', async () => 'again'), 'again');
});

test('a unit that waits past the bound for its turn is refused with LicenseBusyError and never runs', async () => {
  const r = recorder();
  const g = new GroupCommit<Tx>(r.runner, 64, 50);
  let release!: () => void;
  r.holdWith(new Promise<void>((res) => (release = res)));
  const stuck = g.run('A', async () => 'first');
  await new Promise((res) => setImmediate(res));
  let ran = false;
  await assert.rejects(
    g.run('A', async () => {
      ran = true;
    }),
    LicenseBusyError,
  );
  assert.equal(g.depth('A'), 0, 'the one that gave up is out of the line');
  r.holdWith(undefined);
  const later = g.run('A', async () => 'later');
  release();
  assert.equal(await stuck, 'first');
  assert.equal(await later, 'later');
  assert.equal(ran, false);
});

test('the observer sees queue lengths, waits, the waiting total and turn sizes', async () => {
  const r = recorder();
  const g = new GroupCommit<Tx>(r.runner);
  const seen = { queued: [] as number[], turns: [] as number[], waited: 0, waiting: [] as number[] };
  g.observer = {
    queued: (n) => seen.queued.push(n),
    turn: (n) => seen.turns.push(n),
    waited: () => seen.waited++,
    waiting: (n) => seen.waiting.push(n),
  };
  await Promise.all([g.run('A', async () => 1), g.run('A', async () => 2), g.run('A', async () => 3)]);
  assert.deepEqual(seen.queued, [0, 1, 2]);
  assert.deepEqual(seen.turns, [3]);
  assert.equal(seen.waited, 3);
  assert.deepEqual(seen.waiting, [1, 2, 3, 0]);
});
