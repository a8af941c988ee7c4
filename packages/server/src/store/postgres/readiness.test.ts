/**
 * /readyz's questions to PostgreSQL (`ping`, `probeWrite`) go over a connection of their own, not the pool's: a
 * readiness check queued behind the pool's work said "not ready" for as long as that work took. After an outage
 * the pool's queue holds the requests that piled up, and readiness came back 0.2-1.35 s after the database did
 * (cuts.test.ts, under CI's load). Here the pool (one connection) is held by a checkout that waits for a row lock,
 * as it would behind a slow database; the node must still say whether the database answers, at once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { ManualClock } from '../../domain/clock.js';
import { KeyRing, memoryKeyPersistence } from '../../keys/ring.js';
import { CatalogueService } from '../../service/catalogue.js';
import { LicensingService } from '../../service/licensing.js';
import { createMetrics } from '../../service/metrics.js';
import { createTempDatabase, postgresAvailable, type TempDatabase } from '../../testing/pg.js';
import { PostgresStore } from './store.js';

const pgUp = await postgresAvailable();
if (!pgUp && process.env.CI === 'true') throw new Error('PostgreSQL is not reachable at 127.0.0.1:5432');

let db: TempDatabase;
let raw: postgres.Sql;
before(async () => {
  if (!pgUp) return;
  db = await createTempDatabase();
  raw = postgres(db.url, { max: 2, onnotice: () => undefined });
});
after(async () => {
  if (!pgUp) return;
  await raw.end();
  await db.drop();
});

test('ping and the test write answer while every pool connection waits on a lock', {
  skip: !pgUp && 'PostgreSQL not reachable',
}, async () => {
  const store = await PostgresStore.open({ url: db.url, max: 1 });
  try {
    const clock = new ManualClock(Date.parse('2026-06-01T10:00:00Z'));
    const metrics = createMetrics(store, { defaultMetrics: false });
    const keys = await KeyRing.open(memoryKeyPersistence(), clock.now());
    const catalogue = new CatalogueService(store, clock, metrics, keys);
    const licensing = new LicensingService(store, clock, keys, metrics);
    const product = await catalogue.createProduct({ name: 'readiness' }, 'test');
    assert.ok(product.ok);
    const license = await catalogue.createLicense(
      { productId: product.value.id, seats: 2, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 } as never,
      'test',
    );
    assert.ok(license.ok);

    // Another session holds the license row: the checkout's transaction waits for it on the pool's only connection.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = raw.begin(async (tx) => {
      await tx`SELECT id FROM licenses WHERE id = ${license.value.id} FOR UPDATE`;
      locked();
      await released;
    });
    await isLocked;
    let checkoutSettled = false;
    const checkout = licensing
      .checkout(license.value.key, { fingerprint: 'device-1', instanceId: 'app' } as never)
      .finally(() => (checkoutSettled = true));
    // The checkout is on the pool's connection, waiting for the lock, once its statement is in the database.
    for (let i = 0; i < 100; i++) {
      const [w] = await raw`SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'floatd' AND wait_event_type = 'Lock'`;
      if (w!.n > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const [waiting] = await raw`SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'floatd' AND wait_event_type = 'Lock'`;
    assert.equal(waiting!.n, 1, 'the pool connection waits for the row lock');

    // Readiness is not queued behind it. (Through the pool, both waited for the lock: 2 s, then the deadline.)
    await store.ping();
    await store.probeWrite();
    assert.equal(checkoutSettled, false, 'answered while the pool was still held');
    const [probeRow] = await raw`SELECT count(*)::int AS n FROM schema_migrations WHERE version = -1`;
    assert.equal(probeRow!.n, 0, 'the test write leaves nothing behind');

    release();
    await holder;
    const granted = await checkout;
    assert.ok(granted.ok, 'the held checkout goes through once the lock is released');
  } finally {
    await store.close();
  }
});
