/** Admin: licenses (create, list, read, change, suspend and resume, delete). */
import * as wire from '@floatd/protocol';
import type { Routes } from '../../context.js';
import { unwrap } from '../../errors.js';
import { created, handle } from '../../route.js';
import { actor, existingLicense, licenseOut, ownCustomer } from './common.js';

const api = wire.routes.admin;

export const licenseRoutes: Routes = (app, { catalogue, store, clock }) => {
  const waiting = () => store.waitingCounts(clock.now());
  handle(app, api.createLicense, async (req) =>
    created(await licenseOut(store, unwrap(await catalogue.createLicense(req.body, actor(req))), new Map())),
  );
  handle(app, api.listLicenses, async (req) => {
    const own = ownCustomer(req);
    // A customer's token asking for another customer's licenses gets none (as for a customer without any).
    if (own && req.query.customerId && req.query.customerId !== own) return { items: [], nextCursor: null };
    const customerId = own ?? req.query.customerId;
    const page = await store.listLicenses({
      limit: req.query.limit ?? 50,
      cursor: req.query.cursor,
      productId: req.query.productId,
      customerId,
    });
    const w = await waiting();
    return { items: await Promise.all(page.items.map((l) => licenseOut(store, l, w))), nextCursor: page.nextCursor };
  });
  handle(app, api.getLicense, async (req) => licenseOut(store, await existingLicense(store, req.params.licenseId), await waiting()));
  handle(app, api.updateLicense, async (req) =>
    licenseOut(store, unwrap(await catalogue.updateLicense(req.params.licenseId, req.body, actor(req))), await waiting()),
  );
  handle(app, api.suspendLicense, async (req) =>
    licenseOut(store, unwrap(await catalogue.updateLicense(req.params.licenseId, { suspended: true }, actor(req))), await waiting()),
  );
  handle(app, api.resumeLicense, async (req) =>
    licenseOut(store, unwrap(await catalogue.updateLicense(req.params.licenseId, { suspended: false }, actor(req))), await waiting()),
  );
  handle(app, api.deleteLicense, async (req) =>
    unwrap(await catalogue.deleteLicense(req.params.licenseId, req.query.force ?? false, actor(req))),
  );
};
