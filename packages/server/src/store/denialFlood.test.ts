/**
 * A denial flood and the history it leaves (issue #24, part 2), on both stores, through the real service and
 * store (no HTTP, for speed; http/denialFlood.test.ts sends a smaller flood over HTTP):
 * - 100,000 denied checkouts with fresh fingerprints on a real SQLite file grow it by a bounded amount: at most
 *   51 audit entries and one usage row per license and hour, every denial still counted exactly; no device row;
 * - retention removes exactly what is older than the period, in batches, on SQLite and PostgreSQL.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../domain/clock.js';
import { DENIAL_AUDIT_FINGERPRINTS_PER_WINDOW } from '../domain/seats.js';
import { KeyRing, memoryKeyPersistence } from '../keys/ring.js';
import { CatalogueService } from '../service/catalogue.js';
import { LicensingService } from '../service/licensing.js';
import { createMetrics } from '../service/metrics.js';
import { DAY_MS, prune } from '../jobs/retention.js';
import { createTempDatabase, postgresAvailable, type TempDatabase } from '../testing/pg.js';
import type { Store } from './port.js';
import { PostgresStore } from './postgres/store.js';
import { SqliteStore } from './sqlite/store.js';

const HOUR = 3_600_000;
const pgUp = await postgresAvailable();
if (!pgUp && process.env.CI === 'true')
  throw new Error('PostgreSQL is not reachable at 127.0.0.1:5432: this suite must run on both stores in CI');

/** Bytes of a SQLite database once its WAL is checkpointed into the main file. */
async function sqliteBytes(store: SqliteStore, path: string): Promise<number> {
  await store.transaction(async () => undefined);
  (store as unknown as { db: { pragma(s: string): unknown } }).db.pragma('wal_checkpoint(TRUNCATE)');
  return (await stat(path)).size;
}

async function world(store: Store, clock: ManualClock) {
  const metrics = createMetrics(store, { defaultMetrics: false });
  const keys = await KeyRing.open(memoryKeyPersistence(), clock.now());
  const catalogue = new CatalogueService(store, clock, metrics, keys);
  const licensing = new LicensingService(store, clock, keys, metrics);
  const product = await catalogue.createProduct({ name: 'flood' }, 'test');
  assert.ok(product.ok);
  const lic = await catalogue.createLicense({ productId: product.value.id, seats: 1, leaseTtlSeconds: 86_400 } as never, 'test');
  assert.ok(lic.ok);
  const held = await licensing.checkout(lic.value.key, { fingerprint: 'holder-0000', instanceId: 'a' });
  assert.ok(held.ok);
  return { metrics, licensing, license: lic.value };
}

/** `n` denied checkouts with fresh fingerprints, `parallel` at a time; the clock moves 1 ms per denial. */
async function flood(licensing: LicensingService, clock: ManualClock, key: string, n: number, parallel = 500): Promise<void> {
  for (let i = 0; i < n; i += parallel) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(n, i + parallel); j++) {
      clock.advance(1);
      batch.push(
        licensing.checkout(key, { fingerprint: `fresh-${j.toString(36).padStart(8, '0')}`, instanceId: 'x' }).then((r) => {
          assert.ok(!r.ok && r.error.code === 'NO_SEATS_AVAILABLE');
        }),
      );
    }
    await Promise.all(batch);
  }
}

async function counts(store: Store, licenseId: string) {
  const audit: { count: number; fingerprint: unknown; otherFingerprints?: unknown }[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.listAudit({ licenseId, type: 'denied', limit: 500, cursor });
    audit.push(...page.items.map((a) => a.data as never));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  const devices = await store.listDevices(licenseId);
  return { audit, devices };
}

describe('denial flood: SQLite, 100,000 denials with fresh fingerprints', () => {
  let dir = '';
  let store: SqliteStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'floatd-denials-'));
    store = new SqliteStore({ path: join(dir, 'floatd.db') });
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('grow the database by a bounded amount, count every denial, and create no device', async () => {
    const clock = new ManualClock(Date.parse('2026-06-01T10:30:00Z'));
    const { metrics, licensing, license } = await world(store, clock);
    const path = join(dir, 'floatd.db');
    const bytesBefore = await sqliteBytes(store, path);
    const N = 100_000;
    await flood(licensing, clock, license.key, N); // 100 s of clock: spans 10:30 .. 10:31:40, one hour window
    const bytesAfter = await sqliteBytes(store, path);
    const { audit, devices } = await counts(store, license.id);
    const usage = await store.usage(license.id, Date.parse('2026-06-01T00:00:00Z'), Date.parse('2026-06-02T00:00:00Z'));
    const growth = bytesAfter - bytesBefore;
    process.stdout.write(
      `# 100,000 denials: ${audit.length} audit entries, 1 usage row, +${growth} bytes (${bytesBefore} -> ${bytesAfter})\n`,
    );

    // counted exactly, one by one
    assert.equal((await metrics.denials.get()).values[0]?.value, N, 'the metric counts every denial');
    assert.equal(
      usage.reduce((n, h) => n + h.denials, 0),
      N,
      'usage counts every denial',
    );
    assert.equal(
      audit.reduce((n, a) => n + a.count, 0),
      N,
      'the audit entries add up to every denial',
    );
    // audited in aggregate: 50 fingerprints one by one, the rest in the overflow entry
    assert.equal(audit.length, DENIAL_AUDIT_FINGERPRINTS_PER_WINDOW + 1);
    assert.equal(audit.filter((a) => a.otherFingerprints === true).length, 1);
    // no device row for a denial: only the holder's
    assert.equal(devices.length, 1);
    assert.equal(devices[0]!.fingerprint, 'holder-0000');
    // the stated bound (docs/operations.md): well under 256 KiB for 100,000 denials in one license-hour
    assert.ok(growth < 256 * 1024, `grew by ${growth} bytes`);
  });

  test('a second hour adds at most another 51 entries; a repeated fingerprint adds to its own entry', async () => {
    const clock = new ManualClock(Date.parse('2026-06-03T10:59:59Z'));
    const { licensing, license } = await world(store, clock);
    for (let i = 0; i < 3; i++) assert.ok(!(await licensing.checkout(license.key, { fingerprint: 'retrying-client', instanceId: 'x' })).ok);
    clock.advance(2000); // the next hour
    for (let i = 0; i < 2; i++) assert.ok(!(await licensing.checkout(license.key, { fingerprint: 'retrying-client', instanceId: 'x' })).ok);
    await flood(licensing, clock, license.key, 500);
    const { audit } = await counts(store, license.id);
    const retrying = audit.filter((a) => a.fingerprint === 'retrying-client');
    assert.deepEqual(retrying.map((a) => a.count).sort(), [2, 3], 'one entry per fingerprint and hour, with its count');
    assert.ok(audit.length <= 2 * (DENIAL_AUDIT_FINGERPRINTS_PER_WINDOW + 1));
    assert.equal(
      audit.reduce((n, a) => n + a.count, 0),
      505,
    );
  });
});

function adapters(): { name: string; skip: boolean; open(): Promise<Store>; done(): Promise<void> }[] {
  let dir = '';
  let db: TempDatabase | undefined;
  return [
    {
      name: 'sqlite',
      skip: false,
      async open() {
        dir = await mkdtemp(join(tmpdir(), 'floatd-retention-'));
        return new SqliteStore({ path: join(dir, 'floatd.db') });
      },
      done: () => rm(dir, { recursive: true, force: true }),
    },
    {
      name: 'postgres',
      skip: !pgUp,
      async open() {
        db = await createTempDatabase();
        return PostgresStore.open({ url: db.url, max: 4 });
      },
      done: async () => db?.drop(),
    },
  ];
}

for (const adapter of adapters()) {
  describe(`retention: ${adapter.name}`, { skip: adapter.skip ? 'PostgreSQL not reachable' : false }, () => {
    let store: Store;
    before(async () => {
      store = await adapter.open();
    });
    after(async () => {
      await store.close();
      await adapter.done();
    });

    test('pruning removes exactly what is older than the period, in small batches, audit and usage', async () => {
      const now = Date.parse('2026-09-10T12:00:00Z');
      const clock = new ManualClock(now);
      const auditCut = now - 30 * DAY_MS;
      const usageCut = now - 400 * DAY_MS;
      const lic = 'lic_retentionretention';
      const audit = (at: number, tag: string) => ({
        type: 'audit' as const,
        entry: { at, type: 'checkout' as const, actor: 'test', licenseId: lic, deviceId: null, leaseId: null, reason: null, data: { tag } },
      });
      // 1,203 entries older than the cut (several batches), the ones at and after the cut stay
      const old = Array.from({ length: 1203 }, (_, i) => audit(auditCut - 1 - i * 60_000, `old-${i}`));
      await store.transaction((tx) => tx.apply([...old, audit(auditCut, 'at-cut'), audit(auditCut + 1, 'after-cut'), audit(now, 'now')]));
      // an aggregated entry that began before the cut but is still going after it stays, one wholly before goes
      const agg = (key: string, at: number) => ({
        type: 'audit.aggregate' as const,
        key,
        window: `w-${key}`,
        cap: 50,
        entry: {
          at,
          type: 'denied' as const,
          actor: 'client',
          licenseId: lic,
          deviceId: null,
          leaseId: null,
          reason: 'NO_SEATS_AVAILABLE',
          data: { tag: key },
        },
        overflow: {
          key: `${key}:*`,
          entry: { at, type: 'denied' as const, actor: 'client', licenseId: lic, deviceId: null, leaseId: null, reason: null, data: {} },
        },
      });
      await store.transaction((tx) =>
        tx.apply([
          agg('agg-live', auditCut - 5000),
          agg('agg-live', auditCut + 5000),
          agg('agg-gone', auditCut - 9000),
          agg('agg-gone', auditCut - 8000),
        ]),
      );
      // usage: hours that ended before the cut go; the hour that holds the cut, and later ones, stay
      const usage = (hour: number) => ({
        type: 'usage' as const,
        licenseId: lic,
        at: hour,
        seatsUsed: 1,
        peak: 1,
        checkouts: 1,
        denials: 0,
        peakOverdraft: 0,
        overdraftAtEnd: 0,
        overdraftCheckouts: 0,
      });
      const cutHour = usageCut - (usageCut % HOUR);
      const hours = [cutHour - 3 * HOUR, cutHour - 2 * HOUR, cutHour - HOUR, cutHour, cutHour + HOUR];
      await store.transaction((tx) => tx.apply(hours.map(usage)));

      const result = await prune(store, clock, { auditDays: 30, usageDays: 400 }, { batch: 200, pauseMs: 0 });
      assert.deepEqual(result, { audit: 1203 + 1, usage: 3 });
      const left = await store.listAudit({ licenseId: lic, limit: 500 });
      assert.deepEqual(left.items.map((a) => a.data.tag).sort(), ['after-cut', 'agg-live', 'at-cut', 'now']);
      assert.equal(left.items.find((a) => a.data.tag === 'agg-live')!.data.count, 2);
      const kept = (await store.usage(lic, cutHour - 5 * HOUR, cutHour + 2 * HOUR)).filter((h) => h.checkouts > 0).map((h) => h.hour);
      assert.deepEqual(kept, [cutHour, cutHour + HOUR]);
      // a second pass finds nothing; a period of 0 keeps everything
      assert.deepEqual(await prune(store, clock, { auditDays: 30, usageDays: 400 }), { audit: 0, usage: 0 });
      clock.advance(1000 * DAY_MS);
      assert.deepEqual(await prune(store, clock, { auditDays: 0, usageDays: 0 }), { audit: 0, usage: 0 });
    });
  });
}
