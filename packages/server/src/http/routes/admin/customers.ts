/** Admin: customers (create, list and search, read with what they hold, change, delete). */
import * as wire from '@floatd/protocol';
import type { Routes } from '../../context.js';
import { unwrap } from '../../errors.js';
import { created, handle } from '../../route.js';
import { customerDetailView, customerView } from '../../views.js';
import { actor, ownCustomer } from './common.js';

const api = wire.routes.admin;

export const customerRoutes: Routes = (app, { customers, store }) => {
  handle(app, api.createCustomer, async (req) => created(customerView(await customers.create(req.body, actor(req)))));
  handle(app, api.listCustomers, async (req) => {
    const q = req.query;
    const page = await store.listCustomers({ limit: q.limit ?? 50, cursor: q.cursor, search: q.q, id: ownCustomer(req) });
    return { items: page.items.map(customerView), nextCursor: page.nextCursor };
  });
  handle(app, api.getCustomer, async (req) => customerDetailView(unwrap(await customers.detail(req.params.customerId))));
  handle(app, api.updateCustomer, async (req) => customerView(unwrap(await customers.update(req.params.customerId, req.body, actor(req)))));
  handle(app, api.deleteCustomer, async (req) => unwrap(await customers.delete(req.params.customerId, actor(req))));
};
