/**
 * What the admin views read beyond single records: the dashboard (each license
 * with its product's name and today's denials) and a license's hourly usage over
 * a range with its totals. Reads only, outside any seat transaction (a moment
 * stale at worst).
 */
import type { Clock } from '../domain/clock.js';
import { fail, ok, type Result } from '../domain/result.js';
import type { License } from '../domain/types.js';
import { recommendSeats, type Recommendation } from '../domain/recommend.js';
import type { PageOf, PageRequest, Store, UsageRow } from '../store/port.js';

const DAY_MS = 86_400_000;
/** The longest usage range one request may ask for. */
export const MAX_USAGE_RANGE_MS = 366 * DAY_MS;

export interface DashboardRow {
  license: License;
  productName: string | null;
  /** denials since midnight UTC */
  denialsToday: number;
}

export interface UsageReport {
  rows: UsageRow[];
  /** the highest hourly peak in the range */
  peakSeats: number;
  denials: number;
  checkouts: number;
}

export class OverviewService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** A page of licenses joined with their product's name and today's denials. */
  async dashboard(page: PageRequest & { customerId?: string | undefined }): Promise<PageOf<DashboardRow>> {
    const now = this.clock.now();
    const licenses = await this.store.listLicenses(page);
    const denials = await this.store.denialsSince(now - (now % DAY_MS));
    const names = new Map<string, string | null>();
    for (const l of licenses.items)
      if (!names.has(l.productId)) names.set(l.productId, (await this.store.getProduct(l.productId))?.name ?? null);
    return {
      items: licenses.items.map((license) => ({
        license,
        productName: names.get(license.productId) ?? null,
        denialsToday: denials.get(license.id) ?? 0,
      })),
      nextCursor: licenses.nextCursor,
    };
  }

  /** A seat count for the license recommended from its last `days` of usage (`domain/recommend.ts`). */
  async recommendation(licenseId: string, days: number): Promise<Result<Recommendation & { from: number; to: number }>> {
    const license = await this.store.getLicense(licenseId);
    if (!license) return fail('LICENSE_NOT_FOUND', `no license ${licenseId}`);
    const { from, to } = lastDaysRange(this.clock.now(), days);
    return ok({ ...recommendSeats(await this.store.usage(licenseId, from, to), license.seats, days), from, to });
  }

  /** A license's hourly usage from `from` (default: a day before `to`) to `to` (default: now), with its totals. */
  async usage(licenseId: string, range: { from?: number | undefined; to?: number | undefined }): Promise<Result<UsageReport>> {
    if (!(await this.store.getLicense(licenseId))) return fail('LICENSE_NOT_FOUND', `no license ${licenseId}`);
    const to = range.to ?? this.clock.now();
    const from = range.from ?? to - DAY_MS;
    if (!(from < to)) return fail('VALIDATION_FAILED', 'from must be before to', { field: 'querystring/from' });
    if (to - from > MAX_USAGE_RANGE_MS)
      return fail('VALIDATION_FAILED', 'the range may span at most 366 days', { field: 'querystring/from' });
    return ok(usageTotals(await this.store.usage(licenseId, from, to)));
  }
}

/** The last `days` of hourly usage through the end of the current hour (its row is the live one): the recommendation and the customer page read it. */
export function lastDaysRange(now: number, days: number): { from: number; to: number } {
  const to = Math.floor(now / 3_600_000) * 3_600_000 + 3_600_000;
  return { from: to - days * DAY_MS, to };
}

/** The totals of a range of hourly rows: the highest peak, and the denials and checkouts summed. */
export function usageTotals(rows: UsageRow[]): UsageReport {
  return {
    rows,
    peakSeats: rows.reduce((m, r) => Math.max(m, r.peakSeats), 0),
    denials: rows.reduce((n, r) => n + r.denials, 0),
    checkouts: rows.reduce((n, r) => n + r.checkouts, 0),
  };
}
