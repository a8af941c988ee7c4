/**
 * One key's storm must not take the PostgreSQL pool (issue #24, part 4). 40 loops check out and check in on
 * license A through the real service and a real PostgreSQL pool of 10, while license B renews its leases.
 * Counts, not times: sampled from pg_stat_activity, the connections in a transaction (A's, all of them here)
 * never exceed the per-license bound, and at most one of them waits for A's row lock; the same storm without
 * the queue (the control) parks most of the pool behind A's lock. B's heartbeats keep being answered.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { ManualClock } from '../domain/clock.js';
import { KeyRing, memoryKeyPersistence } from '../keys/ring.js';
import { CatalogueService } from '../service/catalogue.js';
import { LicenseQueue } from '../service/licenseQueue.js';
import { LicensingService } from '../service/licensing.js';
import { createMetrics } from '../service/metrics.js';
import { createTempDatabase, postgresAvailable, type TempDatabase } from '../testing/pg.js';
import { PostgresStore } from './postgres/store.js';

const pgUp = await postgresAvailable();
if (!pgUp && process.env.CI === 'true') throw new Error('PostgreSQL is not reachable at 127.0.0.1:5432: this suite needs it in CI');

const POOL = 10;
const BOUND = 2; // the default for a pool of 10 (licenseConcurrency: a quarter of the pool)
const LOOPS = 40;

describe('noisy neighbour on PostgreSQL', { skip: pgUp ? false : 'PostgreSQL not reachable' }, () => {
  let db: TempDatabase;
  let store: PostgresStore;
  let monitor: postgres.Sql;
  before(async () => {
    db = await createTempDatabase();
    store = await PostgresStore.open({ url: db.url, max: POOL });
    monitor = postgres(db.url, { max: 1, onnotice: () => undefined });
  });
  after(async () => {
    await monitor?.end({ timeout: 1 });
    await store?.close();
    await db?.drop();
  });

  async function storm(queue: LicenseQueue, ms: number) {
    const clock = new ManualClock(Date.now());
    const metrics = createMetrics(store, { defaultMetrics: false });
    const keys = await KeyRing.open(memoryKeyPersistence(), clock.now());
    const catalogue = new CatalogueService(store, clock, metrics, keys);
    const licensing = new LicensingService(store, clock, keys, metrics, undefined, {}, queue);
    const product = await catalogue.createProduct({ name: 'neighbours' }, 'test');
    assert.ok(product.ok);
    const mk = async (seats: number) => {
      const r = await catalogue.createLicense({ productId: product.value.id, seats } as never, 'test');
      assert.ok(r.ok);
      return r.value;
    };
    const A = await mk(LOOPS);
    const B = await mk(10);
    const bLeases: string[] = [];
    for (let i = 0; i < 10; i++) {
      const g = await licensing.checkout(B.key, { fingerprint: `quiet-b-${i}`, instanceId: 'a' });
      assert.ok(g.ok);
      bLeases.push(g.value.granted.lease.id);
    }
    let stop = false;
    let churns = 0;
    let heartbeats = 0;
    const loops = Array.from({ length: LOOPS }, async (_, i) => {
      while (!stop) {
        const g = await licensing.checkout(A.key, { fingerprint: `storm-a-${i}`, instanceId: 'a' });
        assert.ok(g.ok, 'A has a seat per loop');
        const c = await licensing.checkin(A.key, g.value.granted.lease.id, 'a');
        assert.ok(c.ok);
        churns++;
      }
    });
    const quiet = (async () => {
      while (!stop) {
        for (const id of bLeases) {
          const h = await licensing.heartbeat(B.key, id, 'a');
          assert.ok(h.ok, 'B renews');
          heartbeats++;
        }
      }
    })();
    // Sample the database's own view while the storm runs.
    let maxInTransaction = 0;
    let maxLockWaits = 0;
    let samples = 0;
    let maxWaitingInNode = 0;
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const [r] = await monitor`SELECT
          COUNT(*) FILTER (WHERE xact_start IS NOT NULL)::int AS in_transaction,
          COUNT(*) FILTER (WHERE wait_event_type = 'Lock')::int AS lock_waits
        FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`;
      maxInTransaction = Math.max(maxInTransaction, r!.in_transaction as number);
      maxLockWaits = Math.max(maxLockWaits, r!.lock_waits as number);
      maxWaitingInNode = Math.max(maxWaitingInNode, queue.depth(A.key).waiting);
      samples++;
    }
    stop = true;
    await Promise.all([...loops, quiet]);
    return { maxInTransaction, maxLockWaits, samples, churns, heartbeats, maxActive: queue.maxActive, maxWaitingInNode };
  }

  test(`with the per-license queue (bound ${BOUND}): A's transactions never hold more than ${BOUND} connections`, async () => {
    const r = await storm(new LicenseQueue(BOUND), 2500);
    process.stdout.write(`# queued storm: ${JSON.stringify(r)}\n`);
    assert.ok(r.samples > 50 && r.churns > 50 && r.heartbeats > 10, JSON.stringify(r));
    assert.ok(r.maxActive <= BOUND, `the queue let ${r.maxActive} run at once`);
    // B's heartbeat transactions (one at a time) may be in flight too: A's share is at most BOUND. And one more may
    // show: a backend reports itself idle only when it waits for its next command, after the client already has the
    // COMMIT's answer and the queue has started the next transaction on another connection (seen: 4, once in two runs).
    assert.ok(r.maxInTransaction <= BOUND + 2, `${r.maxInTransaction} connections were in a transaction at once`);
    // A's running operations: one holds the row lock, the others (BOUND - 1) wait for it; one more may show for the
    // same reason as above (pg_stat_activity is not one instant: the backend that just got the lock may still read
    // as waiting while the next one starts waiting; seen once under load). Without the queue: the whole pool (10).
    assert.ok(r.maxLockWaits <= BOUND, `${r.maxLockWaits} connections waited for a row lock at once`);
    assert.ok(
      r.maxWaitingInNode >= LOOPS - BOUND - 2,
      `the storm waited in the node (at most ${r.maxWaitingInNode} at once), not in the pool`,
    );
  });

  test("control: the same storm without the queue parks most of the pool behind A's lock", async () => {
    const r = await storm(new LicenseQueue(0), 2500);
    process.stdout.write(`# unqueued storm: ${JSON.stringify(r)}\n`);
    assert.ok(r.maxLockWaits > BOUND, `only ${r.maxLockWaits} waited for the lock: the test could not tell the queue from none`);
  });
});
