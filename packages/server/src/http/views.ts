/** Domain values → wire shapes (ISO times, no internal fields). */
import type * as wire from '@floatd/protocol';
import { licenseEndsAt } from '../domain/policy.js';
import { countingOf } from '../domain/sharing.js';
import { poolsOf } from '../domain/features.js';
import type { AdminToken, Customer, Lease, License, Product } from '../domain/types.js';
import type { DeviceView, LeaseView, StoredAudit, UsageRow } from '../store/port.js';
import type { SignedGrant } from '../service/licensing.js';
import type { CustomerDetail } from '../service/customers.js';
import type { DeliveryView, WebhookEndpoint } from '../domain/webhooks.js';

/** Date and minute (`YYYY-MM-DDTHH:MM:`) of the minutes formatted lately, by minute since the epoch. */
const minutePrefixes = new Map<number, string>();

/**
 * A time in ms as `Date#toISOString` writes it (`2026-12-06T05:31:07.042Z`), the same string for every value. That
 * method costs about a microsecond a call on Node 20 (4.6% of a heartbeat's server time in a profile, issue #17), and
 * an answer formats a few times of a few minutes: the date and minute part is kept per minute (at most 256 of them),
 * and only the seconds are written. A value that is not a whole number of ms goes to `toISOString` (which also
 * throws the same `RangeError` for a value out of its range).
 */
export const iso = (ms: number): string => {
  if (!Number.isSafeInteger(ms)) return new Date(ms).toISOString();
  const minute = Math.floor(ms / 60_000);
  const prefix = minutePrefixes.get(minute);
  if (prefix === undefined) {
    const full = new Date(ms).toISOString();
    if (minutePrefixes.size >= 256) minutePrefixes.clear();
    minutePrefixes.set(minute, full.slice(0, -7)); // `ss.mmmZ` is the last 7 characters, whatever the year's width
    return full;
  }
  const inMinute = ms - minute * 60_000;
  const s = Math.floor(inMinute / 1000);
  const m = inMinute - s * 1000;
  return `${prefix}${s < 10 ? '0' : ''}${s}.${m < 10 ? '00' : m < 100 ? '0' : ''}${m}Z`;
};
export const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

export function webhookView(w: WebhookEndpoint): wire.Webhook {
  return {
    id: w.id,
    url: w.url,
    events: w.events,
    description: w.description,
    enabled: w.enabled,
    createdAt: iso(w.createdAt),
    updatedAt: iso(w.updatedAt),
  };
}

export function deliveryView(d: DeliveryView): wire.WebhookDelivery {
  return {
    id: d.id,
    webhookId: d.webhookId,
    eventId: d.eventId,
    eventType: d.eventType,
    licenseId: d.licenseId,
    state: d.state,
    attempts: d.attempts,
    nextAttemptAt: d.state === 'pending' ? isoOrNull(d.nextAttemptAt) : null,
    createdAt: iso(d.createdAt),
    deliveredAt: isoOrNull(d.deliveredAt),
    lastAttempts: d.lastAttempts.map((a) => ({ ...a, at: iso(a.at) })),
  };
}

export function customerView(customer: Customer): wire.Customer {
  return {
    id: customer.id,
    name: customer.name,
    contact: customer.contact,
    metadata: customer.metadata,
    createdAt: iso(customer.createdAt),
    updatedAt: iso(customer.updatedAt),
  };
}

export function customerDetailView(d: CustomerDetail): wire.CustomerDetail {
  return {
    customer: customerView(d.customer),
    licenses: d.licenses.map(({ license: l, productName }) => ({
      id: l.id,
      key: l.key,
      productId: l.productId,
      productName,
      model: l.model,
      seats: l.seats,
      seatsUsed: l.seatsUsed,
      seatsOffline: l.seatsOffline,
      expiresAt: isoOrNull(l.expiresAt),
      suspended: l.suspended,
    })),
    seats: d.seats,
    seatsUsed: d.seatsUsed,
    nextExpiry: d.nextExpiry && { licenseId: d.nextExpiry.licenseId, at: iso(d.nextExpiry.at) },
    usage: { ...d.usage, from: iso(d.usage.from), to: iso(d.usage.to) },
  };
}

export function productView(product: Product): wire.Product {
  return {
    id: product.id,
    name: product.name,
    metadata: product.metadata,
    createdAt: iso(product.createdAt),
    updatedAt: iso(product.updatedAt),
  };
}

/** `featureSeatsUsed`: seats held per feature pool now (`Store.featureSeats`); none counted: every pool at 0. */
export function licenseView(license: License, featureSeatsUsed: Record<string, number> = {}, waiting = 0): wire.License {
  return {
    id: license.id,
    productId: license.productId,
    customerId: license.customerId,
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
    features: license.features,
    suspended: license.suspended,
    metadata: license.metadata,
    trialStartedAt: isoOrNull(license.trialStartedAt),
    seatsUsed: license.seatsUsed,
    seatsOffline: license.seatsOffline,
    featureSeatsUsed: Object.fromEntries(license.features.map((f) => [f.name, featureSeatsUsed[f.name] ?? 0])),
    waiting,
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
    features: license.features,
    waiting: license.waiting ?? 0,
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
    features: poolsOf(lease.base, lease.instances.find((i) => i.instanceId === instanceId)?.features ?? lease.features),
  };
}

export function grantView(grant: SignedGrant): wire.Grant {
  return {
    lease: clientLeaseView(grant.granted.lease, grant.granted.instanceId),
    // (a checkout's answer always has one; only a renewal may go without: its route's answer is a `Renewal`)
    token: grant.token as string,
    heartbeatIntervalSeconds: grant.granted.license.heartbeatIntervalSeconds,
    serverTime: iso(grant.serverTime),
    license: summaryView(grant.granted.license, grant.serverTime),
    ...(grant.session ? { session: grant.session } : {}),
  };
}

/** A heartbeat's answer: a grant, without a token when none was asked for. */
export function renewalView(grant: SignedGrant): wire.Renewal {
  const { token, ...rest } = grantView(grant);
  return token === undefined ? rest : { token, ...rest };
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
    features: poolsOf(lease.base, lease.features),
    instanceCount: lease.instances.length,
    instances: lease.instances.map((instance) => ({
      instanceId: instance.instanceId,
      deviceId: instance.deviceId,
      startedAt: iso(instance.startedAt),
      lastHeartbeatAt: iso(instance.lastHeartbeatAt),
      expiresAt: isoOrNull(instance.expiresAt),
      meta: instance.meta,
      features: poolsOf(lease.base, instance.features),
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
    features: row.features ?? {},
    queued: row.queued,
    queueGrants: row.queueGrants,
    queueWaitSeconds: row.queueWaitMs / 1000,
  };
}

export function tokenView(token: AdminToken): wire.AdminTokenInfo {
  return {
    id: token.id,
    name: token.name,
    role: token.role,
    customerId: token.customerId,
    createdAt: iso(token.createdAt),
    lastUsedAt: isoOrNull(token.lastUsedAt),
    revokedAt: isoOrNull(token.revokedAt),
  };
}
