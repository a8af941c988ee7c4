/** ClockFence: past the bound a node refuses with NODE_CLOCK_SKEWED, says why, and counts it; back within, it serves. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from './metrics.js';
import { ClockFence, MAX_CLOCK_OFFSET_MS } from './clockFence.js';
import { SqliteStore } from '../store/sqlite/store.js';

test('a node fenced past the bound, and free again within it', async () => {
  const store = new SqliteStore({ path: ':memory:' });
  const metrics = createMetrics(store, { defaultMetrics: false });
  const logged: string[] = [];
  const logger = { error: (_o: unknown, m: string) => logged.push(`error ${m}`), warn: (_o: unknown, m: string) => logged.push(`warn ${m}`) };
  const fence = new ClockFence(metrics, logger as never);
  fence.measured(1_999);
  assert.equal(fence.refusal(), undefined);
  fence.measured(2_859, 3_000);
  assert.equal(fence.refusal(), undefined, 'a slow round trip (a loaded machine) cannot prove a skew');
  fence.measured(-(MAX_CLOCK_OFFSET_MS + 1));
  assert.equal(fence.fenced(), true);
  fence.measured(300_000);
  const r = fence.refusal();
  assert.equal(r?.code, 'NODE_CLOCK_SKEWED');
  assert.match(r!.message, /300000 ms off the database clock/);
  assert.equal(r?.details?.clockOffsetMs, 300_000);
  assert.match(await metrics.registry.metrics(), /floatd_clock_fenced 1/);
  assert.match(await metrics.registry.metrics(), /floatd_clock_offset_seconds 300/);
  fence.measured(1_500, 2_000);
  assert.equal(fence.fenced(), true, 'a slow measurement (±1 s) cannot prove the offset back within the bound');
  fence.measured(12, 4);
  assert.equal(fence.refusal(), undefined);
  assert.match(await metrics.registry.metrics(), /floatd_clock_fenced 0/);
  assert.deepEqual(logged.map((l) => l.split(':')[0]), ['error clock offset from the database past the bound', 'warn clock offset back within the bound']);
  await store.close();
});
