/**
 * Per-license group commit (issues #17 and #24). On PostgreSQL every seat transaction locks its license
 * row and holds the lock through its COMMIT, whose WAL flush is most of its time: one key's checkouts
 * ran one commit at a time (about 240 a second here), and a crowd of them each took a pool connection
 * only to wait for the lock, until one key parked the whole pool.
 *
 * Here the transactions of one group (one license key) wait in the node, holding no connection, and run
 * in turns: each turn takes every transaction waiting (up to `maxGroup`), runs them one after another on
 * one connection in one database transaction, each on the state the ones before it left, and commits once
 * (a unit that throws rolls back alone: the adapter's turn runner decides how). Nobody is answered before
 * that COMMIT.
 * So one key holds at most one connection of a node's pool, and its commits are shared, as the SQLite
 * store shares its commits over all writes.
 *
 * A transaction that waits longer than `maxWaitMs` for its turn (the turns ahead of it are stuck on a
 * database that does not answer, or the key is flooded past what one connection commits) is refused with
 * `LicenseBusyError` (503 with Retry-After) rather than held past the client's patience.
 */
import { LicenseBusyError } from './errors.js';

/** One transaction of a group: runs, then hears its outcome only after the group's commit. */
export interface GroupUnit<Tx, Hint = unknown> {
  run(tx: Tx): Promise<unknown>;
  /** what the unit will read, named up front: a turn may read it for all its units at once (store/postgres/turnView.ts) */
  hint?: Hint | undefined;
}

/** What a turn reports back: per unit, its value or its own error, in order. */
export type UnitOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Runs a turn: every unit in one database transaction, and returns each unit's outcome once it committed.
 * Throws if the transaction as a whole failed (BEGIN, the connection, COMMIT): then nothing committed.
 */
export type TurnRunner<Tx, Hint = unknown> = (group: string, units: readonly GroupUnit<Tx, Hint>[]) => Promise<UnitOutcome[]>;

export interface GroupObserver {
  /** a unit arrived and found `ahead` units of its group waiting for a turn (a turn running now not counted) */
  queued?(ahead: number): void;
  /** units waiting for a turn, over all groups */
  waiting?(total: number): void;
  /** a unit's turn started after `ms` */
  waited?(ms: number): void;
  /** a turn with `size` units started */
  turn?(size: number): void;
}

interface Waiter<Tx, Hint> extends GroupUnit<Tx, Hint> {
  since: number;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  timer?: NodeJS.Timeout;
}

interface Lane<Tx, Hint> {
  waiting: Waiter<Tx, Hint>[];
  running: boolean;
}

/** How long a transaction waits for its license's turn before it is answered 503 (the client retries). */
export const DEFAULT_MAX_GROUP_WAIT_MS = 5_000;
/** At most this many transactions share one commit (bounds the time the license row stays locked). */
export const DEFAULT_MAX_GROUP = 64;

export class GroupCommit<Tx, Hint = unknown> {
  private readonly lanes = new Map<string, Lane<Tx, Hint>>();
  private waitingTotal = 0;
  /** the most turns seen running at once for one group (1 by construction; for tests) */
  maxRunning = 0;
  /** the largest turn so far (for tests and the bench) */
  maxTurn = 0;
  private runningNow = new Map<string, number>();
  observer: GroupObserver | undefined;

  constructor(
    private readonly runTurn: TurnRunner<Tx, Hint>,
    private readonly maxGroup: number = DEFAULT_MAX_GROUP,
    private readonly maxWaitMs: number = DEFAULT_MAX_GROUP_WAIT_MS,
  ) {}

  /** Runs `fn` in the next turn of `group`; resolves with its value after that turn's commit. `hint`: see `GroupUnit`. */
  run<T>(group: string, fn: (tx: Tx) => Promise<T>, hint?: Hint): Promise<T> {
    let lane = this.lanes.get(group);
    if (!lane) {
      lane = { waiting: [], running: false };
      this.lanes.set(group, lane);
    }
    const current = lane;
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<Tx, Hint> = { run: fn, hint, since: performance.now(), resolve: resolve as (v: unknown) => void, reject };
      this.observer?.queued?.(current.waiting.length);
      current.waiting.push(waiter);
      this.setWaiting(this.waitingTotal + 1);
      if (current.running) {
        waiter.timer = setTimeout(() => {
          const i = current.waiting.indexOf(waiter);
          if (i < 0) return;
          current.waiting.splice(i, 1);
          this.setWaiting(this.waitingTotal - 1);
          reject(new LicenseBusyError(performance.now() - waiter.since));
        }, this.maxWaitMs);
      } else {
        current.running = true;
        // After the current I/O phase: every transaction of this key that arrived in it joins the first turn.
        setImmediate(() => void this.drain(group, current));
      }
    });
  }

  /** Units of `group` waiting for a turn now. */
  depth(group: string): number {
    return this.lanes.get(group)?.waiting.length ?? 0;
  }

  private setWaiting(total: number): void {
    this.waitingTotal = total;
    this.observer?.waiting?.(total);
  }

  private async drain(group: string, lane: Lane<Tx, Hint>): Promise<void> {
    try {
      while (lane.waiting.length) {
        const turn = lane.waiting.splice(0, this.maxGroup);
        this.setWaiting(this.waitingTotal - turn.length);
        const started = performance.now();
        for (const w of turn) {
          clearTimeout(w.timer);
          this.observer?.waited?.(started - w.since);
        }
        this.observer?.turn?.(turn.length);
        this.maxTurn = Math.max(this.maxTurn, turn.length);
        const running = (this.runningNow.get(group) ?? 0) + 1;
        this.runningNow.set(group, running);
        this.maxRunning = Math.max(this.maxRunning, running);
        try {
          const outcomes = await this.runTurn(group, turn);
          turn.forEach((w, i) => {
            const o = outcomes[i]!;
            if (o.ok) w.resolve(o.value);
            else w.reject(o.error);
          });
        } catch (err) {
          for (const w of turn) w.reject(err);
        } finally {
          this.runningNow.set(group, running - 1);
        }
      }
    } finally {
      lane.running = false;
      this.runningNow.delete(group);
      if (this.lanes.get(group) === lane && lane.waiting.length === 0) this.lanes.delete(group);
    }
  }
}
