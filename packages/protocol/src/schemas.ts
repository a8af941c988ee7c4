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
  suspended: Type.Boolean(),
  metadata: Metadata,
};

export const License = Obj({
  id: LicenseId,
  productId: ProductId,
  key: Type.String(),
  ...policyFields,
  counting: CountingView,
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
  sharing: Type.Optional(policyFields.sharing),
  clonePolicy: Type.Optional(policyFields.clonePolicy),
  vmPolicy: Type.Optional(policyFields.vmPolicy),
  lingerSeconds: Type.Optional(policyFields.lingerSeconds),
  overdraftSeats: Type.Optional(policyFields.overdraftSeats),
  access: Type.Optional(policyFields.access),
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
    sharing: Type.Optional(policyFields.sharing),
    clonePolicy: Type.Optional(policyFields.clonePolicy),
    vmPolicy: Type.Optional(policyFields.vmPolicy),
    lingerSeconds: Type.Optional(policyFields.lingerSeconds),
    overdraftSeats: Type.Optional(policyFields.overdraftSeats),
    access: Type.Optional(policyFields.access),
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
  Type.Literal('clone-detected'),
  Type.Literal('vm-refused'),
  Type.Literal('linger'),
  Type.Literal('group.updated'),
  Type.Literal('group.deleted'),
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
  /** the most seats held beyond the count at once in the hour (overdraft in use: the true-up figure) */
  peakOverdraft: Type.Integer(),
  /** seats granted beyond the count in the hour */
  overdraftCheckouts: Type.Integer(),
});
export type UsageHour = Static<typeof UsageHour>;

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
  counting: CountingView,
  sharing: SharingRule,
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
  shareGroup: Type.String({ description: 'The share group whose uses this seat holds (see the license sharing rule)' }),
  overdraft: Type.Boolean({ description: 'The seat was granted beyond the count (overdraft)' }),
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
