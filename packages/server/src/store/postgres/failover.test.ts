/**
 * A PostgreSQL fail-over followed by floatd itself (issue #23 part 2): a real primary and
 * a real streaming standby (synchronous replication), floatd under load (devices checking
 * out, heartbeating, checking in), the primary crashed (`pg_ctl stop -m immediate`) and the
 * standby promoted. Once with a multi-host URL (`target_session_attrs=read-write`), once
 * behind one address that moves to the new primary and drops every open connection (a
 * virtual IP, HAProxy in front of Patroni).
 *
 * Required (testing/pgfault.ts failOverLicense, failOverUnderLoad, shared with autoFailover.test.ts): the process stays up; only `503` with Retry-After inside the outage; no lease a
 * device holds is lost and none checked in comes back (read on the new primary); never more
 * leases than seats; serving again within 5 s of the promotion; the leader lock and the node
 * registry come back on the new primary. A third time with the old primary fenced instead of
 * crashed (read-only, its connections kept: writes fail with SQLSTATE 25006): floatd must leave it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pairUnavailable, startPair } from '../../testing/pgpair.js';
import { cutProxy, failOverLicense, failOverUnderLoad, startNode, type CutProxy } from '../../testing/pgfault.js';
import postgres from 'postgres';
import { systemClock } from '../../domain/clock.js';
import { KeyRing, memoryKeyPersistence } from '../../keys/ring.js';
import { CatalogueService } from '../../service/catalogue.js';
import { LicensingService } from '../../service/licensing.js';
import { createMetrics } from '../../service/metrics.js';
import { connect, PostgresStore, SLOW_TRANSACTION_MS, TRANSACTION_DEADLINE_MS } from './store.js';

const SEATS = 10;
const unavailable = pairUnavailable();
if (unavailable && process.env.CI === 'true') throw new Error(`the fail-over test must run in CI: ${unavailable}`);

for (const mode of ['multi-host URL', 'moving address', 'fenced primary'] as const) {
  test(`fail-over (${mode}): primary ${mode === 'fenced primary' ? 'made read-only (25006)' : 'crashed'} under load, standby promoted: serving within 5 s, no lease lost or resurrected, only 503s`, {
    skip: unavailable ?? false,
    timeout: 90_000,
  }, async (t) => {
    const pair = await startPair();
    let proxy: CutProxy | undefined;
    const dataDir = await mkdtemp(join(tmpdir(), 'floatd-failover-'));
    let node: Awaited<ReturnType<typeof startNode>> | undefined;
    try {
      let url: string;
      if (mode !== 'moving address') {
        url = `postgres://postgres@127.0.0.1:${pair.primaryPort},127.0.0.1:${pair.standbyPort}/floatd?target_session_attrs=read-write`;
      } else {
        proxy = await cutProxy(pair.primaryPort);
        url = `postgres://postgres@127.0.0.1:${proxy.port}/floatd`;
      }
      node = await startNode(dataDir, url, { args: ['--reclaim-interval', '1'] });
      const n = node;
      const lic = await failOverLicense(n, 'failover', SEATS);

      await failOverUnderLoad({
        node: n,
        license: lic,
        seats: SEATS,
        label: mode,
        log: (line) => t.diagnostic(line),
        async failOver() {
          if (mode === 'fenced primary') await pair.fencePrimary();
          else await pair.crashPrimary();
          const crashedAt = Date.now();
          await pair.promoteStandby();
          const promotedAt = Date.now();
          if (proxy) {
            // The address moves to the new primary and drops what was open.
            proxy.moveTo(pair.standbyPort);
            proxy.cut();
          }
          return { crashedAt, promotedAt, newPrimaryUrl: `postgres://postgres@127.0.0.1:${pair.standbyPort}/floatd` };
        },
      });
    } finally {
      if (node?.exit) t.diagnostic(node.output().slice(-3000));
      await node?.stop();
      await proxy?.close();
      await pair.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
}

// libpq's rule for target_session_attrs=read-write: the server must not be in hot standby and
// default_transaction_read_only must be off. postgres.js looked only at the second (off on a standby),
// so a multi-host URL kept a standby's connections during a fail-over (floatd's driver patch 3).
test('a multi-host URL naming the hot standby first: every pool connection is on the primary; the standby alone is refused', {
  skip: unavailable ?? false,
  timeout: 60_000,
}, async () => {
  const pair = await startPair();
  const both = connect(`postgres://postgres@127.0.0.1:${pair.standbyPort},127.0.0.1:${pair.primaryPort}/postgres`, 6);
  const standbyOnly = connect(`postgres://postgres@127.0.0.1:${pair.standbyPort}/postgres`, 1);
  try {
    // Six connections at once (each tries the standby first), twice over.
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => both`SELECT pg_is_in_recovery() AS standby, pg_sleep(0.05)`.then((r) => r[0]!.standby)),
    );
    assert.deepEqual(answers, Array(12).fill(false), 'a read-write pool connection landed on the standby');
    await assert.rejects(standbyOnly`SELECT 1`, 'the standby alone is not a read-write server');
  } finally {
    await both.end({ timeout: 2 });
    await standbyOnly.end({ timeout: 1 }).catch(() => undefined);
    await pair.stop();
  }
});

/**
 * A primary and standby, floatd's store on both by multi-host URL (`max` 4), and a connection of the test's own to each
 * server (`old`: the primary, `neu`: the standby); `ours(sql)` counts floatd's sessions on one of them.
 */
async function withPair(
  fn: (p: {
    pair: Awaited<ReturnType<typeof startPair>>;
    store: PostgresStore;
    old: postgres.Sql;
    neu: postgres.Sql;
    ours(sql: postgres.Sql): Promise<number>;
  }) => Promise<void>,
): Promise<void> {
  const pair = await startPair();
  const url = `postgres://postgres@127.0.0.1:${pair.primaryPort},127.0.0.1:${pair.standbyPort}/floatd?target_session_attrs=read-write`;
  const old = postgres(`postgres://postgres@127.0.0.1:${pair.primaryPort}/floatd`, { max: 1, onnotice: () => undefined });
  const neu = postgres(`postgres://postgres@127.0.0.1:${pair.standbyPort}/floatd`, { max: 1, onnotice: () => undefined });
  try {
    const store = await PostgresStore.open({ url, max: 4 });
    try {
      await fn({
        pair,
        store,
        old,
        neu,
        ours: async (sql) => Number((await sql`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'floatd'`)[0]!.n),
      });
    } finally {
      await store.close().catch(() => undefined);
    }
  } finally {
    await old.end({ timeout: 1 }).catch(() => undefined);
    await neu.end({ timeout: 1 }).catch(() => undefined);
    await pair.stop();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The fenced-primary run above failed CI once in a while (serving again 10.0-10.4 s after the promotion; 3 in 29 runs
 * with two busy loops beside it): a turn whose BEGIN came before the fence and whose COMMIT came after the promotion
 * waited on the old primary for its synchronous standby, which had stopped streaming, so for ever. Every write of the
 * license waited behind that turn, and the node's other writes that failed with 25006 there (the registry, webhook
 * claims) did not make it leave the server: only the turn's deadline (10 s) did. Here that moment is made on purpose:
 * the standby promoted first, a checkout sent (its COMMIT waits), then the primary fenced. No node registry, so no
 * reaper (the next test): the slow turn alone must make the node look.
 */
test(
  'a fenced old primary: a checkout whose COMMIT waits there for the promoted standby fails within seconds, not the 10 s deadline; the next commits on the new primary; no floatd session is left there',
  {
    skip: unavailable ?? false,
    timeout: 90_000,
  },
  (t) =>
    withPair(async ({ pair, store, old, neu, ours }) => {
      const metrics = createMetrics(store, { defaultMetrics: false });
      const keys = await KeyRing.open(memoryKeyPersistence(), Date.now());
      const catalogue = new CatalogueService(store, systemClock, metrics, keys);
      const licensing = new LicensingService(store, systemClock, keys, metrics);
      const product = await catalogue.createProduct({ name: 'fence' }, 'test');
      assert.ok(product.ok);
      const made = await catalogue.createLicense({ productId: product.value.id, seats: 5 } as never, 'test');
      assert.ok(made.ok, JSON.stringify(made));
      const key = made.value.key;
      const first = await licensing.checkout(key, { fingerprint: 'fence-a', instanceId: 'app' });
      assert.ok(first.ok, JSON.stringify(first));

      // The standby promoted: the old primary's commits now wait for a synchronous standby that is gone.
      await pair.promoteStandby();
      const sentAt = Date.now();
      const stuck = licensing.checkout(key, { fingerprint: 'fence-b', instanceId: 'app' }).then(
        (r) => ({ r, at: Date.now() }),
        (e: unknown) => ({ e, at: Date.now() }),
      );
      for (let i = 0; ; i++) {
        const [w] = await old`SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'floatd' AND wait_event = 'SyncRep'`;
        if (Number(w!.n) > 0) break;
        assert.ok(i < 100, 'the checkout never waited for the synchronous standby');
        await sleep(20);
      }
      await pair.fencePrimary();
      const outcome = await stuck;
      const tookMs = outcome.at - sentAt;
      t.diagnostic(`the checkout waiting on the fenced primary settled ${tookMs} ms after it was sent`);
      // Left by the first look after SLOW_TRANSACTION_MS (one more if the fence landed after it): about 1-2 s.
      assert.ok(tookMs < TRANSACTION_DEADLINE_MS / 2, `the stuck checkout settled ${tookMs} ms after it was sent`);
      assert.ok(tookMs >= SLOW_TRANSACTION_MS - 50, `settled before any look (${tookMs} ms): ${JSON.stringify(outcome)}`);
      assert.ok('e' in outcome || !outcome.r.ok, `the stuck checkout cannot have succeeded: ${JSON.stringify(outcome)}`);

      // The next checkout (retried as a client does after a 503) commits on the new primary.
      let next: Awaited<ReturnType<LicensingService['checkout']>> | undefined;
      for (let i = 0; i < 40 && !next?.ok; i++) {
        next = await licensing.checkout(key, { fingerprint: 'fence-c', instanceId: 'app' }).catch(() => undefined);
        if (!next?.ok) await sleep(100);
      }
      assert.ok(next?.ok, JSON.stringify(next));
      const [row] = await neu`SELECT count(*) AS n FROM leases WHERE id = ${next.value.granted.lease.id}`;
      assert.equal(Number(row!.n), 1, 'the lease granted after the fail-over is on the new primary');
      assert.equal(await ours(old), 0, 'floatd sessions left on the old primary');
    }),
);

test(
  'a fenced old primary under an idle node: the reaper finds its connection read-only and the pool leaves; reads answer from the new primary within 3 s',
  {
    skip: unavailable ?? false,
    timeout: 60_000,
  },
  (t) =>
    withPair(async ({ pair, store, old, neu, ours }) => {
      // The registry's own writes (which would fail with 25006) only every minute: the reaper's look is what is tested.
      const membership = store.reportNode('test', () => false, 60_000);
      try {
        // The pool's connections open on the primary, as a serving node's are.
        await Promise.all(Array.from({ length: 4 }, () => store.listNodes()));
        const before = await ours(old);
        assert.ok(before >= 2, `floatd sessions on the primary: ${before}`);
        await pair.fencePrimary();
        await pair.promoteStandby();
        // A change only the new primary has.
        await neu`INSERT INTO nodes (id, host, version, started_at, last_seen_at, clock_offset_ms, leader)
        VALUES ('node_marker', 'marker', 'test', 0, ${Date.now()}, 0, false)`;
        const at = Date.now();
        let seen = false;
        while (!seen && Date.now() - at < 8000) {
          // Several reads at once, so that every connection of the pool answers one.
          const lists = await Promise.all(Array.from({ length: 4 }, () => store.listNodes().catch(() => [])));
          seen = lists.every((l) => l.some((n) => n.id === 'node_marker'));
          if (!seen) await sleep(50);
        }
        const tookMs = Date.now() - at;
        t.diagnostic(`reads from the new primary ${tookMs} ms after the promotion`);
        assert.ok(seen && tookMs < 3000, `reads answered from the new primary ${seen ? `after ${tookMs} ms` : 'never (8 s)'}`);
        assert.equal(await ours(old), 0, 'floatd sessions left on the old primary');
      } finally {
        await membership.stop().catch(() => undefined);
      }
    }),
);
