/** Helpers shared by the store adapters. */
import type { SweepFound, UsageRow } from './port.js';

export const HOUR_MS = 3_600_000;

/** Cursors are the last row's sequence number, as a decimal string (validated by the schema). */
export const encodeCursor = (seq: number): string => String(seq);
export const decodeCursor = (cursor: string | undefined): number => (cursor ? Number(cursor) : 0);

export const hourOf = (ms: number): number => Math.floor(ms / HOUR_MS) * HOUR_MS;

/** Fills hours without a change with the level of the hour before them, so a chart has no holes. */
export function fillHours(rows: UsageRow[], from: number, to: number, levelBefore: number): UsageRow[] {
  const out: UsageRow[] = [];
  const byHour = new Map(rows.map((r) => [r.hour, r]));
  let level = levelBefore;
  let overdraft = 0;
  for (let h = hourOf(from); h < to; h += HOUR_MS) {
    const r = byHour.get(h);
    if (r) {
      out.push(r);
      level = r.seatsAtEnd;
      overdraft = r.overdraftAtEnd;
    } else {
      out.push({
        hour: h,
        peakSeats: level,
        seatsAtEnd: level,
        checkouts: 0,
        denials: 0,
        peakOverdraft: overdraft,
        overdraftAtEnd: overdraft,
        overdraftCheckouts: 0,
        queued: 0,
        queueGrants: 0,
        queueWaitMs: 0,
      });
    }
  }
  return out;
}

/** `text` as a LIKE pattern that matches it literally (`%`, `_` and the escape `\` escaped; used with `ESCAPE '\'`). */
export const likeEscaped = (text: string): string => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * Where a sweep's scan (`Store.sweepScan`) is: its phase (the dead leases, then the live leases' dead uses) and the
 * key of the last row it gave in the order of the phase's index (expiry, then license and lease id, or lease and
 * instance id). The cursor is its JSON; the first position is below every key.
 */
export interface SweepPosition {
  phase: 'lease' | 'use';
  at: number;
  a: string;
  b: string;
}

/** A row of a sweep's range scan, as a tuple (100,000 of them are cheaper as arrays): expiry, license, lease, and the use (phase `use`). */
export type SweepRow = [at: number, licenseId: string, leaseId: string, instanceId?: string];

const sweepStart = (phase: SweepPosition['phase']): SweepPosition => ({ phase, at: Number.MIN_SAFE_INTEGER, a: '', b: '' });

/** One page of `Store.sweepScan` from an adapter's range scan (`scan`: up to `limit` rows after the position, in order). */
export async function sweepPage(
  cursor: string | null,
  limit: number,
  scan: (from: SweepPosition, limit: number) => Promise<SweepRow[]> | SweepRow[],
): Promise<{ found: SweepFound[]; next: string | null }> {
  const from = cursor ? decodeSweepCursor(cursor) : sweepStart('lease');
  const rows = await scan(from, limit);
  const found = rows.map((r) => ({ licenseId: r[1], leaseId: r[2] }));
  const last = rows[rows.length - 1];
  const next: SweepPosition | null =
    rows.length >= limit && last
      ? from.phase === 'lease'
        ? { phase: 'lease', at: Number(last[0]), a: last[1], b: last[2] }
        : { phase: 'use', at: Number(last[0]), a: last[2], b: String(last[3]) }
      : from.phase === 'lease'
        ? sweepStart('use')
        : null;
  return { found, next: next && JSON.stringify([next.phase, next.at, next.a, next.b]) };
}

function decodeSweepCursor(cursor: string): SweepPosition {
  const [phase, at, a, b] = JSON.parse(cursor) as [SweepPosition['phase'], number, string, string];
  return { phase, at, a, b };
}
