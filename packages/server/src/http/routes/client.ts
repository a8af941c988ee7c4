/** Client API (`Authorization: License <key>`): what the SDK calls. */
import * as W from '@floatd/protocol';
import type { Routes } from '../context.js';
import { unwrap } from '../errors.js';
import { created, handle } from '../route.js';
import { clientLeaseView, grantView, summaryView, iso } from '../views.js';

const R = W.routes.client;

export const clientRoutes: Routes = (app, { licensing, clock }) => {
  app.addHook('onRequest', async (req) => {
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^License\s+(.+)$/i.exec(header.trim()) : null;
    // A missing or malformed key goes the way of an unknown one (looked up, not found, the same
    // INVALID_LICENSE_KEY after the same validation), so no answer tells them apart.
    req.licenseKey = (m?.[1] ? W.normalizeKey(m[1]) : undefined) ?? '';
  });

  handle(app, R.checkout, async (req) => {
    const g = unwrap(await licensing.checkout(req.licenseKey, req.body));
    return g.granted.created ? created(grantView(g)) : grantView(g);
  });
  handle(app, R.offlineCheckout, async (req) => {
    const g = unwrap(await licensing.offlineCheckout(req.licenseKey, req.body));
    return g.granted.created ? created(grantView(g)) : grantView(g);
  });
  handle(app, R.heartbeat, async (req) => grantView(unwrap(await licensing.heartbeat(req.licenseKey, req.params.leaseId, req.body.instanceId))));
  handle(app, R.checkin, async (req) => {
    const r = unwrap(await licensing.checkin(req.licenseKey, req.params.leaseId, req.body.instanceId));
    return { released: r.released, instances: r.instances };
  });
  handle(app, R.returnOffline, async (req) => unwrap(await licensing.returnOffline(req.licenseKey, req.params.leaseId)));
  handle(app, R.syncDevice, async (req) => unwrap(await licensing.sync(req.licenseKey, req.body)));
  handle(app, R.licenseInfo, async (req) => {
    const info = unwrap(await licensing.info(req.licenseKey, req.query.fingerprint));
    return {
      license: summaryView(info.license, clock.now()),
      lease: info.lease ? clientLeaseView(info.lease, info.lease.instances[0]?.instanceId ?? '') : null,
      serverTime: iso(info.serverTime),
    };
  });
};
