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

for (const stepMs of [5_000, 300_000, 3 * 3_600_000]) {
  test(`a step of +${stepMs / 1000} s starts one TTL of grace from the moment it is seen`, () => {
    const clock = new ManualClock(T0);
    const steps: number[] = [];
    const w = new SilenceWatch(clock, (d) => steps.push(d));
    clock.advance(600_000);
    assert.equal(w.mayReclaim(120, clock.now()), true);
    clock.step(stepMs);
    const seenAt = clock.now();
    assert.equal(w.mayReclaim(120, clock.now()), false, 'right after the step, leases that expired in the jump are not reclaimable');
    assert.equal(w.reclaimCutoff(120, clock.now()), seenAt - stepMs, 'those that expired before the jump are');
    assert.deepEqual(steps, [stepMs]);
    assert.equal(w.trustedSince(), seenAt);
    clock.advance(119_999);
    assert.equal(w.mayReclaim(120, clock.now()), false);
    clock.advance(1);
    assert.equal(w.mayReclaim(120, clock.now()), true, 'one real TTL after the step: silences are real again');
    assert.deepEqual(steps, [stepMs], 'one step, seen once');
  });
}

for (const stepMs of [-5_000, -300_000, -3 * 3_600_000]) {
  test(`a step of ${stepMs / 1000} s is seen; what looks expired after it expired before it (no grace needed)`, () => {
    const clock = new ManualClock(T0);
    const steps: number[] = [];
    const w = new SilenceWatch(clock, (d) => steps.push(d));
    clock.advance(600_000);
    clock.step(stepMs);
    // Expiries are stored on the old clock, further ahead now: a lease that looks expired was silent longer than its TTL.
    assert.equal(w.reclaimCutoff(120, clock.now()), clock.now());
    assert.equal(w.mayReclaim(120, clock.now()), true);
    assert.deepEqual(steps, [stepMs], 'the step was seen');
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

test('the grace spares only silences the server did not watch: expiries before a step, or before the previous run stopped, are reclaimable at once', () => {
  const T0 = Date.parse('2026-05-01T10:00:00Z');
  const clock = new ManualClock(T0);
  const watch = new SilenceWatch(clock);
  const ttl = 120;
  // Just started: nothing known about the time before the start.
  assert.equal(watch.reclaimCutoff(ttl, clock.now()), 0);
  // The previous run stored its trusted time a minute ago: what expired before then died under its watch.
  watch.watchedBefore(T0 - 60_000);
  assert.equal(watch.reclaimCutoff(ttl, clock.now()), T0 - 60_000);
  assert.equal(watch.mayReclaim(ttl, clock.now()), false, 'leases expiring during the downtime wait');
  // One TTL later everything that looks expired may go.
  clock.advance(ttl * 1000);
  assert.equal(watch.reclaimCutoff(ttl, clock.now()), clock.now());
  // A forward step of 300 s: expiries up to the moment before the step were watched; later ones get the grace.
  const before = clock.now();
  clock.step(300_000);
  assert.equal(watch.reclaimCutoff(ttl, clock.now()), before);
  // A backward step: expiries up to the new now were watched (they lie in the past of both clocks).
  clock.advance(ttl * 1000);
  clock.step(-600_000);
  assert.equal(watch.reclaimCutoff(ttl, clock.now()), clock.now());
  assert.equal(watch.reclaimCutoff(null, clock.now()), clock.now(), 'no TTL: no silence to measure');
});

test('a torn pair of readings (the wall clock read after the clock source moved, the monotonic one before) is no step; a real step is confirmed', () => {
  // A clock moved forward 15 s by an outside source (libfaketime's offset file, a VM resumed): wall and monotonic
  // both move, but the first reading after the move can see the wall clock moved and the monotonic not yet.
  let moved = false;
  let tornOnce = false;
  const base = { wall: T0, mono: 1_000 };
  const clock = {
    now: () => base.wall + (moved ? 15_000 : 0),
    monotonic: () => {
      if (moved && !tornOnce) {
        tornOnce = true;
        return base.mono; // read a moment before the move reached it
      }
      return base.mono + (moved ? 15_000 : 0);
    },
  };
  const steps: number[] = [];
  const w = new SilenceWatch(clock, (d) => steps.push(d));
  moved = true;
  w.check();
  w.check();
  assert.deepEqual(steps, [], 'time passed on both clocks: no step, and no step "back" at the next look');
  // A real step of the wall clock alone is seen at once (both readings of the confirmation agree).
  const manual = new ManualClock(T0);
  const real: number[] = [];
  const watch = new SilenceWatch(manual, (d) => real.push(d));
  manual.step(15_000);
  watch.check();
  assert.deepEqual(real, [15_000]);
});

test('a clock source moved again and again between readings (a harness rewriting the libfaketime file in 5-s steps) is no step', () => {
  // Both clocks move by 5 s after every `every`-th clock read, so some readings are torn twice in a row: the wall
  // clock read after one move and the monotonic one after the next. The old confirmation by a second pair of
  // readings took that for a step of -5 s (and the next look for a step back), giving dead leases a TTL of grace.
  for (const every of [1, 2, 3, 4, 5]) {
    let reads = 0;
    let moved = 0;
    const base = { wall: T0, mono: 1_000 };
    const read = () => {
      const at = moved;
      if (++reads % every === 0) moved += 5_000;
      return at;
    };
    let moving = true;
    const clock = {
      now: () => base.wall + (moving ? read() : moved),
      monotonic: () => base.mono + (moving ? read() : moved),
    };
    const steps: number[] = [];
    const w = new SilenceWatch(clock, (d) => steps.push(d));
    const since = w.trustedSince();
    for (let i = 0; i < 50; i++) w.check();
    moving = false;
    w.check();
    assert.deepEqual(steps, [], `moved after every ${every} reads: time passed on both clocks, no step`);
    assert.equal(w.trustedSince(), since);
    // A step of the wall clock alone is still seen at once.
    base.wall += 20_000;
    w.check();
    assert.deepEqual(steps, [20_000], `moved after every ${every} reads, then a real step`);
  }
});
