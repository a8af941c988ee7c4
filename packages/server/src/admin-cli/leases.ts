/**
 * `floatd leases …` and `floatd reclaim …`: the seats held on a license, releasing them, and
 * reclamation of the seats of silent holders.
 */
import type { Command } from 'commander';
import * as protocol from '@floatd/protocol';
import { arg, licenseRef, show, type CommandKit } from './kit.js';
import { keyValues, table } from './output.js';

const A = protocol.routes.admin;

export function registerLeases(program: Command, kit: CommandKit): void {
  const g = kit.group(program, 'leases', 'list and release the seats held on a license');
  kit.leaf(
    g,
    'list <license>',
    'leases held on a license (its key or its lic_… id), oldest grant first (includes expired ones not yet reclaimed)',
    async (ctx) => {
      const res = await ctx.client.call(A.listLeases, { params: { licenseId: await licenseRef(ctx, arg(ctx, 0)) } });
      show(ctx, res.body, (b) =>
        table(
          ['LEASE', 'DEVICE', 'HOSTNAME', 'USER', 'OFFLINE', 'INSTANCES', 'GRANTED', 'LAST ACCESSED', 'EXPIRES'],
          b.items.map((l) => [
            l.id,
            l.deviceId,
            l.hostname,
            l.user,
            l.offline,
            l.instanceCount,
            l.grantedAt,
            l.lastAccessedAt,
            l.expiresAt ?? 'never',
          ]),
        ),
      );
    },
  );
  kit
    .leaf(g, 'release <leaseId>', 'free a seat now (an offline lease before its OED needs --force)', async (ctx) => {
      const res = await ctx.client.call(A.releaseLease, {
        params: { leaseId: arg(ctx, 0) },
        body: ctx.opts.force === true ? { force: true } : {},
      });
      show(ctx, res.body, (b) => `released ${b.leaseId}${b.offlineOverridden ? ' (an unexpired offline lease: forced)' : ''}`);
    })
    .option('--force', 'also release an offline lease before its Offline Expiry Date');
}

// --- reclaim -------------------------------------------------------------------------------------
export function registerReclaim(program: Command, kit: CommandKit): void {
  const g = kit.group(program, 'reclaim', 'reclamation of the seats of silent holders');
  kit.leaf(g, 'run', 'run a reclamation sweep now and show what it freed', async (ctx) => {
    const res = await ctx.client.call(A.reclaimNow, {});
    show(ctx, res.body, (b) => {
      const head = `freed ${b.freed.length} lease(s), dropped ${b.instancesDropped} instance(s) at ${b.ranAt}`;
      return b.freed.length
        ? `${head}\n\n${table(
            ['LEASE', 'LICENSE', 'DEVICE', 'REASON'],
            b.freed.map((f) => [f.leaseId, f.licenseId, f.deviceId, f.reason]),
          )}`
        : head;
    });
  });
  kit.leaf(g, 'settings', 'show the reclamation interval and server settings', async (ctx) => {
    const res = await ctx.client.call(A.settings, {});
    show(ctx, res.body, (s) =>
      keyValues([
        ['reclaim interval', `${s.reclaimIntervalSeconds}s`],
        ['version', s.version],
        ['store', s.store],
        ['server time', s.serverTime],
      ]),
    );
  });
}
