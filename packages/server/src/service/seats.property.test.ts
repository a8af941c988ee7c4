/**
 * The property test of the seat rules, driven through the real services on a
 * real store: random command sequences (checkout, join, heartbeat, check-in,
 * offline checkout, return, sync, clock advance, reclamation, force release) go
 * through LicensingService / ReclaimService / CatalogueService with a
 * ManualClock, on a SQLite file (or a temporary PostgreSQL database with
 * FLOATD_TEST_STORE=postgres). After every step the invariants are checked on
 * what the database holds: the license row's counters, the lease and device
 * rows, and the release records of the audit log.
 *
 * Sequences: FLOATD_PROPERTY_RUNS / 3 on SQLite (100 by default), / 12 on PostgreSQL.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ManualClock } from '../domain/clock.js';
import type { Result } from '../domain/result.js';
import type { AuditEntry } from '../domain/types.js';
import { KeyRing, memoryKeyPersistence } from '../keys/ring.js';
import type { Store } from '../store/port.js';
import { PostgresStore } from '../store/postgres/store.js';
import { SqliteStore } from '../store/sqlite/store.js';
import { createTempDatabase, type TempDatabase } from '../testing/pg.js';
import { TEST_STORE } from '../testing/harness.js';
import {
  commandArb,
  fingerprint,
  userOf,
  instanceOf,
  instanceOn,
  invariants,
  pickLease,
  POOL_ASKS,
  policyArb,
  PROPERTY_SEED,
  releaseViolations,
  RUNS,
  type Command,
} from '../testing/seatProperties.js';
import { CatalogueService } from './catalogue.js';
import { LicensingService } from './licensing.js';
import { createMetrics } from './metrics.js';
import { ReclaimService } from './reclaim.js';

const onPg = TEST_STORE === 'postgres';
const STORE_RUNS = Math.max(5, Math.floor(RUNS / (onPg ? 12 : 3)));

let store: Store;
let dir: string | undefined;
let pg: TempDatabase | undefined;

before(async () => {
  if (onPg) {
    pg = await createTempDatabase();
    store = await PostgresStore.open({ url: pg.url, max: 4 });
  } else {
    dir = await mkdtemp(join(tmpdir(), 'floatd-property-'));
    store = new SqliteStore({ path: join(dir, 'floatd.db') });
  }
});
after(async () => {
  await store.close();
  await pg?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test(`real ${TEST_STORE} store through the services: ${STORE_RUNS} random command sequences never break the seat invariants`, {
  timeout: 600_000,
}, async (t) => {
  const clock = new ManualClock(Date.parse('2026-05-01T08:00:00Z'));
  const metrics = createMetrics(store, { defaultMetrics: false });
  const keys = await KeyRing.open(memoryKeyPersistence(), clock.now());
  const licensing = new LicensingService(store, clock, keys, metrics);
  const reclaim = new ReclaimService(store, clock, metrics);
  const catalogue = new CatalogueService(store, clock, metrics, keys);
  const created = await catalogue.createProduct({ name: 'property' }, 'test');
  assert.ok(created.ok, JSON.stringify(created));
  const product = created.value;
  const stats = { steps: 0, ok: 0, refused: 0, releases: 0, refusedBy: {} as Record<string, number> };
  // The seed is chosen here, not by fast-check, so that a run whose floor below fails can be replayed (FLOATD_PROPERTY_SEED).
  const seed = PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31);

  await fc.assert(
    fc.asyncProperty(policyArb, fc.array(commandArb, { minLength: 1, maxLength: 40, size: 'max' }), async (policy, commands) => {
      const made = await catalogue.createLicense({ productId: product.id, ...policy } as never, 'test');
      assert.ok(made.ok, JSON.stringify(made));
      const lic = made.value;
      const seenAudit = new Set<number>();
      const leaseIds = async () => (await store.listLeases(lic.id)).map((l) => l.id);
      const view = async () => ({
        license: (await store.getLicense(lic.id))!,
        leases: await store.listLeases(lic.id),
        devices: await store.listDevices(lic.id),
        now: clock.now(),
      });
      const newReleases = async (): Promise<AuditEntry[]> => {
        const page = await store.listAudit({ licenseId: lic.id, type: 'release', limit: 500 });
        const fresh = page.items.filter((a) => !seenAudit.has(a.id));
        for (const a of fresh) seenAudit.add(a.id);
        return fresh;
      };
      for (const [i, c] of commands.entries()) {
        const beforeLeases = await store.listLeases(lic.id);
        const r = await run(c, lic.key, await leaseIds(), beforeLeases);
        stats.steps++;
        if (r && !r.ok) {
          stats.refused++;
          stats.refusedBy[r.error.code] = (stats.refusedBy[r.error.code] ?? 0) + 1;
        } else stats.ok++;
        const v = await view();
        const releases = await newReleases();
        stats.releases += releases.length;
        const broken = [...invariants(v), ...releaseViolations(beforeLeases, v.leases, releases, v.now)];
        if (broken.length) throw new Error(`after step ${i} ${JSON.stringify(c)}: ${broken.join('; ')}`);
      }
    }),
    { numRuns: STORE_RUNS, seed },
  );
  t.diagnostic(
    `seed ${seed}: ${stats.steps} steps (${stats.ok} done, ${stats.refused} refused: ${JSON.stringify(stats.refusedBy)}), ${stats.releases} releases`,
  );
  // The release checks ran (not a vacuous pass). A floor of one in four runs sat inside the spread and failed CI once
  // at 6 of 25; one in ten failed it once at 0 of 25 (334 steps). Then commands named a lease that exists only about
  // half the time (pickLease): PostgreSQL, 25 runs, gave 3-23 releases over 19 trials. Now: 20-23 over 3 trials.
  assert.ok(stats.releases > STORE_RUNS / 10, `seed ${seed}: ${JSON.stringify(stats)}`);

  async function run(
    c: Command,
    key: string,
    ids: string[],
    leases: { id: string; instances: { instanceId: string }[] }[],
  ): Promise<Result<unknown> | undefined> {
    const leaseOf = (id: string) => leases.find((l) => l.id === id) as Parameters<typeof instanceOn>[0];
    switch (c.kind) {
      case 'checkout':
        return licensing.checkout(key, {
          fingerprint: fingerprint(c.device),
          instanceId: instanceOf(c.device, c.instance),
          user: userOf(c.device),
          ...(POOL_ASKS[c.pools] ? { features: POOL_ASKS[c.pools] } : {}),
          ...(c.wait ? { wait: { timeoutSeconds: 600 } } : {}),
        });
      case 'features': {
        const id = pickLease(ids, c.lease);
        return licensing.changeFeatures(key, id, {
          instanceId: instanceOn(leaseOf(id), c.instance),
          features: POOL_ASKS[c.pools] ?? ['base'],
        });
      }
      case 'offline':
        return licensing.offlineCheckout(key, {
          fingerprint: fingerprint(c.device),
          instanceId: instanceOf(c.device, c.instance),
          user: userOf(c.device),
          durationSeconds: c.hours * 3_600,
        });
      case 'heartbeat': {
        const id = pickLease(ids, c.lease);
        return licensing.heartbeat(key, id, instanceOn(leaseOf(id), c.instance));
      }
      case 'checkin': {
        const id = pickLease(ids, c.lease);
        return licensing.checkin(key, id, instanceOn(leaseOf(id), c.instance));
      }
      case 'return':
        return licensing.returnOffline(key, pickLease(ids, c.lease));
      case 'sync':
        return licensing.sync(key, { fingerprint: fingerprint(c.device), instanceIds: c.keep.map((i) => instanceOf(c.device, i)) });
      case 'advance':
        clock.advance(c.seconds * 1000);
        return undefined;
      case 'reclaim':
        await reclaim.sweep('reclaimer');
        return undefined;
      case 'release':
        return catalogue.releaseLease(pickLease(ids, c.lease), c.force, 'admin:test');
    }
  }
});
