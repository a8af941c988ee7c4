/** Row → domain mapping shared by the adapters (same column names in SQLite and PostgreSQL). */
import { DEFAULT_CUSTOMER_ID, OPEN_ACCESS, SHARING_OF_COUNTING, type CountingMode } from '@floatd/protocol';
import { EMPTY_META } from '../domain/sharing.js';
import type { AdminToken, Customer, Device, Instance, Lease, License, Product, Role, SharingRule, UseMeta } from '../domain/types.js';
import type { StoredAudit, UsageRow } from './port.js';
import type { Waiter } from '../domain/queue.js';
import type { ClaimedDelivery, DeliveryState, DeliveryView, WebhookEndpoint } from '../domain/webhooks.js';
import type { WebhookEventType } from '@floatd/protocol';

export type Row = Record<string, unknown>;

export const num = (v: unknown): number => Number(v);
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
export const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export function toProduct(r: Row): Product {
  return {
    id: String(r.id),
    name: String(r.name),
    metadata: json(r.metadata),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export function toWebhook(r: Row): WebhookEndpoint {
  return {
    id: String(r.id),
    url: String(r.url),
    events: jsonOf(r.events) as string[],
    description: String(r.description),
    enabled: bool(r.enabled),
    secret: String(r.secret),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

/** A delivery row joined with its event's type and license (`event_type`, `license_id`), and its newest attempts. */
export function toDelivery(r: Row, attempts: readonly Row[]): DeliveryView {
  return {
    id: String(r.id),
    webhookId: String(r.webhook_id),
    eventId: String(r.event_id),
    eventType: String(r.event_type),
    licenseId: strOrNull(r.license_id),
    state: r.state as DeliveryState,
    attempts: num(r.attempts),
    nextAttemptAt: numOrNull(r.next_attempt_at),
    createdAt: num(r.created_at),
    deliveredAt: numOrNull(r.delivered_at),
    lastAttempts: attempts.map((a) => ({
      at: num(a.at),
      status: numOrNull(a.status),
      error: strOrNull(a.error),
      durationMs: num(a.duration_ms),
    })),
  };
}

/** A claimed delivery row joined with its event (`type`, `license_id`, `event_at`, `data`) and endpoint (`url`, `secret`). */
export function toClaimed(r: Row): ClaimedDelivery {
  return {
    id: String(r.id),
    attempts: num(r.attempts),
    event: {
      id: String(r.event_id),
      type: r.type as WebhookEventType,
      licenseId: strOrNull(r.license_id),
      at: num(r.event_at),
      data: jsonOf(r.data) as Record<string, unknown>,
    },
    endpoint: { id: String(r.webhook_id), url: String(r.url), secret: String(r.secret) },
  };
}

export function toCustomer(r: Row): Customer {
  return {
    id: String(r.id),
    name: String(r.name),
    contact: json(r.contact) as Customer['contact'],
    metadata: json(r.metadata),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export function toLicense(r: Row): License {
  return {
    id: String(r.id),
    productId: String(r.product_id),
    customerId: String(r.customer_id ?? DEFAULT_CUSTOMER_ID),
    key: String(r.key),
    seats: num(r.seats),
    model: r.model as License['model'],
    expiresAt: numOrNull(r.expires_at),
    trialDays: numOrNull(r.trial_days),
    trialStartedAt: numOrNull(r.trial_started_at),
    leaseTtlSeconds: numOrNull(r.lease_ttl_seconds),
    heartbeatIntervalSeconds: num(r.heartbeat_interval_seconds),
    maxOfflineSeconds: num(r.max_offline_seconds),
    maxOfflineSeats: numOrNull(r.max_offline_seats),
    maxInstancesPerDevice: num(r.max_instances_per_device),
    sharing:
      r.sharing === null || r.sharing === undefined ? SHARING_OF_COUNTING[r.counting as CountingMode] : (jsonOf(r.sharing) as SharingRule),
    clonePolicy: (r.clone_policy ?? 'separate') as License['clonePolicy'],
    vmPolicy: (r.vm_policy ?? 'allow') as License['vmPolicy'],
    lingerSeconds: num(r.linger_seconds ?? 0),
    overdraftSeats: num(r.overdraft_seats ?? 0),
    access: r.access === null || r.access === undefined ? OPEN_ACCESS : (jsonOf(r.access) as License['access']),
    features: r.features === null || r.features === undefined ? [] : (jsonOf(r.features) as License['features']),
    suspended: bool(r.suspended),
    metadata: json(r.metadata),
    seatsUsed: num(r.seats_used),
    seatsOffline: num(r.seats_offline),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export function toDevice(r: Row): Device {
  return {
    id: String(r.id),
    licenseId: String(r.license_id),
    fingerprint: String(r.fingerprint),
    hostname: strOrNull(r.hostname),
    user: strOrNull(r.user_name),
    appVersion: strOrNull(r.app_version),
    firstSeenAt: num(r.first_seen_at),
    lastAccessedAt: num(r.last_accessed_at),
    machinesSeen: r.machines_seen === null || r.machines_seen === undefined ? [] : (jsonOf(r.machines_seen) as string[]),
    cloneSuspectedAt: numOrNull(r.clone_suspected_at),
  };
}

export function toInstance(r: Row): Instance {
  return {
    instanceId: String(r.instance_id),
    deviceId: String(r.device_id),
    meta: r.meta === null || r.meta === undefined ? EMPTY_META : (jsonOf(r.meta) as UseMeta),
    features: namesOf(r.features),
    startedAt: num(r.started_at),
    lastHeartbeatAt: num(r.last_heartbeat_at),
    expiresAt: numOrNull(r.expires_at),
    ...(typeof r.session_key === 'string' ? { sessionKey: r.session_key } : {}),
  };
}

export function toLease(r: Row, instances: Instance[]): Lease {
  return {
    id: String(r.id),
    licenseId: String(r.license_id),
    deviceId: String(r.device_id),
    shareGroup: r.share_group === null || r.share_group === undefined ? `device=${r.device_id}` : String(r.share_group),
    overdraft: bool(r.overdraft),
    // Rows from before feature pools hold a base seat and no feature.
    base: r.base === null || r.base === undefined ? true : bool(r.base),
    features: namesOf(r.features),
    lingerUntil: numOrNull(r.linger_until),
    offline: bool(r.offline),
    grantedAt: num(r.granted_at),
    lastHeartbeatAt: num(r.last_heartbeat_at),
    expiresAt: numOrNull(r.expires_at),
    offlineExpiresAt: numOrNull(r.offline_expires_at),
    instances,
  };
}

export function toAdminToken(r: Row): AdminToken {
  return {
    id: String(r.id),
    name: String(r.name),
    role: r.role as Role,
    customerId: strOrNull(r.customer_id),
    tokenHash: String(r.token_hash),
    createdAt: num(r.created_at),
    lastUsedAt: numOrNull(r.last_used_at),
    revokedAt: numOrNull(r.revoked_at),
  };
}

/** A list of feature names (JSON text; null: none), as leases and instances keep the features they hold. */
const namesOf = (v: unknown): string[] => (v === null || v === undefined ? [] : (jsonOf(v) as string[]));
/** The column value of a list of feature names: null for none (the common case costs nothing). */
export const namesColumn = (names: readonly string[]): string | null => (names.length ? JSON.stringify(names) : null);

/** SQLite stores booleans as 0/1 and JSON as text; PostgreSQL as boolean and jsonb. */
export const bool = (v: unknown): boolean => v === true || v === 1;
/** A JSON column of any shape (SQLite: text; PostgreSQL: text or jsonb). */
export const jsonOf = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);
export const json = (v: unknown): Record<string, unknown> =>
  typeof v === 'string' ? (JSON.parse(v) as Record<string, unknown>) : ((v ?? {}) as Record<string, unknown>);

export function toAudit(r: Row): StoredAudit {
  return {
    id: num(r.id),
    at: num(r.at),
    type: r.type as StoredAudit['type'],
    actor: String(r.actor),
    licenseId: strOrNull(r.license_id),
    deviceId: strOrNull(r.device_id),
    leaseId: strOrNull(r.lease_id),
    reason: strOrNull(r.reason),
    // An aggregated entry (denials) tells how many events it stands for, and the first and last of them.
    data:
      r.agg_key === null || r.agg_key === undefined
        ? json(r.data)
        : {
            ...json(r.data),
            count: num(r.count),
            firstAt: new Date(num(r.at)).toISOString(),
            lastAt: new Date(num(r.last_at ?? r.at)).toISOString(),
          },
  };
}

export function toUsage(r: Row): UsageRow {
  return {
    hour: num(r.hour),
    peakSeats: num(r.peak_seats),
    seatsAtEnd: num(r.seats_at_end),
    checkouts: num(r.checkouts),
    denials: num(r.denials),
    peakOverdraft: num(r.peak_overdraft ?? 0),
    overdraftAtEnd: num(r.overdraft_at_end ?? 0),
    overdraftCheckouts: num(r.overdraft_checkouts ?? 0),
    queued: num(r.queued ?? 0),
    queueGrants: num(r.queue_grants ?? 0),
    queueWaitMs: num(r.queue_wait_ms ?? 0),
  };
}

/** Seats held per feature, from the `features` column of the license's lease rows (each row holds one of each). */
export function countNames(rows: readonly Row[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of rows) for (const f of namesOf(r.features)) counts[f] = (counts[f] ?? 0) + 1;
  return counts;
}

/** The feature pools' hourly rows (`usage_features`) set on the hours they belong to. */
export function withFeatureUsage(hours: UsageRow[], rows: readonly Row[]): UsageRow[] {
  const byHour = new Map(hours.map((h) => [h.hour, h]));
  for (const r of rows) {
    const h = byHour.get(num(r.hour));
    if (!h) continue;
    h.features = { ...h.features, [String(r.feature)]: { peak: num(r.peak), checkouts: num(r.checkouts), denials: num(r.denials) } };
  }
  return hours;
}

export function toWaiter(r: Row): Waiter {
  return {
    seq: num(r.seq),
    licenseId: String(r.license_id),
    pool: String(r.pool),
    fingerprint: String(r.fingerprint),
    instanceId: String(r.instance_id),
    enqueuedAt: num(r.enqueued_at),
    lastPollAt: num(r.last_poll_at),
    expiresAt: num(r.expires_at),
  };
}

/** An instance as both adapters write it (the use's device and what its client said, beside the times). */
export function instanceParams(leaseId: string, i: Instance) {
  return {
    leaseId,
    instanceId: i.instanceId,
    startedAt: i.startedAt,
    lastHeartbeatAt: i.lastHeartbeatAt,
    expiresAt: i.expiresAt,
    deviceId: i.deviceId,
    meta: JSON.stringify(i.meta),
    features: namesColumn(i.features),
    // A use's session key rides with its row when the decision that writes the row carries it (a checkout's exchange);
    // none given keeps the one stored (the upsert's COALESCE).
    sessionKey: i.sessionKey ?? null,
  };
}
