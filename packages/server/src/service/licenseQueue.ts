/**
 * Per-license queue of seat work (issue #24, part 4). On PostgreSQL every
 * seat-changing transaction locks its license row; a crowd of checkouts on one
 * key would each take a pool connection and then sit waiting for that lock,
 * until the whole pool is parked behind one key and every other key's
 * renewals queue for a connection. Here a license's work waits in the node,
 * holding no connection, and at most `limit` of its transactions run at once:
 * one key can never hold more than `limit` of the pool, however hard it is
 * pushed. Work on different keys never waits for each other here.
 *
 * On SQLite there is no pool to protect (one writer; the group commit already
 * queues in the process), so the server gives no limit there (0 = no queue).
 */
import type { Config } from '../config.js';
import type { Store } from '../store/port.js';
import type { Metrics } from './metrics.js';

/**
 * The default bound: a quarter of the PostgreSQL pool (at least 1), so one key — or three at once — leave the
 * rest of the pool to everyone else; no queue on SQLite. `FLOATD_LICENSE_CONCURRENCY` overrides it.
 */
export function licenseConcurrency(config: Pick<Config, 'database' | 'licenseConcurrency'>): number {
  if (config.licenseConcurrency !== undefined) return config.licenseConcurrency;
  return config.database.kind === 'postgres' ? Math.max(1, Math.floor(config.database.poolSize / 4)) : 0;
}

/**
 * Counts transactions that start while as many transactions as the pool has connections are already running
 * (they wait for a connection): \`floatd_db_pool_waits_total\`. A lower bound: reads outside transactions take
 * connections too and are not counted.
 */
export function countPoolWaits(store: Store, poolSize: number, metrics: Pick<Metrics, 'poolWaits'>): void {
  const transaction = store.transaction.bind(store);
  let running = 0;
  store.transaction = async <T>(fn: Parameters<Store['transaction']>[0]) => {
    if (running >= poolSize) metrics.poolWaits.inc();
    running++;
    try {
      return (await transaction(fn)) as T;
    } finally {
      running--;
    }
  };
}

interface Lane {
  active: number;
  waiting: (() => void)[];
}

/** How long a seat operation waits for its license's turn before it is answered 503 (the client retries). */
export const DEFAULT_MAX_QUEUE_WAIT_MS = 5_000;
/**
 * How long one operation holds its license's slot at most. An operation whose database connection was cut
 * under it may not settle for a long time (the driver waits on a dead socket); past this its slot goes to the
 * next one, which at worst waits for the row lock in the database, as it would without the queue.
 */
export const DEFAULT_MAX_HOLD_MS = 5_000;

/**
 * A seat operation that waited its whole bound for its license's turn (the operations ahead of it are
 * stuck on a database that does not answer, or the key is flooded): answered `503 SERVICE_UNAVAILABLE`
 * with Retry-After, like any other moment the server cannot serve, rather than held past the client's patience.
 */
export class LicenseBusyError extends Error {
  constructor(readonly waitedMs: number) {
    super(`the license key's operations ahead of this one did not finish within ${Math.round(waitedMs)} ms; retry`);
    this.name = 'LicenseBusyError';
  }
}

export class LicenseQueue {
  private readonly lanes = new Map<string, Lane>();
  private waitingTotal = 0;
  /** the most transactions seen running at once for one key (for tests and the bench) */
  maxActive = 0;

  constructor(
    /** transactions of one license at once; 0 = no limit (no queue) */
    readonly limit: number,
    private readonly metrics?: Pick<Metrics, 'licenseQueueWaiting' | 'licenseQueueLength' | 'licenseQueueWaitSeconds'>,
    private readonly maxWaitMs: number = DEFAULT_MAX_QUEUE_WAIT_MS,
    private readonly maxHoldMs: number = DEFAULT_MAX_HOLD_MS,
  ) {}

  /** Runs `fn` when `key` has a free slot; FIFO per key. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    if (this.limit <= 0) return fn();
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { active: 0, waiting: [] };
      this.lanes.set(key, lane);
    }
    this.metrics?.licenseQueueLength.observe(lane.active >= this.limit ? lane.waiting.length + 1 : 0);
    if (lane.active >= this.limit) {
      const since = performance.now();
      this.waitingTotal++;
      this.metrics?.licenseQueueWaiting.set(this.waitingTotal);
      const turn = await new Promise<boolean>((resolve) => {
        const go = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          // Gave up: out of the line (a slot handed over later goes to the next one).
          const i = lane.waiting.indexOf(go);
          if (i >= 0) lane.waiting.splice(i, 1);
          resolve(false);
        }, this.maxWaitMs);
        lane.waiting.push(go);
      });
      this.waitingTotal--;
      this.metrics?.licenseQueueWaiting.set(this.waitingTotal);
      this.metrics?.licenseQueueWaitSeconds.observe((performance.now() - since) / 1000);
      if (!turn) throw new LicenseBusyError(performance.now() - since);
    }
    // The slot was handed over by the one that finished (active unchanged) or is taken now.
    else lane.active++;
    this.maxActive = Math.max(this.maxActive, lane.active);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const next = lane.waiting.shift();
      if (next) next();
      else {
        lane.active--;
        if (lane.active === 0 && this.lanes.get(key) === lane) this.lanes.delete(key);
      }
    };
    const hold = setTimeout(release, this.maxHoldMs);
    hold.unref();
    try {
      return await fn();
    } finally {
      clearTimeout(hold);
      release();
    }
  }

  /** Transactions of `key` running now, and waiting. */
  depth(key: string): { active: number; waiting: number } {
    const lane = this.lanes.get(key);
    return { active: lane?.active ?? 0, waiting: lane?.waiting.length ?? 0 };
  }
}
