/**
 * The Store contract: one suite, run against both adapters. It talks to the
 * port and the services directly (no HTTP), with a manual clock.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../domain/clock.js';
import { SeatGuardError } from '../domain/effects.js';
import { KeyRing, memoryKeyPersistence } from '../keys.js';
import { CatalogueService } from '../service/catalogue.js';
import { LicensingService } from '../service/licensing.js';
import { createMetrics } from '../service/metrics.js';
import { ReclaimService } from '../service/reclaim.js';
import { createTempDatabase, postgresAvailable, type TempDatabase } from '../testing/pg.js';
import type { ChangeEvent, Store } from './port.js';
import { PostgresStore } from './postgres/store.js';
import { SqliteStore } from './sqlite/store.js';

interface Adapter {
  name: 'sqlite' | 'postgres';
  /** opens a store on the shared database */
  open(): Promise<Store>;
  /**
   * Another node on the same database. PostgreSQL: a second pool, as another
   * process would have. SQLite is one node per file (better-sqlite3 is synchronous:
   * two connections in one thread would wait on each other), so its peer is the same store.
   */
  openPeer(first: Store): Promise<Store>;
  setup(): Promise<void>;
  teardown(): Promise<void>;
}

function sqliteAdapter(): Adapter {
  let dir = '';
  return {
    name: 'sqlite',
    async setup() {
      dir = await mkdtemp(join(tmpdir(), 'floatd-contract-'));
    },
    open: async () => new SqliteStore({ path: join(dir, 'floatd.db') }),
    openPeer: async (first) =>
      new Proxy(first, {
        get: (target, key) => {
          if (key === 'close') return async () => undefined;
          const v = Reflect.get(target, key) as unknown;
          return typeof v === 'function' ? v.bind(target) : v;
        },
      }),
    async teardown() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function postgresAdapter(): Adapter {
  let db: TempDatabase | undefined;
  return {
    name: 'postgres',
    async setup() {
      db = await createTempDatabase();
    },
    open: async () => PostgresStore.open({ url: db!.url, max: 8 }),
    openPeer: async () => PostgresStore.open({ url: db!.url, max: 8 }),
    async teardown() {
      await db?.drop();
    },
  };
}

async function services(store: Store, clock: ManualClock) {
  const metrics = createMetrics(store, { defaultMetrics: false });
  const keys = await KeyRing.open(memoryKeyPersistence(), clock.now());
  return {
    licensing: new LicensingService(store, clock, keys, metrics),
    catalogue: new CatalogueService(store, clock, metrics, keys),
    reclaim: new ReclaimService(store, clock, metrics),
  };
}

const pgUp = await postgresAvailable();
if (!pgUp && process.env.CI === 'true') throw new Error('PostgreSQL is not reachable at 127.0.0.1:5432: the contract suite must run on both adapters in CI');
if (!pgUp) console.warn('\n!!! PostgreSQL is not reachable: the PostgreSQL half of the Store contract suite is SKIPPED !!!\n');

for (const adapter of [sqliteAdapter(), postgresAdapter()]) {
  describe(`Store contract: ${adapter.name}`, { skip: adapter.name === 'postgres' && !pgUp ? 'PostgreSQL not reachable' : false }, () => {
    let store: Store;
    let clock: ManualClock;
    let svc: Awaited<ReturnType<typeof services>>;
    before(async () => {
      await adapter.setup();
      store = await adapter.open();
      clock = new ManualClock(Date.parse('2026-06-01T10:00:00Z'));
      svc = await services(store, clock);
    });
    after(async () => {
      await store.close();
      await adapter.teardown();
    });

    async function license(policy: Record<string, unknown> = {}) {
      const product = await svc.catalogue.createProduct({ name: 'contract' }, 'test');
      const r = await svc.catalogue.createLicense({ productId: product.id, seats: 5, ...policy } as never, 'test');
      assert.ok(r.ok);
      return r.value;
    }

    test('opening the same database again applies no migration twice', async () => {
      const again = await adapter.open();
      await again.ping();
      await again.close();
    });

    test('the seats guard refuses an over-allocation and rolls the whole transaction back', async () => {
      const lic = await license({ seats: 1 });
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.apply([{ type: 'seats', licenseId: lic.id, used: 1, offline: 0 }]);
          await tx.apply([{ type: 'seats', licenseId: lic.id, used: 1, offline: 0 }]);
        }),
        SeatGuardError,
      );
      assert.equal((await store.getLicense(lic.id))!.seatsUsed, 0, 'the first +1 was rolled back too');
      await assert.rejects(
        store.transaction((tx) => tx.apply([{ type: 'seats', licenseId: lic.id, used: -1, offline: 0 }])),
        SeatGuardError,
        'never below zero',
      );
    });

    test('a transaction that throws writes nothing and announces nothing', async () => {
      const seen: ChangeEvent[] = [];
      const off = store.subscribe((e) => seen.push(e));
      const lic = await license();
      // Wait for the license's own creation notice (PostgreSQL delivers it asynchronously), then start from nothing.
      for (let i = 0; i < 250 && !seen.some((e) => e.licenseId === lic.id); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(seen.some((e) => e.kind === 'license' && e.licenseId === lic.id));
      seen.length = 0;
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.apply([{ type: 'license.update', license: { ...lic, seats: 99, updatedAt: clock.now() } }]);
          throw new Error('boom');
        }),
        /boom/,
      );
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await store.getLicense(lic.id))!.seats, 5);
      assert.deepEqual(seen, []);
      await svc.catalogue.updateLicense(lic.id, { seats: 6 }, 'test');
      for (let i = 0; i < 50 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      off();
      assert.deepEqual(seen, [{ kind: 'license', licenseId: lic.id }]);
    });

    test('of many concurrent transactions, the ones that throw roll back alone and the others all commit (group commit on SQLite)', async () => {
      const lic = await license({ seats: 50 });
      const outcomes = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) =>
          store.transaction(async (tx) => {
            await tx.apply([{ type: 'seats', licenseId: lic.id, used: 1, offline: 0 }]);
            if (i % 3 === 0) throw new Error(`unit ${i} fails`);
            return i;
          }),
        ),
      );
      const committed = outcomes.filter((o) => o.status === 'fulfilled').length;
      assert.equal(committed, 40);
      assert.ok(outcomes.every((o, i) => (i % 3 === 0 ? o.status === 'rejected' : o.status === 'fulfilled' && o.value === i)));
      assert.equal((await store.getLicense(lic.id))!.seatsUsed, 40, 'exactly the units that returned were written');
      // a guard refusal inside a group undoes only its own unit
      const more = await Promise.allSettled(
        Array.from({ length: 20 }, () => store.transaction((tx) => tx.apply([{ type: 'seats', licenseId: lic.id, used: 1, offline: 0 }]))),
      );
      assert.equal(more.filter((o) => o.status === 'fulfilled').length, 10);
      assert.ok(more.every((o) => o.status === 'fulfilled' || o.reason instanceof SeatGuardError));
      assert.equal((await store.getLicense(lic.id))!.seatsUsed, 50);
    });

    test('N parallel checkouts never exceed the seat count — also from two nodes on one database', async () => {
      const lic = await license({ seats: 10 });
      const second = await adapter.openPeer(store);
      const svc2 = await services(second, clock);
      try {
        const results = await Promise.all(
          Array.from({ length: 120 }, (_, i) =>
            (i % 2 ? svc2 : svc).licensing.checkout(lic.key, { fingerprint: `contract-dev-${i}`, instanceId: 'a' }),
          ),
        );
        assert.equal(results.filter((r) => r.ok).length, 10);
        assert.ok(results.every((r) => r.ok || r.error.code === 'NO_SEATS_AVAILABLE'));
        const l = (await store.getLicense(lic.id))!;
        assert.equal(l.seatsUsed, 10);
        assert.equal((await store.listLeases(lic.id)).length, 10);

        // Check-ins racing with checkouts and with a reclamation sweep on the other node never double-free.
        const granted = results.filter((r) => r.ok).map((r) => (r.ok ? r.value.granted.lease.id : ''));
        clock.advanceSeconds(901); // every lease is dead now (default TTL 900 s)
        const race = await Promise.all([
          ...granted.slice(0, 5).map((id) => svc.licensing.checkin(lic.key, id, 'a')),
          svc2.reclaim.sweep('reclaimer'),
          svc.reclaim.sweep('reclaimer'),
          ...Array.from({ length: 30 }, (_, i) => (i % 2 ? svc : svc2).licensing.checkout(lic.key, { fingerprint: `contract-new-${i}`, instanceId: 'a' })),
        ]);
        const newGrants = race.slice(7).filter((r) => (r as { ok: boolean }).ok).length;
        assert.equal(newGrants, 10, 'all ten dead seats were reusable, no more');
        const after = (await store.getLicense(lic.id))!;
        assert.equal(after.seatsUsed, 10);
        assert.equal((await store.listLeases(lic.id)).length, 10);
        const releases = await store.listAudit({ limit: 500, licenseId: lic.id, type: 'release' });
        const freed = releases.items.map((e) => e.leaseId);
        assert.equal(new Set(freed).size, freed.length, 'no lease released twice');
        assert.equal(freed.length, 10);
      } finally {
        await second.close();
      }
    });

    test('a heartbeat racing the reclaimer either renews the lease or finds it gone — never both', async () => {
      const lic = await license({ seats: 40, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
      const grants = [];
      for (let i = 0; i < 40; i++) {
        const r = await svc.licensing.checkout(lic.key, { fingerprint: `race-dev-${i}`, instanceId: 'a' });
        assert.ok(r.ok);
        grants.push(r.value.granted.lease.id);
      }
      clock.advanceSeconds(61);
      const second = await adapter.openPeer(store);
      const svc2 = await services(second, clock);
      try {
        const [sweep, ...beats] = await Promise.all([svc2.reclaim.sweep('reclaimer'), ...grants.map((id) => svc.licensing.heartbeat(lic.key, id, 'a'))]);
        const freed = new Set(sweep.freed.map((f) => f.leaseId));
        for (const [i, b] of beats.entries()) {
          const id = grants[i]!;
          if (b.ok) assert.ok(!freed.has(id), `${id} was renewed, so it must not have been freed`);
          else assert.equal(b.error.code, 'LEASE_NOT_FOUND');
        }
        const leases = await store.listLeases(lic.id);
        assert.equal((await store.getLicense(lic.id))!.seatsUsed, leases.length);
        assert.equal(leases.length + freed.size, 40);
      } finally {
        await second.close();
      }
    });
  });
}
