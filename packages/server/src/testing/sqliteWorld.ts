/**
 * The services on a real SQLite file, in process, with a manual clock: a product and one license on it. For tests
 * that attack what the store keeps in memory (seat counters, the heartbeat's read) from another connection on the
 * same file. `renewalBatchMs`: heartbeats batched (RenewalBuffer), as `floatd serve` does; without it, written at once.
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../domain/clock.js';
import { KeyRing, memoryKeyPersistence } from '../keys/ring.js';
import { CatalogueService } from '../service/catalogue.js';
import { LicensingService } from '../service/licensing.js';
import { createMetrics } from '../service/metrics.js';
import { ReclaimService } from '../service/reclaim.js';
import { RenewalBuffer } from '../service/renewals.js';
import type { SessionKeys } from '../service/sessions.js';
import { SqliteStore } from '../store/sqlite/store.js';

export async function sqliteWorld(opts: {
  /** the temporary directory's prefix; the caller removes `dir` */
  prefix: string;
  seats: number;
  leaseTtlSeconds: number;
  heartbeatIntervalSeconds?: number;
  renewalBatchMs?: number;
  /** the store's `renewalsPerTransaction` */
  renewalsPerTransaction?: number;
  /** the renewal buffer's `onError` */
  onRenewalError?: (err: unknown) => void;
  /** the licensing service's and the reclaimer's open session keys (to look into its cache) */
  sessions?: SessionKeys;
}) {
  const dir = await mkdtemp(join(tmpdir(), opts.prefix));
  const path = join(dir, 'floatd.db');
  const store = new SqliteStore({ path, ...(opts.renewalsPerTransaction ? { renewalsPerTransaction: opts.renewalsPerTransaction } : {}) });
  const clock = new ManualClock(Date.UTC(2026, 11, 5, 12));
  const metrics = createMetrics(store, { defaultMetrics: false });
  const keys = await KeyRing.open(memoryKeyPersistence(), clock.now());
  const renewals = opts.renewalBatchMs
    ? new RenewalBuffer(store, {
        intervalMs: opts.renewalBatchMs,
        now: () => clock.now(),
        ...(opts.onRenewalError ? { onError: opts.onRenewalError } : {}),
      })
    : undefined;
  const catalogue = new CatalogueService(store, clock, metrics, keys);
  const licensing = new LicensingService(store, clock, keys, metrics, renewals, {}, opts.sessions);
  const reclaim = new ReclaimService(store, clock, metrics, renewals, {}, opts.sessions);
  const product = await catalogue.createProduct({ name: 'world' }, 'test');
  assert.ok(product.ok);
  const lic = await catalogue.createLicense(
    {
      productId: product.value.id,
      seats: opts.seats,
      leaseTtlSeconds: opts.leaseTtlSeconds,
      ...(opts.heartbeatIntervalSeconds ? { heartbeatIntervalSeconds: opts.heartbeatIntervalSeconds } : {}),
    } as never,
    'test',
  );
  assert.ok(lic.ok);
  return { dir, path, store, clock, metrics, keys, renewals, catalogue, licensing, reclaim, license: lic.value, key: lic.value.key };
}
