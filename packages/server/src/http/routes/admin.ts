/** Admin API (`Authorization: Bearer <admin token>`): catalogue, seats, reclamation, audit, usage. */
import * as W from '@floatd/protocol';
import type { Routes } from '../context.js';
import { ApiError, unwrap } from '../errors.js';
import { created, handle, roleOf } from '../route.js';
import { auditView, deviceView, iso, leaseView, licenseView, productView, tokenView, usageView } from '../views.js';
import { hasRole } from '../../service/auth.js';

const MAX_USAGE_RANGE_MS = 366 * 86_400_000;
const R = W.routes.admin;

export const adminRoutes: Routes = (app, { auth, catalogue, reclaim, store, clock, settings, version }) => {
  app.addHook('onRequest', async (req) => {
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
    const token = m?.[1] ? await auth.verify(m[1]) : undefined;
    if (!token) throw new ApiError('UNAUTHENTICATED', 'send Authorization: Bearer <admin token> with a valid admin token');
    // The role comes from the route's declaration in @floatd/protocol; a route without one is the admin's.
    const needed = roleOf(req) ?? 'admin';
    if (!hasRole(token, needed)) throw new ApiError('INSUFFICIENT_ROLE', `this needs the ${needed} role; the token has ${token.role}`, { role: token.role, needed });
    req.admin = token;
  });
  const actor = (req: { admin: { id: string } }) => `admin:${req.admin.id}`;

  // --- products -------------------------------------------------------------
  handle(app, R.createProduct, async (req) => created(productView(unwrap(await catalogue.createProduct(req.body, actor(req))))));
  handle(app, R.listProducts, async (req) => {
    const page = await store.listProducts({ limit: req.query.limit ?? 50, cursor: req.query.cursor });
    return { items: page.items.map(productView), nextCursor: page.nextCursor };
  });
  handle(app, R.getProduct, async (req) => {
    const p = await store.getProduct(req.params.productId);
    if (!p) throw new ApiError('PRODUCT_NOT_FOUND', `no product ${req.params.productId}`);
    return productView(p);
  });
  handle(app, R.updateProduct, async (req) => productView(unwrap(await catalogue.updateProduct(req.params.productId, req.body, actor(req)))));
  handle(app, R.deleteProduct, async (req) => unwrap(await catalogue.deleteProduct(req.params.productId, actor(req))));

  // --- licenses -------------------------------------------------------------
  handle(app, R.createLicense, async (req) => created(licenseView(unwrap(await catalogue.createLicense(req.body, actor(req))))));
  handle(app, R.listLicenses, async (req) => {
    const page = await store.listLicenses({ limit: req.query.limit ?? 50, cursor: req.query.cursor, productId: req.query.productId });
    return { items: page.items.map(licenseView), nextCursor: page.nextCursor };
  });
  const getLicense = async (id: string) => {
    const l = await store.getLicense(id);
    if (!l) throw new ApiError('LICENSE_NOT_FOUND', `no license ${id}`);
    return l;
  };
  handle(app, R.getLicense, async (req) => licenseView(await getLicense(req.params.licenseId)));
  handle(app, R.updateLicense, async (req) => licenseView(unwrap(await catalogue.updateLicense(req.params.licenseId, req.body, actor(req)))));
  handle(app, R.suspendLicense, async (req) => licenseView(unwrap(await catalogue.updateLicense(req.params.licenseId, { suspended: true }, actor(req)))));
  handle(app, R.resumeLicense, async (req) => licenseView(unwrap(await catalogue.updateLicense(req.params.licenseId, { suspended: false }, actor(req)))));
  handle(app, R.deleteLicense, async (req) => unwrap(await catalogue.deleteLicense(req.params.licenseId, req.query.force ?? false, actor(req))));

  // --- seats ----------------------------------------------------------------
  handle(app, R.listLeases, async (req) => {
    await getLicense(req.params.licenseId);
    return { items: (await store.listLeases(req.params.licenseId)).map(leaseView) };
  });
  handle(app, R.listDevices, async (req) => {
    await getLicense(req.params.licenseId);
    return { items: (await store.listDevices(req.params.licenseId)).map(deviceView) };
  });
  handle(app, R.getLease, async (req) => {
    const lease = await store.getLease(req.params.leaseId);
    if (!lease) throw new ApiError('LEASE_NOT_FOUND', `no lease ${req.params.leaseId}`);
    return leaseView(lease);
  });
  handle(app, R.releaseLease, async (req) => {
    const r = unwrap(await catalogue.releaseLease(req.params.leaseId, req.body?.force ?? false, actor(req)));
    return { released: true, ...r };
  });
  handle(app, R.reclaimNow, async (req) => {
    const r = await reclaim.sweep(actor(req));
    return { freed: r.freed, instancesDropped: r.instancesDropped, ranAt: iso(r.ranAt) };
  });
  handle(app, R.dashboard, async (req) => {
    const now = clock.now();
    const page = await store.listLicenses({ limit: req.query.limit ?? 100, cursor: req.query.cursor });
    const denials = await store.denialsSince(now - (now % 86_400_000));
    const names = new Map<string, string | null>();
    for (const l of page.items) if (!names.has(l.productId)) names.set(l.productId, (await store.getProduct(l.productId))?.name ?? null);
    return {
      items: page.items.map((l) => ({ license: licenseView(l), productName: names.get(l.productId) ?? null, denialsToday: denials.get(l.id) ?? 0 })),
      nextCursor: page.nextCursor,
    };
  });

  // --- history --------------------------------------------------------------
  handle(app, R.listAudit, async (req) => {
    const q = req.query;
    const page = await store.listAudit({
      limit: q.limit ?? 50,
      cursor: q.cursor,
      licenseId: q.licenseId,
      deviceId: q.deviceId,
      leaseId: q.leaseId,
      type: q.type,
      actor: q.actor,
      from: q.from ? Date.parse(q.from) : undefined,
      to: q.to ? Date.parse(q.to) : undefined,
    });
    return { items: page.items.map(auditView), nextCursor: page.nextCursor };
  });
  handle(app, R.licenseUsage, async (req) => {
    await getLicense(req.params.licenseId);
    const to = req.query.to ? Date.parse(req.query.to) : clock.now();
    const from = req.query.from ? Date.parse(req.query.from) : to - 86_400_000;
    if (!(from < to)) throw new ApiError('VALIDATION_FAILED', 'from must be before to', { field: 'querystring/from' });
    if (to - from > MAX_USAGE_RANGE_MS) throw new ApiError('VALIDATION_FAILED', 'the range may span at most 366 days', { field: 'querystring/from' });
    const rows = await store.usage(req.params.licenseId, from, to);
    return {
      items: rows.map(usageView),
      peakSeats: rows.reduce((m, r) => Math.max(m, r.peakSeats), 0),
      denials: rows.reduce((n, r) => n + r.denials, 0),
      checkouts: rows.reduce((n, r) => n + r.checkouts, 0),
    };
  });

  // --- keys, admin tokens, identity, settings ----------------------------------
  handle(app, R.rotateSigningKey, async (req) => ({ kid: await catalogue.rotateSigningKey(actor(req)) }));
  handle(app, R.listTokens, async () => ({ items: (await store.listAdminTokens()).map(tokenView) }));
  handle(app, R.createToken, async (req) => {
    const { token, secret } = await auth.create(req.body.name, req.body.role, actor(req));
    return created({ ...tokenView(token), token: secret });
  });
  handle(app, R.revokeToken, async (req) => tokenView(unwrap(await auth.revoke(req.params.tokenId, actor(req)))));
  handle(app, R.whoami, async (req) => tokenView(req.admin));
  handle(app, R.settings, async () => ({ version, store: store.kind, reclaimIntervalSeconds: settings.reclaimIntervalSeconds, serverTime: iso(clock.now()) }));
};
