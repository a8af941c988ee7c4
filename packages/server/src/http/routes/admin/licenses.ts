/** Admin: licenses (create, list, read, change, suspend and resume, delete). */
import * as wire from '@floatd/protocol';
import type { Routes } from '../../context.js';
import { unwrap } from '../../errors.js';
import { created, handle } from '../../route.js';
import { licenseView } from '../../views.js';
import { actor, existingLicense } from './common.js';

const api = wire.routes.admin;

export const licenseRoutes: Routes = (app, { catalogue, store }) => {
  handle(app, api.createLicense, async (req) => created(licenseView(unwrap(await catalogue.createLicense(req.body, actor(req))))));
  handle(app, api.listLicenses, async (req) => {
    const page = await store.listLicenses({ limit: req.query.limit ?? 50, cursor: req.query.cursor, productId: req.query.productId });
    return { items: page.items.map(licenseView), nextCursor: page.nextCursor };
  });
  handle(app, api.getLicense, async (req) => licenseView(await existingLicense(store, req.params.licenseId)));
  handle(app, api.updateLicense, async (req) =>
    licenseView(unwrap(await catalogue.updateLicense(req.params.licenseId, req.body, actor(req)))),
  );
  handle(app, api.suspendLicense, async (req) =>
    licenseView(unwrap(await catalogue.updateLicense(req.params.licenseId, { suspended: true }, actor(req)))),
  );
  handle(app, api.resumeLicense, async (req) =>
    licenseView(unwrap(await catalogue.updateLicense(req.params.licenseId, { suspended: false }, actor(req)))),
  );
  handle(app, api.deleteLicense, async (req) =>
    unwrap(await catalogue.deleteLicense(req.params.licenseId, req.query.force ?? false, actor(req))),
  );
};
