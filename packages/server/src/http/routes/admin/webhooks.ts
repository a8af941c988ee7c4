/** Admin: webhook endpoints, their delivery log, a ping and redelivery (service/webhooks.ts). */
import * as wire from '@floatd/protocol';
import type { Routes } from '../../context.js';
import { unwrap } from '../../errors.js';
import { created, handle } from '../../route.js';
import { deliveryView, webhookView } from '../../views.js';
import { actor } from './common.js';

const api = wire.routes.admin;

export const webhookRoutes: Routes = (app, { webhooks, store }) => {
  handle(app, api.createWebhook, async (req) => {
    const w = await webhooks.create(req.body, actor(req));
    return created({ ...webhookView(w), secret: w.secret });
  });
  handle(app, api.listWebhooks, async () => ({ items: (await store.listWebhooks()).map(webhookView) }));
  handle(app, api.updateWebhook, async (req) => webhookView(unwrap(await webhooks.update(req.params.webhookId, req.body, actor(req)))));
  handle(app, api.deleteWebhook, async (req) => unwrap(await webhooks.delete(req.params.webhookId, actor(req))));
  handle(app, api.pingWebhook, async (req) => deliveryView(unwrap(await webhooks.ping(req.params.webhookId, actor(req)))));
  handle(app, api.listWebhookDeliveries, async (req) => {
    const page = unwrap(
      await webhooks.deliveries(req.params.webhookId, { limit: req.query.limit ?? 50, cursor: req.query.cursor, state: req.query.state }),
    );
    return { items: page.items.map(deliveryView), nextCursor: page.nextCursor };
  });
  handle(app, api.redeliverWebhook, async (req) => deliveryView(unwrap(await webhooks.redeliver(req.params.deliveryId))));
};
