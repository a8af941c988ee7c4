/**
 * Domain entities. Times are milliseconds since the epoch (UTC); `null` means "never".
 * The store maps rows to these; the HTTP layer maps these to the wire schemas.
 */
import type {
  AccessPolicy,
  ClonePolicy,
  CountingMode,
  LicenseModel,
  ReleaseReason,
  AuditType,
  FeaturePool,
  SharingRule,
  UseMeta,
  VmPolicy,
} from '@floatd/protocol';

export type {
  AccessPolicy,
  ClonePolicy,
  CountingMode,
  FeaturePool,
  LicenseModel,
  ReleaseReason,
  AuditType,
  SharingRule,
  UseMeta,
  VmPolicy,
};

/** An organisation licenses belong to (every license belongs to one: `DEFAULT_CUSTOMER_ID` when none was named). */
export interface Customer {
  id: string;
  name: string;
  contact: { name?: string; email?: string; phone?: string };
  metadata: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
}

export interface Product {
  id: string;
  name: string;
  metadata: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
}

export interface LicensePolicy {
  seats: number;
  model: LicenseModel;
  /** subscription end; null for permanent and trial */
  expiresAt: number | null;
  /** trial length, counted from the first checkout */
  trialDays: number | null;
  /** lease lifetime without a heartbeat; null = held until check-in or release */
  leaseTtlSeconds: number | null;
  heartbeatIntervalSeconds: number;
  /** 0 = offline checkout forbidden */
  maxOfflineSeconds: number;
  /** null = no cap below the seat count */
  maxOfflineSeats: number | null;
  maxInstancesPerDevice: number;
  /** which uses share one seat (`domain/sharing.ts`); the classic counting modes are two of its values */
  sharing: SharingRule;
  clonePolicy: ClonePolicy;
  vmPolicy: VmPolicy;
  /** after the last use checks in, the seat stays held this long for its share group; 0 = none */
  lingerSeconds: number;
  /** seats granted beyond `seats` when the pool is full (marked, counted apart); 0 = none */
  overdraftSeats: number;
  /** who may take seats, and how many (`domain/access.ts`) */
  access: AccessPolicy;
  /** feature pools beside the base pool, each with its own seat count (`domain/features.ts`) */
  features: FeaturePool[];
  suspended: boolean;
  metadata: Record<string, unknown>;
}

export interface License extends LicensePolicy {
  id: string;
  productId: string;
  customerId: string;
  key: string;
  trialStartedAt: number | null;
  /** seats held right now (online + offline); maintained by the store inside the seat transaction */
  seatsUsed: number;
  seatsOffline: number;
  createdAt: number;
  updatedAt: number;
  /** checkouts waiting in the license's queues when it was read (`domain/queue.ts`); not stored, absent when not counted */
  waiting?: number | undefined;
  /** on-premise: the end of the vendor-signed license file this license comes from (nothing is granted after it) */
  entitlementEndsAt?: number | null;
}

export interface Device {
  id: string;
  licenseId: string;
  fingerprint: string;
  hostname: string | null;
  user: string | null;
  appVersion: string | null;
  firstSeenAt: number;
  /** QLM's Last Accessed Date: any checkout, heartbeat, check-in or sync from the device */
  lastAccessedAt: number;
  /** machines (see `machineOf`) its uses came from at once, newest last, at most `MACHINES_SEEN_MAX` */
  machinesSeen: string[];
  /** when its uses first came from different machines at once; null: never */
  cloneSuspectedAt: number | null;
}

export interface Instance {
  instanceId: string;
  /** the device whose use this is (under a rule that shares across devices, not always the lease's) */
  deviceId: string;
  /** what the client said about this use at checkout */
  meta: UseMeta;
  /** the feature pools this use asked for, beside its seat's base pool (names, sorted) */
  features: string[];
  startedAt: number;
  lastHeartbeatAt: number;
  /** null when the license has no TTL */
  expiresAt: number | null;
  /**
   * The use's session key at rest (service/sessions.ts), as the store read it; no decision reads or writes it. A
   * checkout's new key is put on the effect that writes the use's row (`withSessionKey`, service/licensing.ts); a write
   * of the row without one leaves the stored key as it is.
   */
  sessionKey?: string;
}

/** One seat, held by the uses (instances) of one share group. */
export interface Lease {
  id: string;
  licenseId: string;
  /** the device that took the seat */
  deviceId: string;
  /** the share group whose uses hold the seat (`domain/sharing.ts`) */
  shareGroup: string;
  /** granted beyond the seat count */
  overdraft: boolean;
  /** whether the seat holds one of the license's base seats (fixed for its life; false: features only) */
  base: boolean;
  /** the feature pools the seat holds (one seat of each): its uses' features together (sorted) */
  features: string[];
  /** held for its share group after its last use checked in, until then (its expiry); null when not lingering */
  lingerUntil: number | null;
  offline: boolean;
  grantedAt: number;
  lastHeartbeatAt: number;
  /** when the seat becomes reclaimable; null = never (no TTL, online) */
  expiresAt: number | null;
  /** the Offline Expiry Date of an offline lease */
  offlineExpiresAt: number | null;
  instances: Instance[];
}

export interface AuditEntry {
  at: number;
  type: AuditType;
  actor: string;
  licenseId: string | null;
  deviceId: string | null;
  leaseId: string | null;
  reason: string | null;
  data: Record<string, unknown>;
}

export type Role = 'admin' | 'operator' | 'viewer';

export interface AdminToken {
  id: string;
  name: string;
  role: Role;
  /** a customer's own administrator's token: it reaches only that customer's licenses; null: the vendor's */
  customerId: string | null;
  tokenHash: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}
