/**
 * A turn's reads for all its units (store/postgres/turnView.ts, issue #17), through the real licensing service on a
 * real PostgreSQL pool: concurrent requests on one key share turns, the units after the first decide on what the
 * turn read once and projected through the writes before them, and every decision is the one a unit reading for
 * itself would make. A customer after a free seat would race many checkouts into one turn; so does this test.
 */
import { describe, test, before, after } from 'node:test';
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
if (!pgUp && process.env.CI === 'true') throw new Error('PostgreSQL is not reachable');

describe("a turn's reads for all its units (PostgreSQL)", { skip: pgUp ? false : 'PostgreSQL not reachable' }, () => {
  let db: TempDatabase;
  let store: PostgresStore;
  let sql: postgres.Sql;
  let catalogue: CatalogueService;
  let licensing: LicensingService;
  let productId: string;
  before(async () => {
    db = await createTempDatabase();
    store = await PostgresStore.open({ url: db.url, max: 4 });
    sql = postgres(db.url, { max: 1, onnotice: () => undefined });
    const clock = new ManualClock(Date.now());
    const metrics = createMetrics(store, { defaultMetrics: false });
    const keys = await KeyRing.open(memoryKeyPersistence(), clock.now());
    catalogue = new CatalogueService(store, clock, metrics, keys);
    licensing = new LicensingService(store, clock, keys, metrics, undefined, {});
    const product = await catalogue.createProduct({ name: 'turns' }, 'test');
    assert.ok(product.ok);
    productId = product.value.id;
  });
  after(async () => {
    await sql?.end({ timeout: 1 });
    await store?.close();
    await db?.drop();
  });

  async function license(seats: number) {
    const r = await catalogue.createLicense({ productId, seats } as never, 'test');
    assert.ok(r.ok);
    return r.value;
  }

  /** The license's lease rows, stored counters, tally and counter repairs, as the database has them. */
  async function stored(id: string) {
    const [row] = await sql`SELECT (SELECT COUNT(*)::int FROM leases WHERE license_id = ${id} AND base) AS rows,
      (SELECT seats_used FROM licenses WHERE id = ${id}) AS counter,
      (SELECT used FROM lease_tally WHERE license_id = ${id}) AS tally,
      (SELECT COUNT(*)::int FROM audit WHERE license_id = ${id} AND type = 'seats.repaired') AS repairs`;
    return { rows: row!.rows, counter: row!.counter, tally: row!.tally ?? 0, repairs: row!.repairs };
  }

  /** `n` checkouts either side of one with the fingerprint `bad`, raced into shared turns: the others are granted, that one fails alone. */
  async function raceAroundOne(key: string, tag: string, bad: string, n: number, what: string) {
    const results = await Promise.allSettled([
      ...Array.from({ length: n }, (_, i) => licensing.checkout(key, { fingerprint: `${tag}-${i}`, instanceId: 'a' })),
      licensing.checkout(key, { fingerprint: bad, instanceId: 'a' }),
      ...Array.from({ length: n }, (_, i) => licensing.checkout(key, { fingerprint: `${tag}-b-${i}`, instanceId: 'a' })),
    ]);
    const fine = results.filter((_, i) => i !== n);
    assert.ok(
      fine.every((r) => r.status === 'fulfilled' && r.value.ok),
      `the other units were granted: ${JSON.stringify(fine.map((r) => (r.status === 'rejected' ? String(r.reason) : r.value.ok || r.value.error)))}`,
    );
    const failed = results[n]!;
    assert.ok(failed.status === 'rejected' || !failed.value.ok, `the ${what} failed its own unit`);
  }

  test('40 checkouts raced for 10 seats: 10 granted, 30 refused, each decided on the turn state, no guard tripped', async () => {
    const L = await license(10);
    const before = store.groupStats().viewed;
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => licensing.checkout(L.key, { fingerprint: `race-${i}`, instanceId: 'a' })),
    );
    const granted = results.filter((r) => r.ok);
    const refused = results.filter((r) => !r.ok);
    assert.equal(granted.length, 10);
    assert.deepEqual([...new Set(refused.map((r) => !r.ok && r.error.code))], ['NO_SEATS_AVAILABLE']);
    assert.deepEqual(await stored(L.id), { rows: 10, counter: 10, tally: 10, repairs: 0 });
    assert.ok(store.groupStats().maxTurn >= 2, `requests shared turns (largest ${store.groupStats().maxTurn})`);
    assert.ok(store.groupStats().viewed - before >= 2, 'units after the first decided on the turn reads');

    // Check-ins and new checkouts raced together: every seat freed is taken at most once.
    const leases = granted.map((r) => r.ok && r.value.granted.lease.id) as string[];
    const again = await Promise.all([
      ...leases.map((id) => licensing.checkin(L.key, id, 'a')),
      ...Array.from({ length: 20 }, (_, i) => licensing.checkout(L.key, { fingerprint: `late-${i}`, instanceId: 'a' })),
    ]);
    assert.ok(
      again.slice(0, 10).every((r) => r.ok),
      'every check-in succeeded',
    );
    const late = again.slice(10).filter((r) => r.ok).length;
    assert.ok(late <= 10, `${late} late checkouts granted`);
    assert.deepEqual(await stored(L.id), { rows: late, counter: late, tally: late, repairs: 0 });
  });

  test("a turn's audit entries and usage rows, written together at its end, are every unit's, as one at a time would leave them", async () => {
    const L = await license(6);
    const results = await Promise.all(
      Array.from({ length: 15 }, (_, i) => licensing.checkout(L.key, { fingerprint: `usage-${i}`, instanceId: 'a' })),
    );
    const granted = results.filter((r) => r.ok).map((r) => (r.ok ? r.value.granted.lease.id : ''));
    assert.equal(granted.length, 6);
    assert.ok(store.groupStats().maxTurn >= 2, 'requests shared turns');
    // Half of them back, in one race: the peak stays 6, the seats at the end are 3.
    const back = await Promise.all(granted.slice(0, 3).map((id) => licensing.checkin(L.key, id, 'a')));
    assert.ok(back.every((r) => r.ok));
    const [usage] = await sql`SELECT peak_seats, seats_at_end, checkouts, denials FROM usage_hourly WHERE license_id = ${L.id}`;
    assert.deepEqual({ ...usage }, { peak_seats: 6, seats_at_end: 3, checkouts: 6, denials: 9 });
    const audit = await sql`SELECT type, lease_id FROM audit WHERE license_id = ${L.id} AND type IN ('checkout', 'checkin') ORDER BY id`;
    assert.deepEqual(
      audit
        .filter((a) => a.type === 'checkout')
        .map((a) => a.lease_id)
        .sort(),
      [...granted].sort(),
      'one checkout entry per grant',
    );
    assert.deepEqual(
      audit
        .filter((a) => a.type === 'checkin')
        .map((a) => a.lease_id)
        .sort(),
      granted.slice(0, 3).sort(),
      'one check-in entry per check-in',
    );
    assert.ok(
      audit.findIndex((a) => a.type === 'checkin') > audit.findLastIndex((a) => a.type === 'checkout'),
      'in the order of the decisions',
    );
  });

  test('the same use raced into one turn: one device, one lease, one seat', async () => {
    const L = await license(5);
    const results = await Promise.all(
      Array.from({ length: 12 }, () => licensing.checkout(L.key, { fingerprint: 'same', instanceId: 'one' })),
    );
    assert.ok(results.every((r) => r.ok));
    assert.equal(new Set(results.map((r) => r.ok && r.value.granted.lease.id)).size, 1);
    const [d] = await sql`SELECT COUNT(*)::int AS n FROM devices WHERE license_id = ${L.id}`;
    assert.equal(d!.n, 1);
    assert.deepEqual(await stored(L.id), { rows: 1, counter: 1, tally: 1, repairs: 0 });
  });

  test('a lease row written past floatd between turns is counted by the next turn, not granted over', async () => {
    const L = await license(3);
    const first = await licensing.checkout(L.key, { fingerprint: 'own-0', instanceId: 'a' });
    assert.ok(first.ok);
    // Two more rows for the license, inserted by hand (as an on-premise customer could): the counter says 1, the rows 3.
    const [dev] = await sql`SELECT device_id FROM leases WHERE license_id = ${L.id}`;
    for (const id of ['lse_hand_1', 'lse_hand_2'])
      await sql`INSERT INTO leases (id, license_id, device_id, base, offline, granted_at, last_heartbeat_at, expires_at)
        VALUES (${id}, ${L.id}, ${dev!.device_id}, true, false, ${Date.now()}, ${Date.now()}, ${Date.now() + 3_600_000})`;
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => licensing.checkout(L.key, { fingerprint: `after-${i}`, instanceId: 'a' })),
    );
    assert.equal(results.filter((r) => r.ok).length, 0, 'the rows hold every seat: nothing granted');
    const s = await stored(L.id);
    assert.equal(s.rows, 3);
    assert.equal(s.counter, 3, 'the counter was set to the rows');
  });

  test('a unit whose audit entry the database refuses fails alone, though the turn writes its entries together', async () => {
    const L = await license(20);
    // The database refuses one unit's entry (a trigger standing in for any refusal of its content).
    await sql.unsafe(`CREATE FUNCTION refuse_entry() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.data::text LIKE '%entry-bad%' THEN RAISE EXCEPTION 'entry refused' USING ERRCODE = '22023'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER refuse_entry BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse_entry()`);
    try {
      await raceAroundOne(L.key, 'entry', 'entry-bad', 5, 'refused entry');
    } finally {
      await sql.unsafe('DROP TRIGGER refuse_entry ON audit; DROP FUNCTION refuse_entry()');
    }
    assert.deepEqual(await stored(L.id), { rows: 10, counter: 10, tally: 10, repairs: 0 });
    const [n] = await sql`SELECT COUNT(*)::int AS n FROM audit WHERE license_id = ${L.id} AND type = 'checkout'`;
    assert.equal(n!.n, 10, "the other units' entries were written");
  });

  test("a unit whose read the database refuses fails alone; the turn's other units are decided and granted", async () => {
    const L = await license(20);
    // A NUL byte (refused by the HTTP layer's validation; here straight to the service): PostgreSQL refuses the text.
    await raceAroundOne(L.key, 'fine', 'bad\u0000print', 6, 'refused read');
    const s = await stored(L.id);
    assert.deepEqual(s, { rows: 12, counter: 12, tally: 12, repairs: 0 });
  });
});

/**
 * A license whose devices outgrew the statistics the cached plans were made with (a new database, a big customer): a
 * turn still looks each fingerprint, device and lease up by index. Read as `column = ANY(array)`, the generic plan made
 * while the table was small scanned every device of the license in each of a turn's statements (found in the bench:
 * 0.7 ms growing to 7 ms a statement within 20 s). Counted in the database's own statistics of tuples read.
 */
describe("a turn's reads whatever the statistics (PostgreSQL)", { skip: pgUp ? false : 'PostgreSQL not reachable' }, () => {
  test('3,000 devices added behind the cached plans: the next turns read a few rows of devices, not the license', async () => {
    const db = await createTempDatabase();
    const raw = postgres(db.url, { max: 1, onnotice: () => undefined });
    let store: PostgresStore | undefined;
    try {
      // Generic plans from the first execution (PostgreSQL's own choice after five), and no autovacuum to refresh them.
      await raw.unsafe(`ALTER DATABASE ${db.name} SET plan_cache_mode = force_generic_plan`);
      store = await PostgresStore.open({ url: db.url, max: 2 });
      for (const t of ['devices', 'leases', 'instances']) await raw.unsafe(`ALTER TABLE ${t} SET (autovacuum_enabled = off)`);
      const clock = new ManualClock(Date.now());
      const metrics = createMetrics(store, { defaultMetrics: false });
      const keys = await KeyRing.open(memoryKeyPersistence(), clock.now());
      const catalogue = new CatalogueService(store, clock, metrics, keys);
      const licensing = new LicensingService(store, clock, keys, metrics, undefined, {});
      const product = await catalogue.createProduct({ name: 'plans' }, 'test');
      assert.ok(product.ok);
      const created = await catalogue.createLicense({ productId: product.value.id, seats: 100_000 } as never, 'test');
      assert.ok(created.ok);
      const L = created.value;
      /** Concurrent checkouts (sharing turns), then their check-ins. */
      const round = async (tag: string) => {
        const out = await Promise.all(
          Array.from({ length: 8 }, (_, i) => licensing.checkout(L.key, { fingerprint: `${tag}-${i}`, instanceId: 'a' })),
        );
        assert.ok(out.every((r) => r.ok));
        const back = await Promise.all(out.map((r) => licensing.checkin(L.key, r.ok ? r.value.granted.lease.id : '', 'a')));
        assert.ok(back.every((r) => r.ok));
      };
      for (let i = 0; i < 3; i++) await round(`warm-${i}`);
      // The big customer's devices, from a connection that ends (its statistics are then flushed).
      const bulk = postgres(db.url, { max: 1, onnotice: () => undefined });
      await bulk`INSERT INTO devices (id, license_id, fingerprint, first_seen_at, last_accessed_at)
        SELECT 'dev_bulk_' || g, ${L.id}, 'bulk-' || g, 0, 0 FROM generate_series(1, 3000) g`;
      await bulk.end();
      for (let i = 0; i < 4; i++) await round(`late-${i}`);
      await store.close();
      store = undefined;
      // The store's backends flush their statistics as they exit: wait until every device insert is counted.
      let stats: postgres.Row | undefined;
      for (let i = 0; i < 100; i++) {
        [stats] = await raw`SELECT pg_stat_clear_snapshot(), n_tup_ins::int AS ins, COALESCE(seq_tup_read, 0)::int AS seq,
          COALESCE(idx_tup_fetch, 0)::int AS idx FROM pg_stat_user_tables WHERE relname = 'devices'`;
        if (stats?.ins === 3000 + 7 * 8) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(stats?.ins, 3000 + 7 * 8, 'the statistics were flushed');
      // 56 checkouts and 56 check-ins: a few look-ups each. A scan of the license would be 3,000 rows a statement.
      assert.ok(stats!.seq + stats!.idx < 1000, `devices rows read: ${stats!.seq} by scans, ${stats!.idx} by index`);
    } finally {
      await store?.close();
      await raw.end({ timeout: 1 });
      await db.drop();
    }
  });
});
