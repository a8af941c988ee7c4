/** Domain values → wire shapes (ISO times, no internal fields). */
import type * as W from '@floatd/protocol';
import { licenseEndsAt } from '../domain/policy.js';
import type { AdminToken, Lease, License, Product } from '../domain/types.js';
import type { DeviceView, LeaseView, StoredAudit, UsageRow } from '../store/port.js';
import type { SignedGrant } from '../service/licensing.js';

export const iso = (ms: number): string => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

export function productView(p: Product): W.Product {
  return { id: p.id, name: p.name, metadata: p.metadata, createdAt: iso(p.createdAt), updatedAt: iso(p.updatedAt) };
}

export function licenseView(l: License): W.License {
  return {
    id: l.id,
    productId: l.productId,
    key: l.key,
    seats: l.seats,
    model: l.model,
    expiresAt: isoOrNull(l.expiresAt),
    trialDays: l.trialDays,
    leaseTtlSeconds: l.leaseTtlSeconds,
    heartbeatIntervalSeconds: l.heartbeatIntervalSeconds,
    maxOfflineSeconds: l.maxOfflineSeconds,
    maxOfflineSeats: l.maxOfflineSeats,
    maxInstancesPerDevice: l.maxInstancesPerDevice,
    counting: l.counting,
    suspended: l.suspended,
    metadata: l.metadata,
    trialStartedAt: isoOrNull(l.trialStartedAt),
    seatsUsed: l.seatsUsed,
    seatsOffline: l.seatsOffline,
    createdAt: iso(l.createdAt),
    updatedAt: iso(l.updatedAt),
  };
}

export function summaryView(l: License, now: number): W.LicenseSummary {
  return {
    id: l.id,
    productId: l.productId,
    model: l.model,
    // the license's end as the gate sees it: a trial's end, and never past an on-premise license file's end
    expiresAt: isoOrNull(licenseEndsAt(l, now)),
    seatsTotal: l.seats,
    seatsUsed: l.seatsUsed,
    seatsOffline: l.seatsOffline,
    counting: l.counting,
    leaseTtlSeconds: l.leaseTtlSeconds,
    heartbeatIntervalSeconds: l.heartbeatIntervalSeconds,
    maxOfflineSeconds: l.maxOfflineSeconds,
    suspended: l.suspended,
  };
}

export function clientLeaseView(lease: Lease, instanceId: string): W.ClientLease {
  return {
    id: lease.id,
    deviceId: lease.deviceId,
    instanceId,
    offline: lease.offline,
    grantedAt: iso(lease.grantedAt),
    expiresAt: isoOrNull(lease.expiresAt),
    offlineExpiresAt: isoOrNull(lease.offlineExpiresAt),
    instances: lease.instances.length,
  };
}

export function grantView(g: SignedGrant): W.Grant {
  return {
    lease: clientLeaseView(g.granted.lease, g.granted.instanceId),
    token: g.token,
    heartbeatIntervalSeconds: g.granted.license.heartbeatIntervalSeconds,
    serverTime: iso(g.serverTime),
    license: summaryView(g.granted.license, g.serverTime),
  };
}

export function leaseView(l: LeaseView): W.Lease {
  return {
    id: l.id,
    licenseId: l.licenseId,
    deviceId: l.deviceId,
    fingerprint: l.device.fingerprint,
    hostname: l.device.hostname,
    user: l.device.user,
    appVersion: l.device.appVersion,
    offline: l.offline,
    grantedAt: iso(l.grantedAt),
    lastAccessedAt: iso(l.device.lastAccessedAt),
    expiresAt: isoOrNull(l.expiresAt),
    offlineExpiresAt: isoOrNull(l.offlineExpiresAt),
    instanceCount: l.instances.length,
    instances: l.instances.map((i) => ({
      instanceId: i.instanceId,
      startedAt: iso(i.startedAt),
      lastHeartbeatAt: iso(i.lastHeartbeatAt),
      expiresAt: isoOrNull(i.expiresAt),
    })),
  };
}

export function deviceView(d: DeviceView): W.Device {
  return {
    id: d.id,
    licenseId: d.licenseId,
    fingerprint: d.fingerprint,
    hostname: d.hostname,
    user: d.user,
    appVersion: d.appVersion,
    firstSeenAt: iso(d.firstSeenAt),
    lastAccessedAt: iso(d.lastAccessedAt),
    seatsHeld: d.seatsHeld,
    instanceCount: d.instanceCount,
    offlineExpiresAt: isoOrNull(d.offlineExpiresAt),
  };
}

export function auditView(a: StoredAudit): W.AuditEvent {
  return { id: a.id, at: iso(a.at), type: a.type, actor: a.actor, licenseId: a.licenseId, deviceId: a.deviceId, leaseId: a.leaseId, reason: a.reason, data: a.data };
}

export function usageView(u: UsageRow): W.UsageHour {
  return { hour: iso(u.hour), peakSeats: u.peakSeats, seatsAtEnd: u.seatsAtEnd, checkouts: u.checkouts, denials: u.denials };
}

export function tokenView(t: AdminToken): W.AdminTokenInfo {
  return { id: t.id, name: t.name, role: t.role, createdAt: iso(t.createdAt), lastUsedAt: isoOrNull(t.lastUsedAt), revokedAt: isoOrNull(t.revokedAt) };
}
