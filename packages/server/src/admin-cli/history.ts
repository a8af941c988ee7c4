/**
 * `floatd audit`, `floatd usage <license>` and `floatd recommend <license>`: the audit log, seats in use per hour,
 * and a seat count recommended from the measured demand.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import * as protocol from '@floatd/protocol';
import { CliError, EXIT } from './http.js';
import { arg, licenseRef, list, morePages, pagingOptions, show, type CommandKit } from './kit.js';
import { timestamp, wholeNumber } from './parsers.js';

const anyDays = wholeNumber('days', 1);
/** 1–366 days, as the server takes them. */
function daysBack(v: string): number {
  const n = anyDays(v);
  if (n > 366) throw new InvalidArgumentError('at most 366 days.');
  return n;
}
import { csv, out, printJson, table, type Cell } from './output.js';

const A = protocol.routes.admin;
/** Taken from the wire schema, so the CLI never refuses a type the server knows. */
const AUDIT_TYPES: string[] = protocol.AuditType.anyOf.map((t) => String(t.const));

/** The queue over the window: checkouts that waited, waiters served and their average wait (nothing when nobody waited). */
function queueTotals(hours: protocol.UsageHour[]): string {
  const queued = hours.reduce((n, h) => n + h.queued, 0);
  const served = hours.reduce((n, h) => n + h.queueGrants, 0);
  const waited = hours.reduce((n, h) => n + h.queueWaitSeconds, 0);
  if (queued === 0 && served === 0) return '';
  return `\nqueue: ${queued} checkout(s) waited, ${served} got a seat${served ? `, after ${Math.round(waited / served)} s on average` : ''}`;
}

/** Per feature pool over the window: its peak, grants and denials (a line each; nothing when no feature was used). */
function featureTotals(hours: protocol.UsageHour[]): string {
  const totals = new Map<string, { peak: number; checkouts: number; denials: number }>();
  for (const h of hours)
    for (const [name, f] of Object.entries(h.features)) {
      const t = totals.get(name) ?? { peak: 0, checkouts: 0, denials: 0 };
      totals.set(name, { peak: Math.max(t.peak, f.peak), checkouts: t.checkouts + f.checkouts, denials: t.denials + f.denials });
    }
  return [...totals]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, t]) => `\nfeature ${name}: peak ${t.peak} seat(s), ${t.checkouts} checkout(s), ${t.denials} denial(s)`)
    .join('');
}

export function registerHistory(program: Command, kit: CommandKit): void {
  const audit = kit
    .leaf(program, 'audit', 'the audit log, newest first', async (ctx) => {
      const options = ctx.opts;
      const license = (options.license ?? options.key) as string | undefined;
      const page = await list(ctx, A.listAudit, {
        licenseId: license === undefined ? undefined : await licenseRef(ctx, license),
        deviceId: options.device as string | undefined,
        leaseId: options.lease as string | undefined,
        type: options.type as string | undefined,
        actor: options.actor as string | undefined,
        from: options.from as string | undefined,
        to: options.to as string | undefined,
      });
      if (ctx.json) return printJson(page);
      out(
        table(
          ['ID', 'AT', 'TYPE', 'ACTOR', 'LICENSE', 'DEVICE', 'LEASE', 'REASON'],
          page.items.map((e) => [e.id, e.at, e.type, e.actor, e.licenseId, e.deviceId, e.leaseId, e.reason]),
        ),
      );
      morePages(page);
    })
    .option('--license <license>', 'only events about this license (its key or its lic_… id)')
    // --key was this option's first name: kept, unlisted
    .addOption(new Option('--key <license>').hideHelp())
    .option('--device <deviceId>', 'only events about this device')
    .option('--lease <leaseId>', 'only events about this lease')
    .option('--actor <actor>', 'only events by this actor: client, reclaimer or admin:<token id>')
    .addOption(new Option('--type <type>', 'only events of this type').choices(AUDIT_TYPES))
    .option('--from <time>', 'from this time (inclusive), ISO 8601', timestamp)
    .option('--to <time>', 'up to this time (exclusive), ISO 8601', timestamp);
  pagingOptions(audit);

  kit
    .leaf(
      program,
      'usage <license>',
      'seats in use per hour on a license, by its key or lic_… id (default the last 24 hours)',
      async (ctx) => {
        if (ctx.opts.csv && ctx.json) throw new CliError('--csv and --json exclude each other', EXIT.usage);
        const res = await ctx.client.call(A.licenseUsage, {
          params: { licenseId: await licenseRef(ctx, arg(ctx, 0)) },
          query: { from: ctx.opts.from as string | undefined, to: ctx.opts.to as string | undefined },
        });
        const rows: Cell[][] = res.body.items.map((h) => [h.hour, h.peakSeats, h.seatsAtEnd, h.checkouts, h.denials]);
        if (ctx.opts.csv) return out(csv(['hour', 'peakSeats', 'seatsAtEnd', 'checkouts', 'denials'], rows));
        show(
          ctx,
          res.body,
          (b) =>
            `${table(['HOUR', 'PEAK', 'AT END', 'CHECKOUTS', 'DENIALS'], rows)}\n\npeak ${b.peakSeats} seat(s), ${b.checkouts} checkout(s), ${b.denials} denial(s)` +
            queueTotals(b.items) +
            featureTotals(b.items),
        );
      },
    )
    .option('--from <time>', 'start, ISO 8601 (default: 24 hours before --to)', timestamp)
    .option('--to <time>', 'end, ISO 8601 (default: now)', timestamp)
    .option('--csv', 'print CSV: hour,peakSeats,seatsAtEnd,checkouts,denials');

  kit
    .leaf(
      program,
      'recommend <license>',
      'a seat count for a license recommended from its measured demand (peak held + refused per hour), with the reason',
      async (ctx) => {
        const res = await ctx.client.call(A.licenseRecommendation, {
          params: { licenseId: await licenseRef(ctx, arg(ctx, 0)) },
          query: { days: ctx.opts.days as number | undefined },
        });
        show(
          ctx,
          res.body,
          (b) =>
            `recommended seats  ${b.recommendedSeats} (today ${b.seats})\n${b.reason}\n\n` +
            table(
              ['FROM', 'TO', 'CHECKOUTS', 'REFUSED', 'BUSY HOURS', 'FULL HOURS', 'PEAK DEMAND', 'QUEUED'],
              [[b.from, b.to, b.checkouts, b.denials, b.busyHours, b.hoursAtFull, b.peakDemand, b.queued]],
            ),
        );
      },
    )
    .option('--days <n>', 'how far back to look: 1–366 days (default 30)', daysBack);
}
