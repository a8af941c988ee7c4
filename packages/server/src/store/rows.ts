/** Row → domain mapping shared by the adapters (same column names in SQLite and PostgreSQL). */
import { OPEN_ACCESS, SHARING_OF_COUNTING, type CountingMode } from '@floatd/protocol';
import { EMPTY_META } from '../domain/sharing.js';
import type { AdminToken, Device, Instance, Lease, License, Product, Role, SharingRule, UseMeta } from '../domain/types.js';
import type { StoredAudit, UsageRow } from './port.js';

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

export function toLicense(r: Row): License {
  return {
    id: String(r.id),
    productId: String(r.product_id),
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
    startedAt: num(r.started_at),
    lastHeartbeatAt: num(r.last_heartbeat_at),
    expiresAt: numOrNull(r.expires_at),
  };
}

export function toLease(r: Row, instances: Instance[]): Lease {
  return {
    id: String(r.id),
    licenseId: String(r.license_id),
    deviceId: String(r.device_id),
    shareGroup: r.share_group === null || r.share_group === undefined ? `device=${r.device_id}` : String(r.share_group),
    overdraft: bool(r.overdraft),
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
    tokenHash: String(r.token_hash),
    createdAt: num(r.created_at),
    lastUsedAt: numOrNull(r.last_used_at),
    revokedAt: numOrNull(r.revoked_at),
  };
}

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
  };
}
