/**
 * UNSAFE_TRANSACTION (issue #12 item 6): on a busy pool, postgres.js 3.4.9 could send
 * a transaction's BEGIN without reserving its connection (the reservation hook sat
 * behind a back-pressure / pipeline-full test) and left a connection whose BEGIN was in
 * flight in the pool's `busy` queue, where other queries were pipelined into the open
 * transaction. Seen on a 3-node cluster as a rare `500 INTERNAL_ERROR` with
 * `UNSAFE_TRANSACTION: Only use sql.begin, sql.reserved or max: 1`. No statement of
 * floatd sends BEGIN itself: the seat transactions and the batched heartbeat `renew`
 * all use `sql.begin`; the fault was the driver's (fixed by
 * packages/server/scripts/patch-postgres.mjs, porsager/postgres#823).
 *
 * This drives floatd's pool (store/postgres/store.ts `connect`) the way a loaded node
 * does: every connection busy, transactions and large pipelined statements (a heartbeat
 * batch's arrays) queued behind them. Required: no UNSAFE_TRANSACTION, every
 * transaction's statements in its own transaction, no plain statement inside one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { createTempDatabase, PG_ADMIN_URL, postgresAvailable } from '../../testing/pg.js';
import { cutProxy } from '../../testing/pgfault.js';
import { freePort } from '../../testing/process.js';
import { connect } from './store.js';

const pgUp = await postgresAvailable();
if (!pgUp && process.env.CI === 'true') throw new Error('PostgreSQL is not reachable');

test('a busy pool: transactions and pipelined batches never share a connection wrongly (no UNSAFE_TRANSACTION)', {
  skip: !pgUp && 'PostgreSQL not reachable',
  timeout: 60_000,
}, async (t) => {
  const db = await createTempDatabase();
  const sql = connect(db.url, 3);
  try {
    const big = 'x'.repeat(64 * 1024); // larger than the socket's buffer: its write meets back-pressure
    let unsafe = 0;
    const otherErrors: string[] = [];
    const txXids = new Map<string, number>();
    const plainXids: string[] = [];
    for (let round = 0; round < 30; round++) {
      const work: Promise<unknown>[] = [];
      const plain = () =>
        work.push(
          sql`SELECT pg_current_xact_id()::text AS x`.then(
            ([r]) => plainXids.push(String(r!.x)),
            (e: { code?: string; message: string }) =>
              e.code === 'UNSAFE_TRANSACTION' ? unsafe++ : otherErrors.push(`${e.code}: ${e.message}`),
          ),
        );
      // Every connection busy, then enough queued statements that some BEGIN lands on a full pipeline (100 a connection).
      for (let i = 0; i < 3; i++) work.push(sql`SELECT pg_sleep(0.02)`);
      for (let i = 0; i < 290 + (round % 12); i++) plain();
      for (let i = 0; i < 12; i++) {
        work.push(
          sql
            .begin(async (tx) => {
              const [a] = await tx`SELECT pg_current_xact_id()::text AS x, length(${big}::text) AS n`;
              const [b] = await tx`SELECT pg_current_xact_id()::text AS x`;
              assert.equal(a!.x, b!.x, 'both statements of a transaction in one transaction');
              txXids.set(String(a!.x), (txXids.get(String(a!.x)) ?? 0) + 1);
            })
            .catch((e: { code?: string; message: string }) => {
              if (e.code === 'UNSAFE_TRANSACTION') unsafe++;
              else otherErrors.push(`${e.code}: ${e.message}`);
            }),
        );
        plain();
      }
      await Promise.all(work);
    }
    t.diagnostic(`${txXids.size} transactions, ${plainXids.length} plain statements, ${unsafe} UNSAFE_TRANSACTION`);
    assert.equal(unsafe, 0, 'UNSAFE_TRANSACTION');
    assert.deepEqual(otherErrors.slice(0, 5), []);
    assert.equal(txXids.size, 30 * 12, 'every transaction had its own transaction id');
    assert.ok([...txXids.values()].every((n) => n === 1));
    assert.deepEqual(
      plainXids.filter((x) => txXids.has(x)),
      [],
      'no plain statement ran inside a transaction',
    );
  } finally {
    await sql.end({ timeout: 2 });
    await db.drop();
  }
});

test('a multi-host URL (libpq convention): a host that refuses is skipped, target_session_attrs=read-write keeps the primary', {
  skip: !pgUp && 'PostgreSQL not reachable',
  timeout: 30_000,
}, async () => {
  const db = await createTempDatabase();
  const u = new URL(db.url);
  // A port that accepts nothing: bound then closed.
  const dead = await freePort();
  const url = `postgres://${u.username}@127.0.0.1:${dead},${u.hostname}:${u.port || 5432}${u.pathname}?target_session_attrs=read-write`;
  const sql = connect(url, 2);
  try {
    const [r] = await sql`SELECT pg_is_in_recovery() AS standby, current_database() AS db`;
    assert.equal(r!.standby, false);
    assert.equal(r!.db, db.name);
  } finally {
    await sql.end({ timeout: 2 });
    await db.drop();
  }
});

/**
 * A cut in the middle of a transaction (floatd-patch-4): the statement in flight fails with ECONNRESET and the
 * transaction's ROLLBACK goes out before the connection's close event (the error comes a tick before it). postgres.js
 * kept that ROLLBACK among the connection's sent queries through a close that followed an error, and the next
 * session on the same connection object handed each answer to the query before: a query got another's rows, or
 * waited for an answer already given away (a COMMIT waited the 12 s silence bound in the 25-cut test).
 */
test('a connection cut mid-transaction: the transaction fails at once, and every later query gets its own answer', {
  skip: !pgUp && 'PostgreSQL not reachable',
  timeout: 60_000,
}, async () => {
  const db = await createTempDatabase();
  const admin = new URL(PG_ADMIN_URL);
  const proxy = await cutProxy(Number(admin.port || 5432), admin.hostname);
  const via = new URL(db.url);
  via.host = `127.0.0.1:${proxy.port}`;
  // One connection: the next session is the same connection object.
  const sql = connect(via.toString(), 1);
  const within = <T>(p: Promise<T>, ms: number, what: string) =>
    Promise.race([
      p,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms).unref()),
    ]);
  try {
    for (let round = 0; round < 5; round++) {
      const started = Date.now();
      const tx = sql.begin(async (t) => {
        await t`SELECT 1`;
        await t`SELECT pg_sleep(2)`;
      });
      const failed = tx.then(
        () => 'committed',
        (e: { code?: string }) => e.code ?? 'error',
      );
      await new Promise((r) => setTimeout(r, 150));
      assert.ok(proxy.cut('reset') >= 1, 'the connection was cut');
      const outcome = await within(failed, 1500, 'the cut transaction');
      assert.notEqual(outcome, 'committed');
      assert.ok(Date.now() - started < 1500, `the transaction failed at once (${Date.now() - started} ms)`);
      // Sequential, then pipelined: each query must get its own answer, promptly.
      for (let i = 0; i < 3; i++) {
        const [r] = await within(sql`SELECT ${`seq-${round}-${i}`}::text AS v`, 3000, `sequential query ${i}`);
        assert.equal(r!.v, `seq-${round}-${i}`, "a query got another query's answer");
      }
      const answers = await within(
        Promise.all(Array.from({ length: 6 }, (_, i) => sql`SELECT ${`pipe-${round}-${i}`}::text AS v`)),
        3000,
        'pipelined queries',
      );
      assert.deepEqual(
        answers.map((a) => a[0]!.v),
        Array.from({ length: 6 }, (_, i) => `pipe-${round}-${i}`),
      );
    }
  } finally {
    await sql.end({ timeout: 2 });
    await proxy.close();
    await db.drop();
  }
});

test("a transaction's statements held back past its pipeline go out together when it drains, not one per round trip (patch 5)", {
  skip: !pgUp && 'PostgreSQL not reachable',
  timeout: 30_000,
}, async () => {
  const db = await createTempDatabase();
  // A pipeline of 10 statements: 100 issued at once overflow it, as a turn's few hundred overflow the default 100.
  let answered = 0;
  const sentAfter: number[] = [];
  const sql = postgres(db.url, {
    max: 1,
    ...({ max_pipeline: 10 } as object), // an option postgres.js's types leave out
    onnotice: () => undefined,
    debug: (_connection: number, query: string) => {
      if (query.includes('AS held_back')) sentAfter.push(answered);
    },
  });
  try {
    const rows = await sql.begin((tx) =>
      Promise.all(Array.from({ length: 100 }, (_, i) => tx`SELECT ${i}::int AS held_back`.then((r) => (answered++, r[0]!.held_back)))),
    );
    assert.deepEqual(
      rows,
      Array.from({ length: 100 }, (_, i) => i),
      'each statement its own answer, in order',
    );
    // A burst: the statements sent before any more answers came in. Unpatched, each one after the first 10 was its own.
    const bursts = new Set(sentAfter).size;
    assert.equal(sentAfter.length, 100);
    assert.ok(bursts <= 15, `${bursts} bursts for 100 statements with a pipeline of 10`);
  } finally {
    await sql.end({ timeout: 2 });
    await db.drop();
  }
});
