/**
 * Retention of history: the audit log and the hourly usage are pruned past
 * their periods (`FLOATD_AUDIT_RETENTION_DAYS`, `FLOATD_USAGE_RETENTION_DAYS`;
 * 0 keeps everything). The job runs on the node that runs the background jobs,
 * at start and then every `intervalMs`, and deletes in small batches — each its
 * own short transaction, never a license lock, with a pause between batches —
 * so a seat operation waits at most one batch however much history has piled up.
 * Times come from the injectable Clock; what is "older than the period" is
 * decided against `clock.now()` at each pass.
 */
import type { Clock } from '../domain/clock.js';
import type { Store } from '../store/port.js';

export const DAY_MS = 86_400_000;
/** Rows per batch: a few milliseconds of work on either store. */
export const PRUNE_BATCH = 500;

export interface RetentionPeriods {
  auditDays: number;
  usageDays: number;
}

export interface PruneResult {
  audit: number;
  usage: number;
}

/**
 * One pass: deletes audit entries whose last event is older than `auditDays` and usage hours that ended more
 * than `usageDays` ago, batch by batch, until none is left.
 */
export async function prune(
  store: Store,
  clock: Clock,
  periods: RetentionPeriods,
  opts: { batch?: number; pauseMs?: number; stopped?: () => boolean } = {},
): Promise<PruneResult> {
  const batch = opts.batch ?? PRUNE_BATCH;
  const pause = opts.pauseMs ?? 20;
  const result: PruneResult = { audit: 0, usage: 0 };
  const drain = async (days: number, one: (before: number, limit: number) => Promise<number>): Promise<number> => {
    if (days <= 0) return 0;
    const before = clock.now() - days * DAY_MS;
    let total = 0;
    for (;;) {
      if (opts.stopped?.()) return total;
      const n = await one(before, batch);
      total += n;
      if (n < batch) return total;
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    }
  };
  result.audit = await drain(periods.auditDays, (b, l) => store.pruneAudit(b, l));
  result.usage = await drain(periods.usageDays, (b, l) => store.pruneUsage(b, l));
  return result;
}

export function startRetention(
  store: Store,
  clock: Clock,
  periods: RetentionPeriods,
  onError: (err: unknown) => void,
  leadership: { isLeader(): boolean } = { isLeader: () => true },
  intervalMs = 3_600_000,
): { stop(): Promise<void> } {
  let stopped = false;
  let current: Promise<unknown> = Promise.resolve();
  const run = () => {
    if (stopped || !leadership.isLeader()) return;
    current = prune(store, clock, periods, { stopped: () => stopped }).catch(onError);
  };
  // First pass a little after start (not in the way of a start-up burst), then every interval.
  const first = setTimeout(run, 60_000);
  first.unref();
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearTimeout(first);
      clearInterval(timer);
      await current;
    },
  };
}
