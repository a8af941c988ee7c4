/** Admin API (`Authorization: Bearer <admin token>`): catalogue, seats, reclamation, audit, usage. */
import { Type } from '@sinclair/typebox';
import * as W from '@floatd/protocol';
import type { Routes } from '../context.js';
import { ApiError, unwrap } from '../errors.js';
import { auditView, deviceView, iso, leaseView, licenseView, productView, tokenView, usageView } from '../views.js';
import { hasRole } from '../../service/auth.js';
import type { Role } from '../../domain/types.js';

const errors = { '4xx': W.ErrorBody, '5xx': W.ErrorBody };
const security = [{ adminToken: [] }];
const ProductParams = W.Obj({ productId: W.ProductId });
const LicenseParams = W.Obj({ licenseId: W.LicenseId });
const LeaseParams = W.Obj({ leaseId: W.LeaseId });
const Items = <T extends import('@sinclair/typebox').TSchema>(t: T) => W.Obj({ items: Type.Array(t) });
const MAX_USAGE_RANGE_MS = 366 * 86_400_000;

/**
 * The role each admin route needs. viewer: every read except tokens; operator: also
 * force release and reclaim now; admin: everything else (catalogue, tokens, keys).
 */
const OPERATOR_ROUTES = new Set(['POST /v1/admin/leases/:leaseId/release', 'POST /v1/admin/reclaim']);
const ADMIN_READS = new Set(['GET /v1/admin/tokens']);
export function requiredRole(method: string, url: string): Role {
  const route = `${method} ${url}`;
  if ((method === 'GET' || method === 'HEAD') && !ADMIN_READS.has(route)) return 'viewer';
  return OPERATOR_ROUTES.has(route) ? 'operator' : 'admin';
}

export const adminRoutes: Routes = (app, { auth, catalogue, reclaim, store, clock, settings, version }) => {
  app.addHook('onRequest', async (req) => {
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header.trim()) : null;
    const token = m?.[1] ? await auth.verify(m[1]) : undefined;
    if (!token) throw new ApiError('UNAUTHENTICATED', 'send Authorization: Bearer <admin token> with a valid admin token');
    const needed = requiredRole(req.method, req.routeOptions.url ?? '');
    if (!hasRole(token, needed)) throw new ApiError('INSUFFICIENT_ROLE', `this needs the ${needed} role; the token has ${token.role}`, { role: token.role, needed });
    req.admin = token;
  });
  const actor = (req: { admin: { id: string } }) => `admin:${req.admin.id}`;

  // --- products -------------------------------------------------------------
  const products = ['products'];
  app.post<{ Body: W.CreateProduct }>(
    '/v1/admin/products',
    { schema: { summary: 'Create a product', tags: products, security, body: W.CreateProduct, response: { 201: W.Product, ...errors } } },
    async (req, reply) => reply.code(201).send(productView(unwrap(await catalogue.createProduct(req.body, actor(req))))),
  );
  app.get<{ Querystring: { limit?: number; cursor?: string } }>(
    '/v1/admin/products',
    { schema: { summary: 'List products', tags: products, security, querystring: W.Obj(W.PageQuery), response: { 200: W.Page(W.Product), ...errors } } },
    async (req) => {
      const page = await store.listProducts({ limit: req.query.limit ?? 50, cursor: req.query.cursor });
      return { items: page.items.map(productView), nextCursor: page.nextCursor };
    },
  );
  app.get<{ Params: { productId: string } }>(
    '/v1/admin/products/:productId',
    { schema: { summary: 'Read a product', tags: products, security, params: ProductParams, response: { 200: W.Product, ...errors } } },
    async (req) => {
      const p = await store.getProduct(req.params.productId);
      if (!p) throw new ApiError('PRODUCT_NOT_FOUND', `no product ${req.params.productId}`);
      return productView(p);
    },
  );
  app.patch<{ Params: { productId: string }; Body: W.UpdateProduct }>(
    '/v1/admin/products/:productId',
    { schema: { summary: 'Update a product', tags: products, security, params: ProductParams, body: W.UpdateProduct, response: { 200: W.Product, ...errors } } },
    async (req) => productView(unwrap(await catalogue.updateProduct(req.params.productId, req.body, actor(req)))),
  );
  app.delete<{ Params: { productId: string } }>(
    '/v1/admin/products/:productId',
    {
      schema: {
        summary: 'Delete a product (refused while it owns license keys)',
        tags: products,
        security,
        params: ProductParams,
        response: { 200: W.Obj({ deleted: Type.Boolean() }), ...errors },
      },
    },
    async (req) => unwrap(await catalogue.deleteProduct(req.params.productId, actor(req))),
  );

  // --- licenses -------------------------------------------------------------
  const licenses = ['licenses'];
  app.post<{ Body: W.CreateLicense }>(
    '/v1/admin/licenses',
    { schema: { summary: 'Create a license key', tags: licenses, security, body: W.CreateLicense, response: { 201: W.License, ...errors } } },
    async (req, reply) => reply.code(201).send(licenseView(unwrap(await catalogue.createLicense(req.body, actor(req))))),
  );
  app.get<{ Querystring: { limit?: number; cursor?: string; productId?: string } }>(
    '/v1/admin/licenses',
    {
      schema: {
        summary: 'List license keys',
        tags: licenses,
        security,
        querystring: W.Obj({ ...W.PageQuery, productId: Type.Optional(W.ProductId) }),
        response: { 200: W.Page(W.License), ...errors },
      },
    },
    async (req) => {
      const page = await store.listLicenses({ limit: req.query.limit ?? 50, cursor: req.query.cursor, productId: req.query.productId });
      return { items: page.items.map(licenseView), nextCursor: page.nextCursor };
    },
  );
  const getLicense = async (id: string) => {
    const l = await store.getLicense(id);
    if (!l) throw new ApiError('LICENSE_NOT_FOUND', `no license ${id}`);
    return l;
  };
  app.get<{ Params: { licenseId: string } }>(
    '/v1/admin/licenses/:licenseId',
    { schema: { summary: 'Read a license key', tags: licenses, security, params: LicenseParams, response: { 200: W.License, ...errors } } },
    async (req) => licenseView(await getLicense(req.params.licenseId)),
  );
  app.patch<{ Params: { licenseId: string }; Body: W.UpdateLicense }>(
    '/v1/admin/licenses/:licenseId',
    { schema: { summary: 'Update a license key\'s policy', tags: licenses, security, params: LicenseParams, body: W.UpdateLicense, response: { 200: W.License, ...errors } } },
    async (req) => licenseView(unwrap(await catalogue.updateLicense(req.params.licenseId, req.body, actor(req)))),
  );
  for (const [verb, suspended] of [['suspend', true], ['resume', false]] as const) {
    app.post<{ Params: { licenseId: string } }>(
      `/v1/admin/licenses/:licenseId/${verb}`,
      {
        schema: {
          summary: suspended ? 'Suspend a license key (checkouts and heartbeats refused)' : 'Lift a suspension',
          tags: licenses,
          security,
          params: LicenseParams,
          body: Type.Optional(W.Obj({})),
          response: { 200: W.License, ...errors },
        },
      },
      async (req) => licenseView(unwrap(await catalogue.updateLicense(req.params.licenseId, { suspended }, actor(req)))),
    );
  }
  app.delete<{ Params: { licenseId: string }; Querystring: { force?: boolean } }>(
    '/v1/admin/licenses/:licenseId',
    {
      schema: {
        summary: 'Delete a license key (refused while seats are held unless force=true)',
        tags: licenses,
        security,
        params: LicenseParams,
        querystring: W.Obj({ force: Type.Optional(Type.Boolean()) }),
        response: { 200: W.Obj({ deleted: Type.Boolean(), released: Type.Integer() }), ...errors },
      },
    },
    async (req) => unwrap(await catalogue.deleteLicense(req.params.licenseId, req.query.force ?? false, actor(req))),
  );

  // --- seats ----------------------------------------------------------------
  const seats = ['seats'];
  app.get<{ Params: { licenseId: string } }>(
    '/v1/admin/licenses/:licenseId/leases',
    { schema: { summary: 'Leases held on a license, with instances', tags: seats, security, params: LicenseParams, response: { 200: Items(W.Lease), ...errors } } },
    async (req) => {
      await getLicense(req.params.licenseId);
      return { items: (await store.listLeases(req.params.licenseId)).map(leaseView) };
    },
  );
  app.get<{ Params: { licenseId: string } }>(
    '/v1/admin/licenses/:licenseId/devices',
    { schema: { summary: 'Devices seen on a license, with what they hold now', tags: seats, security, params: LicenseParams, response: { 200: Items(W.Device), ...errors } } },
    async (req) => {
      await getLicense(req.params.licenseId);
      return { items: (await store.listDevices(req.params.licenseId)).map(deviceView) };
    },
  );
  app.get<{ Params: { leaseId: string } }>(
    '/v1/admin/leases/:leaseId',
    { schema: { summary: 'Read a lease', tags: seats, security, params: LeaseParams, response: { 200: W.Lease, ...errors } } },
    async (req) => {
      const lease = await store.getLease(req.params.leaseId);
      if (!lease) throw new ApiError('LEASE_NOT_FOUND', `no lease ${req.params.leaseId}`);
      return leaseView(lease);
    },
  );
  app.post<{ Params: { leaseId: string }; Body: { force?: boolean } | undefined }>(
    '/v1/admin/leases/:leaseId/release',
    {
      schema: {
        summary: 'Force release a seat (an unexpired offline lease needs force: true; audited)',
        tags: seats,
        security,
        params: LeaseParams,
        body: Type.Optional(W.ReleaseLease),
        response: { 200: W.Obj({ released: Type.Boolean(), leaseId: W.LeaseId, offlineOverridden: Type.Boolean() }), ...errors },
      },
    },
    async (req) => {
      const r = unwrap(await catalogue.releaseLease(req.params.leaseId, req.body?.force ?? false, actor(req)));
      return { released: true, ...r };
    },
  );
  app.post(
    '/v1/admin/reclaim',
    {
      schema: { summary: 'Reclaim inactive licenses now: free every dead lease and report it', tags: seats, security, body: Type.Optional(W.Obj({})), response: { 200: W.ReclaimReport, ...errors } },
    },
    async (req) => {
      const r = await reclaim.sweep(actor(req));
      return { freed: r.freed, instancesDropped: r.instancesDropped, ranAt: iso(r.ranAt) };
    },
  );

  // --- history --------------------------------------------------------------
  const history = ['history'];
  app.get<{ Querystring: { licenseId?: string; deviceId?: string; leaseId?: string; type?: W.AuditType; actor?: string; from?: string; to?: string; limit?: number; cursor?: string } }>(
    '/v1/admin/audit',
    {
      schema: {
        summary: 'Audit log, newest first',
        tags: history,
        security,
        querystring: W.Obj({
          ...W.PageQuery,
          licenseId: Type.Optional(W.LicenseId),
          deviceId: Type.Optional(W.DeviceId),
          leaseId: Type.Optional(W.LeaseId),
          type: Type.Optional(W.AuditType),
          actor: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'client, reclaimer or admin:<token id> (exact)' })),
          from: Type.Optional(W.Timestamp),
          to: Type.Optional(W.Timestamp),
        }),
        response: { 200: W.Page(W.AuditEvent), ...errors },
      },
    },
    async (req) => {
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
    },
  );
  app.get<{ Params: { licenseId: string }; Querystring: { from?: string; to?: string } }>(
    '/v1/admin/licenses/:licenseId/usage',
    {
      schema: {
        summary: 'Concurrent seats by hour (peak, level at the end of the hour, checkouts, denials); default the last 24 hours',
        tags: history,
        security,
        params: LicenseParams,
        querystring: W.Obj({ from: Type.Optional(W.Timestamp), to: Type.Optional(W.Timestamp) }),
        response: {
          200: W.Obj({ items: Type.Array(W.UsageHour), peakSeats: Type.Integer(), denials: Type.Integer(), checkouts: Type.Integer() }),
          ...errors,
        },
      },
    },
    async (req) => {
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
    },
  );

  // --- keys -----------------------------------------------------------------
  app.post(
    '/v1/admin/signing-keys/rotate',
    {
      schema: {
        summary: 'Start signing lease tokens with a new key; old keys stay in the JWKS until their tokens expire',
        tags: ['keys'],
        security,
        body: Type.Optional(W.Obj({})),
        response: { 200: W.Obj({ kid: Type.String() }), ...errors },
      },
    },
    async (req) => ({ kid: await catalogue.rotateSigningKey(actor(req)) }),
  );

  // --- admin tokens, identity, settings, dashboard ----------------------------
  const access = ['access'];
  const TokenParams = W.Obj({ tokenId: W.TokenId });
  app.get(
    '/v1/admin/tokens',
    { schema: { summary: 'List admin tokens (never their secrets)', tags: access, security, response: { 200: Items(W.AdminTokenInfo), ...errors } } },
    async () => ({ items: (await store.listAdminTokens()).map(tokenView) }),
  );
  app.post<{ Body: W.CreateAdminToken }>(
    '/v1/admin/tokens',
    {
      schema: {
        summary: 'Create an admin token with a role; the secret is in this answer only',
        tags: access,
        security,
        body: W.CreateAdminToken,
        response: { 201: W.CreatedAdminToken, ...errors },
      },
    },
    async (req, reply) => {
      const { token, secret } = await auth.create(req.body.name, req.body.role, actor(req));
      return reply.code(201).send({ ...tokenView(token), token: secret });
    },
  );
  app.post<{ Params: { tokenId: string } }>(
    '/v1/admin/tokens/:tokenId/revoke',
    {
      schema: {
        summary: 'Revoke an admin token at once (the last active admin token cannot be revoked)',
        tags: access,
        security,
        params: TokenParams,
        body: Type.Optional(W.Obj({})),
        response: { 200: W.AdminTokenInfo, ...errors },
      },
    },
    async (req) => tokenView(unwrap(await auth.revoke(req.params.tokenId, actor(req)))),
  );
  app.get(
    '/v1/admin/whoami',
    { schema: { summary: 'The token making this call: id, name and role', tags: access, security, response: { 200: W.AdminTokenInfo, ...errors } } },
    async (req) => tokenView(req.admin),
  );
  app.get(
    '/v1/admin/settings',
    { schema: { summary: 'Server settings that administrators see (reclamation interval, store, version)', tags: access, security, response: { 200: W.Settings, ...errors } } },
    async () => ({ version, store: store.kind, reclaimIntervalSeconds: settings.reclaimIntervalSeconds, serverTime: iso(clock.now()) }),
  );
  app.get<{ Querystring: { limit?: number; cursor?: string } }>(
    '/v1/admin/dashboard',
    {
      schema: {
        summary: 'Every license key with seats used/total (online and offline) and denials since 00:00 UTC',
        tags: seats,
        security,
        querystring: W.Obj(W.PageQuery),
        response: { 200: W.Page(W.DashboardRow), ...errors },
      },
    },
    async (req) => {
      const now = clock.now();
      const page = await store.listLicenses({ limit: req.query.limit ?? 100, cursor: req.query.cursor });
      const denials = await store.denialsSince(now - (now % 86_400_000));
      const names = new Map<string, string | null>();
      for (const l of page.items) if (!names.has(l.productId)) names.set(l.productId, (await store.getProduct(l.productId))?.name ?? null);
      return {
        items: page.items.map((l) => ({ license: licenseView(l), productName: names.get(l.productId) ?? null, denialsToday: denials.get(l.id) ?? 0 })),
        nextCursor: page.nextCursor,
      };
    },
  );
};
