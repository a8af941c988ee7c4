/**
 * A seat count recommended from measured demand (issue #16; no peer has it). Pure: hourly usage
 * rows in, a number and its reason out.
 *
 * The method, an empirical one on the hourly usage rows:
 * - **Demand in an hour** is the most seats held at once in it plus the checkouts refused in it:
 *   `demand = peakSeats + denials`. Refusals happen only when the pool is full, so in an hour with
 *   refusals each one stands for a would-be holder beyond the seats. A client that retries a refused
 *   checkout counts each time, so demand is over-estimated when clients retry quickly (the
 *   recommendation then errs toward more seats), and a refused client that gave up is counted once.
 * - **Checkouts turned away with `n` seats**: `Σ max(0, demand − n)` over the hours, against every
 *   checkout asked for (`Σ checkouts + denials`). With today's seats this is exactly today's refusals.
 * - **The recommendation** is the least `n` (at least 1) whose share turned away is at most the
 *   target (1 %). Above today's count it says how many fewer would have been turned away; below it,
 *   how many seats were idle; equal, that the count fits.
 * - Queue waits (checkouts that waited for a seat, and how long) are reported beside it: each waiter's
 *   first refusal is already in the demand.
 */
import type { UsageRow } from '../store/port.js';

/** The share of checkouts a recommended count may turn away. */
export const TARGET_TURNED_AWAY = 0.01;

export interface Recommendation {
  seats: number;
  recommendedSeats: number;
  /** one sentence */
  reason: string;
  checkouts: number;
  denials: number;
  /** of every checkout asked for (granted + refused), the share refused: today's and with the recommended count (estimated) */
  turnedAway: number;
  turnedAwayRecommended: number;
  /** hours with any seat held or refused, and of them the hours the pool was full (peak at the seats or refusals) */
  busyHours: number;
  hoursAtFull: number;
  /** the largest hourly demand (peak + refusals) */
  peakDemand: number;
  /** the share of busy hours whose demand the recommended count covers */
  coveredHours: number;
  queued: number;
  queueWaitSeconds: number;
}

const pct = (x: number): string => {
  const p = x * 100;
  if (p === 0) return '0%';
  if (p < 0.1) return 'under 0.1%';
  return `${p < 10 ? Math.round(p * 10) / 10 : Math.round(p)}%`;
};

/** The checkouts `n` seats would have turned away, by the method above. */
export function turnedAwayWith(rows: readonly UsageRow[], n: number): number {
  let refused = 0;
  for (const r of rows) refused += Math.max(0, r.peakSeats + r.denials - n);
  return refused;
}

export function recommendSeats(rows: readonly UsageRow[], seats: number, days: number): Recommendation {
  const busy = rows.filter((r) => r.peakSeats > 0 || r.denials > 0 || r.checkouts > 0);
  const checkouts = rows.reduce((n, r) => n + r.checkouts, 0);
  const denials = rows.reduce((n, r) => n + r.denials, 0);
  const asked = checkouts + denials;
  const queued = rows.reduce((n, r) => n + r.queued, 0);
  const queueWaitSeconds = rows.reduce((n, r) => n + r.queueWaitMs, 0) / 1000;
  const peakDemand = busy.reduce((m, r) => Math.max(m, r.peakSeats + r.denials), 0);
  const hoursAtFull = busy.filter((r) => r.peakSeats >= seats || r.denials > 0).length;
  const base = { seats, checkouts, denials, busyHours: busy.length, hoursAtFull, peakDemand, queued, queueWaitSeconds };
  if (asked === 0) {
    return {
      ...base,
      recommendedSeats: seats,
      reason: `No checkout in the last ${days} days: nothing to recommend from; keep ${seats}.`,
      turnedAway: 0,
      turnedAwayRecommended: 0,
      coveredHours: 1,
    };
  }
  // Turned away only falls as n grows: the least n within the target, searched up to the peak demand.
  let n = 1;
  while (n < peakDemand && turnedAwayWith(busy, n) / asked > TARGET_TURNED_AWAY) n++;
  const today = denials / asked;
  const withN = turnedAwayWith(busy, n) / asked;
  const covered = busy.length ? busy.filter((r) => r.peakSeats + r.denials <= n).length / busy.length : 1;
  const waits = queued ? ` ${queued} checkout(s) waited in the queue, ${Math.round(queueWaitSeconds / queued)} s on average.` : '';
  let reason: string;
  if (n > seats) {
    reason = `${n} seats would have turned away ${withN === 0 ? 'no' : `${pct(withN)} of`} checkouts (today ${pct(today)}, with ${seats}; full in ${hoursAtFull} of ${busy.length} busy hours).`;
  } else if (n < seats) {
    reason = `${n} seats were enough for ${pct(covered)} of the busy hours${withN > 0 ? ` (turning away ${pct(withN)} of checkouts)` : ''}: ${seats - n} of today's ${seats} are rarely used.`;
  } else {
    reason = `${seats} seats fit the demand: ${pct(today)} of checkouts were turned away, full in ${hoursAtFull} of ${busy.length} busy hours.`;
  }
  return { ...base, recommendedSeats: n, reason: reason + waits, turnedAway: today, turnedAwayRecommended: withN, coveredHours: covered };
}
