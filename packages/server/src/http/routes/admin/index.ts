/**
 * Admin API (`Authorization: Bearer <admin token>`), one file per resource:
 * products, licenses, leases and seats, history (audit and usage), tokens and
 * settings. The hook here authenticates every admin route and checks the role its
 * declaration in @floatd/protocol names.
 */
import type { Routes } from '../../context.js';
import { ErrorReply } from '../../errors.js';
import { roleOf } from '../../route.js';
import { hasRole } from '../../../service/auth.js';
import { groupRoutes } from './groups.js';
import { historyRoutes } from './history.js';
import { leaseRoutes } from './leases.js';
import { licenseRoutes } from './licenses.js';
import { productRoutes } from './products.js';
import { tokenRoutes } from './tokens.js';

export const adminRoutes: Routes = (app, ctx) => {
  const { auth } = ctx;
  app.addHook('onRequest', async (req) => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
    const token = match?.[1] ? await auth.verify(match[1]) : undefined;
    if (!token) throw new ErrorReply('UNAUTHENTICATED', 'send Authorization: Bearer <admin token> with a valid admin token');
    // The role comes from the route's declaration in @floatd/protocol; a route without one is the admin's.
    const needed = roleOf(req) ?? 'admin';
    if (!hasRole(token, needed))
      throw new ErrorReply('INSUFFICIENT_ROLE', `this needs the ${needed} role; the token has ${token.role}`, { role: token.role, needed });
    req.admin = token;
  });
  // Registered in this order (the OpenAPI document lists the operations in it).
  productRoutes(app, ctx);
  licenseRoutes(app, ctx);
  leaseRoutes(app, ctx);
  historyRoutes(app, ctx);
  tokenRoutes(app, ctx);
  groupRoutes(app, ctx);
};
