/**
 * Wire schemas (TypeBox = JSON Schema). The server validates requests with them
 * and publishes them in `/openapi.json`; the client types its calls with them.
 * Objects are closed (`additionalProperties: false`): an unknown field is an error,
 * not silently dropped.
 */
import { Type, type Static, type TSchema, type TProperties, type ObjectOptions } from '@sinclair/typebox';
import { IDENTITY_TEXT_PATTERN, LISTED_NAME_PATTERN, PRINCIPAL_PATTERN } from './text.js';

/** A closed object: unknown fields are rejected. */
export const Obj = <T extends TProperties>(props: T, opts: ObjectOptions = {}) =>
  Type.Object(props, { additionalProperties: false, ...opts });

/**
 * A value or null. A scalar (string, number, integer, boolean) is declared with a type list (`["string", "null"]`), which
 * validators and the server's answer serialiser check by type alone; an anyOf would make the serialiser run the full
 * schema (a date-time format check) on every answer to pick its branch. Objects and arrays stay an anyOf.
 */
const Nullable = <T extends TSchema>(t: T): TSchema & { static: Static<T> | null } =>
  typeof t.type === 'string' && ['string', 'number', 'integer', 'boolean'].includes(t.type)
    ? Type.Unsafe<Static<T> | null>({ ...t, type: [t.type, 'null'] })
    : Type.Union([t, Type.Null()]);

export const Timestamp = Type.String({ format: 'date-time', description: 'UTC, ISO 8601' });
export const IdOf = (prefix: string) =>
  Type.String({ pattern: `^${prefix}_[0-9A-Za-z]{20}$`, description: `${prefix}_ followed by 20 random characters` });

export const ProductId = IdOf('prd');
export const LicenseId = IdOf('lic');
export const DeviceId = IdOf('dev');
export const LeaseId = IdOf('lse');
export const CustomerId = IdOf('cus');
/** The built-in customer: licenses created without a customer belong to it; it cannot be deleted (it may be renamed). */
export const DEFAULT_CUSTOMER_ID = 'cus_default0000000000000';

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
/**
 * How a license counts, as shown: a sharing rule equal to one of the two classic modes shows that mode,
 * any other rule shows `shared` (the rule itself is in `sharing`).
 */
export const CountingView = Type.Union([Type.Literal('per-device'), Type.Literal('per-instance'), Type.Literal('shared')]);
export type CountingView = Static<typeof CountingView>;

/**
 * What puts uses (running instances) on one seat: uses whose values of every listed attribute are equal share
 * a seat. `device` (the fingerprint), `user`, `host`, `display` and `key` (a string the application passes at
 * checkout, e.g. a project) may be mixed; `instance` (no sharing) and `site` (every use of the license shares
 * one seat) stand alone. A use that lacks a listed attribute (the client did not send it) shares with no one.
 */
export const ShareAttribute = Type.Union([
  Type.Literal('device'),
  Type.Literal('user'),
  Type.Literal('host'),
  Type.Literal('display'),
  Type.Literal('key'),
  Type.Literal('instance'),
  Type.Literal('site'),
]);
export type ShareAttribute = Static<typeof ShareAttribute>;
export const SharingRule = Obj({
  by: Type.Array(ShareAttribute, { minItems: 1, maxItems: 5, uniqueItems: true }),
  cap: Nullable(
    Type.Integer({
      minimum: 1,
      maximum: 10_000,
      description: 'Most uses on one seat: the next use with the same values takes another seat. null = no cap',
    }),
  ),
});
export type SharingRule = Static<typeof SharingRule>;
/** Who a site policy names: `user:<name>`, `host:<name>` (as the client sends them) or `group:<name>` (an admin-managed group). */
export const Principal = Type.String({
  minLength: 6,
  maxLength: 262,
  pattern: PRINCIPAL_PATTERN,
  description: 'user:<name>, host:<name> or group:<name>',
});
/**
 * Who may take seats of a license, and how many (FlexNet options file INCLUDE/EXCLUDE, MAX, RESERVE): checked on
 * every checkout, exactly under concurrency. A use's principals are its user, its host and the groups that name them.
 */
export const AccessPolicy = Obj({
  /** null: everyone; else only uses with one of these principals */
  allow: Nullable(Type.Array(Principal, { maxItems: 1000, uniqueItems: true })),
  /** uses with one of these principals are refused (before allow) */
  deny: Type.Array(Principal, { maxItems: 1000, uniqueItems: true }),
  /** most seats held at once by the uses of a principal */
  limits: Type.Array(Obj({ principal: Principal, max: Type.Integer({ minimum: 0, maximum: 1_000_000 }) }), { maxItems: 1000 }),
  /** seats kept for a principal: others are refused once only reserved seats remain */
  reservations: Type.Array(Obj({ principal: Principal, seats: Type.Integer({ minimum: 1, maximum: 1_000_000 }) }), { maxItems: 1000 }),
});
export type AccessPolicy = Static<typeof AccessPolicy>;
export const OPEN_ACCESS: AccessPolicy = { allow: null, deny: [], limits: [], reservations: [] };

/** An admin-managed group of users and hosts, named in access policies as `group:<name>`. */
export const GroupName = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$' });
const ListedName = Type.String({ minLength: 1, maxLength: 255, pattern: LISTED_NAME_PATTERN });
export const Group = Obj({
  name: GroupName,
  users: Type.Array(Type.String()),
  hosts: Type.Array(Type.String()),
  updatedAt: Timestamp,
});
export type Group = Static<typeof Group>;
export const PutGroup = Obj({
  users: Type.Array(ListedName, { maxItems: 1000, uniqueItems: true }),
  hosts: Type.Array(ListedName, { maxItems: 1000, uniqueItems: true }),
});
export type PutGroup = Static<typeof PutGroup>;

/** The rules equal to the two classic counting modes. */
export const SHARING_OF_COUNTING: Record<CountingMode, SharingRule> = {
  'per-device': { by: ['device'], cap: null },
  'per-instance': { by: ['instance'], cap: null },
};
/**
 * Uses that claim one fingerprint from machines that differ (host name, boot id, client address, where both
 * are known) under a rule that shares by device: `separate` counts each machine's uses on a seat of its own
 * (the default), `refuse` answers DEVICE_CLONE_REFUSED, `allow` lets them share. Each case is audited.
 */
export const ClonePolicy = Type.Union([Type.Literal('separate'), Type.Literal('refuse'), Type.Literal('allow')]);
export type ClonePolicy = Static<typeof ClonePolicy>;
/**
 * Uses whose client says it runs in a virtual machine or a container: `allow` (like any other use),
 * `count-per-instance` (each takes a seat of its own, never shared), `deny` (VM_NOT_ALLOWED).
 */
export const VmPolicy = Type.Union([Type.Literal('allow'), Type.Literal('count-per-instance'), Type.Literal('deny')]);
export type VmPolicy = Static<typeof VmPolicy>;

/**
 * A named pool of a license beside its base pool (FlexNet FEATURE lines, Cryptlex floating features): its own seat
 * count, checked out by name. `base` names the license's own seats and is not a feature name.
 */
export const FeatureName = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9_.-]*$' });
export const BASE_POOL = 'base' as const;
export const FeaturePool = Obj({
  name: FeatureName,
  seats: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  /**
   * `seat` (the default): one seat of the feature per license seat whose uses need it (the license's sharing rule);
   * `instance`: one per running instance that needs it, however the license shares its seats.
   */
  counting: Type.Optional(Type.Union([Type.Literal('seat'), Type.Literal('instance')])),
  /** a shorter (or longer) lease lifetime without a heartbeat for seats that hold this feature; absent: the license's */
  leaseTtlSeconds: Type.Optional(Type.Integer({ minimum: 10, maximum: 10 * 365 * 86400 })),
  /** who may take seats of this feature, and how many (as the license's `access`, counted in this feature's seats); absent: open */
  access: Type.Optional(AccessPolicy),
});
export type FeaturePool = Static<typeof FeaturePool>;
/** Pools a checkout asks for: `base` (the license's seats) and feature names; all or nothing. */
export const PoolNames = Type.Array(FeatureName, { minItems: 1, maxItems: 32, uniqueItems: true });

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
// customers (the organisations licenses belong to)
export const CustomerContact = Obj({
  name: Type.Optional(Text({ minLength: 1, maxLength: 200 })),
  email: Type.Optional(Type.String({ minLength: 3, maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+$' })),
  phone: Type.Optional(Type.String({ minLength: 1, maxLength: 40, pattern: '^[0-9+(). /-]+$' })),
});
export type CustomerContact = Static<typeof CustomerContact>;
export const Customer = Obj({
  id: CustomerId,
  name: Type.String(),
  contact: CustomerContact,
  metadata: Metadata,
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type Customer = Static<typeof Customer>;
export const CreateCustomer = Obj({
  name: Text({ minLength: 1, maxLength: 200 }),
  contact: Type.Optional(CustomerContact),
  metadata: Type.Optional(Metadata),
});
export type CreateCustomer = Static<typeof CreateCustomer>;
export const UpdateCustomer = Obj(
  {
    name: Type.Optional(Text({ minLength: 1, maxLength: 200 })),
    contact: Type.Optional(CustomerContact),
    metadata: Type.Optional(Metadata),
  },
  { minProperties: 1 },
);
export type UpdateCustomer = Static<typeof UpdateCustomer>;
/** One of a customer's licenses, as the customer page lists them. */
export const CustomerLicense = Obj({
  id: LicenseId,
  key: Type.String(),
  productId: ProductId,
  productName: Nullable(Type.String()),
  model: LicenseModel,
  seats: Type.Integer(),
  seatsUsed: Type.Integer(),
  seatsOffline: Type.Integer(),
  expiresAt: Nullable(Timestamp),
  suspended: Type.Boolean(),
});
/** A customer with what it holds: its licenses, seats in use, the next expiry and its usage over the last 30 days. */
export const CustomerDetail = Obj({
  customer: Customer,
  licenses: Type.Array(CustomerLicense),
  seats: Type.Integer({ description: 'seats of all its licenses together' }),
  seatsUsed: Type.Integer(),
  nextExpiry: Nullable(Obj({ licenseId: LicenseId, at: Timestamp })),
  usage: Obj({
    from: Timestamp,
    to: Timestamp,
    /** the most seats its licenses held at once in one hour, each license's peak added (an upper bound) */
    peakSeats: Type.Integer(),
    checkouts: Type.Integer(),
    denials: Type.Integer(),
  }),
});
export type CustomerDetail = Static<typeof CustomerDetail>;

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
  sharing: SharingRule,
  clonePolicy: ClonePolicy,
  vmPolicy: VmPolicy,
  lingerSeconds: Seconds({
    maximum: 86_400,
    description: 'After the last use of a seat checks in, the seat stays held this long for its share group (FlexNet LINGER); 0 = none',
  }),
  overdraftSeats: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    description: 'Seats granted beyond the count when the pool is full, marked overdraft and counted apart for the true-up; 0 = none',
  }),
  access: AccessPolicy,
  /** feature pools beside the base pool (`seats`), each with its own seat count */
  features: Type.Array(FeaturePool, { maxItems: 64 }),
  suspended: Type.Boolean(),
  metadata: Metadata,
};

export const License = Obj({
  id: LicenseId,
  productId: ProductId,
  /** the customer the license belongs to (every license belongs to one; see DEFAULT_CUSTOMER_ID) */
  customerId: CustomerId,
  key: Type.String(),
  ...policyFields,
  counting: CountingView,
  trialStartedAt: Nullable(Timestamp),
  seatsUsed: Type.Integer(),
  seatsOffline: Type.Integer(),
  /** seats held now per feature pool (the base pool's are `seatsUsed`) */
  featureSeatsUsed: Type.Record(Type.String(), Type.Integer()),
  /** checkouts waiting in the license's queues now */
  waiting: Type.Integer(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type License = Static<typeof License>;

export const CreateLicense = Obj({
  productId: ProductId,
  /** default: the built-in customer (DEFAULT_CUSTOMER_ID) */
  customerId: Type.Optional(CustomerId),
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
  sharing: Type.Optional(policyFields.sharing),
  clonePolicy: Type.Optional(policyFields.clonePolicy),
  vmPolicy: Type.Optional(policyFields.vmPolicy),
  lingerSeconds: Type.Optional(policyFields.lingerSeconds),
  overdraftSeats: Type.Optional(policyFields.overdraftSeats),
  access: Type.Optional(policyFields.access),
  features: Type.Optional(policyFields.features),
  suspended: Type.Optional(policyFields.suspended),
  metadata: Type.Optional(policyFields.metadata),
});
export type CreateLicense = Static<typeof CreateLicense>;

export const UpdateLicense = Obj(
  {
    /** moves the license to another customer */
    customerId: Type.Optional(CustomerId),
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
    sharing: Type.Optional(policyFields.sharing),
    clonePolicy: Type.Optional(policyFields.clonePolicy),
    vmPolicy: Type.Optional(policyFields.vmPolicy),
    lingerSeconds: Type.Optional(policyFields.lingerSeconds),
    overdraftSeats: Type.Optional(policyFields.overdraftSeats),
    access: Type.Optional(policyFields.access),
    features: Type.Optional(policyFields.features),
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
/** What a client said about one use at checkout (each a claim: docs/security.md). */
export const UseMeta = Obj({
  hostname: Nullable(Type.String()),
  user: Nullable(Type.String()),
  display: Nullable(Type.String()),
  shareKey: Nullable(Type.String()),
  bootId: Nullable(Type.String()),
  /** the client address the checkout came from */
  address: Nullable(Type.String()),
  vm: Nullable(Type.Boolean()),
  container: Nullable(Type.Boolean()),
});
export type UseMeta = Static<typeof UseMeta>;
export const Instance = Obj({
  instanceId: Type.String(),
  /** the device whose use this is (under a rule that shares across devices, not always the lease's) */
  deviceId: DeviceId,
  startedAt: Timestamp,
  lastHeartbeatAt: Timestamp,
  expiresAt: Nullable(Timestamp),
  meta: UseMeta,
  /** the pools this use asked for (`base` and feature names) */
  features: Type.Array(Type.String()),
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
  /** the share group the seat belongs to (e.g. `device=dev_…`, `user=alice`, `site`, `instance=lse_…`) */
  shareGroup: Type.String(),
  /** granted beyond the seat count (overdraft) */
  overdraft: Type.Boolean(),
  /** held after its last use checked in, for its share group, until this time (linger); null otherwise */
  lingerUntil: Nullable(Timestamp),
  /** the pools the seat holds: `base` (the license's seats) and the features its uses asked for */
  features: Type.Array(Type.String()),
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
  /** machines (host name, boot id, address) this fingerprint was seen from at once: more than one is a clone suspect */
  machinesSeen: Type.Array(Type.String()),
  /** when uses with this fingerprint first came from different machines at once (null: never) */
  cloneSuspectedAt: Nullable(Timestamp),
});
export type Device = Static<typeof Device>;

export const ReleaseReason = Type.Union([
  Type.Literal('checkin'),
  Type.Literal('expired'),
  Type.Literal('offline-returned'),
  Type.Literal('force-release'),
  Type.Literal('synced'),
  Type.Literal('license-deleted'),
  Type.Literal('linger-ended'),
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
  LINGER_ENDED: 'linger-ended',
} as const satisfies Record<string, ReleaseReason>;

export const Role = Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]);
export type Role = Static<typeof Role>;
export const TokenId = IdOf('tok');
export const AdminTokenInfo = Obj({
  id: TokenId,
  name: Type.String(),
  role: Role,
  /** a customer's own administrator: the token reaches only this customer's licenses; null: the vendor's token */
  customerId: Nullable(CustomerId),
  createdAt: Timestamp,
  lastUsedAt: Nullable(Timestamp),
  revokedAt: Nullable(Timestamp),
});
export type AdminTokenInfo = Static<typeof AdminTokenInfo>;
export const CreateAdminToken = Obj({
  name: Text({ minLength: 1, maxLength: 100 }),
  role: Role,
  /** a token for this customer's own administrator (see AdminTokenInfo.customerId) */
  customerId: Type.Optional(CustomerId),
});
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
  Type.Literal('clone-detected'),
  Type.Literal('vm-refused'),
  Type.Literal('linger'),
  Type.Literal('features.changed'),
  Type.Literal('group.updated'),
  Type.Literal('group.deleted'),
  Type.Literal('state.tampered'),
  Type.Literal('state.repaired'),
  Type.Literal('customer.created'),
  Type.Literal('customer.updated'),
  Type.Literal('customer.deleted'),
  Type.Literal('webhook.created'),
  Type.Literal('webhook.updated'),
  Type.Literal('webhook.deleted'),
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
  /** the most seats held beyond the count at once in the hour (overdraft in use: the true-up figure) */
  peakOverdraft: Type.Integer(),
  /** seats granted beyond the count in the hour */
  overdraftCheckouts: Type.Integer(),
  /** checkouts that joined a queue in the hour */
  queued: Type.Integer(),
  /** waiters granted a seat in the hour, and the seconds they waited together (average: one over the other) */
  queueGrants: Type.Integer(),
  queueWaitSeconds: Type.Number(),
  /** per feature pool with activity in the hour: the most of its seats held at once, its grants and its denials */
  features: Type.Record(Type.String(), Obj({ peak: Type.Integer(), checkouts: Type.Integer(), denials: Type.Integer() })),
});
export type UsageHour = Static<typeof UsageHour>;

/** A seat count recommended from measured demand, with its reason in one sentence (method: docs/api.md). */
export const SeatRecommendation = Obj({
  licenseId: LicenseId,
  from: Timestamp,
  to: Timestamp,
  seats: Type.Integer({ description: "today's seat count" }),
  recommendedSeats: Type.Integer(),
  reason: Type.String(),
  checkouts: Type.Integer(),
  denials: Type.Integer(),
  /** of every checkout asked for, the share refused: today, and estimated with the recommended count (0..1) */
  turnedAway: Type.Number(),
  turnedAwayRecommended: Type.Number(),
  busyHours: Type.Integer(),
  hoursAtFull: Type.Integer(),
  /** the largest hourly demand: the most seats held at once plus the checkouts refused, in one hour */
  peakDemand: Type.Integer(),
  /** the share of busy hours whose demand the recommended count covers (0..1) */
  coveredHours: Type.Number(),
  queued: Type.Integer(),
  queueWaitSeconds: Type.Number(),
});
export type SeatRecommendation = Static<typeof SeatRecommendation>;

// ---------------------------------------------------------------------------
// webhooks
/** What a webhook endpoint can be told (`*`: every type). */
export const WEBHOOK_EVENT_TYPES = [
  'seats.full',
  'checkout.denied',
  'lease.reclaimed',
  'offline.borrowed',
  'offline.returned',
  'license.expiring',
  'license.expired',
  'license.suspended',
  'entitlements.loaded',
  'usage-report.received',
  'server-clock.rollback',
  'state.tampered',
  'ping',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
export const WebhookEventTypeSchema = Type.Union(WEBHOOK_EVENT_TYPES.map((t) => Type.Literal(t)));
export const WebhookId = IdOf('whk');
export const WebhookEventId = IdOf('evt');
export const WebhookDeliveryId = IdOf('dlv');
export const WebhookUrl = Type.String({
  minLength: 8,
  maxLength: 2048,
  pattern: '^https?://[^\\s]+$',
  description: 'http:// or https://; deliveries are POSTed to it',
});
export const WebhookEvents = Type.Array(Type.Union([WebhookEventTypeSchema, Type.Literal('*')]), {
  minItems: 1,
  maxItems: 32,
  uniqueItems: true,
});
export const Webhook = Obj({
  id: WebhookId,
  url: Type.String(),
  events: Type.Array(Type.String()),
  description: Type.String(),
  enabled: Type.Boolean(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type Webhook = Static<typeof Webhook>;
export const CreatedWebhook = Obj({
  ...Webhook.properties,
  secret: Type.String({ description: 'whsec_…: the signing secret, shown only in this answer' }),
});
export const CreateWebhook = Obj({
  url: WebhookUrl,
  events: WebhookEvents,
  description: Type.Optional(Text({ maxLength: 200 })),
  enabled: Type.Optional(Type.Boolean()),
});
export type CreateWebhook = Static<typeof CreateWebhook>;
export const UpdateWebhook = Obj(
  {
    url: Type.Optional(WebhookUrl),
    events: Type.Optional(WebhookEvents),
    description: Type.Optional(Text({ maxLength: 200 })),
    enabled: Type.Optional(Type.Boolean()),
  },
  { minProperties: 1 },
);
export type UpdateWebhook = Static<typeof UpdateWebhook>;
export const WebhookAttempt = Obj({
  at: Timestamp,
  /** the receiver's HTTP status; null when no answer came (refused, reset, timed out) */
  status: Nullable(Type.Integer()),
  error: Nullable(Type.String()),
  durationMs: Type.Integer(),
});
export const WebhookDelivery = Obj({
  id: WebhookDeliveryId,
  webhookId: WebhookId,
  eventId: WebhookEventId,
  eventType: Type.String(),
  licenseId: Nullable(Type.String()),
  /** pending: to be sent (again) at nextAttemptAt; delivered: a 2xx came back; failed: a day of retries did not */
  state: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
  attempts: Type.Integer(),
  nextAttemptAt: Nullable(Timestamp),
  createdAt: Timestamp,
  deliveredAt: Nullable(Timestamp),
  lastAttempts: Type.Array(WebhookAttempt),
});
export type WebhookDelivery = Static<typeof WebhookDelivery>;

// ---------------------------------------------------------------------------
// client API
const clientMeta = {
  hostname: Type.Optional(IdentityText(255)),
  user: Type.Optional(IdentityText(255)),
  appVersion: Type.Optional(IdentityText(64)),
  /** the X display or terminal session (FlexNet's DISPLAY) */
  display: Type.Optional(IdentityText(255)),
  /** the value of the `key` sharing attribute: any string the application chooses (a project, a session) */
  shareKey: Type.Optional(IdentityText(255)),
  /** the operating system's boot id (Linux /proc/sys/kernel/random/boot_id) */
  bootId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' })),
  /** the client believes it runs in a virtual machine */
  vm: Type.Optional(Type.Boolean()),
  /** the client believes it runs in a container */
  container: Type.Optional(Type.Boolean()),
};
/**
 * A checkout that may wait: refused for want of a seat, it joins the pool's first-come-first-served queue and
 * keeps its place while it asks again within `pollWithinSeconds` (in the refusal's `queue`), for at most
 * `timeoutSeconds` from its first ask.
 */
export const WaitRequest = Obj({ timeoutSeconds: Type.Integer({ minimum: 1, maximum: 86_400 }) });
/**
 * The client's half of a session-key exchange (RFC 7748 X25519, issue #17): its ephemeral public key, 32 bytes in
 * base64url. The signed answer carries the server's half; both derive the use's session key (`SESSION_KDF`), and
 * the answers on the use afterwards are signed with HMAC-SHA256 under it (RFC 9421, `Accept-Signature`).
 */
export const SessionOffer = Obj({ x25519: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }) });
export type SessionOffer = Static<typeof SessionOffer>;
export const CheckoutRequest = Obj({
  fingerprint: Fingerprint,
  instanceId: InstanceIdSchema,
  ...clientMeta,
  session: Type.Optional(SessionOffer),
  /** the pools the use needs: `base` (the license's seats, the default) and feature names; granted all or nothing */
  features: Type.Optional(PoolNames),
  wait: Type.Optional(WaitRequest),
});
export type CheckoutRequest = Static<typeof CheckoutRequest>;
export const OfflineCheckoutRequest = Obj({
  fingerprint: Fingerprint,
  instanceId: InstanceIdSchema,
  durationSeconds: Seconds({ minimum: 60 }),
  ...clientMeta,
  session: Type.Optional(SessionOffer),
  features: Type.Optional(PoolNames),
});
export type OfflineCheckoutRequest = Static<typeof OfflineCheckoutRequest>;
export const InstanceRequest = Obj({ instanceId: InstanceIdSchema });
/**
 * A heartbeat. `renewToken`: answer with a new lease token (a client that asked for RFC 9421 answers gets one only
 * when it asks; floatd's SDK asks when its token has less than a third of the lease TTL left). `session`: a new
 * session-key exchange (the client lost its key): the answer is then Ed25519-signed and carries the server's half.
 */
export const HeartbeatRequest = Obj({
  instanceId: InstanceIdSchema,
  renewToken: Type.Optional(Type.Boolean()),
  session: Type.Optional(SessionOffer),
});
export type HeartbeatRequest = Static<typeof HeartbeatRequest>;
/** A held use changes the features it needs (the base pool stays as it is): added ones all or nothing. */
export const FeaturesRequest = Obj({ instanceId: InstanceIdSchema, features: PoolNames });
export type FeaturesRequest = Static<typeof FeaturesRequest>;
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
  counting: CountingView,
  sharing: SharingRule,
  leaseTtlSeconds: Nullable(Type.Integer()),
  heartbeatIntervalSeconds: Type.Integer(),
  maxOfflineSeconds: Type.Integer(),
  features: Type.Array(FeaturePool),
  /** checkouts waiting in the license's queues now (holders may be asked to give their seat back) */
  waiting: Type.Integer(),
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
  shareGroup: Type.String({ description: 'The share group whose uses this seat holds (see the license sharing rule)' }),
  overdraft: Type.Boolean({ description: 'The seat was granted beyond the count (overdraft)' }),
  features: Type.Array(Type.String(), { description: 'The pools granted to this use: `base` and feature names' }),
});
export type ClientLease = Static<typeof ClientLease>;

/** The server's half of a session-key exchange (in an Ed25519-signed answer). */
export const SessionAnswer = Obj({ x25519: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }) });
const grantFields = {
  lease: ClientLease,
  token: Type.String({ description: 'Lease token: EdDSA JWT, verify with /.well-known/jwks.json' }),
  heartbeatIntervalSeconds: Type.Integer(),
  serverTime: Timestamp,
  license: LicenseSummary,
  session: Type.Optional(SessionAnswer),
};
export const Grant = Obj(grantFields);
export type Grant = Static<typeof Grant>;
/**
 * A heartbeat's answer: a grant whose `token` is left out when the client asked for RFC 9421 answers and did not
 * ask for a new token (`renewToken`): the renewal (`lease.expiresAt`, `serverTime`) is then believed on the
 * answer's signature (HMAC-SHA256 with the session key), and the client keeps its token.
 */
export const Renewal = Obj({ ...grantFields, token: Type.Optional(grantFields.token) });
export type Renewal = Static<typeof Renewal>;

export const CheckinResult = Obj({
  released: Type.Boolean({ description: 'true when the seat went back to the pool' }),
  instances: Type.Integer(),
  lingerUntil: Type.Optional(Timestamp),
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
