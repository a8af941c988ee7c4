/** Domain values → wire shapes (ISO times, no internal fields). */
import type * as wire from '@floatd/protocol';
import { licenseEndsAt } from '../domain/policy.js';
import { countingOf } from '../domain/sharing.js';
import type { AdminToken, Lease, License, Product } from '../domain/types.js';
import type { DeviceView, LeaseView, StoredAudit, UsageRow } from '../store/port.js';
import type { SignedGrant } from '../service/licensing.js';

export const iso = (ms: number): string => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

export function productView(product: Product): wire.Product {
  return {
    id: product.id,
    name: product.name,
    metadata: product.metadata,
    createdAt: iso(product.createdAt),
    updatedAt: iso(product.updatedAt),
  };
}

export function licenseView(license: License): wire.License {
  return {
    id: license.id,
    productId: license.productId,
    key: license.key,
    seats: license.seats,
    model: license.model,
    expiresAt: isoOrNull(license.expiresAt),
    trialDays: license.trialDays,
    leaseTtlSeconds: license.leaseTtlSeconds,
    heartbeatIntervalSeconds: license.heartbeatIntervalSeconds,
    maxOfflineSeconds: license.maxOfflineSeconds,
    maxOfflineSeats: license.maxOfflineSeats,
    maxInstancesPerDevice: license.maxInstancesPerDevice,
    counting: countingOf(license.sharing),
    sharing: license.sharing,
    clonePolicy: license.clonePolicy,
    vmPolicy: license.vmPolicy,
    lingerSeconds: license.lingerSeconds,
    overdraftSeats: license.overdraftSeats,
    access: license.access,
    suspended: license.suspended,
    metadata: license.metadata,
    trialStartedAt: isoOrNull(license.trialStartedAt),
    seatsUsed: license.seatsUsed,
    seatsOffline: license.seatsOffline,
    createdAt: iso(license.createdAt),
    updatedAt: iso(license.updatedAt),
  };
}

export function summaryView(license: License, now: number): wire.LicenseSummary {
  return {
    id: license.id,
    productId: license.productId,
    model: license.model,
    // the license's end as the gate sees it: a trial's end, and never past an on-premise license file's end
    expiresAt: isoOrNull(licenseEndsAt(license, now)),
    seatsTotal: license.seats,
    seatsUsed: license.seatsUsed,
    seatsOffline: license.seatsOffline,
    counting: countingOf(license.sharing),
    sharing: license.sharing,
    leaseTtlSeconds: license.leaseTtlSeconds,
    heartbeatIntervalSeconds: license.heartbeatIntervalSeconds,
    maxOfflineSeconds: license.maxOfflineSeconds,
    suspended: license.suspended,
  };
}

export function clientLeaseView(lease: Lease, instanceId: string): wire.ClientLease {
  return {
    id: lease.id,
    // the asking use's device (on a shared seat, not always the one that took it)
    deviceId: lease.instances.find((i) => i.instanceId === instanceId)?.deviceId ?? lease.deviceId,
    instanceId,
    offline: lease.offline,
    grantedAt: iso(lease.grantedAt),
    expiresAt: isoOrNull(lease.expiresAt),
    offlineExpiresAt: isoOrNull(lease.offlineExpiresAt),
    instances: lease.instances.length,
    shareGroup: lease.shareGroup,
    overdraft: lease.overdraft,
  };
}

export function grantView(grant: SignedGrant): wire.Grant {
  return {
    lease: clientLeaseView(grant.granted.lease, grant.granted.instanceId),
    token: grant.token,
    heartbeatIntervalSeconds: grant.granted.license.heartbeatIntervalSeconds,
    serverTime: iso(grant.serverTime),
    license: summaryView(grant.granted.license, grant.serverTime),
  };
}

export function leaseView(lease: LeaseView): wire.Lease {
  return {
    id: lease.id,
    licenseId: lease.licenseId,
    deviceId: lease.deviceId,
    fingerprint: lease.device.fingerprint,
    hostname: lease.device.hostname,
    user: lease.device.user,
    appVersion: lease.device.appVersion,
    offline: lease.offline,
    grantedAt: iso(lease.grantedAt),
    lastAccessedAt: iso(lease.device.lastAccessedAt),
    expiresAt: isoOrNull(lease.expiresAt),
    offlineExpiresAt: isoOrNull(lease.offlineExpiresAt),
    shareGroup: lease.shareGroup,
    overdraft: lease.overdraft,
    lingerUntil: isoOrNull(lease.lingerUntil),
    instanceCount: lease.instances.length,
    instances: lease.instances.map((instance) => ({
      instanceId: instance.instanceId,
      deviceId: instance.deviceId,
      startedAt: iso(instance.startedAt),
      lastHeartbeatAt: iso(instance.lastHeartbeatAt),
      expiresAt: isoOrNull(instance.expiresAt),
      meta: instance.meta,
    })),
  };
}

export function deviceView(device: DeviceView): wire.Device {
  return {
    id: device.id,
    licenseId: device.licenseId,
    fingerprint: device.fingerprint,
    hostname: device.hostname,
    user: device.user,
    appVersion: device.appVersion,
    firstSeenAt: iso(device.firstSeenAt),
    lastAccessedAt: iso(device.lastAccessedAt),
    seatsHeld: device.seatsHeld,
    instanceCount: device.instanceCount,
    offlineExpiresAt: isoOrNull(device.offlineExpiresAt),
    machinesSeen: device.machinesSeen,
    cloneSuspectedAt: isoOrNull(device.cloneSuspectedAt),
  };
}

export function auditView(event: StoredAudit): wire.AuditEvent {
  return {
    id: event.id,
    at: iso(event.at),
    type: event.type,
    actor: event.actor,
    licenseId: event.licenseId,
    deviceId: event.deviceId,
    leaseId: event.leaseId,
    reason: event.reason,
    data: event.data,
  };
}

export function usageView(row: UsageRow): wire.UsageHour {
  return {
    hour: iso(row.hour),
    peakSeats: row.peakSeats,
    seatsAtEnd: row.seatsAtEnd,
    checkouts: row.checkouts,
    denials: row.denials,
    peakOverdraft: row.peakOverdraft,
    overdraftCheckouts: row.overdraftCheckouts,
  };
}

export function tokenView(token: AdminToken): wire.AdminTokenInfo {
  return {
    id: token.id,
    name: token.name,
    role: token.role,
    createdAt: iso(token.createdAt),
    lastUsedAt: isoOrNull(token.lastUsedAt),
    revokedAt: isoOrNull(token.revokedAt),
  };
}
