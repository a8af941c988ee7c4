/**
 * The checkpoint thread (checkpointer.ts): the WAL is copied into the file by another connection, and starts over
 * without the store's connection ever checkpointing (its own automatic checkpoint waits for 20,000 pages), and without
 * ever being overwritten while a page copied out of it is not yet synced in the file. On real files; the last test runs
 * a store under strace and reads the order of the copies, the syncs and the WAL's restarts from the system calls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { StoreTx } from '../port.js';
import { straceUnavailable } from '../../testing/process.js';
import type { Checkpointer } from './checkpointer.js';
import { SqliteStore } from './store.js';

/** The WAL header's checkpoint sequence number: it moves each time the WAL starts over after a checkpoint. */
async function walRestarts(path: string): Promise<number> {
  return (await readFile(`${path}-wal`)).readUInt32BE(12);
}

/** About 400 pages a transaction (a 1.6 MB value). */
const big = (name: string) => async (tx: StoreTx) =>
  tx.apply([{ type: 'kv.put', name, value: name.repeat(Math.ceil(1_600_000 / name.length)), at: 0 }]);

const internals = (store: SqliteStore) =>
  store as unknown as {
    checkpointer: Checkpointer | undefined;
    db: { pragma(s: string, o?: { simple: boolean }): unknown };
  };

async function withStore(fn: (store: SqliteStore, path: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-checkpoint-'));
  const path = join(dir, 'floatd.db');
  const store = new SqliteStore({ path });
  try {
    await fn(store, path);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Resolves once no pass of the checkpoint thread is under way. */
async function settled(store: SqliteStore) {
  while ((store as unknown as { passing: boolean }).passing) await new Promise((resolve) => setTimeout(resolve, 1));
}

test('the WAL starts over by the checkpoint thread, long before the connection would checkpoint itself', async () => {
  await withStore(async (store, path) => {
    assert.equal(internals(store).db.pragma('wal_autocheckpoint', { simple: true }), 20_000);
    await store.transaction(big('first0'));
    const before = await walRestarts(path);
    // 12,000 pages in all, 400 at a time: the WAL starts over past 1,000 pages.
    for (let i = 0; i < 30; i++) {
      await store.transaction(big(`row${i}`));
      await settled(store);
    }
    assert.ok(internals(store).checkpointer!.passes >= 3, 'the thread copied the WAL');
    const restarts = (await walRestarts(path)) - before;
    assert.ok(restarts >= 3, `the WAL started over ${restarts} times`);
    // It never held much more than the threshold and what came in while it was copied.
    const wal = (await stat(`${path}-wal`)).size;
    assert.ok(wal < 3_000 * 4_200, `WAL of ${wal} bytes`);
    for (let i = 0; i < 30; i++) assert.ok(await store.getKv(`row${i}`), `row${i}`);
    assert.equal(internals(store).db.pragma('integrity_check', { simple: true }), 'ok');
  });
});

test("a checkpoint by the thread leaves the connection's data version as it was (the heartbeat cache stays valid)", async () => {
  await withStore(async (store) => {
    await store.transaction(big('first0'));
    const version = () => internals(store).db.pragma('data_version', { simple: true });
    const v = version();
    const checkpointer = internals(store).checkpointer;
    assert.ok(checkpointer);
    const pass = await checkpointer.pass();
    assert.ok(pass.checkpointed > 0 && pass.checkpointed === pass.log, `the pass copied the WAL: ${JSON.stringify(pass)}`);
    assert.equal(version(), v);
  });
});

test('if the checkpoint thread dies, the connection checkpoints on its own again, and nothing is lost', async () => {
  await withStore(async (store, path) => {
    const checkpointer = internals(store).checkpointer;
    assert.ok(checkpointer);
    await (checkpointer as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(internals(store).checkpointer, undefined);
    assert.equal(internals(store).db.pragma('wal_autocheckpoint', { simple: true }), 1_000);
    await store.transaction(big('first0'));
    const before = await walRestarts(path);
    for (let i = 0; i < 8; i++) await store.transaction(big(`row${i}`));
    assert.ok((await walRestarts(path)) > before, 'SQLite checkpointed in the COMMITs');
    for (let i = 0; i < 8; i++) assert.ok(await store.getKv(`row${i}`), `row${i}`);
  });
});

test('a reader of older pages in another process holds the WAL back; writes go on, and once it lets go the WAL starts over', async () => {
  await withStore(async (store, path) => {
    await store.transaction(big('first0'));
    // An open read transaction on the file (an on-premise customer's sqlite3): its snapshot needs the WAL's pages.
    const reader = new Database(path, { readonly: true });
    reader.exec('BEGIN');
    assert.ok(reader.prepare('SELECT COUNT(*) AS n FROM kv').get());
    const before = await walRestarts(path);
    for (let i = 0; i < 10; i++) {
      await store.transaction(big(`row${i}`));
      await settled(store);
    }
    assert.equal(await walRestarts(path), before, 'the WAL cannot start over under a reader of its pages');
    reader.exec('COMMIT');
    reader.close();
    for (let i = 10; i < 16; i++) {
      await store.transaction(big(`row${i}`));
      await settled(store);
    }
    assert.ok((await walRestarts(path)) > before, 'it starts over once the reader let go');
    for (let i = 0; i < 16; i++) assert.ok(await store.getKv(`row${i}`), `row${i}`);
  });
});

const skip = straceUnavailable();

test('under strace: the file is synced after every copy before the WAL is written from its start again; the store thread copies nothing', {
  skip,
}, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-checkpoint-strace-'));
  try {
    const path = join(dir, 'floatd.db');
    const script = join(dir, 'writer.mjs');
    const storeUrl = new URL('./store.js', import.meta.url).href;
    await writeFile(
      script,
      `import { writeSync } from 'node:fs';
import { SqliteStore } from ${JSON.stringify(storeUrl)};
const store = new SqliteStore({ path: ${JSON.stringify(path)} });
for (let i = 0; i < 30; i++) {
  const name = 'row' + i;
  await store.transaction(async (tx) => tx.apply([{ type: 'kv.put', name, value: name.repeat(400000), at: 0 }]));
  while (store.passing) await new Promise((resolve) => setTimeout(resolve, 1));
}
writeSync(1, 'END-OF-WRITES\\n');
await store.close();
`,
    );
    const trace = join(dir, 'trace');
    const r = spawnSync(
      'strace',
      ['-f', '-y', '-qq', '-s', '16', '-o', trace, '-e', 'trace=fsync,fdatasync,pwrite64,write', process.execPath, script],
      { encoding: 'utf8', cwd: fileURLToPath(new URL('.', import.meta.url)) },
    );
    assert.equal(r.status, 0, r.stderr);
    const lines = (await readFile(trace, 'utf8')).split('\n');
    const main = lines[0]?.split(/\s+/)[0];
    let dirty = false;
    let restarts = 0;
    let walHeaders = 0;
    let copiesByThread = 0;
    let copiesByStoreThread = 0;
    const db = `${path}>`;
    for (const line of lines) {
      if (line.includes('END-OF-WRITES')) break;
      const m = /^(\d+)\s+(\w+)\((\d+)<([^>]*)>(.*)$/.exec(line);
      if (!m) continue;
      const [, tid, call, , file, tail] = m as unknown as [string, string, string, string, string, string];
      if (call === 'pwrite64' && `${file}>` === db) {
        dirty = true;
        // (Before the WAL first starts over, the store's thread made the file: its header page.)
        if (tid === main && restarts > 0) copiesByStoreThread++;
        else copiesByThread++;
      } else if ((call === 'fsync' || call === 'fdatasync') && `${file}>` === db) {
        dirty = false;
      } else if (call === 'pwrite64' && file === `${path}-wal` && /, 0\)\s+= \d+$/.test(tail) && / 32, 0\)/.test(tail)) {
        // The WAL header, written at offset 0: when the WAL is created, and each time it starts over.
        if (walHeaders++ > 0) {
          restarts++;
          assert.equal(dirty, false, `the WAL started over with pages copied into the file and not synced (trace line: ${line})`);
        }
      }
    }
    t.diagnostic(
      `restarts ${restarts}, pages copied by the checkpoint thread ${copiesByThread}, by the store's thread ${copiesByStoreThread}`,
    );
    assert.ok(restarts >= 3, `the WAL started over ${restarts} times`);
    assert.ok(copiesByThread > 0);
    assert.equal(copiesByStoreThread, 0, "the store's thread copied pages into the file");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
