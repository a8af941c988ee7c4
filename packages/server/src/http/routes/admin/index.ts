/**
 * Admin API (`Authorization: Bearer <admin token>`), one file per resource:
 * customers, products, licenses, leases and seats, history (audit and usage), tokens and
 * settings. The hooks here authenticate every admin route, check the role its
 * declaration in @floatd/protocol names, and keep a customer's own administrator to
 * that customer as the declaration's `scope` says (`CustomerScope`): a route of scope
 * `vendor` is refused, and the license, lease or customer a route names must be the
 * customer's own or it does not exist for that token.
 */
import type { Routes } from '../../context.js';
import { ErrorReply } from '../../errors.js';
import { roleOf, scopeOf } from '../../route.js';
import { hasRole } from '../../../service/auth.js';
import { customerRoutes } from './customers.js';
import { groupRoutes } from './groups.js';
import { webhookRoutes } from './webhooks.js';
import { historyRoutes } from './history.js';
import { leaseRoutes } from './leases.js';
import { licenseRoutes } from './licenses.js';
import { productRoutes } from './products.js';
import { tokenRoutes } from './tokens.js';

export const adminRoutes: Routes = (app, ctx) => {
  const { auth, store } = ctx;
  app.addHook('onRequest', async (req) => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
    const token = match?.[1] ? await auth.verify(match[1]) : undefined;
    if (!token) throw new ErrorReply('UNAUTHENTICATED', 'send Authorization: Bearer <admin token> with a valid admin token');
    // The role comes from the route's declaration in @floatd/protocol; a route without one is the admin's.
    const needed = roleOf(req) ?? 'admin';
    if (!hasRole(token, needed))
      throw new ErrorReply('INSUFFICIENT_ROLE', `this needs the ${needed} role; the token has ${token.role}`, { role: token.role, needed });
    if (token.customerId !== null && scopeOf(req) === 'vendor')
      throw new ErrorReply(
        'CUSTOMER_SCOPE',
        `this token belongs to customer ${token.customerId}: it may not use ${req.method} ${req.routeOptions.url}`,
        {
          customerId: token.customerId,
        },
      );
    req.admin = token;
  });
  // After validation (a malformed id is a 400 for everyone): what the route names must be the customer's own.
  app.addHook('preHandler', async (req) => {
    const own = req.admin?.customerId;
    if (!own) return;
    const params = req.params as { licenseId?: string; leaseId?: string; customerId?: string };
    switch (scopeOf(req)) {
      case 'license': {
        const id = params.licenseId ?? '';
        if ((await store.getLicense(id))?.customerId !== own) throw new ErrorReply('LICENSE_NOT_FOUND', `no license ${id}`);
        return;
      }
      case 'lease': {
        const id = params.leaseId ?? '';
        const lease = await store.getLease(id);
        if (!lease || (await store.getLicense(lease.licenseId))?.customerId !== own)
          throw new ErrorReply('LEASE_NOT_FOUND', `no lease ${id}`);
        return;
      }
      case 'customer':
        if (params.customerId !== own) throw new ErrorReply('CUSTOMER_NOT_FOUND', `no customer ${params.customerId}`);
        return;
      default:
        return;
    }
  });
  // Registered in this order (the OpenAPI document lists the operations in it).
  customerRoutes(app, ctx);
  productRoutes(app, ctx);
  licenseRoutes(app, ctx);
  leaseRoutes(app, ctx);
  historyRoutes(app, ctx);
  tokenRoutes(app, ctx);
  webhookRoutes(app, ctx);
  groupRoutes(app, ctx);
};
