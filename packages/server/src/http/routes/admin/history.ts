/** Admin: the audit trail and a license's hourly usage. */
import * as wire from '@floatd/protocol';
import type { Routes } from '../../context.js';
import { unwrap } from '../../errors.js';
import { handle } from '../../route.js';
import { auditView, iso, usageView } from '../../views.js';
import { ownCustomer } from './common.js';

const api = wire.routes.admin;

export const historyRoutes: Routes = (app, { store, overview }) => {
  handle(app, api.listAudit, async (req) => {
    const q = req.query;
    const page = await store.listAudit({
      limit: q.limit ?? 50,
      cursor: q.cursor,
      licenseId: q.licenseId,
      deviceId: q.deviceId,
      leaseId: q.leaseId,
      type: q.type,
      actor: q.actor,
      customerId: ownCustomer(req),
      from: q.from ? Date.parse(q.from) : undefined,
      to: q.to ? Date.parse(q.to) : undefined,
    });
    return { items: page.items.map(auditView), nextCursor: page.nextCursor };
  });
  handle(app, api.licenseRecommendation, async (req) => {
    const r = unwrap(await overview.recommendation(req.params.licenseId, req.query.days ?? 30));
    return { ...r, licenseId: req.params.licenseId, from: iso(r.from), to: iso(r.to) };
  });
  handle(app, api.licenseUsage, async (req) => {
    const range = {
      from: req.query.from ? Date.parse(req.query.from) : undefined,
      to: req.query.to ? Date.parse(req.query.to) : undefined,
    };
    const report = unwrap(await overview.usage(req.params.licenseId, range));
    return { items: report.rows.map(usageView), peakSeats: report.peakSeats, denials: report.denials, checkouts: report.checkouts };
  });
};
