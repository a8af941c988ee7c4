/**
 * Domain entities. Times are milliseconds since the epoch (UTC); `null` means "never".
 * The store maps rows to these; the HTTP layer maps these to the wire schemas.
 */
import type { CountingMode, LicenseModel, ReleaseReason, AuditType } from '@floatd/protocol';

export type { CountingMode, LicenseModel, ReleaseReason, AuditType };

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
  counting: CountingMode;
  suspended: boolean;
  metadata: Record<string, unknown>;
}

export interface License extends LicensePolicy {
  id: string;
  productId: string;
  key: string;
  trialStartedAt: number | null;
  /** seats held right now (online + offline); maintained by the store inside the seat transaction */
  seatsUsed: number;
  seatsOffline: number;
  createdAt: number;
  updatedAt: number;
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
}

export interface Instance {
  instanceId: string;
  startedAt: number;
  lastHeartbeatAt: number;
  /** null when the license has no TTL */
  expiresAt: number | null;
}

/** A device's hold on one seat (per-instance counting: one instance's hold). */
export interface Lease {
  id: string;
  licenseId: string;
  deviceId: string;
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
  tokenHash: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}
