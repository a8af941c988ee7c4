/**
 * The Store contract: one suite, run against both adapters. It talks to the
 * port and the services directly (no HTTP), with a manual clock.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { x25519Pair } from '@floatd/protocol/sessionKeys';
import { ManualClock } from '../domain/clock.js';
import { newId } from '../ids.js';
import { SeatGuardError } from '../domain/effects.js';
import { KeyRing, memoryKeyPersistence } from '../keys/ring.js';
import { CatalogueService } from '../service/catalogue.js';
import { LicensingService } from '../service/licensing.js';
import { createMetrics } from '../service/metrics.js';
import { ReclaimService } from '../service/reclaim.js';
import { RenewalBuffer } from '../service/renewals.js';
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

async function services(store: Store, clock: ManualClock, renewals?: RenewalBuffer) {
  const metrics = createMetrics(store, { defaultMetrics: false });
  const keys = await KeyRing.open(memoryKeyPersistence(), clock.now());
  return {
    metrics,
    licensing: new LicensingService(store, clock, keys, metrics, renewals),
    catalogue: new CatalogueService(store, clock, metrics, keys),
    reclaim: new ReclaimService(store, clock, metrics, renewals),
  };
}

const pgUp = await postgresAvailable();
if (!pgUp && process.env.CI === 'true')
  throw new Error('PostgreSQL is not reachable at 127.0.0.1:5432: the contract suite must run on both adapters in CI');
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
      assert.ok(product.ok);
      const r = await svc.catalogue.createLicense({ productId: product.value.id, seats: 5, ...policy } as never, 'test');
      assert.ok(r.ok);
      return r.value;
    }

    test('opening the same database again applies no migration twice', async () => {
      const again = await adapter.open();
      await again.ping();
      await again.close();
    });

    test('probeWrite commits a write that changes nothing visible', async () => {
      const lic = await license({ seats: 2 });
      const before = await store.getLicense(lic.id);
      await store.probeWrite();
      await store.probeWrite();
      assert.deepEqual(await store.getLicense(lic.id), before);
      // the store still writes normally afterwards (no transaction left open)
      await store.transaction((tx) => tx.apply([{ type: 'seats', licenseId: lic.id, used: 1, offline: 0 }]));
      assert.equal((await store.getLicense(lic.id))!.seatsUsed, 1);
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
      for (let i = 0; i < 250 && !seen.some((e) => e.kind === 'license' && e.licenseId === lic.id); i++)
        await new Promise((r) => setTimeout(r, 20));
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

    test('units that each change more than 64 KiB of pages (SQLite keeps their savepoint journal in memory): one that throws after its writes rolls back alone', async () => {
      const lic = await license({ seats: 30 });
      const filler = 'x'.repeat(2000);
      // 40 entries of 2 KB per unit, each on its own device id: about 25 pages of the table and its indexes a unit.
      const outcomes = await Promise.allSettled(
        Array.from({ length: 30 }, (_, i) =>
          store.transaction(async (tx) => {
            await tx.apply([
              { type: 'seats', licenseId: lic.id, used: 1, offline: 0 },
              ...Array.from({ length: 40 }, (_, j) => ({
                type: 'audit' as const,
                entry: {
                  at: clock.now(),
                  type: 'checkin' as const,
                  actor: `unit-${i}`,
                  licenseId: lic.id,
                  deviceId: `dev_${randomBytes(8).toString('hex')}`,
                  leaseId: null,
                  reason: null,
                  data: { j, filler },
                },
              })),
            ]);
            if (i % 3 === 0) throw new Error(`unit ${i} fails after its writes`);
            return i;
          }),
        ),
      );
      assert.ok(outcomes.every((o, i) => (i % 3 === 0 ? o.status === 'rejected' : o.status === 'fulfilled' && o.value === i)));
      assert.equal((await store.getLicense(lic.id))!.seatsUsed, 20);
      for (let i = 0; i < 30; i++) {
        const page = await store.listAudit({ licenseId: lic.id, actor: `unit-${i}`, limit: 100 });
        assert.equal(page.items.length, i % 3 === 0 ? 0 : 40, `unit ${i}`);
        if (i % 3 !== 0) assert.ok(page.items.every((e) => (e.data as { filler: string }).filler === filler));
      }
    });

    test("leaseOfKey reads license, lease with instances and device in one go, only within the key's license", async () => {
      const lic = await license({ seats: 3 });
      const other = await license({ seats: 3 });
      const g = await svc.licensing.checkout(lic.key, { fingerprint: 'lok-device-1', instanceId: 'a', hostname: 'h1' });
      assert.ok(g.ok);
      const id = g.value.granted.lease.id;
      const r = await store.leaseOfKey(lic.key, id, 'a');
      assert.ok(r);
      assert.equal(r.license.id, lic.id);
      assert.equal(r.license.seatsUsed, 1);
      const { device: _viewDevice, ...stored } = (await store.getLease(id))!;
      assert.deepEqual(r.lease, stored, 'the same lease as the admin read');
      assert.equal(r.lease!.id, id);
      assert.deepEqual(
        r.lease!.instances.map((i) => i.instanceId),
        ['a'],
      );
      assert.equal(typeof r.lease!.expiresAt, 'number');
      assert.equal(r.device!.hostname, 'h1');
      assert.equal(r.device!.fingerprint, 'lok-device-1');
      const cross = await store.leaseOfKey(other.key, id, 'a');
      assert.equal(cross!.license.id, other.id);
      assert.equal(cross!.lease, undefined, "another license's lease is not found through this key");
      assert.equal(await store.leaseOfKey('NO-SUCH-KEY', id, 'a'), undefined);
    });

    test('reads named with the license lock (ReadAhead; PostgreSQL sends them in its round trip) answer as the plain reads, and none outlives a write', async () => {
      const lic = await license({ seats: 5, sharing: { by: ['user'], cap: null } });
      const other = await license({ seats: 2 });
      // A holds a seat for alice, B (alice too) is a use on A's seat, C holds its own; O is another license's.
      const grant = async (key: string, fingerprint: string, instanceId: string, user?: string) => {
        clock.advance(1000); // uses are read in order of start
        const g = await svc.licensing.checkout(key, { fingerprint, instanceId, ...(user ? { user } : {}) });
        assert.ok(g.ok, JSON.stringify(g));
        return g.value.granted.lease.id;
      };
      const leaseA = await grant(lic.key, 'ra-A', 'a1', 'alice');
      assert.equal(await grant(lic.key, 'ra-A', 'a2', 'alice'), leaseA);
      assert.equal(await grant(lic.key, 'ra-B', 'b1', 'alice'), leaseA, "B's use is on A's seat");
      const leaseC = await grant(lic.key, 'ra-C', 'c1', 'carol');
      const leaseO = await grant(other.key, 'ra-O', 'o1');

      // `turn`: named up front too, in the license's group (PostgreSQL: read by the turn for all its units, TurnView).
      const byFingerprint = (fingerprint: string, ahead: boolean, turn = false) =>
        store.transaction(
          async (tx) => {
            const l = await tx.lockLicenseByKey(lic.key, ahead ? { fingerprint } : undefined);
            const device = await tx.device(l!.id, fingerprint);
            return { l, device, leases: device ? await tx.leasesOfDevice(device.id) : [] };
          },
          turn ? { group: lic.key, ahead: { fingerprint } } : undefined,
        );
      const fingerprints = ['ra-A', 'ra-B', 'ra-C', 'ra-none', 'ra-O'];
      const plainByFingerprint = await Promise.all(fingerprints.map((f) => byFingerprint(f, false)));
      for (const [i, fingerprint] of fingerprints.entries()) {
        assert.deepEqual(await byFingerprint(fingerprint, true), plainByFingerprint[i], fingerprint);
        assert.deepEqual(await byFingerprint(fingerprint, true, true), plainByFingerprint[i], `${fingerprint} in a turn`);
      }
      // All of them in one turn: the turn reads every fingerprint at once, and each unit gets its own.
      assert.deepEqual(await Promise.all(fingerprints.map((f) => byFingerprint(f, true, true))), plainByFingerprint, 'one turn');
      const b = await byFingerprint('ra-B', true);
      assert.deepEqual(
        b.leases.map((l) => [l.id, l.instances.map((i) => i.instanceId)]),
        [[leaseA, ['a1', 'a2', 'b1']]],
        "the shared seat B's use is on, with every use on it",
      );
      const byLease = (leaseId: string, ahead: boolean, turn = false) =>
        store.transaction(
          async (tx) => {
            const l = await tx.lockLicenseByKey(lic.key, ahead ? { leaseId } : undefined);
            const lease = await tx.lease(leaseId);
            return { l, lease, devices: lease ? await Promise.all(lease.instances.map((i) => tx.deviceById(i.deviceId))) : [] };
          },
          turn ? { group: lic.key, ahead: { leaseId } } : undefined,
        );
      const leaseIds = [leaseA, leaseC, leaseO, 'lse_none'];
      const plainByLease = await Promise.all(leaseIds.map((id) => byLease(id, false)));
      for (const [i, leaseId] of leaseIds.entries()) {
        assert.deepEqual(await byLease(leaseId, true), plainByLease[i], leaseId);
        assert.deepEqual(await byLease(leaseId, true, true), plainByLease[i], `${leaseId} in a turn`);
      }
      assert.deepEqual(await Promise.all(leaseIds.map((id) => byLease(id, true, true))), plainByLease, 'one turn');
      assert.deepEqual(
        (await byLease(leaseA, true)).devices.map((d) => d!.fingerprint),
        ['ra-A', 'ra-A', 'ra-B'],
      );

      // A hint for one thing and a read of another: the read is made as without the hint.
      await store.transaction(async (tx) => {
        const l = await tx.lockLicenseByKey(lic.key, { fingerprint: 'ra-A', leaseId: leaseA });
        const c = await tx.device(l!.id, 'ra-C');
        assert.equal(c!.fingerprint, 'ra-C');
        assert.deepEqual(
          (await tx.leasesOfDevice(c!.id)).map((x) => x.id),
          [leaseC],
        );
        assert.equal((await tx.lease(leaseC))!.id, leaseC);
        assert.equal(await tx.device(other.id, 'ra-A'), undefined, 'the same fingerprint on another license is another device');
      });

      // A write between the lock and the read: the read sees it (then the transaction is rolled back).
      const rollback = new Error('roll back');
      await assert.rejects(
        store.transaction(async (tx) => {
          const l = await tx.lockLicenseByKey(lic.key, { fingerprint: 'ra-C', leaseId: leaseA });
          const c = await tx.device(l!.id, 'ra-C');
          await tx.apply([
            { type: 'instance.delete', leaseId: leaseC, instanceId: 'c1' },
            { type: 'lease.delete', leaseId: leaseC },
            { type: 'seats', licenseId: lic.id, used: -1, offline: 0 },
            { type: 'instance.delete', leaseId: leaseA, instanceId: 'a2' },
          ]);
          assert.deepEqual(await tx.leasesOfDevice(c!.id), [], 'the deleted lease is gone');
          assert.deepEqual(
            (await tx.lease(leaseA))!.instances.map((i) => i.instanceId),
            ['a1', 'b1'],
            'the deleted use is gone',
          );
          throw rollback;
        }),
        (err) => err === rollback,
      );
      // A session key set between the lock and the read is read with the lease.
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.lockLicenseByKey(lic.key, { leaseId: leaseA });
          await tx.setSessionKey(leaseA, 'b1', 'v1.stored-key');
          const lease = await tx.lease(leaseA);
          assert.equal(lease!.instances.find((i) => i.instanceId === 'b1')!.sessionKey, 'v1.stored-key');
          throw rollback;
        }),
        (err) => err === rollback,
      );
      assert.deepEqual(
        (await byFingerprint('ra-C', true)).leases.map((x) => x.id),
        [leaseC],
        'nothing of it was kept',
      );
    });

    test("a use's session key is written with its row; a write of the row without one keeps the stored key", async () => {
      const lic = await license({ seats: 3 });
      const g = await svc.licensing.checkout(lic.key, { fingerprint: 'sk-A', instanceId: 'a1' });
      assert.ok(g.ok);
      const leaseId = g.value.granted.lease.id;
      const read = () => store.transaction(async (tx) => (await tx.lease(leaseId))!.instances.find((i) => i.instanceId === 'a1')!);
      const { sessionKey: none, ...plain } = await read();
      assert.equal(none, undefined, 'no exchange offered: no key');
      const put = (sessionKey?: string) =>
        store.transaction((tx) =>
          tx.apply([{ type: 'instance.put', leaseId, instance: { ...plain, ...(sessionKey ? { sessionKey } : {}) } }]),
        );
      await put('v1.key-1');
      assert.equal((await read()).sessionKey, 'v1.key-1');
      await put();
      assert.equal((await read()).sessionKey, 'v1.key-1', 'kept');
      await put('v1.key-2');
      assert.equal((await read()).sessionKey, 'v1.key-2');
      // a new lease's use, with its key, in the lease's insert
      const lease = (await store.transaction((tx) => tx.lease(leaseId)))!;
      const newId2 = newId('lse');
      await store.transaction((tx) =>
        tx.apply([
          { type: 'lease.insert', lease: { ...lease, id: newId2, instances: [{ ...plain, instanceId: 'b1', sessionKey: 'v1.key-3' }] } },
          { type: 'seats', licenseId: lic.id, used: 1, offline: 0 },
        ]),
      );
      assert.equal((await store.transaction((tx) => tx.lease(newId2)))!.instances[0]!.sessionKey, 'v1.key-3');
    });

    test("a checkout's exchange keeps its key with the use: on a new seat, and again when the same use checks out anew", async () => {
      const lic = await license({ seats: 2 });
      const stored = async (leaseId: string) =>
        store.transaction(async (tx) => (await tx.lease(leaseId))!.instances.find((i) => i.instanceId === 'x1')!.sessionKey);
      const checkout = async () => {
        const g = await svc.licensing.checkout(lic.key, {
          fingerprint: 'skx-A',
          instanceId: 'x1',
          session: { x25519: x25519Pair().x25519 },
        });
        assert.ok(g.ok, JSON.stringify(g));
        assert.ok(g.value.session, 'the server half of the exchange is answered');
        return g.value.granted;
      };
      const first = await checkout();
      assert.equal(first.created, true);
      const key1 = await stored(first.lease.id);
      assert.ok(key1, 'the new lease row carries the key');
      // The same live use checks out again with a new exchange (its row is written again, the stored key with it).
      clock.advance(1000);
      const again = await checkout();
      assert.equal(again.created, false);
      assert.equal(again.lease.id, first.lease.id);
      const key2 = await stored(first.lease.id);
      assert.ok(key2);
      assert.notEqual(key2, key1, "the second exchange's key is the one kept");
    });

    test('leaseOfKey reads made together (PostgreSQL: one statement for a turn of the loop) each get their own answer', async () => {
      const a = await license({ seats: 5 });
      const b = await license({ seats: 5 });
      const held = async (lic: { key: string }, fp: string, instanceId: string) => {
        const g = await svc.licensing.checkout(lic.key, { fingerprint: fp, instanceId, hostname: fp });
        assert.ok(g.ok);
        return g.value.granted.lease.id;
      };
      const [a1, a2, b1] = [await held(a, 'tog-a1', 'x'), await held(a, 'tog-a2', 'y'), await held(b, 'tog-b1', 'z')];
      const asks: [string, string, string][] = [
        [a.key, a1, 'x'],
        [b.key, b1, 'z'],
        ['NO-SUCH-KEY', a1, 'x'],
        [b.key, a1, 'x'], // a's lease through b's key: b, no lease
        [a.key, a2, 'y'],
        [a.key, 'lse_nosuchlease', 'x'],
        [a.key, a1, 'x'], // the same read twice in one batch
      ];
      for (let round = 0; round < 3; round++) {
        const got = await Promise.all(asks.map(([k, l, i]) => store.leaseOfKey(k, l, i, clock.now())));
        const seen = got.map((r) => r && [r.license.id, r.lease?.id ?? null, r.device?.fingerprint ?? null]);
        assert.deepEqual(seen, [
          [a.id, a1, 'tog-a1'],
          [b.id, b1, 'tog-b1'],
          undefined,
          [b.id, null, null],
          [a.id, a2, 'tog-a2'],
          [a.id, null, null],
          [a.id, a1, 'tog-a1'],
        ]);
        assert.ok(
          got.every((r) => r?.lease === undefined || r.license.waiting === 0),
          'no waiters at the time of each read',
        );
      }
      // More reads than one statement takes (256) at once: all answered, each its own.
      const many = await Promise.all(
        Array.from({ length: 600 }, (_, i) => store.leaseOfKey(i % 2 ? a.key : b.key, i % 2 ? a2 : b1, i % 2 ? 'y' : 'z')),
      );
      assert.ok(many.every((r, i) => r?.lease?.id === (i % 2 ? a2 : b1)));
    });

    test('renewals are monotonic and update-only: late, repeated or out-of-order batches never move a lease back nor bring one back', async () => {
      const lic = await license({ seats: 5, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 });
      const t0 = clock.now();
      const grants = [];
      for (let i = 0; i < 3; i++) {
        const g = await svc.licensing.checkout(lic.key, { fingerprint: `renew-dev-${i}`, instanceId: 'a' });
        assert.ok(g.ok);
        grants.push(g.value.granted);
      }
      const [a, b, c] = grants as [(typeof grants)[0], (typeof grants)[0], (typeof grants)[0]];
      const r = (g: typeof a, at: number) => ({ leaseId: g.lease.id, instanceId: 'a', deviceId: g.device.id, at, expiresAt: at + 600_000 });
      assert.deepEqual(await store.renew([r(a, t0 + 20_000), r(b, t0 + 20_000)]), []);
      // an older renewal arriving later (another node's batch) changes nothing
      await store.renew([r(a, t0 + 10_000)]);
      const la = (await store.getLease(a.lease.id))!;
      assert.equal(la.expiresAt, t0 + 620_000);
      assert.equal(la.lastHeartbeatAt, t0 + 20_000);
      assert.equal(la.instances[0]!.expiresAt, t0 + 620_000);
      assert.equal(la.device.lastAccessedAt, t0 + 20_000);
      // a lease checked in meanwhile is not brought back, nor is its instance
      assert.ok((await svc.licensing.checkin(lic.key, b.lease.id, 'a')).ok);
      await store.renew([r(b, t0 + 30_000)]);
      assert.equal(await store.getLease(b.lease.id), undefined);
      assert.equal((await store.getLicense(lic.id))!.seatsUsed, 2);
      // an offline lease keeps its Offline Expiry Date
      const off = await svc.licensing.offlineCheckout(lic.key, {
        fingerprint: 'renew-dev-2',
        instanceId: 'a',
        durationSeconds: 3600,
      } as never);
      if (off.ok) {
        const before = (await store.getLease(c.lease.id))!;
        await store.renew([r(c, t0 + 40_000)]);
        assert.deepEqual(await store.getLease(c.lease.id), before);
      }
    });

    test('batched heartbeats: answered at once, written within a batch, and a lost batch never lets the reclaimer free a heartbeating lease', async () => {
      const lic = await license({ seats: 5, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 10 });
      const buffer = new RenewalBuffer(store, { intervalMs: 1000, now: () => clock.now() });
      const s1 = await services(store, clock, buffer);
      const g = await s1.licensing.checkout(lic.key, { fingerprint: 'batch-dev-1', instanceId: 'a' });
      assert.ok(g.ok);
      const id = g.value.granted.lease.id;
      const t0 = clock.now();
      // A heartbeat far from expiry is answered with the new expiry but written later.
      clock.advanceSeconds(10);
      const h1 = await s1.licensing.heartbeat(lic.key, id, 'a');
      assert.ok(h1.ok);
      assert.equal(h1.value.granted.lease.expiresAt, t0 + 70_000);
      assert.equal(buffer.size, 1);
      assert.equal((await store.getLease(id))!.expiresAt, t0 + 60_000, 'not written yet');
      await buffer.flush();
      assert.equal((await store.getLease(id))!.expiresAt, t0 + 70_000, 'written by the batch');
      assert.equal((await store.getLease(id))!.instances[0]!.lastHeartbeatAt, t0 + 10_000);
      // Heartbeats every interval with sweeps in between: the lease is never freed.
      for (let i = 0; i < 12; i++) {
        clock.advanceSeconds(10);
        assert.ok((await s1.licensing.heartbeat(lic.key, id, 'a')).ok);
        const swept = await s1.reclaim.sweep('reclaimer');
        assert.ok(!swept.freed.some((f) => f.leaseId === id));
      }
      const batched = (await s1.metrics.registry.getSingleMetricAsString('floatd_heartbeats_total')).match(/write="batched"} (\d+)/);
      assert.ok(batched && Number(batched[1]) >= 12, 'the heartbeats were batched');
      // A crash loses the batch: the stored lease still outlives the next heartbeat.
      clock.advanceSeconds(10);
      const lost = await s1.licensing.heartbeat(lic.key, id, 'a');
      assert.ok(lost.ok);
      assert.equal(buffer.size, 1);
      const s2 = await services(store, clock, new RenewalBuffer(store, { intervalMs: 1000, now: () => clock.now() })); // the restarted node; the old buffer is never written
      clock.advanceSeconds(10);
      assert.equal(
        (await s2.reclaim.sweep('reclaimer')).freed.some((f) => f.leaseId === id),
        false,
        'alive at the next heartbeat',
      );
      assert.ok((await s2.licensing.heartbeat(lic.key, id, 'a')).ok);
      // Close to its expiry as stored (the batch of the heartbeat above is written first: it is a batch old), a heartbeat is written before its answer.
      clock.advanceSeconds(45);
      const near = await s2.licensing.heartbeat(lic.key, id, 'a');
      assert.ok(near.ok);
      assert.equal((await store.getLease(id))!.expiresAt, clock.now() + 60_000, 'written at once near the expiry');
    });

    test('a batch the store wrote only in part (unwrittenRenewals): the buffer keeps the rest and writes it next', async () => {
      const lic = await license({ seats: 20, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 });
      const errors: unknown[] = [];
      const buffer = new RenewalBuffer(store, { intervalMs: 60_000, now: () => clock.now(), onError: (e) => errors.push(e) });
      const s1 = await services(store, clock, buffer);
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        const g = await s1.licensing.checkout(lic.key, { fingerprint: `part-dev-${i}`, instanceId: 'a' });
        ids.push(g.ok ? g.value.granted.lease.id : assert.fail('checkout failed'));
      }
      const grantedExpiry = (await store.getLease(ids[0]!))!.expiresAt;
      clock.advanceSeconds(30);
      for (const id of ids) assert.ok((await s1.licensing.heartbeat(lic.key, id, 'a')).ok);
      assert.equal(buffer.size, 10);
      // The store writes the first 4 and fails on the rest, as a store writing in parts does (SQLite: one transaction a part).
      const renew = store.renew.bind(store);
      store.renew = async (batch) => {
        await renew(batch.slice(0, 4));
        throw Object.assign(new Error('the second part failed'), { unwritten: batch.slice(4) });
      };
      await buffer.flush();
      delete (store as { renew?: unknown }).renew;
      assert.equal(errors.length, 1, 'the failure is reported');
      assert.equal(buffer.written, 4);
      assert.equal(buffer.size, 6, 'the 6 not written are kept');
      const renewed = (await Promise.all(ids.map((id) => store.getLease(id)))).filter((l) => l!.expiresAt === clock.now() + 600_000);
      assert.equal(renewed.length, 4, 'the part written is written');
      assert.ok(grantedExpiry! < clock.now() + 600_000);
      await buffer.flush();
      assert.equal(buffer.written, 10);
      assert.equal(buffer.size, 0);
      for (const id of ids) assert.equal((await store.getLease(id))!.expiresAt, clock.now() + 600_000);
    });

    test('a large sweep frees every dead lease once, in bulk, each with its own audit entry, and keeps the live ones', async () => {
      const lic = await license({ seats: 700, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
      const ids: string[] = [];
      for (let i = 0; i < 600; i += 50) {
        const batch = await Promise.all(
          Array.from({ length: 50 }, (_, j) => svc.licensing.checkout(lic.key, { fingerprint: `bulk-dev-${i + j}`, instanceId: 'a' })),
        );
        for (const g of batch) ids.push(g.ok ? g.value.granted.lease.id : assert.fail('checkout failed'));
      }
      clock.advanceSeconds(40);
      const keep = ids.slice(0, 100);
      for (const id of keep) assert.ok((await svc.licensing.heartbeat(lic.key, id, 'a')).ok);
      clock.advanceSeconds(30); // the 500 others are dead now
      const r = await svc.reclaim.sweep('reclaimer');
      const freed = r.freed.filter((f) => f.licenseId === lic.id).map((f) => f.leaseId);
      assert.equal(freed.length, 500);
      assert.deepEqual(new Set(freed), new Set(ids.slice(100)));
      assert.equal((await store.getLicense(lic.id))!.seatsUsed, 100);
      assert.deepEqual(new Set((await store.listLeases(lic.id)).map((l) => l.id)), new Set(keep));
      const audit = await store.listAudit({ limit: 1000, licenseId: lic.id, type: 'release' });
      assert.equal(audit.items.length, 500);
      // the actor filter: the reclaimer's releases are all of them, an admin's none
      assert.equal((await store.listAudit({ limit: 1000, licenseId: lic.id, type: 'release', actor: 'reclaimer' })).items.length, 500);
      assert.equal((await store.listAudit({ limit: 1000, licenseId: lic.id, actor: 'admin:tok_nobody' })).items.length, 0);
      assert.ok(audit.items.every((e) => e.reason === 'expired' && e.actor === 'reclaimer' && typeof e.data.expiredAt === 'number'));
      assert.deepEqual(new Set(audit.items.map((e) => e.leaseId)), new Set(freed));
      // "When and why was this lease released?", asked of each freed lease: one release, at the sweep's time, expired, by the reclaimer.
      for (const id of freed) {
        const mine = await store.listAudit({ limit: 10, leaseId: id, type: 'release' });
        assert.equal(mine.items.length, 1, id);
        assert.deepEqual([mine.items[0]!.at, mine.items[0]!.reason, mine.items[0]!.actor], [r.ranAt, 'expired', 'reclaimer'], id);
      }
      const usage = await store.usage(lic.id, clock.now() - 3_600_000, clock.now() + 3_600_000);
      assert.equal(usage.at(-1)!.seatsAtEnd, 100);
      assert.equal(Math.max(...usage.map((u) => u.peakSeats)), 600);
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
          ...Array.from({ length: 30 }, (_, i) =>
            (i % 2 ? svc : svc2).licensing.checkout(lic.key, { fingerprint: `contract-new-${i}`, instanceId: 'a' }),
          ),
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

    test('server-state records: put, read, list by prefix; a locked read-compare-write is atomic across nodes', async () => {
      assert.equal(await store.getKv('test/none'), undefined);
      await store.transaction((tx) => tx.apply([{ type: 'kv.put', name: 'test/a', value: '{"n":1}', at: 1000 }]));
      await store.transaction((tx) => tx.apply([{ type: 'kv.put', name: 'test/b', value: 'two', at: 2000 }]));
      await store.transaction((tx) => tx.apply([{ type: 'kv.put', name: 'tesu/c', value: 'other prefix', at: 2000 }]));
      assert.deepEqual(await store.getKv('test/a'), { name: 'test/a', value: '{"n":1}', updatedAt: 1000 });
      assert.deepEqual(
        (await store.listKv('test/')).map((r) => r.name),
        ['test/a', 'test/b'],
      );
      await store.transaction((tx) => tx.apply([{ type: 'kv.put', name: 'test/a', value: '{"n":2}', at: 3000 }]));
      assert.equal((await store.getKv('test/a'))!.value, '{"n":2}');
      // 20 increments from two nodes: each reads under the lock and writes n+1, so none is lost.
      const second = await adapter.openPeer(store);
      try {
        const bump = (s: Store) =>
          s.transaction(async (tx) => {
            const n = (JSON.parse((await tx.lockKv('test/counter'))?.value ?? '{"n":0}') as { n: number }).n;
            await tx.apply([{ type: 'kv.put', name: 'test/counter', value: JSON.stringify({ n: n + 1 }), at: 1 }]);
          });
        await Promise.all(Array.from({ length: 20 }, (_, i) => bump(i % 2 ? second : store)));
        assert.deepEqual(JSON.parse((await store.getKv('test/counter'))!.value), { n: 20 });
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
        const [sweep, ...beats] = await Promise.all([
          svc2.reclaim.sweep('reclaimer'),
          ...grants.map((id) => svc.licensing.heartbeat(lic.key, id, 'a')),
        ]);
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
    // --- every port method, called directly ------------------------------------------------------------

    test('catalogue reads: products and licenses by id, by key, by product and by page, in and out of a transaction', async () => {
      const product = await svc.catalogue.createProduct({ name: 'contract-reads' }, 'test');
      assert.ok(product.ok);
      const productId = product.value.id;
      const made = [];
      for (const seats of [2, 3, 4]) {
        const r = await svc.catalogue.createLicense({ productId, seats } as never, 'test');
        assert.ok(r.ok);
        made.push(r.value);
      }
      const [l1, l2] = made as [(typeof made)[0], (typeof made)[0]];
      const stored = (await store.getProduct(productId))!;
      assert.equal(stored.name, 'contract-reads');
      assert.equal(await store.getProduct('prd_000000000000000000000'), undefined);
      // listProducts: every product once across pages
      const productIds: string[] = [];
      for (let cursor: string | undefined, pages = 0; pages < 100; pages++) {
        const page = await store.listProducts({ limit: 2, cursor });
        assert.ok(page.items.length <= 2);
        productIds.push(...page.items.map((p) => p.id));
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      assert.equal(productIds.filter((id) => id === productId).length, 1);
      assert.equal(new Set(productIds).size, productIds.length, 'no product on two pages');
      // listLicenses of one product, one per page
      const licenseIds: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listLicenses({ limit: 1, cursor, productId });
        assert.ok(page.items.every((l) => l.productId === productId));
        licenseIds.push(...page.items.map((l) => l.id));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      assert.deepEqual(new Set(licenseIds), new Set(made.map((l) => l.id)));
      assert.equal(licenseIds.length, 3);
      // by key: the same record as by id
      const byId = (await store.getLicense(l1.id))!;
      assert.deepEqual(await store.getLicenseByKey(l1.key), byId);
      assert.equal(await store.getLicenseByKey('NO-SUCH-KEY'), undefined);
      await store.transaction(async (tx) => {
        assert.deepEqual(await tx.product(productId), stored);
        assert.equal(await tx.product('prd_000000000000000000000'), undefined);
        assert.equal(await tx.licenseCountOfProduct(productId), 3);
        assert.equal(await tx.licenseCountOfProduct('prd_000000000000000000000'), 0);
        assert.deepEqual(await tx.lockLicense(l1.id), byId);
        assert.equal((await tx.lockLicenseByKey(l2.key))!.id, l2.id);
        assert.equal(await tx.lockLicense('lic_000000000000000000000'), undefined);
        assert.equal(await tx.lockLicenseByKey('NO-SUCH-KEY'), undefined);
      });
    });

    test('lockLicense and lockLicenseByKey hold the license until commit: concurrent read-modify-writes from two nodes lose no update', async () => {
      const lic = await license({ seats: 1 });
      const second = await adapter.openPeer(store);
      try {
        const bump = (s: Store, i: number) =>
          s.transaction(async (tx) => {
            const locked = i % 2 ? await tx.lockLicense(lic.id) : await tx.lockLicenseByKey(lic.key);
            assert.ok(locked);
            await tx.apply([{ type: 'license.update', license: { ...locked, seats: locked.seats + 1, updatedAt: locked.updatedAt + 1 } }]);
          });
        await Promise.all(Array.from({ length: 20 }, (_, i) => bump(i % 4 < 2 ? store : second, i)));
        assert.equal((await store.getLicense(lic.id))!.seats, 21);
      } finally {
        await second.close();
      }
    });

    test('lease and device reads: by fingerprint, by id, of a device, of a license, counted, and the admin device view', async () => {
      const lic = await license({ seats: 5, maxOfflineSeconds: 7200 });
      const other = await license({ seats: 5 });
      const a1 = await svc.licensing.checkout(lic.key, { fingerprint: 'reads-dev-1', instanceId: 'a', hostname: 'h1' });
      const a2 = await svc.licensing.checkout(lic.key, { fingerprint: 'reads-dev-1', instanceId: 'b' });
      const b = await svc.licensing.checkout(lic.key, { fingerprint: 'reads-dev-2', instanceId: 'a' });
      const c = await svc.licensing.offlineCheckout(lic.key, { fingerprint: 'reads-dev-3', instanceId: 'a', durationSeconds: 3600 });
      assert.ok(a1.ok && a2.ok && b.ok && c.ok);
      assert.equal(a2.value.granted.lease.id, a1.value.granted.lease.id, 'per-device: one lease for both instances');
      const dev1 = a1.value.granted.device;
      const leaseIds = [a1, b, c].map((g) => (g.ok ? g.value.granted.lease.id : ''));

      const ofFingerprint = await store.leasesOfFingerprint(lic.id, 'reads-dev-1');
      assert.deepEqual(
        ofFingerprint.map((l) => l.id),
        [leaseIds[0]],
      );
      assert.deepEqual(ofFingerprint[0]!.instances.map((i) => i.instanceId).sort(), ['a', 'b']);
      assert.deepEqual(await store.leasesOfFingerprint(lic.id, 'reads-nobody'), []);
      assert.deepEqual(await store.leasesOfFingerprint(other.id, 'reads-dev-1'), [], 'per license');
      assert.deepEqual(await store.leaseCounts(lic.id), { used: 3, offline: 1 });
      assert.deepEqual(await store.leaseCounts(other.id), { used: 0, offline: 0 });

      const devices = new Map((await store.listDevices(lic.id)).map((d) => [d.fingerprint, d]));
      assert.equal(devices.size, 3);
      assert.equal(devices.get('reads-dev-1')!.seatsHeld, 1);
      assert.equal(devices.get('reads-dev-1')!.instanceCount, 2);
      assert.equal(devices.get('reads-dev-1')!.hostname, 'h1');
      assert.equal(devices.get('reads-dev-1')!.offlineExpiresAt, null);
      assert.equal(devices.get('reads-dev-3')!.offlineExpiresAt, clock.now() + 3_600_000);
      assert.deepEqual(await store.listDevices(other.id), []);

      await store.transaction(async (tx) => {
        const device = await tx.device(lic.id, 'reads-dev-1');
        assert.equal(device!.id, dev1.id);
        assert.equal(device!.fingerprint, 'reads-dev-1');
        assert.equal(await tx.device(other.id, 'reads-dev-1'), undefined, 'a fingerprint is per license');
        assert.deepEqual(await tx.deviceById(dev1.id), device);
        assert.equal(await tx.deviceById('dev_000000000000000000000'), undefined);
        const held = await tx.leasesOfDevice(dev1.id);
        assert.deepEqual(
          held.map((l) => l.id),
          [leaseIds[0]],
        );
        assert.deepEqual(await tx.lease(leaseIds[0]!), held[0]);
        assert.deepEqual(await tx.lease(leaseIds[0]!), ofFingerprint[0]);
        assert.equal(await tx.lease('lse_000000000000000000000'), undefined);
        assert.deepEqual(new Set((await tx.leasesOfLicense(lic.id)).map((l) => l.id)), new Set(leaseIds));
        assert.deepEqual(await tx.leasesOfLicense(other.id), []);
        assert.deepEqual(await tx.leaseCounts(lic.id), { used: 3, offline: 1 });
      });
    });

    test('expiry reads: dead leases, the earliest future expiry, the sweep scan (dead instances too) paged by its cursor, leases to sweep, expiry stats', async () => {
      const lic = await license({ seats: 10, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
      const t0 = clock.now();
      const grant = async (key: string, fingerprint: string, instanceId = 'a') => {
        const g = await svc.licensing.checkout(key, { fingerprint, instanceId });
        assert.ok(g.ok);
        return g.value.granted.lease.id;
      };
      const kept = await grant(lic.key, 'exp-dev-0', 'a');
      await grant(lic.key, 'exp-dev-0', 'b'); // a second instance of the same lease
      const dead1 = await grant(lic.key, 'exp-dev-1');
      const dead2 = await grant(lic.key, 'exp-dev-2');
      clock.advanceSeconds(30);
      assert.ok((await svc.licensing.heartbeat(lic.key, kept, 'a')).ok); // lease and instance a to t0+90 s; instance b stays at t0+60 s
      const late = await grant(lic.key, 'exp-dev-3'); // expires t0+90 s
      const live = await license({ seats: 2, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
      clock.advanceSeconds(20);
      const liveLease = await grant(live.key, 'exp-live-0'); // expires t0+110 s
      clock.advanceSeconds(20);
      const now = clock.now(); // t0+70 s
      assert.equal(now, t0 + 70_000);

      const scan = async (at: number, limit: number) => {
        const found: { licenseId: string; leaseId: string }[] = [];
        let cursor: string | null = null;
        do {
          const page: Awaited<ReturnType<Store['sweepScan']>> = await store.sweepScan(at, cursor, limit);
          assert.ok(page.found.length <= limit, 'at most limit');
          found.push(...page.found);
          cursor = page.next;
        } while (cursor !== null);
        return found;
      };
      const found = await scan(now, 1000);
      const ofLic = found.filter((f) => f.licenseId === lic.id).map((f) => f.leaseId);
      assert.deepEqual(new Set(ofLic.slice(0, 2)), new Set([dead1, dead2]), 'the dead leases first');
      assert.deepEqual(ofLic.slice(2), [kept], 'then the live lease with a dead instance');
      assert.ok(!found.some((f) => f.licenseId === live.id), 'nothing of it has expired');
      assert.deepEqual(await scan(now, 1), found, 'paged one by one: the same, in the same order');
      assert.ok(!(await scan(t0 + 59_000, 10)).some((f) => f.licenseId === lic.id), 'nothing expired yet at t0+59 s');
      assert.deepEqual(await store.expiryStats(lic.id, now), { dead: 2, earliestExpiry: t0 + 90_000 });
      assert.deepEqual(await store.expiryStats(live.id, now), { dead: 0, earliestExpiry: t0 + 110_000 });
      await store.transaction(async (tx) => {
        assert.deepEqual(new Set((await tx.deadLeases(lic.id, now, 10)).map((l) => l.id)), new Set([dead1, dead2]));
        assert.equal((await tx.deadLeases(lic.id, now, 1)).length, 1, 'at most limit');
        assert.deepEqual(await tx.deadLeases(lic.id, t0 + 59_000, 10), []);
        assert.equal((await tx.deadLeases(lic.id, t0 + 60_000, 10)).length, 2, 'an expiry at now is dead');
        assert.equal(await tx.earliestExpiry(lic.id, now), t0 + 90_000);
        assert.equal(await tx.earliestExpiry(lic.id, t0 + 200_000), null);
        const batch = await tx.leasesToSweep(lic.id, [kept, dead1, dead2, late, liveLease, 'lse_gone0000000000000000']);
        assert.deepEqual(
          new Set(batch.map((l) => l.id)),
          new Set([kept, dead1, dead2, late]),
          "the license's leases among the ids, as they are",
        );
        assert.deepEqual(
          batch
            .find((l) => l.id === kept)!
            .instances.map((i) => i.instanceId)
            .sort(),
          ['a', 'b'],
          'with their instances',
        );
        assert.deepEqual(await tx.leasesToSweep(lic.id, []), []);
      });
    });

    test('admin tokens: by id, listed, counted, touched; in a transaction read, counted as admins, and created once under lockAdminTokens from two nodes', async () => {
      const token = (role: 'admin' | 'viewer', name: string) => ({
        id: newId('tok'),
        name,
        role,
        customerId: null,
        tokenHash: randomBytes(32).toString('hex'),
        createdAt: clock.now(),
        lastUsedAt: null,
        revokedAt: null,
      });
      const count0 = await store.countAdminTokens();
      const admins0 = await store.transaction((tx) => tx.activeAdminCount());
      const admin = token('admin', 'contract-admin');
      const viewer = token('viewer', 'contract-viewer');
      await store.transaction((tx) =>
        tx.apply([
          { type: 'adminToken.insert', token: admin },
          { type: 'adminToken.insert', token: viewer },
        ]),
      );
      assert.deepEqual(await store.adminTokenById(admin.id), admin);
      assert.equal(await store.adminTokenById('tok_000000000000000000000'), undefined);
      assert.equal(await store.countAdminTokens(), count0 + 2);
      await store.transaction(async (tx) => {
        assert.deepEqual(await tx.adminToken(viewer.id), viewer);
        assert.equal(await tx.adminToken('tok_000000000000000000000'), undefined);
        assert.equal(await tx.activeAdminCount(), admins0 + 1, 'viewers are not admins');
      });
      await store.touchAdminToken(viewer.id, clock.now() + 5000);
      assert.equal((await store.adminTokenById(viewer.id))!.lastUsedAt, clock.now() + 5000);
      await store.transaction((tx) => tx.apply([{ type: 'adminToken.revoke', tokenId: admin.id, at: clock.now() + 6000 }]));
      assert.equal(await store.countAdminTokens(), count0 + 1, 'a revoked token is not counted');
      assert.equal(await store.transaction((tx) => tx.activeAdminCount()), admins0);
      const listed = new Map((await store.listAdminTokens()).map((t) => [t.id, t]));
      assert.equal(listed.get(admin.id)!.revokedAt, clock.now() + 6000, 'revoked tokens are listed too');
      assert.equal(listed.get(viewer.id)!.lastUsedAt, clock.now() + 5000);
      // First-start creation: "create an admin token if there are only the ones we know" from many transactions
      // on two nodes creates exactly one, because each reads the count under the lock.
      const second = await adapter.openPeer(store);
      try {
        const createOnce = (s: Store, i: number) =>
          s.transaction(async (tx) => {
            await tx.lockAdminTokens();
            if ((await tx.activeAdminCount()) === admins0)
              await tx.apply([{ type: 'adminToken.insert', token: token('admin', `contract-first-${i}`) }]);
          });
        await Promise.all(Array.from({ length: 10 }, (_, i) => createOnce(i % 2 ? second : store, i)));
      } finally {
        await second.close();
      }
      assert.equal(await store.transaction((tx) => tx.activeAdminCount()), admins0 + 1);
      assert.equal((await store.listAdminTokens()).filter((t) => t.name.startsWith('contract-first-')).length, 1);
    });

    test('seat totals and denials: seatTotals moves with the seats taken, denialsSince counts per license from the hour of `from`', async () => {
      const before = await store.seatTotals();
      const lic = await license({ seats: 2, maxOfflineSeconds: 7200 });
      assert.ok((await svc.licensing.checkout(lic.key, { fingerprint: 'totals-dev-1', instanceId: 'a' })).ok);
      assert.ok((await svc.licensing.offlineCheckout(lic.key, { fingerprint: 'totals-dev-2', instanceId: 'a', durationSeconds: 3600 })).ok);
      for (const i of [3, 4, 5]) {
        const denied = await svc.licensing.checkout(lic.key, { fingerprint: `totals-dev-${i}`, instanceId: 'a' });
        assert.equal(!denied.ok && denied.error.code, 'NO_SEATS_AVAILABLE');
      }
      const after = await store.seatTotals();
      assert.deepEqual(
        { seatsUsed: after.seatsUsed - before.seatsUsed, seatsOffline: after.seatsOffline - before.seatsOffline },
        { seatsUsed: 2, seatsOffline: 1 },
      );
      const now = clock.now();
      assert.equal((await store.denialsSince(now)).get(lic.id), 3, 'from within the hour counts the whole hour');
      assert.equal((await store.denialsSince(now + 2 * 3_600_000)).get(lic.id), undefined);
    });

    test('retention and the trusted-time floor: pruneAudit and pruneUsage delete old rows in batches; newestRecordedTime sees audit, usage, records and (asked) heartbeats', async () => {
      const lic = await license({ seats: 3 });
      const HOUR = 3_600_000;
      const entry = (at: number) => ({
        at,
        type: 'checkin' as const,
        actor: 'test',
        licenseId: lic.id,
        deviceId: null,
        leaseId: null,
        reason: null,
        data: { at },
      });
      await store.transaction((tx) =>
        tx.apply([
          { type: 'audit', entry: entry(1000) },
          { type: 'audit', entry: entry(2000) },
          { type: 'audit', entry: entry(3000) },
          {
            type: 'usage',
            licenseId: lic.id,
            at: 10,
            seatsUsed: 1,
            peak: 1,
            checkouts: 1,
            denials: 0,
            peakOverdraft: 0,
            overdraftAtEnd: 0,
            overdraftCheckouts: 0,
          },
          {
            type: 'usage',
            licenseId: lic.id,
            at: HOUR + 10,
            seatsUsed: 1,
            peak: 1,
            checkouts: 2,
            denials: 0,
            peakOverdraft: 0,
            overdraftAtEnd: 0,
            overdraftCheckouts: 0,
          },
          {
            type: 'usage',
            licenseId: lic.id,
            at: 2 * HOUR + 10,
            seatsUsed: 1,
            peak: 1,
            checkouts: 3,
            denials: 0,
            peakOverdraft: 0,
            overdraftAtEnd: 0,
            overdraftCheckouts: 0,
          },
        ]),
      );
      const oldAudit = async () => (await store.listAudit({ limit: 10, licenseId: lic.id, to: 10_000 })).items.map((e) => e.at).sort();
      assert.deepEqual(await oldAudit(), [1000, 2000, 3000]);
      assert.equal(await store.pruneAudit(2500, 1), 1, 'one batch of at most limit');
      assert.equal(await store.pruneAudit(2500, 10), 1);
      assert.equal(await store.pruneAudit(2500, 10), 0);
      assert.deepEqual(await oldAudit(), [3000], 'entries at or after `before` stay');
      const usedHours = async () =>
        (await store.usage(lic.id, 0, 3 * HOUR)).filter((u) => u.checkouts > 0).map((u) => [u.hour, u.checkouts]);
      assert.deepEqual(await usedHours(), [
        [0, 1],
        [HOUR, 2],
        [2 * HOUR, 3],
      ]);
      assert.equal(await store.pruneUsage(2 * HOUR, 10), 2, 'the hours that ended by `before`');
      assert.deepEqual(await usedHours(), [[2 * HOUR, 3]]);

      const far = clock.now() + 30 * 86_400_000;
      await store.transaction((tx) => tx.apply([{ type: 'kv.put', name: 'test/newest', value: '{}', at: far }]));
      assert.equal(await store.newestRecordedTime({ leases: false }), far);
      const g = await svc.licensing.checkout(lic.key, { fingerprint: 'newest-dev', instanceId: 'a' });
      assert.ok(g.ok);
      const { lease, device } = g.value.granted;
      assert.deepEqual(
        await store.renew([{ leaseId: lease.id, instanceId: 'a', deviceId: device.id, at: far + 5000, expiresAt: far + 65_000 }]),
        [],
      );
      assert.equal(await store.newestRecordedTime({ leases: true }), far + 5000, 'a heartbeat is the newest time');
      assert.equal(await store.newestRecordedTime({ leases: false }), far, 'heartbeats only when asked');
    });
  });
}
