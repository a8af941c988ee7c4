/**
 * `floatd status`: server health and readiness, and seats in use per license.
 */
import type { Command } from 'commander';
import * as protocol from '@floatd/protocol';
import { CliError, EXIT } from './http.js';
import { list, type CommandKit } from './kit.js';
import { keyValues, out, printJson, table } from './output.js';

const A = protocol.routes.admin;
const O = protocol.routes.ops;

export function registerStatus(program: Command, kit: CommandKit): void {
  kit.leaf(program, 'status', 'server health and readiness, and seats in use per license', async (ctx) => {
    const health = await ctx.client.call(O.healthz, {});
    // 503 is an answer here (not ready), not a failure: its envelope is shown.
    const ready = await ctx.client.call(O.readyz, {}, { accept: [503] });
    const dashboard = await list({ ...ctx, opts: { all: true } }, A.dashboard, {});
    if (ctx.json) {
      printJson({ server: ctx.client.server, healthz: health.body, readyz: ready.body, dashboard });
    } else {
      const used = dashboard.items.reduce((n, r) => n + r.license.seatsUsed, 0);
      const total = dashboard.items.reduce((n, r) => n + r.license.seats, 0);
      out(
        keyValues([
          ['server', ctx.client.server],
          ['version', health.body.version],
          ['health', health.body.status],
          [
            'ready',
            ready.status === 200
              ? `${ready.body.status} (${ready.body.store})`
              : `no: ${(ready.body as { error?: { message?: string } }).error?.message ?? `HTTP ${ready.status}`}`,
          ],
          ['licenses', dashboard.items.length],
          ['seats used', `${used}/${total}`],
        ]),
      );
      if (dashboard.items.length) {
        out(
          '\n' +
            table(
              ['LICENSE', 'PRODUCT', 'KEY', 'SEATS', 'OFFLINE', 'DENIALS TODAY', 'STATE'],
              dashboard.items.map((r) => [
                r.license.id,
                r.productName ?? r.license.productId,
                r.license.key,
                `${r.license.seatsUsed}/${r.license.seats}`,
                r.license.seatsOffline,
                r.denialsToday,
                r.license.suspended ? 'suspended' : 'active',
              ]),
            ),
        );
      }
    }
    if (ready.status !== 200) throw new CliError('the server is not ready', EXIT.unreachable);
  });
}
