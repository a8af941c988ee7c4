/**
 * License policy: defaults, consistency rules, and the gate every grant passes
 * (suspended, subscription expired, trial expired).
 */
import {
  BASE_POOL,
  LICENSE_MODELS,
  OPEN_ACCESS,
  SHARING_OF_COUNTING,
  type CountingMode,
  type CreateLicense,
  type SharingRule,
  type UpdateLicense,
} from '@floatd/protocol';
import type { Lease, License, LicensePolicy } from './types.js';
import { fail, ok, type DomainError, type Result } from './result.js';
import { checkRule, countingOf, PER_DEVICE } from './sharing.js';

/**
 * A license policy as an admin asked for it: the policy, and the classic counting mode if one was named
 * (it must agree with the sharing rule when both are sent).
 */
export interface RequestedPolicy extends LicensePolicy {
  requestedCounting?: CountingMode | undefined;
}

function sharingOf(input: { counting?: CountingMode | undefined; sharing?: SharingRule | undefined }, current: SharingRule): SharingRule {
  if (input.sharing) return input.sharing;
  if (input.counting) return SHARING_OF_COUNTING[input.counting];
  return current;
}

const DAY_MS = 86_400_000;

/** The one answer for a missing, malformed or unknown key: no answer tells them apart, so keys cannot be enumerated. */
export const INVALID_KEY_MESSAGE = 'this license key is not known to this server';
export const invalidKey = <T>(): Result<T> => fail('INVALID_LICENSE_KEY', INVALID_KEY_MESSAGE);

export const DEFAULT_LEASE_TTL_SECONDS = 900;
export const DEFAULT_MAX_INSTANCES_PER_DEVICE = 10;

/** Fills the defaults of a new license's policy from what the admin sent. */
export function policyFromCreate(input: CreateLicense): RequestedPolicy {
  const leaseTtlSeconds = input.leaseTtlSeconds === undefined ? DEFAULT_LEASE_TTL_SECONDS : input.leaseTtlSeconds;
  return {
    seats: input.seats,
    model: input.model ?? LICENSE_MODELS.PERMANENT,
    expiresAt: input.expiresAt ? Date.parse(input.expiresAt) : null,
    trialDays: input.trialDays ?? null,
    leaseTtlSeconds,
    heartbeatIntervalSeconds: input.heartbeatIntervalSeconds ?? defaultHeartbeat(leaseTtlSeconds),
    maxOfflineSeconds: input.maxOfflineSeconds ?? 0,
    maxOfflineSeats: input.maxOfflineSeats ?? null,
    maxInstancesPerDevice: input.maxInstancesPerDevice ?? DEFAULT_MAX_INSTANCES_PER_DEVICE,
    sharing: sharingOf(input, PER_DEVICE),
    clonePolicy: input.clonePolicy ?? 'separate',
    vmPolicy: input.vmPolicy ?? 'allow',
    lingerSeconds: input.lingerSeconds ?? 0,
    overdraftSeats: input.overdraftSeats ?? 0,
    access: input.access ?? OPEN_ACCESS,
    features: input.features ?? [],
    suspended: input.suspended ?? false,
    metadata: input.metadata ?? {},
    requestedCounting: input.counting,
  };
}

/** A third of the TTL, so two heartbeats may be lost before the lease dies; 5 minutes without a TTL. */
function defaultHeartbeat(ttl: number | null): number {
  return ttl === null ? 300 : Math.max(1, Math.floor(ttl / 3));
}

/** Applies an admin's partial update to a license's policy (the result still has to pass `checkPolicy`). */
export function policyWithPatch(current: License, patch: UpdateLicense): RequestedPolicy {
  const next: RequestedPolicy = {
    seats: patch.seats ?? current.seats,
    model: patch.model ?? current.model,
    expiresAt: patch.expiresAt === undefined ? current.expiresAt : patch.expiresAt === null ? null : Date.parse(patch.expiresAt),
    trialDays: patch.trialDays === undefined ? current.trialDays : patch.trialDays,
    leaseTtlSeconds: patch.leaseTtlSeconds === undefined ? current.leaseTtlSeconds : patch.leaseTtlSeconds,
    heartbeatIntervalSeconds: patch.heartbeatIntervalSeconds ?? current.heartbeatIntervalSeconds,
    maxOfflineSeconds: patch.maxOfflineSeconds ?? current.maxOfflineSeconds,
    maxOfflineSeats: patch.maxOfflineSeats === undefined ? current.maxOfflineSeats : patch.maxOfflineSeats,
    maxInstancesPerDevice: patch.maxInstancesPerDevice ?? current.maxInstancesPerDevice,
    sharing: sharingOf(patch, current.sharing),
    clonePolicy: patch.clonePolicy ?? current.clonePolicy,
    vmPolicy: patch.vmPolicy ?? current.vmPolicy,
    lingerSeconds: patch.lingerSeconds ?? current.lingerSeconds,
    overdraftSeats: patch.overdraftSeats ?? current.overdraftSeats,
    access: patch.access ?? current.access,
    features: patch.features ?? current.features,
    suspended: patch.suspended ?? current.suspended,
    metadata: patch.metadata ?? current.metadata,
    requestedCounting: patch.counting,
  };
  // A TTL change without a new interval keeps the interval valid by re-deriving it.
  if (patch.leaseTtlSeconds !== undefined && patch.heartbeatIntervalSeconds === undefined && !intervalFits(next)) {
    next.heartbeatIntervalSeconds = defaultHeartbeat(next.leaseTtlSeconds);
  }
  return next;
}

function intervalFits(p: LicensePolicy): boolean {
  return p.leaseTtlSeconds === null || p.heartbeatIntervalSeconds < p.leaseTtlSeconds;
}

/** Rules that tie fields together; each field's own range is the schema's job. Returns the policy in its one spelling. */
export function checkPolicy(requested: RequestedPolicy): Result<LicensePolicy> {
  const { requestedCounting, ...policy } = requested;
  const bad = (message: string) => fail('INVALID_POLICY', message);
  const rule = checkRule(policy.sharing);
  if (!rule.ok) return rule;
  const p: LicensePolicy = { ...policy, sharing: rule.value };
  if (requestedCounting !== undefined && countingOf(p.sharing) !== requestedCounting) {
    return bad(`counting ${requestedCounting} contradicts the sharing rule sent with it (which is ${countingOf(p.sharing)})`);
  }
  const names = p.features.map((f) => f.name);
  if (names.includes(BASE_POOL)) return bad(`"${BASE_POOL}" names the license's own seats; a feature needs another name`);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) return bad(`feature ${twice} is listed twice`);
  p.features = [...p.features].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const short = p.features.find((f) => f.leaseTtlSeconds !== undefined && p.heartbeatIntervalSeconds >= f.leaseTtlSeconds);
  if (short)
    return bad(
      `heartbeatIntervalSeconds (${p.heartbeatIntervalSeconds}) must be shorter than feature ${short.name}'s leaseTtlSeconds (${short.leaseTtlSeconds})`,
    );
  if (p.model === LICENSE_MODELS.SUBSCRIPTION && p.expiresAt === null) return bad('a subscription needs expiresAt');
  if (p.model !== LICENSE_MODELS.SUBSCRIPTION && p.expiresAt !== null)
    return bad(`expiresAt is only for subscriptions (model is ${p.model})`);
  if (p.model === LICENSE_MODELS.TRIAL && p.trialDays === null) return bad('a trial needs trialDays');
  if (p.model !== LICENSE_MODELS.TRIAL && p.trialDays !== null) return bad(`trialDays is only for trials (model is ${p.model})`);
  if (!intervalFits(p)) {
    return bad(`heartbeatIntervalSeconds (${p.heartbeatIntervalSeconds}) must be shorter than leaseTtlSeconds (${p.leaseTtlSeconds})`);
  }
  return ok(p);
}

/**
 * When the license stops granting: subscription end, trial end, or null (never) —
 * and never after the end of the on-premise license file it comes from. The one
 * answer to "when does this license end": the gate, lease tokens and the
 * `expiresAt` a client is shown (`LicenseSummary`) all read it.
 */
export function licenseEndsAt(license: License, now: number): number | null {
  const own = ownEnd(license, now);
  const cap = license.entitlementEndsAt ?? null;
  return cap === null ? own : own === null ? cap : Math.min(own, cap);
}

function ownEnd(license: License, now: number): number | null {
  if (license.model === LICENSE_MODELS.SUBSCRIPTION) return license.expiresAt;
  if (license.model === LICENSE_MODELS.TRIAL && license.trialDays !== null) {
    return (license.trialStartedAt ?? now) + license.trialDays * DAY_MS;
  }
  return null;
}

/** Why this license may not grant or renew a seat now, if it may not. */
export function gate(license: License, now: number): DomainError | undefined {
  if (license.suspended) return { code: 'LICENSE_SUSPENDED', message: 'this license key is suspended' };
  const end = licenseEndsAt(license, now);
  if (end !== null && end <= now) {
    if (license.entitlementEndsAt != null && end === license.entitlementEndsAt) {
      return {
        code: 'ENTITLEMENT_EXPIRED',
        message: `the on-premise license file expired at ${new Date(end).toISOString()}; the vendor must issue a renewal`,
      };
    }
    return license.model === LICENSE_MODELS.TRIAL
      ? { code: 'TRIAL_EXPIRED', message: `the trial ended at ${new Date(end).toISOString()}` }
      : { code: 'LICENSE_EXPIRED', message: `the subscription expired at ${new Date(end).toISOString()}` };
  }
  return undefined;
}

/**
 * When a lease token stops being valid: never after its lease (online: the lease's
 * expiry; offline: its Offline Expiry Date), nor after the license itself ends
 * (`licenseEndsAt`). Null: the token does not expire.
 */
export function tokenExpiry(license: License, lease: Lease, now: number): number | null {
  const candidates = [lease.offline ? lease.offlineExpiresAt : lease.expiresAt, licenseEndsAt(license, now)].filter(
    (x): x is number => x !== null,
  );
  return candidates.length ? Math.min(...candidates) : null;
}
