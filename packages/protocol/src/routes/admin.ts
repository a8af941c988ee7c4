/**
 * Admin API (`Authorization: Bearer <admin token>`): customers, catalogue, seats, reclamation,
 * audit, usage, tokens. Roles: viewer reads everything but tokens; operator also
 * force-releases and reclaims; admin does everything. A token of one customer reaches
 * only what each route's `scope` opens to it (see `CustomerScope`).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { route } from '../route.js';
import * as schemas from '../schemas.js';

const ProductParams = schemas.Obj({ productId: schemas.ProductId });
const LicenseParams = schemas.Obj({ licenseId: schemas.LicenseId });
const LeaseParams = schemas.Obj({ leaseId: schemas.LeaseId });
const TokenParams = schemas.Obj({ tokenId: schemas.TokenId });
const CustomerParams = schemas.Obj({ customerId: schemas.CustomerId });
const Items = <T extends TSchema>(t: T) => schemas.Obj({ items: Type.Array(t) });
const Empty = schemas.Obj({});
const products = ['products'] as const;
const licenses = ['licenses'] as const;
const seats = ['seats'] as const;
const history = ['history'] as const;
const access = ['access'] as const;
const customers = ['customers'] as const;

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

// --- customers ------------------------------------------------------------------
export const createCustomer = route({
  method: 'POST',
  path: '/v1/admin/customers',
  summary: 'Create a customer (an organisation that licenses belong to)',
  tags: customers,
  auth: 'admin',
  role: 'admin',
  body: schemas.CreateCustomer,
  responses: { 201: schemas.Customer },
  errors: [],
});
export const listCustomers = route({
  method: 'GET',
  path: '/v1/admin/customers',
  summary: "List customers, or search them: by name (part of it), a license key, or a device's host or user name (part of it)",
  tags: customers,
  auth: 'admin',
  role: 'viewer',
  scope: 'own',
  query: schemas.Obj({
    ...schemas.PageQuery,
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000]*$', description: 'search text' })),
  }),
  responses: { 200: schemas.Page(schemas.Customer) },
  errors: [],
});
export const getCustomer = route({
  method: 'GET',
  path: '/v1/admin/customers/:customerId',
  summary: 'Read a customer with its licenses, seats in use, next expiry and usage over the last 30 days',
  tags: customers,
  auth: 'admin',
  role: 'viewer',
  scope: 'customer',
  params: CustomerParams,
  responses: { 200: schemas.CustomerDetail },
  errors: ['CUSTOMER_NOT_FOUND'],
});
export const updateCustomer = route({
  method: 'PATCH',
  path: '/v1/admin/customers/:customerId',
  summary: "Change a customer's name, contact or metadata",
  tags: customers,
  auth: 'admin',
  role: 'admin',
  params: CustomerParams,
  body: schemas.UpdateCustomer,
  responses: { 200: schemas.Customer },
  errors: ['CUSTOMER_NOT_FOUND'],
});
export const deleteCustomer = route({
  method: 'DELETE',
  path: '/v1/admin/customers/:customerId',
  summary: 'Delete a customer that owns no license (its tokens are revoked)',
  tags: customers,
  auth: 'admin',
  role: 'admin',
  params: CustomerParams,
  responses: { 200: schemas.Obj({ deleted: Type.Literal(true), tokensRevoked: Type.Integer() }) },
  errors: ['CUSTOMER_NOT_FOUND', 'CUSTOMER_HAS_LICENSES', 'DEFAULT_CUSTOMER'],
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
  errors: ['PRODUCT_NOT_FOUND', 'CUSTOMER_NOT_FOUND', 'INVALID_POLICY', 'ENTITLEMENT_MANAGED'],
});
export const listLicenses = route({
  method: 'GET',
  path: '/v1/admin/licenses',
  summary: 'List license keys',
  tags: licenses,
  auth: 'admin',
  role: 'viewer',
  scope: 'own',
  query: schemas.Obj({ ...schemas.PageQuery, productId: Type.Optional(schemas.ProductId), customerId: Type.Optional(schemas.CustomerId) }),
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
  scope: 'license',
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
  errors: ['LICENSE_NOT_FOUND', 'CUSTOMER_NOT_FOUND', 'INVALID_POLICY', 'ENTITLEMENT_MANAGED'],
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
  scope: 'license',
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
  scope: 'license',
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
  scope: 'lease',
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
  scope: 'lease',
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
  scope: 'own',
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
  scope: 'own',
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
  scope: 'own',
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
  scope: 'license',
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
  scope: 'own',
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

export const licenseRecommendation = route({
  method: 'GET',
  path: '/v1/admin/licenses/:licenseId/recommendation',
  summary: 'A seat count recommended from measured demand over the last `days` (default 30), with its reason in one sentence',
  tags: history,
  auth: 'admin',
  role: 'viewer',
  scope: 'license',
  params: LicenseParams,
  query: schemas.Obj({ days: Type.Optional(Type.Integer({ minimum: 1, maximum: 366, default: 30 })) }),
  responses: { 200: schemas.SeatRecommendation },
  errors: ['LICENSE_NOT_FOUND'],
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
  errors: ['CUSTOMER_NOT_FOUND'],
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
  scope: 'any',
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
  scope: 'any',
  responses: { 200: schemas.Settings },
  errors: [],
});

// --- webhooks ---------------------------------------------------------------------
const webhooks = ['webhooks'] as const;
const WebhookParams = schemas.Obj({ webhookId: schemas.WebhookId });
export const createWebhook = route({
  method: 'POST',
  path: '/v1/admin/webhooks',
  summary: 'Add a webhook endpoint: events are POSTed to its URL, signed with its secret (in this answer only)',
  tags: webhooks,
  auth: 'admin',
  role: 'admin',
  body: schemas.CreateWebhook,
  responses: { 201: schemas.CreatedWebhook },
  errors: [],
});
export const listWebhooks = route({
  method: 'GET',
  path: '/v1/admin/webhooks',
  summary: 'List webhook endpoints (never their secrets)',
  tags: webhooks,
  auth: 'admin',
  role: 'viewer',
  responses: { 200: Items(schemas.Webhook) },
  errors: [],
});
export const updateWebhook = route({
  method: 'PATCH',
  path: '/v1/admin/webhooks/:webhookId',
  summary: "Change a webhook endpoint's URL, events, description, or enable or disable it",
  tags: webhooks,
  auth: 'admin',
  role: 'admin',
  params: WebhookParams,
  body: schemas.UpdateWebhook,
  responses: { 200: schemas.Webhook },
  errors: ['WEBHOOK_NOT_FOUND'],
});
export const deleteWebhook = route({
  method: 'DELETE',
  path: '/v1/admin/webhooks/:webhookId',
  summary: 'Delete a webhook endpoint and its delivery log',
  tags: webhooks,
  auth: 'admin',
  role: 'admin',
  params: WebhookParams,
  responses: { 200: schemas.Obj({ deleted: Type.Literal(true) }) },
  errors: ['WEBHOOK_NOT_FOUND'],
});
export const pingWebhook = route({
  method: 'POST',
  path: '/v1/admin/webhooks/:webhookId/ping',
  summary: 'Queue a `ping` event for this endpoint (to test the receiver and its signature check)',
  tags: webhooks,
  auth: 'admin',
  role: 'admin',
  params: WebhookParams,
  body: Empty,
  optionalBody: true,
  responses: { 200: schemas.WebhookDelivery },
  errors: ['WEBHOOK_NOT_FOUND'],
});
export const listWebhookDeliveries = route({
  method: 'GET',
  path: '/v1/admin/webhooks/:webhookId/deliveries',
  summary: "An endpoint's delivery log, newest first: each event's state, attempts and the receiver's answers",
  tags: webhooks,
  auth: 'admin',
  role: 'viewer',
  params: WebhookParams,
  query: schemas.Obj({
    ...schemas.PageQuery,
    state: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')])),
  }),
  responses: { 200: schemas.Page(schemas.WebhookDelivery) },
  errors: ['WEBHOOK_NOT_FOUND'],
});
export const redeliverWebhook = route({
  method: 'POST',
  path: '/v1/admin/webhook-deliveries/:deliveryId/redeliver',
  summary: 'Send a delivery again now (delivered or failed ones too); the event id stays the same',
  tags: webhooks,
  auth: 'admin',
  role: 'operator',
  params: schemas.Obj({ deliveryId: schemas.WebhookDeliveryId }),
  body: Empty,
  optionalBody: true,
  responses: { 200: schemas.WebhookDelivery },
  errors: ['WEBHOOK_DELIVERY_NOT_FOUND'],
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
  createCustomer,
  listCustomers,
  getCustomer,
  updateCustomer,
  deleteCustomer,
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
  licenseRecommendation,
  events,
  rotateSigningKey,
  listTokens,
  createToken,
  revokeToken,
  whoami,
  settings,
  createWebhook,
  listWebhooks,
  updateWebhook,
  deleteWebhook,
  pingWebhook,
  listWebhookDeliveries,
  redeliverWebhook,
  listGroups,
  getGroup,
  putGroup,
  deleteGroup,
] as const;
