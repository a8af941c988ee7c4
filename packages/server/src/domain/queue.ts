/**
 * The fair queue: a checkout that may wait (`wait: { timeoutSeconds }`) and is refused for want of a seat joins
 * its pool's queue (the base pool, or the feature that was full), first come first served. A waiter keeps its place
 * while it asks again within `QUEUE_POLL_WINDOW_MS`, for at most its own timeout.
 *
 * No one overtakes a waiter: a checkout may take a new seat of a pool only when fewer live waiters come before it
 * in that pool's queue than the pool has free seats. So a seat that frees is held for the head of the queue until
 * it asks again (a live waiter asks within the window) or drops out of the queue (it stopped asking: the window is
 * the claim window), and a stream of fresh checkouts never gets it first. The order is the order in which the
 * waiters reached the license's lock (`seq`), the same on every node.
 */
import type { Effect } from './effects.js';

/** A waiter keeps its place while it asks again within this (and a freed seat waits this long for it at most). */
export const QUEUE_POLL_WINDOW_MS = 15_000;

export interface Waiter {
  /** the order of arrival (assigned by the store when the waiter is first written) */
  seq: number;
  licenseId: string;
  /** `base` or a feature name */
  pool: string;
  fingerprint: string;
  instanceId: string;
  enqueuedAt: number;
  lastPollAt: number;
  /** the waiter's own timeout: it leaves the queue then, asking or not */
  expiresAt: number;
}

/** Who asks: a checkout's fingerprint and instance. */
export interface Asker {
  fingerprint: string;
  instanceId: string;
}

export function isLive(w: Waiter, now: number): boolean {
  return w.lastPollAt + QUEUE_POLL_WINDOW_MS > now && w.expiresAt > now;
}

const isMine = (w: Waiter, who: Asker) => w.fingerprint === who.fingerprint && w.instanceId === who.instanceId;

/** How many live waiters of `pool` come before `who` (every live waiter of the pool if `who` does not wait in it). */
export function aheadIn(waiters: readonly Waiter[], pool: string, who: Asker, now: number): number {
  const live = waiters.filter((w) => w.pool === pool && isLive(w, now));
  const mine = live.find((w) => isMine(w, who));
  return mine ? live.filter((w) => w.seq < mine.seq).length : live.length;
}

/** Checkouts waiting now (a waiter in two pools' queues counts once). */
export function waitingCount(waiters: readonly Waiter[], now: number): number {
  return new Set(waiters.filter((w) => isLive(w, now)).map((w) => `${w.fingerprint}\n${w.instanceId}`)).size;
}

/** Where a refused waiter stands: the details its refusal carries. */
export interface QueuePlace {
  pool: string;
  position: number;
  length: number;
  pollWithinSeconds: number;
}

/**
 * The queue's part of a checkout decision, once the seat decision is made: a grant takes the asker out of every
 * queue (and records how long it waited); a refusal for want of a seat of `pool` puts a waiting asker in that
 * pool's queue, or keeps its place there; entries that stopped asking are dropped on the way.
 */
export function queueEffects(
  waiters: readonly Waiter[],
  who: Asker & { wait?: { timeoutSeconds: number } | undefined },
  licenseId: string,
  level: number,
  now: number,
  outcome: { granted: true } | { granted: false; pool: string | null },
): { effects: Effect[]; place?: QueuePlace } {
  const effects: Effect[] = [];
  const dead = waiters.filter((w) => !isLive(w, now));
  if (dead.length) effects.push({ type: 'waiters.drop', seqs: dead.map((w) => w.seq) });
  const mine = waiters.filter((w) => isMine(w, who) && isLive(w, now));
  if (outcome.granted) {
    if (mine.length === 0) return { effects };
    effects.push({ type: 'waiter.delete', licenseId, fingerprint: who.fingerprint, instanceId: who.instanceId });
    const since = Math.min(...mine.map((w) => w.enqueuedAt));
    effects.push({ type: 'usage.queue', licenseId, at: now, level, queued: 0, grants: 1, waitMs: now - since });
    return { effects };
  }
  if (!who.wait || outcome.pool === null) return { effects };
  const pool = outcome.pool;
  const here = mine.find((w) => w.pool === pool);
  // Its place in the other queues it waits in is kept too (it asked again).
  for (const w of mine) effects.push({ type: 'waiter.put', waiter: { ...w, lastPollAt: now } });
  if (!here) {
    const expiresAt = mine.length ? Math.max(...mine.map((w) => w.expiresAt)) : now + who.wait.timeoutSeconds * 1000;
    effects.push({
      type: 'waiter.put',
      waiter: {
        seq: 0,
        licenseId,
        pool,
        fingerprint: who.fingerprint,
        instanceId: who.instanceId,
        enqueuedAt: now,
        lastPollAt: now,
        expiresAt,
      },
    });
    if (mine.length === 0) effects.push({ type: 'usage.queue', licenseId, at: now, level, queued: 1, grants: 0, waitMs: 0 });
  }
  const live = waiters.filter((w) => w.pool === pool && isLive(w, now) && !isMine(w, who));
  const position = here ? live.filter((w) => w.seq < here.seq).length + 1 : live.length + 1;
  return {
    effects,
    place: { pool, position, length: live.length + 1, pollWithinSeconds: QUEUE_POLL_WINDOW_MS / 1000 },
  };
}
