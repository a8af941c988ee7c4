/**
 * Background transactions on SQLite (a sweep's batches, `transaction(fn, { background: true })`): each runs after the
 * transactions waiting then, in a commit of its own while others write, so that a checkout arriving during a big sweep
 * waits for one batch, not for every batch queued before it and their shared commit (docs/performance.md, "Checkouts
 * during the sweep"); while nobody else writes, up to 16 share a commit; while others are served, the background takes
 * about half of the event loop (after a group, none for as long as it took).
 * On a real file, with a second connection that tells the commits apart (`PRAGMA data_version` moves with each commit
 * of another connection).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { StoreTx } from '../port.js';
import { SqliteStore } from './store.js';

async function open() {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-background-'));
  const path = join(dir, 'floatd.db');
  const store = new SqliteStore({ path });
  const other = new Database(path, { readonly: true });
  /** what ran, in order, with the commit count the other connection had seen when it ran */
  const ran: { name: string; commit: number }[] = [];
  const version = other.prepare('PRAGMA data_version').pluck();
  /** a transaction that records itself and writes a row (so that its commit is one) */
  const unit =
    (name: string, then?: () => void) =>
    async (tx: StoreTx): Promise<string> => {
      ran.push({ name, commit: version.get() as number });
      await tx.apply([{ type: 'kv.put', name: `unit-${name}`, value: name, at: 0 }]);
      then?.();
      return name;
    };
  const close = async () => {
    other.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  };
  return { store, ran, unit, close };
}

test('background transactions run each in a commit of its own, after the ones waiting', async () => {
  const { store, ran, unit, close } = await open();
  try {
    const order: Promise<string>[] = [];
    // Three sweep batches queued, then a checkout arrives in the same turn; a second checkout arrives while the first
    // batch runs.
    let second: Promise<string> | undefined;
    order.push(
      store.transaction(
        unit('B1', () => {
          second = store.transaction(unit('F2'));
        }),
        { background: true },
      ),
    );
    order.push(store.transaction(unit('B2'), { background: true }));
    order.push(store.transaction(unit('B3'), { background: true }));
    order.push(store.transaction(unit('F1')));
    assert.deepEqual(await Promise.all(order), ['B1', 'B2', 'B3', 'F1']);
    assert.equal(await second, 'F2');

    // The checkouts first; the one that arrived during B1 before B2; without priority (one queue in arrival order) it
    // would have waited for B2 and B3.
    assert.deepEqual(
      ran.map((r) => r.name),
      ['F1', 'B1', 'F2', 'B2', 'B3'],
    );
    // Each its own commit: the other connection saw a commit between any two of them.
    const commits = ran.map((r) => r.commit);
    assert.equal(new Set(commits).size, commits.length, `commits seen: ${JSON.stringify(ran)}`);
    // And every write is there.
    for (const name of ['B1', 'B2', 'B3', 'F1', 'F2']) assert.equal((await store.getKv(`unit-${name}`))?.value, name);
  } finally {
    await close();
  }
});

test('foreground transactions still share a commit; a failing background transaction fails alone', async () => {
  const { store, ran, unit, close } = await open();
  try {
    const failing = assert.rejects(
      store.transaction(
        async () => {
          throw new Error('batch refused');
        },
        { background: true },
      ),
      /batch refused/,
    );
    const ok = store.transaction(unit('B'), { background: true });
    const f = await Promise.all([store.transaction(unit('F1')), store.transaction(unit('F2')), store.transaction(unit('F3'))]);
    assert.deepEqual(f, ['F1', 'F2', 'F3']);
    await failing;
    assert.equal(await ok, 'B');
    const byName = new Map(ran.map((r) => [r.name, r.commit]));
    // The three foreground transactions in one group, one commit; the background one after it, in another.
    assert.equal(byName.get('F1'), byName.get('F2'));
    assert.equal(byName.get('F2'), byName.get('F3'));
    assert.notEqual(byName.get('B'), byName.get('F3'));
    assert.equal((await store.getKv('unit-B'))?.value, 'B');
  } finally {
    await close();
  }
});

test('with no foreground work, background transactions share commits, sixteen at most; with it, one a commit', async () => {
  const { store, ran, unit, close } = await open();
  try {
    const names = Array.from({ length: 17 }, (_, i) => `B${i + 1}`);
    assert.deepEqual(await Promise.all(names.map((n) => store.transaction(unit(n), { background: true }))), names);
    const commit = new Map(ran.map((r) => [r.name, r.commit]));
    assert.equal(new Set(names.slice(0, 16).map((n) => commit.get(n))).size, 1, JSON.stringify(ran));
    assert.notEqual(commit.get('B17'), commit.get('B16'));

    // A foreground transaction, then background ones queued right after it: each in its own commit again.
    ran.length = 0;
    const after = ['C1', 'C2', 'C3'];
    const all = [store.transaction(unit('F')), ...after.map((n) => store.transaction(unit(n), { background: true }))];
    assert.deepEqual(await Promise.all(all), ['F', ...after]);
    const commits = ran.map((r) => r.commit);
    assert.equal(new Set(commits).size, commits.length, JSON.stringify(ran));
  } finally {
    await close();
  }
});

test('heartbeat reads count as others served: the background transactions queued just after one get a commit each', async () => {
  const { store, ran, unit, close } = await open();
  try {
    // A heartbeat's read (of a key that does not exist: it is the asking that counts, not the answer).
    assert.equal(await store.leaseOfKey('FLT-NONE', 'lse_none', 'app', 0), undefined);
    const names = ['H1', 'H2', 'H3'];
    assert.deepEqual(await Promise.all(names.map((n) => store.transaction(unit(n), { background: true }))), names);
    const commits = ran.map((r) => r.commit);
    assert.equal(new Set(commits).size, commits.length, JSON.stringify(ran));
  } finally {
    await close();
  }
});

/**
 * Foreground transactions one after another, each queued as the previous is answered (the store is never idle), until
 * `limit` have run or `stop` is called.
 */
function foregroundStream(store: SqliteStore, unit: (name: string) => (tx: StoreTx) => Promise<string>, limit: number) {
  let stopped = false;
  let count = 0;
  const running = (async () => {
    while (!stopped && count < limit) await store.transaction(unit(`F${++count}`));
  })();
  return {
    count: () => count,
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

test('a steady stream of foreground transactions does not starve the background ones', async () => {
  const { store, unit, close } = await open();
  try {
    const stream = foregroundStream(store, unit, 5000);
    const names = ['S1', 'S2', 'S3', 'S4', 'S5'];
    assert.deepEqual(await Promise.all(names.map((n) => store.transaction(unit(n), { background: true }))), names);
    const during = stream.count();
    await stream.stop();
    assert.ok(during < 5000, `the background transactions waited for the whole stream (${during} foreground)`);
  } finally {
    await close();
  }
});

test('while others are served, the background takes about half of the event loop: after a group, as long for the others', async () => {
  const { store, unit, close } = await open();
  try {
    const stream = foregroundStream(store, unit, Number.POSITIVE_INFINITY);
    // Wait until the stream is flowing (the store counts others as served).
    while (stream.count() < 20) await new Promise((resolve) => setImmediate(resolve));
    /** a sweep batch that holds the event loop for SPIN_MS, as a run of 250 freed leases does (10-40 ms) */
    const SPIN_MS = 20;
    const spans: { from: number; to: number }[] = [];
    const batch = (name: string) => async (tx: StoreTx) => {
      const from = performance.now();
      while (performance.now() - from < SPIN_MS) {
        /* busy: the loop is held */
      }
      await unit(name)(tx);
      spans.push({ from, to: performance.now() });
      return name;
    };
    const names = Array.from({ length: 10 }, (_, i) => `S${i + 1}`);
    const countedFrom = stream.count();
    assert.deepEqual(await Promise.all(names.map((n) => store.transaction(batch(n), { background: true }))), names);
    const served = stream.count() - countedFrom;
    await stream.stop();
    const held = spans.reduce((sum, s) => sum + (s.to - s.from), 0);
    const wall = spans.at(-1)!.to - spans[0]!.from;
    // Each batch is a group of its own (others are served), and the next comes only after as long again has passed
    // (at most 100 ms): the ten batches span at least twice what they held, less the last one's pause. One foreground
    // group between two batches, as before this budget, spanned little more than what they held (and a checkout
    // beside a sweep waited for its runs back to back: docs/performance.md).
    assert.ok(wall >= 1.8 * held, `the batches held ${held.toFixed(0)} ms of ${wall.toFixed(0)} ms`);
    assert.ok(served >= names.length, `foreground transactions served meanwhile: ${served}`);
  } finally {
    await close();
  }
});

/** The WAL header's checkpoint sequence number: it moves each time the WAL starts over after a checkpoint. */
async function walRestarts(path: string): Promise<number> {
  return (await readFile(`${path}-wal`)).readUInt32BE(12);
}

test('while background transactions run, SQLite checkpoints less often; after them, as usual', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-background-'));
  const path = join(dir, 'floatd.db');
  const store = new SqliteStore({ path });
  try {
    // About 400 pages a transaction (a 1.6 MB value): a checkpoint at SQLite's 1,000 pages would come every few.
    const big = (name: string) => async (tx: StoreTx) =>
      tx.apply([{ type: 'kv.put', name, value: name.repeat(1_600_000 / name.length), at: 0 }]);
    await store.transaction(big('first0'));
    const before = await walRestarts(path);
    // Six background transactions, a foreground one between each (so each in a commit of its own): 2,400 pages.
    const runs: Promise<unknown>[] = [];
    for (let i = 1; i <= 6; i++) {
      runs.push(store.transaction(big(`bg${i}000`), { background: true }));
      runs.push(store.transaction(async (tx) => tx.apply([{ type: 'kv.put', name: `fg${i}`, value: 'x', at: 0 }])));
    }
    await Promise.all(runs);
    assert.equal(await walRestarts(path), before, 'no checkpoint restarted the WAL during the background work');
    // After it, the usual threshold: the next commits checkpoint the WAL, and it starts over.
    for (let i = 0; i < 3; i++) await store.transaction(big(`after${i}`));
    assert.notEqual(await walRestarts(path), before);
    for (const name of ['bg1000', 'bg6000', 'fg6', 'after2']) assert.ok(await store.getKv(name), name);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
