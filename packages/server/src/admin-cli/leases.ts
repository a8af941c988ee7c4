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
      show(ctx, res.body, (b) => leaseTable(b.items));
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

/**
 * One line per seat (its share group, the device that took it, what marks it), the uses that share it
 * indented under it: the instance, its device, host and user, and whether its client says VM or container.
 */
export function leaseTable(items: protocol.Lease[]): string {
  const seats = [...items].sort((a, b) =>
    a.shareGroup < b.shareGroup ? -1 : a.shareGroup > b.shareGroup ? 1 : a.grantedAt < b.grantedAt ? -1 : 1,
  );
  const rows: unknown[][] = [];
  for (const l of seats) {
    const marks = [
      l.offline ? 'offline' : null,
      l.overdraft ? 'overdraft' : null,
      l.lingerUntil ? `lingers until ${l.lingerUntil}` : null,
      l.features.length === 1 && l.features[0] === 'base' ? null : `pools ${l.features.join('+')}`,
    ].filter(Boolean);
    rows.push([
      l.id,
      l.shareGroup,
      l.deviceId,
      l.hostname,
      l.user,
      `${l.instanceCount} use(s)`,
      marks.join(', '),
      l.grantedAt,
      l.expiresAt ?? 'never',
    ]);
    for (const i of l.instances) {
      const claims = [i.meta.vm ? 'vm' : null, i.meta.container ? 'container' : null].filter(Boolean).join(', ');
      rows.push([`  ${i.instanceId}`, '', i.deviceId, i.meta.hostname, i.meta.user, '', claims, i.startedAt, i.expiresAt ?? 'never']);
    }
  }
  return table(['SEAT / USE', 'SHARE GROUP', 'DEVICE', 'HOSTNAME', 'USER', 'USES', 'MARKS', 'SINCE', 'EXPIRES'], rows as never);
}

export function registerDevices(program: Command, kit: CommandKit): void {
  const g = kit.group(program, 'devices', 'the devices seen on a license');
  kit.leaf(
    g,
    'list <license>',
    'devices of a license (its key or its lic_… id), most recently seen first; clone suspects marked',
    async (ctx) => {
      const res = await ctx.client.call(A.listDevices, { params: { licenseId: await licenseRef(ctx, arg(ctx, 0)) } });
      show(ctx, res.body, (b) =>
        table(
          ['DEVICE', 'FINGERPRINT', 'HOSTNAME', 'USER', 'SEATS', 'USES', 'LAST ACCESSED', 'CLONE SUSPECT'],
          b.items.map((d) => [
            d.id,
            d.fingerprint,
            d.hostname,
            d.user,
            d.seatsHeld,
            d.instanceCount,
            d.lastAccessedAt,
            d.cloneSuspectedAt ? `since ${d.cloneSuspectedAt}: ${d.machinesSeen.join('; ')}` : '',
          ]),
        ),
      );
    },
  );
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
