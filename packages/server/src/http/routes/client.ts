/** Client API (`Authorization: License <key>`): what the SDK calls. */
import * as wire from '@floatd/protocol';
import type { Routes } from '../context.js';
import { unwrap } from '../errors.js';
import { created, handle } from '../route.js';
import { requestedKeyId, signWith } from '../security.js';
import { clientLeaseView, grantView, renewalView, summaryView, iso } from '../views.js';

const api = wire.routes.client;

export const clientRoutes: Routes = (app, { licensing, clock }) => {
  app.addHook('onRequest', async (req) => {
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^License\s+(.+)$/i.exec(header.trim()) : null;
    // A missing or malformed key goes the way of an unknown one (looked up, not found, the same
    // INVALID_LICENSE_KEY after the same validation), so no answer tells them apart.
    req.licenseKey = (match?.[1] ? wire.normalizeKey(match[1]) : undefined) ?? '';
  });

  handle(app, api.checkout, async (req) => {
    const grant = unwrap(await licensing.checkout(req.licenseKey, req.body, req.ip));
    return grant.granted.created ? created(grantView(grant)) : grantView(grant);
  });
  handle(app, api.offlineCheckout, async (req) => {
    const grant = unwrap(await licensing.offlineCheckout(req.licenseKey, req.body, req.ip));
    return grant.granted.created ? created(grantView(grant)) : grantView(grant);
  });
  handle(app, api.heartbeat, async (req) => {
    // A renewal signed with the use's session key carries a new token only when asked (the SDK: a third of the TTL left).
    const ask = { token: req.body.renewToken === true, session: req.body.session, keyid: requestedKeyId(req) };
    const grant = unwrap(await licensing.heartbeat(req.licenseKey, req.params.leaseId, req.body.instanceId, ask));
    signWith(req, grant.answerKey);
    return renewalView(grant);
  });
  handle(app, api.checkin, async (req) => {
    const outcome = unwrap(await licensing.checkin(req.licenseKey, req.params.leaseId, req.body.instanceId, requestedKeyId(req)));
    signWith(req, outcome.answerKey);
    return {
      released: outcome.released,
      instances: outcome.instances,
      ...(outcome.lingerUntil !== undefined ? { lingerUntil: iso(outcome.lingerUntil) } : {}),
    };
  });
  handle(app, api.changeFeatures, async (req) => {
    const grant = unwrap(await licensing.changeFeatures(req.licenseKey, req.params.leaseId, req.body, requestedKeyId(req)));
    signWith(req, grant.answerKey);
    return grantView(grant);
  });
  handle(app, api.returnOffline, async (req) => unwrap(await licensing.returnOffline(req.licenseKey, req.params.leaseId)));
  handle(app, api.syncDevice, async (req) => unwrap(await licensing.sync(req.licenseKey, req.body)));
  handle(app, api.licenseInfo, async (req) => {
    const info = unwrap(await licensing.info(req.licenseKey, req.query.fingerprint));
    return {
      license: summaryView(info.license, clock.now()),
      lease: info.lease ? clientLeaseView(info.lease, info.lease.instances[0]?.instanceId ?? '') : null,
      serverTime: iso(info.serverTime),
    };
  });
};
