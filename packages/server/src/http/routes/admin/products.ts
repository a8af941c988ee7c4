/** Admin: products. */
import * as wire from '@floatd/protocol';
import type { Routes } from '../../context.js';
import { ErrorReply, unwrap } from '../../errors.js';
import { created, handle } from '../../route.js';
import { productView } from '../../views.js';
import { actor } from './common.js';

const api = wire.routes.admin;

export const productRoutes: Routes = (app, { catalogue, store }) => {
  handle(app, api.createProduct, async (req) => created(productView(unwrap(await catalogue.createProduct(req.body, actor(req))))));
  handle(app, api.listProducts, async (req) => {
    const page = await store.listProducts({ limit: req.query.limit ?? 50, cursor: req.query.cursor });
    return { items: page.items.map(productView), nextCursor: page.nextCursor };
  });
  handle(app, api.getProduct, async (req) => {
    const product = await store.getProduct(req.params.productId);
    if (!product) throw new ErrorReply('PRODUCT_NOT_FOUND', `no product ${req.params.productId}`);
    return productView(product);
  });
  handle(app, api.updateProduct, async (req) =>
    productView(unwrap(await catalogue.updateProduct(req.params.productId, req.body, actor(req)))),
  );
  handle(app, api.deleteProduct, async (req) => unwrap(await catalogue.deleteProduct(req.params.productId, actor(req))));
};
