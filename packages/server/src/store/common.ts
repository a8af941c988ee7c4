/** Helpers shared by the store adapters. */
import type { UsageRow } from './port.js';

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
      });
    }
  }
  return out;
}
