/**
 * The database's seat tally (`lease_tally`, migration 13, issue #17): a seat transaction on PostgreSQL checks the
 * license's counters against it instead of counting every lease row under the lock, and counts the rows themselves
 * every `recountEvery` checks (every time on-premise). These tests write the rows as floatd does and as a customer
 * with SQL would, and try the one edit the triggers cannot see: the tally and the counters set together.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { ManualClock } from '../../domain/clock.js';
import { KeyRing, memoryKeyPersistence } from '../../keys/ring.js';
import { CatalogueService } from '../../service/catalogue.js';
import { LicensingService } from '../../service/licensing.js';
import { createMetrics } from '../../service/metrics.js';
import { ReclaimService } from '../../service/reclaim.js';
import { createTempDatabase, postgresAvailable, type TempDatabase } from '../../testing/pg.js';
import { PostgresStore } from './store.js';

const pgUp = await postgresAvailable();
if (!pgUp && process.env.CI === 'true') throw new Error('PostgreSQL is not reachable at 127.0.0.1:5432');

describe('PostgreSQL seat tally', { skip: pgUp ? false : 'PostgreSQL not reachable' }, () => {
  let db: TempDatabase;
  let raw: postgres.Sql;
  const opened: PostgresStore[] = [];
  before(async () => {
    db = await createTempDatabase();
    raw = postgres(db.url, { max: 2, onnotice: () => undefined });
  });
  after(async () => {
    for (const s of opened) await s.close();
    await raw.end();
    await db.drop();
  });

  async function world(recountEvery?: number) {
    const store = await PostgresStore.open({ url: db.url, max: 6, recountEvery });
    opened.push(store);
    const clock = new ManualClock(Date.parse('2026-06-01T10:00:00Z'));
    const metrics = createMetrics(store, { defaultMetrics: false });
    const keys = await KeyRing.open(memoryKeyPersistence(), clock.now());
    const catalogue = new CatalogueService(store, clock, metrics, keys);
    const licensing = new LicensingService(store, clock, keys, metrics);
    const reclaim = new ReclaimService(store, clock, metrics);
    const product = await catalogue.createProduct({ name: 'tally' }, 'test');
    assert.ok(product.ok);
    const license = async (seats: number, maxOfflineSeconds = 0) => {
      const r = await catalogue.createLicense(
        { productId: product.value.id, seats, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60, maxOfflineSeconds } as never,
        'test',
      );
      assert.ok(r.ok);
      return r.value;
    };
    return { store, clock, licensing, reclaim, license };
  }

  /** The tally and the rows' own count of a license, side by side. */
  async function both(licenseId: string) {
    const [t] = await raw`SELECT used, offline FROM lease_tally WHERE license_id = ${licenseId}`;
    const [c] = await raw`SELECT COUNT(*) FILTER (WHERE base)::int AS used, COUNT(*) FILTER (WHERE base AND offline)::int AS offline
      FROM leases WHERE license_id = ${licenseId}`;
    return { tally: { used: t?.used ?? 0, offline: t?.offline ?? 0 }, rows: { used: c!.used, offline: c!.offline } };
  }
  const agree = async (licenseId: string, used: number, offline = 0) =>
    assert.deepEqual(await both(licenseId), { tally: { used, offline }, rows: { used, offline } });

  test("follows floatd's writes: parallel checkouts, offline checkouts, check-ins, a sweep's bulk delete", async () => {
    const w = await world();
    const lic = await w.license(40, 86_400);
    const got = await Promise.all(
      Array.from({ length: 60 }, (_, i) => w.licensing.checkout(lic.key, { fingerprint: `t-${i}`, instanceId: 'a' })),
    );
    const held = got.flatMap((g) => (g.ok ? [g.value.granted.lease.id] : []));
    assert.equal(held.length, 40, 'the limit held');
    await agree(lic.id, 40);
    for (const id of held.slice(0, 10)) assert.ok((await w.licensing.checkin(lic.key, id, 'a')).ok);
    await agree(lic.id, 30);
    for (let i = 0; i < 3; i++) {
      const off = await w.licensing.offlineCheckout(lic.key, { fingerprint: `off-${i}`, instanceId: 'a', durationSeconds: 3600 });
      assert.ok(off.ok, JSON.stringify(off));
    }
    await agree(lic.id, 33, 3);
    // Every online lease falls silent; one sweep frees them (bulk deletes) and keeps the offline ones.
    w.clock.advance(3_600_000 - 1_000);
    const swept = await w.reclaim.sweep('test');
    assert.equal(swept.freed.length, 30);
    await agree(lic.id, 3, 3);
    assert.equal((await w.store.getLicense(lic.id))!.seatsUsed, 3);
  });

  test('follows writes made with SQL: rows inserted, moved offline, deleted, truncated', async () => {
    const w = await world();
    const lic = await w.license(10);
    for (let i = 0; i < 4; i++) assert.ok((await w.licensing.checkout(lic.key, { fingerprint: `s-${i}`, instanceId: 'a' })).ok);
    await agree(lic.id, 4);
    const [lease] = await raw`SELECT * FROM leases WHERE license_id = ${lic.id} LIMIT 1`;
    await raw`INSERT INTO leases ${raw({ ...lease!, id: 'lse_byhand1' })}`;
    await raw`INSERT INTO leases ${raw({ ...lease!, id: 'lse_byhand2', base: false })}`;
    await agree(lic.id, 5);
    await raw`UPDATE leases SET offline = true WHERE id = 'lse_byhand1'`;
    await agree(lic.id, 5, 1);
    await raw`UPDATE leases SET base = false WHERE id = 'lse_byhand1'`;
    await agree(lic.id, 4, 0);
    await raw`DELETE FROM leases WHERE license_id = ${lic.id} AND id IN (SELECT id FROM leases WHERE license_id = ${lic.id} AND base LIMIT 2)`;
    await agree(lic.id, 2);
    // The counters edited alone are repaired by the next seat transaction: the limit holds.
    await raw`UPDATE licenses SET seats_used = 0 WHERE id = ${lic.id}`;
    const more = await Promise.all(
      Array.from({ length: 20 }, (_, i) => w.licensing.checkout(lic.key, { fingerprint: `m-${i}`, instanceId: 'a' })),
    );
    assert.equal(more.filter((g) => g.ok).length, 8);
    await agree(lic.id, 10);
    assert.equal((await w.store.getLicense(lic.id))!.seatsUsed, 10);
    await raw`TRUNCATE leases CASCADE`;
    await agree(lic.id, 0);
    // Checkouts with keys no license has leave nothing behind in the node's recount schedule.
    const schedule = (w.store as unknown as { sinceCount: Map<string, number> }).sinceCount;
    const size = schedule.size;
    for (let i = 0; i < 20; i++) await w.licensing.checkout(`NOSUCH-${i}`, { fingerprint: 'x', instanceId: 'a' });
    assert.equal(schedule.size, size);
  });

  test('the tally and the counters lowered together (past the triggers): on-premise counting every time grants nothing', async () => {
    const w = await world(1);
    const lic = await w.license(5);
    for (let i = 0; i < 5; i++) assert.ok((await w.licensing.checkout(lic.key, { fingerprint: `p-${i}`, instanceId: 'a' })).ok);
    await raw`UPDATE lease_tally SET used = 0 WHERE license_id = ${lic.id}`;
    await raw`UPDATE licenses SET seats_used = 0 WHERE id = ${lic.id}`;
    const tries = await Promise.all(
      Array.from({ length: 10 }, (_, i) => w.licensing.checkout(lic.key, { fingerprint: `q-${i}`, instanceId: 'a' })),
    );
    assert.equal(tries.filter((g) => g.ok).length, 0, 'no seat past the limit');
    await agree(lic.id, 5);
    assert.equal((await w.store.getLicense(lic.id))!.seatsUsed, 5);
  });

  test('...and hosted, the limit of the tally: at most recountEvery - 1 checks trust it before the rows are counted', async () => {
    const RECOUNT = 4;
    const w = await world(RECOUNT);
    const lic = await w.license(5);
    // One by one, so that each is its own check (a turn of parallel checkouts is one check).
    for (let i = 0; i < 5; i++) assert.ok((await w.licensing.checkout(lic.key, { fingerprint: `h-${i}`, instanceId: 'a' })).ok);
    await raw`UPDATE lease_tally SET used = 0 WHERE license_id = ${lic.id}`;
    await raw`UPDATE licenses SET seats_used = 0 WHERE id = ${lic.id}`;
    let granted = 0;
    for (let i = 0; i < 12; i++) if ((await w.licensing.checkout(lic.key, { fingerprint: `r-${i}`, instanceId: 'a' })).ok) granted++;
    assert.ok(granted <= RECOUNT - 1, `granted ${granted} past the limit, at most ${RECOUNT - 1}`);
    // The count found the rows: tally and counters set right, and no seat is granted any more.
    await agree(lic.id, 5 + granted);
    assert.equal((await w.store.getLicense(lic.id))!.seatsUsed, 5 + granted);
    const repaired = await raw`SELECT 1 FROM audit WHERE license_id = ${lic.id} AND type = 'seats.repaired'`;
    assert.ok(repaired.length >= 1, 'the repair is audited');
    for (let i = 0; i < 2 * RECOUNT; i++) assert.ok(!(await w.licensing.checkout(lic.key, { fingerprint: `z-${i}`, instanceId: 'a' })).ok);
  });
});
