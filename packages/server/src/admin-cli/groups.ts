/** `floatd groups …`: the groups of users and hosts that license access policies name as `group:<name>`. */
import type { Command } from 'commander';
import * as protocol from '@floatd/protocol';
import { arg, show, type CommandKit } from './kit.js';
import { keyValues, table } from './output.js';

const A = protocol.routes.admin;
const list = (v: string) =>
  v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

export function registerGroups(program: Command, kit: CommandKit): void {
  const g = kit.group(program, 'groups', 'groups of users and hosts, named in license access policies as group:<name>');
  kit.leaf(g, 'list', 'list the groups', async (ctx) => {
    const res = await ctx.client.call(A.listGroups, {});
    show(ctx, res.body, (b) =>
      table(
        ['GROUP', 'USERS', 'HOSTS', 'UPDATED'],
        b.items.map((x) => [x.name, x.users.join(', '), x.hosts.join(', '), x.updatedAt]),
      ),
    );
  });
  kit.leaf(g, 'show <name>', 'show one group', async (ctx) => {
    const res = await ctx.client.call(A.getGroup, { params: { name: arg(ctx, 0) } });
    show(ctx, res.body, (x) =>
      keyValues([
        ['group', x.name],
        ['users', x.users.join(', ')],
        ['hosts', x.hosts.join(', ')],
        ['updated', x.updatedAt],
      ]),
    );
  });
  kit
    .leaf(g, 'set <name>', 'create or replace a group (its users and hosts, comma separated)', async (ctx) => {
      const res = await ctx.client.call(A.putGroup, {
        params: { name: arg(ctx, 0) },
        body: { users: list(String(ctx.opts.users ?? '')), hosts: list(String(ctx.opts.hosts ?? '')) },
      });
      show(ctx, res.body, (x) => `group ${x.name}: ${x.users.length} user(s), ${x.hosts.length} host(s)`);
    })
    .option('--users <names>', 'user names, comma separated')
    .option('--hosts <names>', 'host names, comma separated');
  kit.leaf(g, 'delete <name>', 'delete a group', async (ctx) => {
    const res = await ctx.client.call(A.deleteGroup, { params: { name: arg(ctx, 0) } });
    show(ctx, res.body, (b) => `deleted group ${b.deleted}`);
  });
}
