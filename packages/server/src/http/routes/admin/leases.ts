/** Admin: leases and devices of a license, releasing a lease, reclaiming now, and the dashboard of seats. */
import * as wire from '@floatd/protocol';
import type { Routes } from '../../context.js';
import { ErrorReply, unwrap } from '../../errors.js';
import type { LeaseView } from '../../../store/port.js';
import { handle } from '../../route.js';
import { deviceView, iso, leaseView } from '../../views.js';
import { actor, existingLicense, licenseOut, ownCustomer } from './common.js';

const api = wire.routes.admin;

export const leaseRoutes: Routes = (app, { catalogue, reclaim, store, overview, clock, renewals }) => {
  // The stored times with this node's heartbeats not written yet (service/renewals.ts).
  const current = <L extends LeaseView>(lease: L) => (renewals ? renewals.overlay(lease) : lease);
  handle(app, api.listLeases, async (req) => {
    await existingLicense(store, req.params.licenseId);
    return { items: (await store.listLeases(req.params.licenseId)).map((l) => leaseView(current(l))) };
  });
  handle(app, api.listDevices, async (req) => {
    await existingLicense(store, req.params.licenseId);
    const devices = await store.listDevices(req.params.licenseId);
    return { items: (renewals ? renewals.overlayDevices(devices) : devices).map(deviceView) };
  });
  handle(app, api.getLease, async (req) => {
    const lease = await store.getLease(req.params.leaseId);
    if (!lease) throw new ErrorReply('LEASE_NOT_FOUND', `no lease ${req.params.leaseId}`);
    return leaseView(current(lease));
  });
  handle(app, api.releaseLease, async (req) => {
    const released = unwrap(await catalogue.releaseLease(req.params.leaseId, req.body?.force ?? false, actor(req)));
    return { released: true, ...released };
  });
  handle(app, api.reclaimNow, async (req) => {
    const own = ownCustomer(req);
    const swept = await reclaim.sweep(actor(req), own ? { customerId: own } : undefined);
    return { freed: swept.freed, instancesDropped: swept.instancesDropped, ranAt: iso(swept.ranAt) };
  });
  handle(app, api.dashboard, async (req) => {
    const page = await overview.dashboard({ limit: req.query.limit ?? 100, cursor: req.query.cursor, customerId: ownCustomer(req) });
    const waiting = await store.waitingCounts(clock.now());
    return {
      items: await Promise.all(
        page.items.map(async (row) => ({
          license: await licenseOut(store, row.license, waiting),
          productName: row.productName,
          denialsToday: row.denialsToday,
        })),
      ),
      nextCursor: page.nextCursor,
    };
  });
};
