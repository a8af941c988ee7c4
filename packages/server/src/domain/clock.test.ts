/** SilenceWatch: a wall-clock step is seen against monotonic time and starts one TTL of grace; time passing does not. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, SilenceWatch } from './clock.js';

const T0 = Date.parse('2026-03-02T09:00:00Z');

test('time passing is no step; a lease past its expiry is reclaimable once one TTL has passed since the start', () => {
  const clock = new ManualClock(T0);
  const steps: number[] = [];
  const w = new SilenceWatch(clock, (d) => steps.push(d));
  assert.equal(w.mayReclaim(120, clock.now()), false, 'just started: the time spent down is unknown');
  clock.advance(119_000);
  assert.equal(w.mayReclaim(120, clock.now()), false);
  clock.advance(1_000);
  assert.equal(w.mayReclaim(120, clock.now()), true);
  clock.set(T0 + 86_400_000);
  assert.equal(w.mayReclaim(120, clock.now()), true, 'set() is time passing');
  assert.deepEqual(steps, []);
  assert.equal(w.mayReclaim(null, clock.now()), true, 'no TTL: nothing to measure');
});

for (const stepMs of [5_000, 300_000, 3 * 3_600_000, -5_000, -300_000, -3 * 3_600_000]) {
  test(`a step of ${stepMs / 1000} s starts one TTL of grace from the moment it is seen`, () => {
    const clock = new ManualClock(T0);
    const steps: number[] = [];
    const w = new SilenceWatch(clock, (d) => steps.push(d));
    clock.advance(600_000);
    assert.equal(w.mayReclaim(120, clock.now()), true);
    clock.step(stepMs);
    const seenAt = clock.now();
    assert.equal(w.mayReclaim(120, clock.now()), false, 'right after the step nothing that looks expired is reclaimable');
    assert.deepEqual(steps, [stepMs]);
    assert.equal(w.trustedSince(), seenAt);
    clock.advance(119_999);
    assert.equal(w.mayReclaim(120, clock.now()), false);
    clock.advance(1);
    assert.equal(w.mayReclaim(120, clock.now()), true, 'one real TTL after the step: silences are real again');
    assert.deepEqual(steps, [stepMs], 'one step, seen once');
  });
}

test('a step within the tolerance (1 s) is drift, not a step', () => {
  const clock = new ManualClock(T0);
  const w = new SilenceWatch(clock);
  clock.advance(600_000);
  clock.step(900);
  assert.equal(w.mayReclaim(120, clock.now()), true);
  assert.equal(w.latestStep, undefined);
});
