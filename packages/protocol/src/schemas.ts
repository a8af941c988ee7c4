/**
 * Wire schemas (TypeBox = JSON Schema). The server validates requests with them
 * and publishes them in `/openapi.json`; the client types its calls with them.
 * Objects are closed (`additionalProperties: false`): an unknown field is an error,
 * not silently dropped.
 */
import { Type, type Static, type TSchema, type TProperties, type ObjectOptions } from '@sinclair/typebox';
import { IDENTITY_TEXT_PATTERN } from './text.js';

/** A closed object: unknown fields are rejected. */
export const Obj = <T extends TProperties>(props: T, opts: ObjectOptions = {}) =>
  Type.Object(props, { additionalProperties: false, ...opts });

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const Timestamp = Type.String({ format: 'date-time', description: 'UTC, ISO 8601' });
export const IdOf = (prefix: string) =>
  Type.String({ pattern: `^${prefix}_[0-9A-Za-z]{20}$`, description: `${prefix}_ followed by 20 random characters` });

export const ProductId = IdOf('prd');
export const LicenseId = IdOf('lic');
export const DeviceId = IdOf('dev');
export const LeaseId = IdOf('lse');

/** A client-computed device fingerprint (already hashed by the client; never a raw machine id). */
export const Fingerprint = Type.String({ minLength: 8, maxLength: 128, pattern: '^[A-Za-z0-9_.:+/=-]+$' });
export const InstanceIdSchema = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:-]+$' });
/**
 * Free text (names, client metadata): any character but NUL. PostgreSQL cannot store NUL in TEXT, so a NUL
 * made the write fail with a 500 there (and was stored on SQLite): it is refused the same way on both.
 */
const Text = (opts: { minLength?: number; maxLength: number }) => Type.String({ ...opts, pattern: '^[^\\u0000]*$' });
/**
 * Identity text a client chooses (hostname, user, app version): no control character (C0, C1, DEL) and no
 * bidirectional override or isolate, which would act on an administrator's terminal or reorder what the
 * console shows (see text.ts). Fingerprints and instance ids are narrower still.
 */
export const IdentityText = (max: number) =>
  Type.String({
    maxLength: max,
    pattern: IDENTITY_TEXT_PATTERN,
    description: 'no control characters (C0, C1, DEL) or bidi overrides (U+202A-U+202E, U+2066-U+2069)',
  });
// TypeBox drops a Record key schema's length limits (keys become `^(.*)$`), so keys are limited with propertyNames.
export const Metadata = Type.Record(Type.String(), Type.Unknown(), {
  maxProperties: 64,
  propertyNames: { minLength: 1, maxLength: 64 },
  description: 'Free-form JSON object',
});

export const LicenseModel = Type.Union([Type.Literal('permanent'), Type.Literal('subscription'), Type.Literal('trial')]);
export type LicenseModel = Static<typeof LicenseModel>;
export const CountingMode = Type.Union([Type.Literal('per-device'), Type.Literal('per-instance')]);
export type CountingMode = Static<typeof CountingMode>;

/** The license models by name, so code says `LICENSE_MODELS.TRIAL` rather than a string that may be misspelt. */
export const LICENSE_MODELS = {
  PERMANENT: 'permanent',
  SUBSCRIPTION: 'subscription',
  TRIAL: 'trial',
} as const satisfies Record<string, LicenseModel>;

/** The counting modes by name: one seat per device, or one per running instance. */
export const COUNTING_MODES = {
  PER_DEVICE: 'per-device',
  PER_INSTANCE: 'per-instance',
} as const satisfies Record<string, CountingMode>;

const Seconds = (opts: { minimum?: number; maximum?: number; description?: string } = {}) =>
  Type.Integer({ minimum: 0, maximum: 10 * 365 * 86400, ...opts });

// ---------------------------------------------------------------------------
// error envelope
export const ErrorBody = Obj({
  error: Type.Object(
    {
      code: Type.String(),
      message: Type.String(),
      requestId: Type.Optional(Type.String()),
    },
    { additionalProperties: true },
  ),
});

// ---------------------------------------------------------------------------
// products
export const Product = Obj({
  id: ProductId,
  name: Type.String(),
  metadata: Metadata,
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type Product = Static<typeof Product>;
export const CreateProduct = Obj({
  name: Text({ minLength: 1, maxLength: 200 }),
  metadata: Type.Optional(Metadata),
});
export type CreateProduct = Static<typeof CreateProduct>;
export const UpdateProduct = Obj(
  { name: Type.Optional(Text({ minLength: 1, maxLength: 200 })), metadata: Type.Optional(Metadata) },
  { minProperties: 1 },
);
export type UpdateProduct = Static<typeof UpdateProduct>;

// ---------------------------------------------------------------------------
// licenses
const policyFields = {
  seats: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  model: LicenseModel,
  expiresAt: Nullable(Timestamp),
  trialDays: Nullable(Type.Integer({ minimum: 1, maximum: 3650 })),
  leaseTtlSeconds: Nullable(
    Seconds({ minimum: 10, description: 'Lease lifetime without a heartbeat; null = held until check-in or release' }),
  ),
  heartbeatIntervalSeconds: Seconds({ minimum: 1, description: 'How often clients are told to heartbeat' }),
  maxOfflineSeconds: Seconds({ description: '0 = offline checkout forbidden' }),
  maxOfflineSeats: Nullable(
    Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'Cap on seats held offline at once; null = no cap below the seat count' }),
  ),
  maxInstancesPerDevice: Type.Integer({ minimum: 1, maximum: 10_000 }),
  counting: CountingMode,
  suspended: Type.Boolean(),
  metadata: Metadata,
};

export const License = Obj({
  id: LicenseId,
  productId: ProductId,
  key: Type.String(),
  ...policyFields,
  trialStartedAt: Nullable(Timestamp),
  seatsUsed: Type.Integer(),
  seatsOffline: Type.Integer(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type License = Static<typeof License>;

export const CreateLicense = Obj({
  productId: ProductId,
  seats: policyFields.seats,
  model: Type.Optional(LicenseModel),
  expiresAt: Type.Optional(policyFields.expiresAt),
  trialDays: Type.Optional(policyFields.trialDays),
  leaseTtlSeconds: Type.Optional(policyFields.leaseTtlSeconds),
  heartbeatIntervalSeconds: Type.Optional(policyFields.heartbeatIntervalSeconds),
  maxOfflineSeconds: Type.Optional(policyFields.maxOfflineSeconds),
  maxOfflineSeats: Type.Optional(policyFields.maxOfflineSeats),
  maxInstancesPerDevice: Type.Optional(policyFields.maxInstancesPerDevice),
  counting: Type.Optional(policyFields.counting),
  suspended: Type.Optional(policyFields.suspended),
  metadata: Type.Optional(policyFields.metadata),
});
export type CreateLicense = Static<typeof CreateLicense>;

export const UpdateLicense = Obj(
  {
    seats: Type.Optional(policyFields.seats),
    model: Type.Optional(LicenseModel),
    expiresAt: Type.Optional(policyFields.expiresAt),
    trialDays: Type.Optional(policyFields.trialDays),
    leaseTtlSeconds: Type.Optional(policyFields.leaseTtlSeconds),
    heartbeatIntervalSeconds: Type.Optional(policyFields.heartbeatIntervalSeconds),
    maxOfflineSeconds: Type.Optional(policyFields.maxOfflineSeconds),
    maxOfflineSeats: Type.Optional(policyFields.maxOfflineSeats),
    maxInstancesPerDevice: Type.Optional(policyFields.maxInstancesPerDevice),
    counting: Type.Optional(policyFields.counting),
    suspended: Type.Optional(policyFields.suspended),
    metadata: Type.Optional(policyFields.metadata),
  },
  { minProperties: 1 },
);
export type UpdateLicense = Static<typeof UpdateLicense>;

export const Page = <T extends TSchema>(item: T) => Obj({ items: Type.Array(item), nextCursor: Nullable(Type.String()) });
/** A page of a list: its items and the cursor of the next page (null: the last one). */
export type Page<T> = { items: T[]; nextCursor: string | null };
export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  cursor: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,14}$', description: 'nextCursor of the previous page' })),
};

// ---------------------------------------------------------------------------
// devices, leases, instances (admin views)
export const Instance = Obj({
  instanceId: Type.String(),
  startedAt: Timestamp,
  lastHeartbeatAt: Timestamp,
  expiresAt: Nullable(Timestamp),
});
export const Lease = Obj({
  id: LeaseId,
  licenseId: LicenseId,
  deviceId: DeviceId,
  fingerprint: Type.String(),
  hostname: Nullable(Type.String()),
  user: Nullable(Type.String()),
  appVersion: Nullable(Type.String()),
  offline: Type.Boolean(),
  grantedAt: Timestamp,
  lastAccessedAt: Timestamp,
  expiresAt: Nullable(Timestamp),
  offlineExpiresAt: Nullable(Timestamp),
  instanceCount: Type.Integer(),
  instances: Type.Array(Instance),
});
export type Lease = Static<typeof Lease>;
export const Device = Obj({
  id: DeviceId,
  licenseId: LicenseId,
  fingerprint: Type.String(),
  hostname: Nullable(Type.String()),
  user: Nullable(Type.String()),
  appVersion: Nullable(Type.String()),
  firstSeenAt: Timestamp,
  lastAccessedAt: Timestamp,
  seatsHeld: Type.Integer(),
  instanceCount: Type.Integer(),
  offlineExpiresAt: Nullable(Timestamp),
});
export type Device = Static<typeof Device>;

export const ReleaseReason = Type.Union([
  Type.Literal('checkin'),
  Type.Literal('expired'),
  Type.Literal('offline-returned'),
  Type.Literal('force-release'),
  Type.Literal('synced'),
  Type.Literal('license-deleted'),
]);
export type ReleaseReason = Static<typeof ReleaseReason>;

/** How a lease's seat came to be free, by name (audit `reason`, the released-seats metric's label). */
export const RELEASE_REASONS = {
  CHECKIN: 'checkin',
  EXPIRED: 'expired',
  OFFLINE_RETURNED: 'offline-returned',
  FORCE_RELEASE: 'force-release',
  SYNCED: 'synced',
  LICENSE_DELETED: 'license-deleted',
} as const satisfies Record<string, ReleaseReason>;

export const Role = Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]);
export type Role = Static<typeof Role>;
export const TokenId = IdOf('tok');
export const AdminTokenInfo = Obj({
  id: TokenId,
  name: Type.String(),
  role: Role,
  createdAt: Timestamp,
  lastUsedAt: Nullable(Timestamp),
  revokedAt: Nullable(Timestamp),
});
export type AdminTokenInfo = Static<typeof AdminTokenInfo>;
export const CreateAdminToken = Obj({ name: Text({ minLength: 1, maxLength: 100 }), role: Role });
export type CreateAdminToken = Static<typeof CreateAdminToken>;
export const CreatedAdminToken = Obj({
  ...AdminTokenInfo.properties,
  token: Type.String({ description: 'The secret, shown only in this answer' }),
});

export const Settings = Obj({
  version: Type.String(),
  store: Type.String(),
  reclaimIntervalSeconds: Type.Integer(),
  serverTime: Timestamp,
});

export const DashboardRow = Obj({
  license: License,
  productName: Nullable(Type.String()),
  denialsToday: Type.Integer(),
});

export const ReleaseLease = Obj({ force: Type.Optional(Type.Boolean()) });

export const ReclaimReport = Obj({
  freed: Type.Array(Obj({ leaseId: LeaseId, licenseId: LicenseId, deviceId: DeviceId, reason: ReleaseReason })),
  instancesDropped: Type.Integer(),
  ranAt: Timestamp,
});
export type ReclaimReport = Static<typeof ReclaimReport>;

export const AuditType = Type.Union([
  Type.Literal('product.created'),
  Type.Literal('product.updated'),
  Type.Literal('product.deleted'),
  Type.Literal('license.created'),
  Type.Literal('license.updated'),
  Type.Literal('license.deleted'),
  Type.Literal('signing-key.rotated'),
  Type.Literal('token.created'),
  Type.Literal('token.revoked'),
  Type.Literal('checkout'),
  Type.Literal('join'),
  Type.Literal('heartbeat-revive'),
  Type.Literal('checkin'),
  Type.Literal('instance-dropped'),
  Type.Literal('offline-checkout'),
  Type.Literal('release'),
  Type.Literal('denied'),
  Type.Literal('entitlements.loaded'),
  Type.Literal('server-clock.rollback'),
  Type.Literal('server-clock.recovered'),
  Type.Literal('deployment.created'),
  Type.Literal('deployment.activated'),
  Type.Literal('usage-report.imported'),
  Type.Literal('seats.repaired'),
  Type.Literal('state.tampered'),
  Type.Literal('state.repaired'),
]);
export type AuditType = Static<typeof AuditType>;
export const AuditEvent = Obj({
  id: Type.Integer(),
  at: Timestamp,
  type: AuditType,
  actor: Type.String(),
  licenseId: Nullable(Type.String()),
  deviceId: Nullable(Type.String()),
  leaseId: Nullable(Type.String()),
  reason: Nullable(Type.String()),
  data: Type.Record(Type.String(), Type.Unknown()),
});
export type AuditEvent = Static<typeof AuditEvent>;

export const UsageHour = Obj({
  hour: Timestamp,
  peakSeats: Type.Integer(),
  seatsAtEnd: Type.Integer(),
  checkouts: Type.Integer(),
  denials: Type.Integer(),
});
export type UsageHour = Static<typeof UsageHour>;

// ---------------------------------------------------------------------------
// client API
const clientMeta = {
  hostname: Type.Optional(IdentityText(255)),
  user: Type.Optional(IdentityText(255)),
  appVersion: Type.Optional(IdentityText(64)),
};
export const CheckoutRequest = Obj({ fingerprint: Fingerprint, instanceId: InstanceIdSchema, ...clientMeta });
export type CheckoutRequest = Static<typeof CheckoutRequest>;
export const OfflineCheckoutRequest = Obj({
  fingerprint: Fingerprint,
  instanceId: InstanceIdSchema,
  durationSeconds: Seconds({ minimum: 60 }),
  ...clientMeta,
});
export type OfflineCheckoutRequest = Static<typeof OfflineCheckoutRequest>;
export const InstanceRequest = Obj({ instanceId: InstanceIdSchema });
export const SyncRequest = Obj({
  fingerprint: Fingerprint,
  instanceIds: Type.Array(InstanceIdSchema, { maxItems: 1024, uniqueItems: true }),
});
export type SyncRequest = Static<typeof SyncRequest>;

export const LicenseSummary = Obj({
  id: LicenseId,
  productId: ProductId,
  model: LicenseModel,
  expiresAt: Nullable(Timestamp),
  seatsTotal: Type.Integer(),
  seatsUsed: Type.Integer(),
  seatsOffline: Type.Integer(),
  counting: CountingMode,
  leaseTtlSeconds: Nullable(Type.Integer()),
  heartbeatIntervalSeconds: Type.Integer(),
  maxOfflineSeconds: Type.Integer(),
  suspended: Type.Boolean(),
});
export type LicenseSummary = Static<typeof LicenseSummary>;

export const ClientLease = Obj({
  id: LeaseId,
  deviceId: DeviceId,
  instanceId: Type.String(),
  offline: Type.Boolean(),
  grantedAt: Timestamp,
  expiresAt: Nullable(Timestamp),
  offlineExpiresAt: Nullable(Timestamp),
  instances: Type.Integer({ description: 'Running instances on this lease (QLM activation count)' }),
});
export type ClientLease = Static<typeof ClientLease>;

export const Grant = Obj({
  lease: ClientLease,
  token: Type.String({ description: 'Lease token: EdDSA JWT, verify with /.well-known/jwks.json' }),
  heartbeatIntervalSeconds: Type.Integer(),
  serverTime: Timestamp,
  license: LicenseSummary,
});
export type Grant = Static<typeof Grant>;

export const CheckinResult = Obj({
  released: Type.Boolean({ description: 'true when the seat went back to the pool' }),
  instances: Type.Integer(),
});
export type CheckinResult = Static<typeof CheckinResult>;

export const SyncResult = Obj({
  dropped: Type.Array(Type.String()),
  released: Type.Array(LeaseId),
  instances: Type.Integer(),
});
export type SyncResult = Static<typeof SyncResult>;

export const LicenseInfo = Obj({ license: LicenseSummary, lease: Nullable(ClientLease), serverTime: Timestamp });
export type LicenseInfo = Static<typeof LicenseInfo>;

export const Jwks = Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) });
