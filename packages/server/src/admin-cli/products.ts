/**
 * `floatd products …`: the applications that own licenses.
 */
import type { Command } from 'commander';
import * as protocol from '@floatd/protocol';
import { arg, list, morePages, pagingOptions, productRef, show, type CommandKit } from './kit.js';
import { jsonObject } from './parsers.js';
import { keyValues, out, printJson, table } from './output.js';

type Product = protocol.Product;
const A = protocol.routes.admin;

function productTable(items: Product[]): string {
  return table(
    ['ID', 'NAME', 'CREATED', 'UPDATED'],
    items.map((p) => [p.id, p.name, p.createdAt, p.updatedAt]),
  );
}
function productBlock(p: Product): string {
  return keyValues([
    ['id', p.id],
    ['name', p.name],
    ['metadata', JSON.stringify(p.metadata)],
    ['created', p.createdAt],
    ['updated', p.updatedAt],
  ]);
}

export function registerProducts(program: Command, kit: CommandKit): void {
  const g = kit.group(program, 'products', 'manage products (the applications that own licenses)');
  pagingOptions(
    kit.leaf(g, 'list', 'list products, oldest first', async (ctx) => {
      const page = await list(ctx, A.listProducts, {});
      if (ctx.json) return printJson(page);
      out(productTable(page.items));
      morePages(page);
    }),
  );
  kit
    .leaf(g, 'create <name>', 'create a product', async (ctx) => {
      const body: Record<string, unknown> = { name: arg(ctx, 0) };
      if (ctx.opts.metadata) body.metadata = ctx.opts.metadata;
      show(ctx, (await ctx.client.call(A.createProduct, { body: body as protocol.CreateProduct })).body, productBlock);
    })
    .option('--metadata <json>', 'a JSON object stored with the product', jsonObject);
  kit.leaf(g, 'show <product>', 'show one product (its prd_… id or its name)', async (ctx) => {
    show(ctx, (await ctx.client.call(A.getProduct, { params: { productId: await productRef(ctx, arg(ctx, 0)) } })).body, productBlock);
  });
  kit.leaf(g, 'rename <product> <name>', 'rename a product (its prd_… id or its name)', async (ctx) => {
    const res = await ctx.client.call(A.updateProduct, {
      params: { productId: await productRef(ctx, arg(ctx, 0)) },
      body: { name: arg(ctx, 1) },
    });
    show(ctx, res.body, productBlock);
  });
  kit.leaf(g, 'delete <product>', 'delete a product, by prd_… id or name (refused while it owns licenses)', async (ctx) => {
    const res = await ctx.client.call(A.deleteProduct, { params: { productId: await productRef(ctx, arg(ctx, 0)) } });
    show(ctx, res.body, () => `deleted ${arg(ctx, 0)}`);
  });
}
