/**
 * Admin API (`Authorization: Bearer <admin token>`): catalogue, seats, reclamation,
 * audit, usage, tokens. Roles: viewer reads everything but tokens; operator also
 * force-releases and reclaims; admin does everything.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { route } from '../route.js';
import * as schemas from '../schemas.js';

const ProductParams = schemas.Obj({ productId: schemas.ProductId });
const LicenseParams = schemas.Obj({ licenseId: schemas.LicenseId });
const LeaseParams = schemas.Obj({ leaseId: schemas.LeaseId });
const TokenParams = schemas.Obj({ tokenId: schemas.TokenId });
const Items = <T extends TSchema>(t: T) => schemas.Obj({ items: Type.Array(t) });
const Empty = schemas.Obj({});
const products = ['products'] as const;
const licenses = ['licenses'] as const;
const seats = ['seats'] as const;
const history = ['history'] as const;
const access = ['access'] as const;

// --- products -----------------------------------------------------------------
export const createProduct = route({
  method: 'POST',
  path: '/v1/admin/products',
  summary: 'Create a product',
  tags: products,
  auth: 'admin',
  role: 'admin',
  body: schemas.CreateProduct,
  responses: { 201: schemas.Product },
  errors: ['ENTITLEMENT_MANAGED'],
});
export const listProducts = route({
  method: 'GET',
  path: '/v1/admin/products',
  summary: 'List products',
  tags: products,
  auth: 'admin',
  role: 'viewer',
  query: schemas.Obj(schemas.PageQuery),
  responses: { 200: schemas.Page(schemas.Product) },
  errors: [],
});
export const getProduct = route({
  method: 'GET',
  path: '/v1/admin/products/:productId',
  summary: 'Read a product',
  tags: products,
  auth: 'admin',
  role: 'viewer',
  params: ProductParams,
  responses: { 200: schemas.Product },
  errors: ['PRODUCT_NOT_FOUND'],
});
export const updateProduct = route({
  method: 'PATCH',
  path: '/v1/admin/products/:productId',
  summary: 'Update a product',
  tags: products,
  auth: 'admin',
  role: 'admin',
  params: ProductParams,
  body: schemas.UpdateProduct,
  responses: { 200: schemas.Product },
  errors: ['PRODUCT_NOT_FOUND', 'ENTITLEMENT_MANAGED'],
});
export const deleteProduct = route({
  method: 'DELETE',
  path: '/v1/admin/products/:productId',
  summary: 'Delete a product (refused while it owns license keys)',
  tags: products,
  auth: 'admin',
  role: 'admin',
  params: ProductParams,
  responses: { 200: schemas.Obj({ deleted: Type.Boolean() }) },
  errors: ['PRODUCT_NOT_FOUND', 'PRODUCT_HAS_LICENSES', 'ENTITLEMENT_MANAGED'],
});

// --- licenses -----------------------------------------------------------------
export const createLicense = route({
  method: 'POST',
  path: '/v1/admin/licenses',
  summary: 'Create a license key',
  tags: licenses,
  auth: 'admin',
  role: 'admin',
  body: schemas.CreateLicense,
  responses: { 201: schemas.License },
  errors: ['PRODUCT_NOT_FOUND', 'INVALID_POLICY', 'ENTITLEMENT_MANAGED'],
});
export const listLicenses = route({
  method: 'GET',
  path: '/v1/admin/licenses',
  summary: 'List license keys',
  tags: licenses,
  auth: 'admin',
  role: 'viewer',
  query: schemas.Obj({ ...schemas.PageQuery, productId: Type.Optional(schemas.ProductId) }),
  responses: { 200: schemas.Page(schemas.License) },
  errors: [],
});
export const getLicense = route({
  method: 'GET',
  path: '/v1/admin/licenses/:licenseId',
  summary: 'Read a license key',
  tags: licenses,
  auth: 'admin',
  role: 'viewer',
  params: LicenseParams,
  responses: { 200: schemas.License },
  errors: ['LICENSE_NOT_FOUND'],
});
export const updateLicense = route({
  method: 'PATCH',
  path: '/v1/admin/licenses/:licenseId',
  summary: "Update a license key's policy",
  tags: licenses,
  auth: 'admin',
  role: 'admin',
  params: LicenseParams,
  body: schemas.UpdateLicense,
  responses: { 200: schemas.License },
  errors: ['LICENSE_NOT_FOUND', 'INVALID_POLICY', 'ENTITLEMENT_MANAGED'],
});
export const suspendLicense = route({
  method: 'POST',
  path: '/v1/admin/licenses/:licenseId/suspend',
  summary: 'Suspend a license key (checkouts and heartbeats refused)',
  tags: licenses,
  auth: 'admin',
  role: 'admin',
  params: LicenseParams,
  body: Empty,
  optionalBody: true,
  responses: { 200: schemas.License },
  errors: ['LICENSE_NOT_FOUND'],
});
export const resumeLicense = route({
  method: 'POST',
  path: '/v1/admin/licenses/:licenseId/resume',
  summary: 'Lift a suspension',
  tags: licenses,
  auth: 'admin',
  role: 'admin',
  params: LicenseParams,
  body: Empty,
  optionalBody: true,
  responses: { 200: schemas.License },
  errors: ['LICENSE_NOT_FOUND'],
});
export const deleteLicense = route({
  method: 'DELETE',
  path: '/v1/admin/licenses/:licenseId',
  summary: 'Delete a license key (refused while seats are held unless force=true)',
  tags: licenses,
  auth: 'admin',
  role: 'admin',
  params: LicenseParams,
  query: schemas.Obj({ force: Type.Optional(Type.Boolean()) }),
  responses: { 200: schemas.Obj({ deleted: Type.Boolean(), released: Type.Integer() }) },
  errors: ['LICENSE_NOT_FOUND', 'SEATS_HELD', 'ENTITLEMENT_MANAGED'],
});

// --- seats --------------------------------------------------------------------
export const listLeases = route({
  method: 'GET',
  path: '/v1/admin/licenses/:licenseId/leases',
  summary: 'Leases held on a license, with instances',
  tags: seats,
  auth: 'admin',
  role: 'viewer',
  params: LicenseParams,
  responses: { 200: Items(schemas.Lease) },
  errors: ['LICENSE_NOT_FOUND'],
});
export const listDevices = route({
  method: 'GET',
  path: '/v1/admin/licenses/:licenseId/devices',
  summary: 'Devices seen on a license, with what they hold now',
  tags: seats,
  auth: 'admin',
  role: 'viewer',
  params: LicenseParams,
  responses: { 200: Items(schemas.Device) },
  errors: ['LICENSE_NOT_FOUND'],
});
export const getLease = route({
  method: 'GET',
  path: '/v1/admin/leases/:leaseId',
  summary: 'Read a lease',
  tags: seats,
  auth: 'admin',
  role: 'viewer',
  params: LeaseParams,
  responses: { 200: schemas.Lease },
  errors: ['LEASE_NOT_FOUND'],
});
export const releaseLease = route({
  method: 'POST',
  path: '/v1/admin/leases/:leaseId/release',
  summary: 'Force release a seat (an unexpired offline lease needs force: true; audited)',
  tags: seats,
  auth: 'admin',
  role: 'operator',
  params: LeaseParams,
  body: schemas.ReleaseLease,
  optionalBody: true,
  responses: { 200: schemas.Obj({ released: Type.Boolean(), leaseId: schemas.LeaseId, offlineOverridden: Type.Boolean() }) },
  errors: ['LEASE_NOT_FOUND', 'OFFLINE_LEASE_ACTIVE'],
});
export const reclaimNow = route({
  method: 'POST',
  path: '/v1/admin/reclaim',
  summary: 'Reclaim inactive licenses now: free every dead lease and report it',
  tags: seats,
  auth: 'admin',
  role: 'operator',
  body: Empty,
  optionalBody: true,
  responses: { 200: schemas.ReclaimReport },
  errors: [],
});
export const dashboard = route({
  method: 'GET',
  path: '/v1/admin/dashboard',
  summary: 'Every license key with seats used/total (online and offline) and denials since 00:00 UTC',
  tags: seats,
  auth: 'admin',
  role: 'viewer',
  query: schemas.Obj(schemas.PageQuery),
  responses: { 200: schemas.Page(schemas.DashboardRow) },
  errors: [],
});

// --- history ------------------------------------------------------------------
export const listAudit = route({
  method: 'GET',
  path: '/v1/admin/audit',
  summary: 'Audit log, newest first',
  tags: history,
  auth: 'admin',
  role: 'viewer',
  query: schemas.Obj({
    ...schemas.PageQuery,
    licenseId: Type.Optional(schemas.LicenseId),
    deviceId: Type.Optional(schemas.DeviceId),
    leaseId: Type.Optional(schemas.LeaseId),
    type: Type.Optional(schemas.AuditType),
    actor: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'client, reclaimer or admin:<token id> (exact)' })),
    from: Type.Optional(schemas.Timestamp),
    to: Type.Optional(schemas.Timestamp),
  }),
  responses: { 200: schemas.Page(schemas.AuditEvent) },
  errors: [],
});
export const licenseUsage = route({
  method: 'GET',
  path: '/v1/admin/licenses/:licenseId/usage',
  summary: 'Concurrent seats by hour (peak, level at the end of the hour, checkouts, denials); default the last 24 hours',
  tags: history,
  auth: 'admin',
  role: 'viewer',
  params: LicenseParams,
  query: schemas.Obj({ from: Type.Optional(schemas.Timestamp), to: Type.Optional(schemas.Timestamp) }),
  responses: {
    200: schemas.Obj({
      items: Type.Array(schemas.UsageHour),
      peakSeats: Type.Integer(),
      denials: Type.Integer(),
      checkouts: Type.Integer(),
    }),
  },
  errors: ['LICENSE_NOT_FOUND'],
});
/** The data of one `change` event of the admin event stream (`events`); `resync`: changes may have been missed, reload. */
export const ChangeEvent = schemas.Obj({
  kind: Type.Union([Type.Literal('seats'), Type.Literal('denied'), Type.Literal('license'), Type.Literal('resync')]),
  licenseId: Type.Union([schemas.LicenseId, Type.Null()]),
  at: schemas.Timestamp,
});
export type ChangeEvent = Static<typeof ChangeEvent>;
/** The data of the `revoked` event: the stream's own admin token was revoked; the stream ends after it. */
export const StreamRevokedEvent = schemas.Obj({ tokenId: Type.String(), at: schemas.Timestamp });
export type StreamRevokedEvent = Static<typeof StreamRevokedEvent>;
export const events = route({
  method: 'GET',
  path: '/v1/admin/events',
  summary:
    'Server-sent events: `change` {kind: seats|denied|license|resync, licenseId, at} after every committed change (resync: changes may have been missed, reload)',
  tags: history,
  auth: 'admin',
  role: 'viewer',
  responses: {},
  raw: true,
  rawResponse: {
    contentType: 'text/event-stream',
    description:
      'A stream of server-sent events, kept open: `event: change` after every committed change, its `data:` line a ChangeEvent; ' +
      "`event: revoked` (data: tokenId, at) when the stream's own token is revoked, then the stream ends; `: ping` comments every 15 s",
    schema: Type.Union([ChangeEvent, StreamRevokedEvent], { description: "the JSON of one event's `data:` line" }),
  },
  errors: [],
});

// --- keys, tokens, identity, settings -------------------------------------------
export const rotateSigningKey = route({
  method: 'POST',
  path: '/v1/admin/signing-keys/rotate',
  summary: 'Start signing lease tokens with a new key; old keys stay in the JWKS until their tokens expire',
  tags: ['keys'],
  auth: 'admin',
  role: 'admin',
  body: Empty,
  optionalBody: true,
  responses: { 200: schemas.Obj({ kid: Type.String() }) },
  errors: [],
});
export const listTokens = route({
  method: 'GET',
  path: '/v1/admin/tokens',
  summary: 'List admin tokens (never their secrets)',
  tags: access,
  auth: 'admin',
  role: 'admin',
  responses: { 200: Items(schemas.AdminTokenInfo) },
  errors: [],
});
export const createToken = route({
  method: 'POST',
  path: '/v1/admin/tokens',
  summary: 'Create an admin token with a role; the secret is in this answer only',
  tags: access,
  auth: 'admin',
  role: 'admin',
  body: schemas.CreateAdminToken,
  responses: { 201: schemas.CreatedAdminToken },
  errors: [],
});
export const revokeToken = route({
  method: 'POST',
  path: '/v1/admin/tokens/:tokenId/revoke',
  summary: 'Revoke an admin token at once (the last active admin token cannot be revoked)',
  tags: access,
  auth: 'admin',
  role: 'admin',
  params: TokenParams,
  body: Empty,
  optionalBody: true,
  responses: { 200: schemas.AdminTokenInfo },
  errors: ['ADMIN_TOKEN_NOT_FOUND', 'LAST_ADMIN_TOKEN'],
});
export const whoami = route({
  method: 'GET',
  path: '/v1/admin/whoami',
  summary: 'The token making this call: id, name and role',
  tags: access,
  auth: 'admin',
  role: 'viewer',
  responses: { 200: schemas.AdminTokenInfo },
  errors: [],
});
export const settings = route({
  method: 'GET',
  path: '/v1/admin/settings',
  summary: 'Server settings that administrators see (reclamation interval, store, version)',
  tags: access,
  auth: 'admin',
  role: 'viewer',
  responses: { 200: schemas.Settings },
  errors: [],
});

// --- groups (of users and hosts, named in license access policies) ---------------
const GroupParams = schemas.Obj({ name: schemas.GroupName });
export const listGroups = route({
  method: 'GET',
  path: '/v1/admin/groups',
  summary: 'List the groups of users and hosts that access policies name',
  tags: licenses,
  auth: 'admin',
  role: 'viewer',
  responses: { 200: Items(schemas.Group) },
  errors: [],
});
export const getGroup = route({
  method: 'GET',
  path: '/v1/admin/groups/:name',
  summary: 'Read a group',
  tags: licenses,
  auth: 'admin',
  role: 'viewer',
  params: GroupParams,
  responses: { 200: schemas.Group },
  errors: ['GROUP_NOT_FOUND'],
});
export const putGroup = route({
  method: 'PUT',
  path: '/v1/admin/groups/:name',
  summary: 'Create or replace a group (its users and hosts); policies that name it apply it at the next checkout',
  tags: licenses,
  auth: 'admin',
  role: 'admin',
  params: GroupParams,
  body: schemas.PutGroup,
  responses: { 200: schemas.Group },
  errors: [],
});
export const deleteGroup = route({
  method: 'DELETE',
  path: '/v1/admin/groups/:name',
  summary: 'Delete a group (a policy that still names it matches no one through it)',
  tags: licenses,
  auth: 'admin',
  role: 'admin',
  params: GroupParams,
  responses: { 200: schemas.Obj({ deleted: schemas.GroupName }) },
  errors: ['GROUP_NOT_FOUND'],
});

export const adminRoutes = [
  createProduct,
  listProducts,
  getProduct,
  updateProduct,
  deleteProduct,
  createLicense,
  listLicenses,
  getLicense,
  updateLicense,
  suspendLicense,
  resumeLicense,
  deleteLicense,
  listLeases,
  listDevices,
  getLease,
  releaseLease,
  reclaimNow,
  dashboard,
  listAudit,
  licenseUsage,
  events,
  rotateSigningKey,
  listTokens,
  createToken,
  revokeToken,
  whoami,
  settings,
  listGroups,
  getGroup,
  putGroup,
  deleteGroup,
] as const;
