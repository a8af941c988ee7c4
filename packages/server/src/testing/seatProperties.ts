/**
 * Shared by the property tests of the seat domain (pure, `domain/seats.property.test.ts`)
 * and of the real stores (`service/seats.property.test.ts`): the random commands,
 * the license policies, and the invariants that must hold after every step.
 */
import fc from 'fast-check';
import { OPEN_ACCESS, RELEASE_REASONS, type AccessPolicy } from '@floatd/protocol';
import { isDead, liveInstances } from '../domain/seats.js';
import type { AuditEntry, Device, FeaturePool, Lease, License, SharingRule } from '../domain/types.js';
import { featureCounts, featuresOf, seatTtlSeconds } from '../domain/features.js';

/** sequences per property (FLOATD_PROPERTY_RUNS) */
export const RUNS = Number(process.env.FLOATD_PROPERTY_RUNS ?? 300);
export const PROPERTY_SEED = process.env.FLOATD_PROPERTY_SEED ? Number(process.env.FLOATD_PROPERTY_SEED) : undefined;
const T0 = Date.parse('2026-05-01T08:00:00Z');

// ---------------------------------------------------------------------------------------------------------------
// commands

export type Command =
  | { kind: 'checkout'; device: number; instance: number; pools: number; wait: boolean }
  | { kind: 'features'; lease: number; instance: number; pools: number }
  | { kind: 'offline'; device: number; instance: number; hours: number }
  | { kind: 'heartbeat'; lease: number; instance: number }
  | { kind: 'checkin'; lease: number; instance: number }
  | { kind: 'return'; lease: number }
  | { kind: 'sync'; device: number; keep: number[] }
  | { kind: 'advance'; seconds: number }
  | { kind: 'reclaim' }
  | { kind: 'release'; lease: number; force: boolean };

export const DEVICES = 4;
export const INSTANCES = ['app-1', 'app-2', 'app-3'];
export const fingerprint = (d: number) => `property-device-${d}`;
/**
 * The instance id a device's i-th use sends: unique per device, as the SDK's random ids are (two devices
 * sending one id cannot share a seat: `decideCheckout`).
 */
export const instanceOf = (d: number, i: number) => `${INSTANCES[i]}.d${d}`;
/** The user each device says it runs as: devices 0 and 2 say the same user, so a rule by user shares across devices. */
export const userOf = (d: number) => `property-user-${d % 2}`;

/**
 * The pools a checkout or a feature change asks for (`POOL_ASKS[pools]`; undefined: the default, the base pool). Some
 * name features the license may lack (refused with UNKNOWN_FEATURE), some take no base seat.
 */
export const POOL_ASKS: (string[] | undefined)[] = [
  undefined,
  undefined,
  ['base', 'render'],
  ['render'],
  ['base', 'sim'],
  ['sim', 'render'],
  ['base'],
];

export const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('checkout' as const),
      device: fc.nat(DEVICES - 1),
      instance: fc.nat(INSTANCES.length - 1),
      pools: fc.nat(POOL_ASKS.length - 1),
      wait: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('features' as const),
      lease: fc.nat(9),
      instance: fc.nat(11),
      pools: fc.nat(POOL_ASKS.length - 1),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('offline' as const),
      device: fc.nat(DEVICES - 1),
      instance: fc.nat(INSTANCES.length - 1),
      hours: fc.integer({ min: 1, max: 30 }),
    }),
  },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('heartbeat' as const), lease: fc.nat(9), instance: fc.nat(11) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('checkin' as const), lease: fc.nat(9), instance: fc.nat(11) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('return' as const), lease: fc.nat(9) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('sync' as const), device: fc.nat(DEVICES - 1), keep: fc.subarray([0, 1, 2]) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      seconds: fc.oneof(
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 100, max: 2_000 }),
        fc.integer({ min: 3_600, max: 40 * 3_600 }),
      ),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'reclaim' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), lease: fc.nat(9), force: fc.boolean() }) },
);

export interface PolicyInput {
  seats: number;
  features: FeaturePool[];
  access: AccessPolicy;
  sharing: SharingRule;
  lingerSeconds: number;
  overdraftSeats: number;
  maxInstancesPerDevice: number;
  leaseTtlSeconds: number | null;
  maxOfflineSeconds: number;
  maxOfflineSeats: number | null;
}

export const policyArb: fc.Arbitrary<PolicyInput> = fc
  .record({
    seats: fc.integer({ min: 1, max: 4 }),
    features: fc.constantFrom<FeaturePool[]>(
      [],
      [{ name: 'render', seats: 1 }],
      [
        { name: 'render', seats: 2 },
        { name: 'sim', seats: 1 },
      ],
      [
        { name: 'render', seats: 2, counting: 'instance' },
        { name: 'sim', seats: 1 },
      ],
      [{ name: 'render', seats: 2, leaseTtlSeconds: 600 }],
      [
        {
          name: 'render',
          seats: 2,
          access: { ...OPEN_ACCESS, limits: [{ principal: `user:${userOf(1)}`, max: 1 }], deny: [`user:${userOf(0)}`] },
        },
      ],
    ),
    sharing: fc.constantFrom<SharingRule>(
      { by: ['device'], cap: null },
      { by: ['instance'], cap: null },
      { by: ['user'], cap: null },
      { by: ['user'], cap: 2 },
      { by: ['device', 'user'], cap: 2 },
      { by: ['site'], cap: 3 },
    ),
    lingerSeconds: fc.constantFrom(0, 0, 120),
    access: fc.constantFrom<AccessPolicy>(
      OPEN_ACCESS,
      OPEN_ACCESS,
      { ...OPEN_ACCESS, limits: [{ principal: `user:${userOf(1)}`, max: 1 }] },
      { ...OPEN_ACCESS, reservations: [{ principal: `user:${userOf(0)}`, seats: 1 }] },
      { ...OPEN_ACCESS, deny: [`user:${userOf(1)}`] },
    ),
    overdraftSeats: fc.constantFrom(0, 0, 1, 2),
    maxInstancesPerDevice: fc.integer({ min: 1, max: 3 }),
    leaseTtlSeconds: fc.oneof(fc.constant(null), fc.integer({ min: 30, max: 900 })),
    maxOfflineSeconds: fc.constantFrom(0, 3_600, 86_400),
    offlineCap: fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 4 })),
  })
  .map(({ offlineCap, ...p }) => ({ ...p, maxOfflineSeats: offlineCap === null ? null : Math.min(offlineCap, p.seats) }));

/**
 * The lease a command names (`i` in 0..9): one of the leases held now (by id order), or, for 9 or when none is held,
 * an id that does not exist. (Taking the i-th lease or none made about half of all steps a LEASE_NOT_FOUND, since a
 * license rarely holds more than a few leases: releases came at about one step in fifty.)
 */
export function pickLease(ids: string[], i: number): string {
  const sorted = [...ids].sort();
  return i === 9 || sorted.length === 0 ? 'lse_doesnotexist000000' : sorted[i % sorted.length]!;
}

/** Mostly an instance the lease has (so check-ins and heartbeats mostly succeed), sometimes any instance id. */
export function instanceOn(lease: Lease | undefined, i: number): string {
  const on = lease?.instances.map((x) => x.instanceId) ?? [];
  return on.length && i % 4 !== 3 ? on[i % on.length]! : INSTANCES[i % INSTANCES.length]!;
}

// ---------------------------------------------------------------------------------------------------------------
// the invariants

export interface View {
  license: License;
  leases: Lease[];
  devices: Device[];
  now: number;
}

/** Everything that must hold of a world at every moment. Returns the violations. */
export function invariants(v: View): string[] {
  const out: string[] = [];
  const L = v.license;
  if (L.seatsUsed < 0 || L.seatsUsed > L.seats + L.overdraftSeats)
    out.push(`seatsUsed ${L.seatsUsed} outside 0..${L.seats} + ${L.overdraftSeats} overdraft`);
  for (const l of v.leases) {
    if (l.lingerUntil !== null && liveInstances(l, v.now).length > 0) out.push(`lease ${l.id} lingers with live uses`);
    if (l.lingerUntil !== null && l.expiresAt !== l.lingerUntil)
      out.push(`lease ${l.id} lingers until ${l.lingerUntil} but expires at ${l.expiresAt}`);
  }
  // The base pool counts the seats that hold a base seat; a seat of features only takes none.
  const baseSeats = v.leases.filter((l) => l.base);
  if (L.seatsUsed !== baseSeats.length) out.push(`seatsUsed ${L.seatsUsed} but ${baseSeats.length} leases hold base seats`);
  const offline = baseSeats.filter((l) => l.offline).length;
  if (L.seatsOffline !== offline) out.push(`seatsOffline ${L.seatsOffline} but ${offline} offline leases`);
  if (offline > Math.min(L.seats, L.maxOfflineSeats ?? L.seats)) out.push(`${offline} offline leases over the cap ${L.maxOfflineSeats}`);
  // Feature pools: never more seats of a feature than it has; a seat holds its uses' features together.
  const featureHeld = featureCounts(v.leases, new Set(), L);
  // A feature's own access policy: a denied user holds none of its seats; a limited one at most its maximum.
  for (const f of L.features) {
    const holding = v.leases.filter((l) => l.features.includes(f.name));
    const ofUser = (u: string) => holding.filter((l) => l.instances.some((i) => i.meta.user === u && i.features.includes(f.name))).length;
    for (const p of f.access?.deny ?? [])
      if (p.startsWith('user:') && ofUser(p.slice(5)) > 0) out.push(`${p} is denied ${f.name} but holds it`);
    for (const lim of f.access?.limits ?? [])
      if (lim.principal.startsWith('user:') && ofUser(lim.principal.slice(5)) > lim.max)
        out.push(`${lim.principal} holds ${ofUser(lim.principal.slice(5))} ${f.name} seats > its maximum ${lim.max}`);
  }
  for (const f of L.features) {
    const held = featureHeld.get(f.name) ?? 0;
    if (held > f.seats) out.push(`feature ${f.name} (counted per ${f.counting ?? 'seat'}): ${held} seats held > ${f.seats}`);
  }
  for (const l of v.leases) {
    // An online seat expires within its shortest pool's lifetime after its last heartbeat.
    const ttl = seatTtlSeconds(L, l.base, l.features);
    if (!l.offline && l.lingerUntil === null && ttl !== null && l.expiresAt !== null && l.expiresAt > l.lastHeartbeatAt + ttl * 1000)
      out.push(
        `lease ${l.id} [${l.features}] expires ${l.expiresAt - l.lastHeartbeatAt} ms after its last heartbeat > its ${ttl} s lifetime`,
      );
    if (!l.base && l.features.length === 0) out.push(`lease ${l.id} holds no pool at all`);
    if (l.instances.length && featuresOf(l.instances).join() !== l.features.join())
      out.push(`lease ${l.id} holds [${l.features}] but its uses need [${featuresOf(l.instances)}]`);
  }
  for (const l of v.leases) {
    if (l.offline && l.offlineExpiresAt === null) out.push(`offline lease ${l.id} without an Offline Expiry Date`);
    const ids = l.instances.map((i) => i.instanceId);
    if (new Set(ids).size !== ids.length) out.push(`lease ${l.id} lists an instance twice`);
    if (!v.devices.some((d) => d.id === l.deviceId)) out.push(`lease ${l.id} of an unknown device`);
  }
  // the access policy: a denied user holds nothing; a limited user never holds more than its maximum
  const seatsOfUser = (u: string) => baseSeats.filter((l) => l.instances.some((i) => i.meta.user === u)).length;
  for (const p of L.access.deny) if (p.startsWith('user:') && seatsOfUser(p.slice(5)) > 0) out.push(`${p} is denied but holds a seat`);
  for (const lim of L.access.limits)
    if (lim.principal.startsWith('user:') && seatsOfUser(lim.principal.slice(5)) > lim.max)
      out.push(`${lim.principal} holds ${seatsOfUser(lim.principal.slice(5))} seats > its maximum ${lim.max}`);
  const rule = L.sharing;
  const unshared = rule.by.includes('instance');
  for (const l of v.leases) {
    const live = liveInstances(l, v.now);
    if (unshared && live.length > 1) out.push(`per-instance: lease ${l.id} runs ${live.length} instances`);
    if (rule.cap !== null && live.length > rule.cap) out.push(`lease ${l.id} runs ${live.length} uses > the cap ${rule.cap}`);
    for (const i of l.instances)
      if (!v.devices.some((d) => d.id === i.deviceId)) out.push(`use ${i.instanceId} on ${l.id} of an unknown device`);
    // every use on a seat is of the seat's share group
    if (!unshared && !rule.by.includes('site') && rule.by.includes('device'))
      for (const i of l.instances)
        if (i.deviceId !== l.deviceId) out.push(`use of ${i.deviceId} on ${l.id}, a seat shared by device ${l.deviceId}`);
  }
  // without a cap, one share group holds at most one live seat (uses of one group share it)
  if (!unshared && rule.cap === null) {
    const groups = new Map<string, number>();
    for (const l of v.leases)
      if (!isDead(l, v.now) && !l.shareGroup.startsWith('instance=')) {
        // a seat's base pool is fixed: a group may hold one seat with a base seat and one of features only
        const g = `${l.shareGroup}${l.base ? '' : ' (features only)'}`;
        groups.set(g, (groups.get(g) ?? 0) + 1);
      }
    for (const [g, n] of groups) if (n > 1) out.push(`share group ${g} holds ${n} live seats`);
  }
  for (const d of v.devices) {
    if (unshared) {
      const live = v.leases.filter((l) => l.deviceId === d.id && !isDead(l, v.now)).length;
      if (live > L.maxInstancesPerDevice) out.push(`per-instance: device ${d.id} holds ${live} live leases > ${L.maxInstancesPerDevice}`);
    } else {
      const uses = v.leases.flatMap((l) => liveInstances(l, v.now)).filter((i) => i.deviceId === d.id).length;
      if (uses > L.maxInstancesPerDevice) out.push(`device ${d.id} runs ${uses} > ${L.maxInstancesPerDevice} uses`);
    }
  }
  return out;
}

/** Checks what a step released: every release has a reason, and no offline lease goes before its Offline Expiry Date unless returned or forced. */
export function releaseViolations(before: Lease[], after: Lease[], releases: AuditEntry[], now: number): string[] {
  const out: string[] = [];
  const gone = before.filter((l) => !after.some((a) => a.id === l.id));
  const reasons = new Set<string>(Object.values(RELEASE_REASONS));
  for (const r of releases) if (!r.reason || !reasons.has(r.reason)) out.push(`release of ${r.leaseId} with reason ${r.reason}`);
  for (const l of gone) {
    const r = releases.find((x) => x.leaseId === l.id);
    if (!r) {
      out.push(`lease ${l.id} vanished without a release record`);
      continue;
    }
    const activeOffline = l.offline && l.offlineExpiresAt !== null && l.offlineExpiresAt > now;
    const allowed = r.reason === RELEASE_REASONS.OFFLINE_RETURNED || (r.reason === RELEASE_REASONS.FORCE_RELEASE && r.data.forced === true);
    if (activeOffline && !allowed)
      out.push(
        `offline lease ${l.id} released (${r.reason}) before its Offline Expiry Date ${new Date(l.offlineExpiresAt!).toISOString()}`,
      );
  }
  return out;
}

export function licenseOf(p: PolicyInput): License {
  return {
    id: 'lic_property000000000000',
    productId: 'prd_property000000000000',
    customerId: 'cus_default0000000000000',
    key: 'KEY',
    model: 'permanent',
    expiresAt: null,
    trialDays: null,
    trialStartedAt: null,
    heartbeatIntervalSeconds: p.leaseTtlSeconds === null ? 300 : Math.max(1, Math.floor(p.leaseTtlSeconds / 3)),
    clonePolicy: 'separate',
    vmPolicy: 'allow',
    suspended: false,
    metadata: {},
    seatsUsed: 0,
    seatsOffline: 0,
    createdAt: T0,
    updatedAt: T0,
    ...p,
  };
}
