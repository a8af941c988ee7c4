/** ClockFence: past the bound a node refuses with NODE_CLOCK_SKEWED, says why, and counts it; back within, it serves. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics } from './metrics.js';
import { CLOCK_ALIGN_NOISE_MS, ClockFence, DatabaseAlignedClock, MAX_CLOCK_OFFSET_MS } from './clockFence.js';
import { ManualClock } from '../domain/clock.js';
import { SqliteStore } from '../store/sqlite/store.js';

test('a node fenced past the bound, and free again within it', async () => {
  const store = new SqliteStore({ path: ':memory:' });
  const metrics = createMetrics(store, { defaultMetrics: false });
  const logged: string[] = [];
  const logger = {
    error: (_o: unknown, m: string) => logged.push(`error ${m}`),
    warn: (_o: unknown, m: string) => logged.push(`warn ${m}`),
  };
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
  assert.deepEqual(
    logged.map((l) => l.split(':')[0]),
    ['error clock offset from the database past the bound', 'warn clock offset back within the bound'],
  );
  await store.close();
});

test('DatabaseAlignedClock reads the database time: the base clock minus a proven offset; noise and slow round trips move nothing', () => {
  const base = new ManualClock(Date.parse('2026-06-01T00:00:00Z'));
  const clock = new DatabaseAlignedClock(base);
  assert.equal(clock.now(), base.now(), 'no measurement yet: the base clock');
  clock.measured(40, 2);
  assert.equal(clock.correction(), 0, `an offset within the noise (${CLOCK_ALIGN_NOISE_MS} ms) is not applied`);
  clock.measured(1_500, 4);
  assert.equal(clock.now(), base.now() - 1_500, 'a node 1.5 s ahead reads the database time');
  clock.measured(1_530, 6);
  assert.equal(clock.correction(), 1_500, 'a measurement within the noise of the correction does not wobble it');
  clock.measured(2_000, 1_000);
  assert.equal(clock.correction(), 1_500, 'a slow round trip (±500 ms) cannot move it by less than its own doubt');
  clock.measured(-900, 10);
  assert.equal(clock.now(), base.now() + 900, 'a node behind reads forward');
  clock.measured(3, 2);
  assert.equal(clock.correction(), 0, 'back in step: the base clock again');
  const mono = base.monotonic();
  base.advance(1000);
  assert.equal(clock.monotonic(), mono + 1000, "monotonic time is the base clock's");
});
