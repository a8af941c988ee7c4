/**
 * `floatd tokens …`: admin tokens, their roles and, for a customer's own administrator, their customer.
 */
import { Option, type Command } from 'commander';
import * as protocol from '@floatd/protocol';
import { arg, customerRef, show, type CommandKit } from './kit.js';
import { keyValues, out, printJson, table } from './output.js';

type AdminToken = protocol.AdminTokenInfo & { token?: string };
const A = protocol.routes.admin;
/** Taken from the wire schema, so the CLI never refuses a role the server knows. */
const ROLES: string[] = protocol.Role.anyOf.map((t) => String(t.const));

function tokenBlock(t: AdminToken): string {
  return keyValues([
    ['id', t.id],
    ['name', t.name],
    ['role', t.role],
    ['customer', t.customerId ?? 'none (a vendor token: every customer)'],
    ['created', t.createdAt],
    ['last used', t.lastUsedAt],
    ['revoked', t.revokedAt],
  ]);
}

export function registerTokens(program: Command, kit: CommandKit): void {
  const g = kit.group(program, 'tokens', 'admin tokens and their roles (admin, operator, viewer)');
  kit.leaf(g, 'list', 'list admin tokens (never their secrets)', async (ctx) => {
    const res = await ctx.client.call(A.listTokens, {});
    show(ctx, res.body, (b) =>
      table(
        ['ID', 'NAME', 'ROLE', 'CUSTOMER', 'CREATED', 'LAST USED', 'REVOKED'],
        b.items.map((t) => [t.id, t.name, t.role, t.customerId, t.createdAt, t.lastUsedAt, t.revokedAt]),
      ),
    );
  });
  kit
    .leaf(g, 'create', 'create an admin token; its secret is printed this once', async (ctx) => {
      const body: protocol.CreateAdminToken = { name: ctx.opts.name as string, role: ctx.opts.role as protocol.Role };
      if (ctx.opts.customer !== undefined) body.customerId = await customerRef(ctx, ctx.opts.customer as string);
      const res = await ctx.client.call(A.createToken, { body });
      if (ctx.json) return printJson(res.body);
      out(`${tokenBlock(res.body)}\n\ntoken  ${res.body.token ?? ''}`);
      process.stderr.write('floatd: the token secret above is shown only this once; keep it now\n');
    })
    .requiredOption('--name <name>', 'a name for the token (1-100 characters)')
    .addOption(new Option('--role <role>', 'what the token may do').choices(ROLES).makeOptionMandatory())
    .option(
      '--customer <customer>',
      "a token for this customer's own administrator (its cus_… id or its name): it reaches only that customer's licenses",
    );
  kit.leaf(g, 'revoke <tokenId>', 'revoke an admin token at once', async (ctx) => {
    const res = await ctx.client.call(A.revokeToken, { params: { tokenId: arg(ctx, 0) } });
    show(ctx, res.body, (t) => `revoked ${t.id} (${t.name}, ${t.role}) at ${t.revokedAt ?? '-'}`);
  });
}
