/** Client API (`Authorization: License <key>`): what the SDK and floatd-run call. */
import { Type } from '@sinclair/typebox';
import { route } from '../route.js';
import * as schemas from '../schemas.js';

const tags = ['client'] as const;
const LeaseParams = schemas.Obj({ leaseId: schemas.LeaseId });
const GRANT_REFUSALS = [
  'LICENSE_SUSPENDED',
  'LICENSE_EXPIRED',
  'TRIAL_EXPIRED',
  'ENTITLEMENT_MISSING',
  'ENTITLEMENT_EXPIRED',
  'SERVER_CLOCK_ROLLBACK',
  'STATE_TAMPERED',
  'NODE_CLOCK_SKEWED',
] as const;

export const checkout = route({
  method: 'POST',
  path: '/v1/client/checkout',
  summary: "Check out a seat (or join the device's seat with another instance)",
  tags,
  auth: 'license',
  body: schemas.CheckoutRequest,
  responses: { 200: schemas.Grant, 201: schemas.Grant },
  errors: [
    'NO_SEATS_AVAILABLE',
    'NO_FEATURE_SEATS_AVAILABLE',
    'UNKNOWN_FEATURE',
    'INSTANCE_LIMIT_REACHED',
    'OFFLINE_LEASE_ACTIVE',
    ...GRANT_REFUSALS,
  ],
});

export const offlineCheckout = route({
  method: 'POST',
  path: '/v1/client/offline-checkout',
  summary: 'Borrow a seat until an Offline Expiry Date (no heartbeats needed until then)',
  tags,
  auth: 'license',
  body: schemas.OfflineCheckoutRequest,
  responses: { 200: schemas.Grant, 201: schemas.Grant },
  errors: [
    'NO_SEATS_AVAILABLE',
    'INSTANCE_LIMIT_REACHED',
    'OFFLINE_NOT_ALLOWED',
    'OFFLINE_DURATION_EXCEEDED',
    'OFFLINE_SEAT_LIMIT_REACHED',
    'OFFLINE_LEASE_ACTIVE',
    ...GRANT_REFUSALS,
  ],
});

export const heartbeat = route({
  method: 'POST',
  path: '/v1/client/leases/:leaseId/heartbeat',
  summary: "Renew an instance's lease (a new lease token when asked, or always for clients without RFC 9421 answers)",
  tags,
  auth: 'license',
  params: LeaseParams,
  body: schemas.HeartbeatRequest,
  responses: { 200: schemas.Renewal },
  errors: ['LEASE_NOT_FOUND', 'NO_SEATS_AVAILABLE', 'INSTANCE_LIMIT_REACHED', 'OFFLINE_LEASE_ACTIVE', ...GRANT_REFUSALS],
});

export const checkin = route({
  method: 'POST',
  path: '/v1/client/leases/:leaseId/checkin',
  summary: 'An instance leaves; at zero instances the seat returns to the pool',
  tags,
  auth: 'license',
  params: LeaseParams,
  body: schemas.InstanceRequest,
  responses: { 200: schemas.CheckinResult },
  errors: ['LEASE_NOT_FOUND', 'OFFLINE_LEASE_ACTIVE', 'ENTITLEMENT_MISSING'],
});

export const changeFeatures = route({
  method: 'POST',
  path: '/v1/client/leases/:leaseId/features',
  summary: 'A held use changes the features it needs: added ones are granted all or nothing, dropped ones go back to their pools',
  tags,
  auth: 'license',
  params: LeaseParams,
  body: schemas.FeaturesRequest,
  responses: { 200: schemas.Grant },
  errors: ['LEASE_NOT_FOUND', 'UNKNOWN_FEATURE', 'NO_FEATURE_SEATS_AVAILABLE', 'BASE_POOL_FIXED', ...GRANT_REFUSALS],
});

export const returnOffline = route({
  method: 'POST',
  path: '/v1/client/leases/:leaseId/return',
  summary: 'Return an offline lease before its Offline Expiry Date',
  tags,
  auth: 'license',
  params: LeaseParams,
  body: schemas.Obj({}),
  optionalBody: true,
  responses: { 200: schemas.Obj({ released: Type.Boolean() }) },
  errors: ['LEASE_NOT_FOUND', 'LEASE_NOT_OFFLINE', 'ENTITLEMENT_MISSING'],
});

export const syncDevice = route({
  method: 'POST',
  path: '/v1/client/devices/sync',
  summary: 'Report the instances really running on a device; the others are dropped',
  tags,
  auth: 'license',
  body: schemas.SyncRequest,
  responses: { 200: schemas.SyncResult },
  errors: ['ENTITLEMENT_MISSING', 'ENTITLEMENT_EXPIRED'],
});

export const licenseInfo = route({
  method: 'GET',
  path: '/v1/client/license',
  summary: "License state, and the device's own lease when a fingerprint is given",
  tags,
  auth: 'license',
  query: schemas.Obj({ fingerprint: Type.Optional(schemas.Fingerprint) }),
  responses: { 200: schemas.LicenseInfo },
  errors: ['ENTITLEMENT_MISSING', 'ENTITLEMENT_EXPIRED'],
});

export const clientRoutes = [
  checkout,
  offlineCheckout,
  heartbeat,
  checkin,
  changeFeatures,
  returnOffline,
  syncDevice,
  licenseInfo,
] as const;
