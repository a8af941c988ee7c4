/** The seat recommendation on generated usage whose answer is known (domain/recommend.ts states the method). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recommendSeats, turnedAwayWith, TARGET_TURNED_AWAY } from './recommend.js';
import type { UsageRow } from '../store/port.js';

const HOUR = 3_600_000;
const row = (i: number, peakSeats: number, checkouts: number, denials = 0, queued = 0, queueWaitMs = 0): UsageRow => ({
  hour: i * HOUR,
  peakSeats,
  seatsAtEnd: 0,
  checkouts,
  denials,
  peakOverdraft: 0,
  overdraftAtEnd: 0,
  overdraftCheckouts: 0,
  queued,
  queueGrants: queued,
  queueWaitMs,
});
const hours = (n: number, make: (i: number) => UsageRow) => Array.from({ length: n }, (_, i) => make(i));

test('too few seats: the least count that turns away at most 1% of checkouts (known answer 22 for 20 seats)', () => {
  // 200 hours at 15 of 20 seats; 40 hours full with 2 refusals each (demand 22). 10 checkouts an hour.
  const rows = [
    ...hours(200, (i) => row(i, 15, 10)),
    ...hours(40, (i) => row(200 + i, 20, 10, 2)),
    ...hours(480, (i) => row(240 + i, 0, 0)),
  ];
  const r = recommendSeats(rows, 20, 30);
  assert.equal(r.recommendedSeats, 22);
  assert.equal(r.denials, 80);
  assert.equal(r.checkouts, 2400);
  assert.equal(turnedAwayWith(rows, 20), 80, "with today's count the method gives today's refusals exactly");
  assert.equal(turnedAwayWith(rows, 21), 40);
  assert.ok(40 / 2480 > TARGET_TURNED_AWAY, '21 seats would still turn away 1.6%');
  assert.equal(r.turnedAwayRecommended, 0);
  assert.equal(r.busyHours, 240);
  assert.equal(r.hoursAtFull, 40);
  assert.equal(r.peakDemand, 22);
  assert.equal(r.reason, '22 seats would have turned away no checkouts (today 3.2%, with 20; full in 40 of 240 busy hours).');
});

test('too many seats: the count the busy hours used, and how many are idle (known answer 12 for 20 seats)', () => {
  const rows = [...hours(300, (i) => row(i, 12, 10)), ...hours(3, (i) => row(300 + i, 15, 10))];
  const r = recommendSeats(rows, 20, 30);
  assert.equal(r.recommendedSeats, 12);
  assert.equal(turnedAwayWith(rows, 12), 9); // the three hours at 15
  assert.equal(turnedAwayWith(rows, 11), 312);
  assert.equal(r.coveredHours, 300 / 303);
  assert.equal(
    r.reason,
    "12 seats were enough for 99% of the busy hours (turning away 0.3% of checkouts): 8 of today's 20 are rarely used.",
  );
});

test('a count that fits, queue waits reported, and no usage at all', () => {
  const fit = [...hours(50, (i) => row(i, 10, 6)), ...hours(50, (i) => row(50 + i, 8, 6, 0, 1, 30_000))];
  const r = recommendSeats(fit, 10, 30);
  assert.equal(r.recommendedSeats, 10);
  assert.equal(r.queued, 50);
  assert.equal(r.queueWaitSeconds, 1500);
  assert.equal(
    r.reason,
    '10 seats fit the demand: 0% of checkouts were turned away, full in 50 of 100 busy hours. 50 checkout(s) waited in the queue, 30 s on average.',
  );
  const none = recommendSeats(
    hours(720, (i) => row(i, 0, 0)),
    7,
    30,
  );
  assert.deepEqual([none.recommendedSeats, none.reason], [7, 'No checkout in the last 30 days: nothing to recommend from; keep 7.']);
});

test('generated demand (seeded): the recommendation is the least count within the target, and one fewer is not', () => {
  let seed = 42;
  const rand = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  for (let trial = 0; trial < 50; trial++) {
    const seats = 5 + Math.floor(rand() * 30);
    const rows = hours(24 * 30, (i) => {
      const demand = Math.floor(rand() * (seats * 1.4));
      const held = Math.min(seats, demand);
      return row(i, held, held + Math.floor(rand() * 5), demand - held);
    });
    const asked = rows.reduce((n, r) => n + r.checkouts + r.denials, 0);
    const r = recommendSeats(rows, seats, 30);
    assert.ok(turnedAwayWith(rows, r.recommendedSeats) / asked <= TARGET_TURNED_AWAY, `trial ${trial}: within the target`);
    if (r.recommendedSeats > 1)
      assert.ok(turnedAwayWith(rows, r.recommendedSeats - 1) / asked > TARGET_TURNED_AWAY, `trial ${trial}: least`);
    assert.equal(turnedAwayWith(rows, seats), r.denials, "today's count reproduces today's refusals");
  }
});
