import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OPEN_ACCESS } from '@floatd/protocol';
import type { Effect } from './effects.js';
import {
  decideCheckin,
  decideCheckout,
  decideHeartbeat,
  decideOfflineCheckout,
  decideReclaim,
  decideRelease,
  decideReturnOffline,
  decideSync,
  renewalDueAt,
  renewalMayWait,
  type CheckoutState,
} from './seats.js';
import type { Device, Lease, License } from './types.js';
import { gate } from './policy.js';
import { EMPTY_META, PER_INSTANCE } from './sharing.js';

const T0 = Date.parse('2026-05-01T08:00:00Z');
const S = 1000;

function license(over: Partial<License> = {}): License {
  return {
    id: 'lic_1',
    productId: 'prd_1',
    customerId: 'cus_1',
    key: 'K',
    seats: 2,
    model: 'permanent',
    expiresAt: null,
    trialDays: null,
    trialStartedAt: null,
    leaseTtlSeconds: 60,
    heartbeatIntervalSeconds: 20,
    maxOfflineSeconds: 3 * 86400,
    maxOfflineSeats: null,
    maxInstancesPerDevice: 3,
    sharing: { by: ['device'], cap: null },
    features: [],
    clonePolicy: 'separate',
    vmPolicy: 'allow',
    lingerSeconds: 0,
    overdraftSeats: 0,
    access: OPEN_ACCESS,
    suspended: false,
    metadata: {},
    seatsUsed: 0,
    seatsOffline: 0,
    createdAt: T0,
    updatedAt: T0,
    ...over,
  };
}

function device(id = 'dev_1', fingerprint = 'fp-1'): Device {
  return {
    id,
    licenseId: 'lic_1',
    fingerprint,
    hostname: null,
    user: null,
    appVersion: null,
    firstSeenAt: T0,
    lastAccessedAt: T0,
    machinesSeen: [],
    cloneSuspectedAt: null,
  };
}

function lease(over: Partial<Lease> = {}): Lease {
  return {
    id: 'lse_1',
    licenseId: 'lic_1',
    deviceId: 'dev_1',
    shareGroup: 'device=dev_1',
    overdraft: false,
    base: true,
    features: [],
    lingerUntil: null,
    offline: false,
    grantedAt: T0,
    lastHeartbeatAt: T0,
    expiresAt: T0 + 60 * S,
    offlineExpiresAt: null,
    instances: [
      { instanceId: 'a', deviceId: 'dev_1', meta: EMPTY_META, features: [], startedAt: T0, lastHeartbeatAt: T0, expiresAt: T0 + 60 * S },
    ],
    ...over,
  };
}

const cmd = (fingerprint = 'fp-1', instanceId = 'a') => ({
  fingerprint,
  instanceId,
  newDeviceId: 'dev_new',
  newLeaseId: 'lse_new',
  actor: 'client',
});
const state = (over: Partial<CheckoutState> = {}): CheckoutState => ({
  license: license(),
  device: undefined,
  deviceLeases: [],
  deadLeases: [],
  earliestExpiry: null,
  ...over,
});
const seatDelta = (effects: Effect[]) =>
  effects.filter((e) => e.type === 'seats').reduce((n, e) => n + (e.type === 'seats' ? e.used : 0), 0);
const types = (effects: Effect[]) => effects.map((e) => e.type);

test('checkout takes a new seat and writes device, lease, seat, usage and audit', () => {
  const d = decideCheckout(state(), cmd(), T0);
  assert.ok(d.result.ok);
  assert.equal(d.result.value.created, true);
  assert.equal(d.result.value.lease.expiresAt, T0 + 60 * S);
  assert.equal(seatDelta(d.effects), 1);
  assert.deepEqual(types(d.effects), ['device.upsert', 'lease.insert', 'seats', 'usage', 'audit']);
});

test('the same instance checking out again gets the same lease and no second seat', () => {
  const held = lease();
  const d = decideCheckout(state({ license: license({ seatsUsed: 1 }), device: device(), deviceLeases: [held] }), cmd(), T0 + 10 * S);
  assert.ok(d.result.ok);
  assert.equal(d.result.value.lease.id, 'lse_1');
  assert.equal(d.result.value.created, false);
  assert.equal(seatDelta(d.effects), 0);
  assert.equal(d.result.value.lease.expiresAt, T0 + 70 * S);
});

test('per-device: a second instance joins the device seat up to the per-device maximum', () => {
  const lic = license({ seatsUsed: 1, maxInstancesPerDevice: 2 });
  const d = decideCheckout(state({ license: lic, device: device(), deviceLeases: [lease()] }), cmd('fp-1', 'b'), T0);
  assert.ok(d.result.ok);
  assert.equal(d.result.value.lease.instances.length, 2);
  assert.equal(seatDelta(d.effects), 0);
  const full = lease({
    instances: [
      ...lease().instances,
      { instanceId: 'b', deviceId: 'dev_1', meta: EMPTY_META, features: [], startedAt: T0, lastHeartbeatAt: T0, expiresAt: T0 + 60 * S },
    ],
  });
  const third = decideCheckout(state({ license: lic, device: device(), deviceLeases: [full] }), cmd('fp-1', 'c'), T0);
  assert.equal(third.result.ok, false);
  assert.equal(!third.result.ok && third.result.error.code, 'INSTANCE_LIMIT_REACHED');
  assert.deepEqual(third.effects, []);
});

test('per-instance: each instance takes its own seat', () => {
  const lic = license({ sharing: PER_INSTANCE, seatsUsed: 1 });
  const d = decideCheckout(
    state({ license: lic, device: device(), deviceLeases: [lease({ shareGroup: 'instance=lse_1' })] }),
    cmd('fp-1', 'b'),
    T0,
  );
  assert.ok(d.result.ok);
  assert.equal(d.result.value.created, true);
  assert.equal(seatDelta(d.effects), 1);
});

test('a full pool denies with seats and earliest expiry, writing only counters', () => {
  const d = decideCheckout(state({ license: license({ seats: 1, seatsUsed: 1 }), earliestExpiry: T0 + 30 * S }), cmd('fp-2'), T0);
  assert.equal(d.result.ok, false);
  if (d.result.ok) return;
  assert.equal(d.result.error.code, 'NO_SEATS_AVAILABLE');
  assert.deepEqual(d.result.error.details, { seatsTotal: 1, seatsUsed: 1, earliestExpiryAt: new Date(T0 + 30 * S).toISOString() });
  // the denial is audited in aggregate: one entry per license, fingerprint and hour, with a count
  assert.deepEqual(types(d.effects), ['usage', 'audit.aggregate']);
  const audit = d.effects[1];
  assert.ok(audit?.type === 'audit.aggregate');
  assert.equal(audit.key, `denied:${audit.entry.licenseId}:${T0 - (T0 % 3_600_000)}:fp-2`);
  assert.equal(audit.overflow.key, `denied:${audit.entry.licenseId}:${T0 - (T0 % 3_600_000)}:*`);
});

test('a full pool with a dead lease frees it in the same decision and grants at once', () => {
  const dead = lease({ id: 'lse_dead', deviceId: 'dev_9', expiresAt: T0 - 1 });
  const d = decideCheckout(state({ license: license({ seats: 1, seatsUsed: 1 }), deadLeases: [dead] }), cmd('fp-2'), T0);
  assert.ok(d.result.ok);
  assert.equal(seatDelta(d.effects), 0); // -1 for the dead lease, +1 for the grant
  assert.ok(d.effects.some((e) => e.type === 'lease.delete' && e.leaseId === 'lse_dead'));
  assert.ok(d.effects.some((e) => e.type === 'audit' && e.entry.type === 'release' && e.entry.reason === 'expired'));
});

test('suspended, expired subscription and expired trial are refused with their own codes', () => {
  const code = (l: License) => {
    const d = decideCheckout(state({ license: l }), cmd(), T0);
    return d.result.ok ? 'granted' : d.result.error.code;
  };
  assert.equal(code(license({ suspended: true })), 'LICENSE_SUSPENDED');
  assert.equal(code(license({ model: 'subscription', expiresAt: T0 })), 'LICENSE_EXPIRED');
  assert.equal(code(license({ model: 'subscription', expiresAt: T0 + 1 })), 'granted');
  assert.equal(code(license({ model: 'trial', trialDays: 14, trialStartedAt: T0 - 14 * 86400 * S })), 'TRIAL_EXPIRED');
  assert.equal(code(license({ model: 'trial', trialDays: 14, trialStartedAt: T0 - 13 * 86400 * S })), 'granted');
});

test('a trial starts counting at its first checkout', () => {
  const d = decideCheckout(state({ license: license({ model: 'trial', trialDays: 7 }) }), cmd(), T0);
  assert.ok(d.result.ok);
  assert.ok(d.effects.some((e) => e.type === 'license.trialStarted' && e.at === T0));
  assert.equal(gate({ ...license({ model: 'trial', trialDays: 7 }), trialStartedAt: T0 }, T0 + 7 * 86400 * S)?.code, 'TRIAL_EXPIRED');
});

test('heartbeat renews, revives a dead-but-unreclaimed lease, and answers LEASE_NOT_FOUND for a gone one', () => {
  const lic = license({ seatsUsed: 1 });
  const renewed = decideHeartbeat(
    { license: lic, lease: lease(), device: device() },
    { leaseId: 'lse_1', instanceId: 'a', actor: 'client' },
    T0 + 30 * S,
  );
  assert.ok(renewed.decision.result.ok);
  assert.equal(renewed.kind, 'locked', 'without a batch margin nothing is batchable');
  assert.equal(renewed.decision.result.value.lease.expiresAt, T0 + 90 * S);
  assert.ok(!renewed.decision.effects.some((e) => e.type === 'audit'));

  const revived = decideHeartbeat(
    { license: lic, lease: lease(), device: device() },
    { leaseId: 'lse_1', instanceId: 'a', actor: 'client' },
    T0 + 120 * S,
  );
  assert.ok(revived.decision.result.ok);
  assert.ok(revived.decision.effects.some((e) => e.type === 'audit' && e.entry.type === 'heartbeat-revive'));
  assert.equal(revived.kind, 'locked');

  const gone = decideHeartbeat(
    { license: lic, lease: undefined, device: undefined },
    { leaseId: 'lse_1', instanceId: 'a', actor: 'client' },
    T0,
  );
  assert.equal(!gone.decision.result.ok && gone.decision.result.error.code, 'LEASE_NOT_FOUND');
  assert.equal(gone.kind === 'refused' && gone.error.code, 'LEASE_NOT_FOUND');
  const otherInstance = decideHeartbeat(
    { license: lic, lease: lease(), device: device() },
    { leaseId: 'lse_1', instanceId: 'zz', actor: 'client' },
    T0,
  );
  assert.equal(!otherInstance.decision.result.ok && otherInstance.decision.result.error.code, 'LEASE_NOT_FOUND');
  const otherLicense = decideHeartbeat(
    { license: license({ id: 'lic_2' }), lease: lease(), device: device() },
    { leaseId: 'lse_1', instanceId: 'a', actor: 'client' },
    T0,
  );
  assert.equal(!otherLicense.decision.result.ok && otherLicense.decision.result.error.code, 'LEASE_NOT_FOUND');
});

test('a plain renewal is one monotonic renewal effect; a renewal that also prunes a dead sibling is not', () => {
  const lic = license({ seatsUsed: 1 });
  const hb = { leaseId: 'lse_1', instanceId: 'a', actor: 'client' };
  const plain = decideHeartbeat({ license: lic, lease: lease(), device: device() }, hb, T0 + 30 * S);
  assert.deepEqual(plain.decision.effects, [
    { type: 'lease.renew', renewal: { leaseId: 'lse_1', instanceId: 'a', deviceId: 'dev_1', at: T0 + 30 * S, expiresAt: T0 + 90 * S } },
  ]);
  assert.ok(plain.decision.result.ok);
  assert.equal(plain.decision.result.value.lease.instances[0]!.expiresAt, T0 + 90 * S);
  assert.equal(plain.decision.result.value.device.lastAccessedAt, T0 + 30 * S);
  const withDeadSibling = lease({
    instances: [
      ...lease().instances,
      { instanceId: 'b', deviceId: 'dev_1', meta: EMPTY_META, features: [], startedAt: T0, lastHeartbeatAt: T0, expiresAt: T0 + 10 * S },
    ],
  });
  const pruning = decideHeartbeat({ license: lic, lease: withDeadSibling, device: device() }, hb, T0 + 30 * S, { batchMarginMs: 5 * S });
  assert.deepEqual(types(pruning.decision.effects).sort(), ['audit', 'device.upsert', 'instance.delete', 'instance.put', 'lease.update']);
  assert.equal(pruning.kind, 'locked', 'a renewal that changes the instance set is written under the lock');
});

test('a plain renewal is batchable only with a batch margin the stored lease outlives', () => {
  const lic = license({ seatsUsed: 1 });
  const hb = { leaseId: 'lse_1', instanceId: 'a', actor: 'client' };
  // lease() expires at T0 + 60 s; the interval is license()'s heartbeat interval
  const early = decideHeartbeat({ license: lic, lease: lease(), device: device() }, hb, T0, { batchMarginMs: 5 * S });
  assert.equal(early.kind, 'batchable');
  assert.ok(early.kind === 'batchable' && early.renewal.leaseId === 'lse_1' && early.renewal.expiresAt === T0 + 60 * S);
  assert.deepEqual(early.decision.effects, [{ type: 'lease.renew', renewal: early.kind === 'batchable' ? early.renewal : undefined }]);
  const late = decideHeartbeat({ license: lic, lease: lease(), device: device() }, hb, T0 + 59 * S, { batchMarginMs: 5 * S });
  assert.equal(late.kind, 'locked', 'close to its expiry, the renewal is written before the answer');
  assert.ok(late.decision.result.ok);
});

test('a renewal may wait only while the lease as stored outlives the next heartbeat plus the margin', () => {
  const lic = license({ leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
  const l = lease({ expiresAt: T0 + 60 * S });
  // 60 s left > 20 s interval + 5 s margin
  assert.equal(renewalMayWait(lic, l, T0, 5 * S), true);
  // 25 s left is not more than 20 + 5
  assert.equal(renewalMayWait(lic, l, T0 + 35 * S, 5 * S), false);
  assert.equal(renewalMayWait(lic, l, T0 + 34 * S, 5 * S), true);
  assert.equal(
    renewalMayWait(lic, lease({ offline: true, offlineExpiresAt: T0 + 86400 * S }), T0, 5 * S),
    false,
    'offline leases are written at once',
  );
  assert.equal(
    renewalMayWait(license({ leaseTtlSeconds: null }), lease({ expiresAt: null }), T0, 5 * S),
    true,
    'a lease without expiry cannot be reclaimed by time',
  );
});

test('a renewal is due when the earlier of the lease and the use as stored stops outliving the next heartbeat', () => {
  const lic = license({ leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
  // The lease as stored lives to T0 + 60 s (renewed by use a); use b's own row only to T0 + 40 s: b's renewal is due by b's.
  const two = lease({
    expiresAt: T0 + 60 * S,
    instances: [
      ...lease().instances,
      { instanceId: 'b', deviceId: 'dev_1', meta: EMPTY_META, features: [], startedAt: T0, lastHeartbeatAt: T0, expiresAt: T0 + 40 * S },
    ],
  });
  assert.equal(renewalDueAt(lic, two, 'a', 5 * S), T0 + 35 * S);
  assert.equal(renewalDueAt(lic, two, 'b', 5 * S), T0 + 15 * S);
  assert.equal(renewalMayWait(lic, two, T0 + 20 * S, 5 * S, 'a'), true);
  assert.equal(renewalMayWait(lic, two, T0 + 20 * S, 5 * S, 'b'), false, "the reclaimer drops a use by its own row's expiry");
  const hb = decideHeartbeat(
    { license: lic, lease: two, device: device() },
    { leaseId: 'lse_1', instanceId: 'b', actor: 'client' },
    T0 + 20 * S,
    {
      batchMarginMs: 5 * S,
    },
  );
  assert.equal(hb.kind, 'locked');
  const early = decideHeartbeat(
    { license: lic, lease: two, device: device() },
    { leaseId: 'lse_1', instanceId: 'b', actor: 'client' },
    T0 + 10 * S,
    {
      batchMarginMs: 5 * S,
    },
  );
  assert.ok(early.kind === 'batchable' && early.dueAt === T0 + 15 * S);
  assert.equal(renewalDueAt(license({ leaseTtlSeconds: null }), lease({ expiresAt: null, instances: [] }), 'a', 5 * S), Infinity);
  assert.equal(renewalDueAt(lic, lease({ offline: true, offlineExpiresAt: T0 + 86400 * S }), 'a', 5 * S), -Infinity);
});

test('check-in: the seat frees when the last instance leaves', () => {
  const two = lease({
    instances: [
      ...lease().instances,
      { instanceId: 'b', deviceId: 'dev_1', meta: EMPTY_META, features: [], startedAt: T0, lastHeartbeatAt: T0, expiresAt: T0 + 60 * S },
    ],
  });
  const lic = license({ seatsUsed: 1 });
  const first = decideCheckin({ license: lic, lease: two, device: device() }, { leaseId: 'lse_1', instanceId: 'a', actor: 'client' }, T0);
  assert.ok(first.result.ok);
  assert.deepEqual([first.result.value.released, first.result.value.instances], [false, 1]);
  assert.equal(seatDelta(first.effects), 0);
  const last = decideCheckin(
    { license: lic, lease: first.result.value.lease, device: device() },
    { leaseId: 'lse_1', instanceId: 'b', actor: 'client' },
    T0,
  );
  assert.ok(last.result.ok);
  assert.deepEqual([last.result.value.released, last.result.value.instances], [true, 0]);
  assert.equal(seatDelta(last.effects), -1);
});

test('check-in of the last instance of an offline lease keeps the seat borrowed', () => {
  const off = lease({ offline: true, offlineExpiresAt: T0 + 86400 * S, expiresAt: T0 + 86400 * S });
  const d = decideCheckin(
    { license: license({ seatsUsed: 1, seatsOffline: 1 }), lease: off, device: device() },
    { leaseId: 'lse_1', instanceId: 'a', actor: 'client' },
    T0 + S,
  );
  assert.ok(d.result.ok);
  assert.equal(d.result.value.released, false);
  assert.equal(seatDelta(d.effects), 0);
});

test('sync drops instances that do not run; an online lease left empty frees its seat', () => {
  const two = lease({
    instances: [
      ...lease().instances,
      { instanceId: 'b', deviceId: 'dev_1', meta: EMPTY_META, features: [], startedAt: T0, lastHeartbeatAt: T0, expiresAt: T0 + 60 * S },
    ],
  });
  const d = decideSync(
    { license: license({ seatsUsed: 1 }), device: device(), deviceLeases: [two] },
    { instanceIds: ['b'], actor: 'client' },
    T0,
  );
  assert.ok(d.result.ok);
  assert.deepEqual(d.result.value, { dropped: ['a'], released: [], instances: 1 });
  const none = decideSync(
    { license: license({ seatsUsed: 1 }), device: device(), deviceLeases: [two] },
    { instanceIds: [], actor: 'client' },
    T0,
  );
  assert.ok(none.result.ok);
  assert.deepEqual(none.result.value.released, ['lse_1']);
  assert.equal(seatDelta(none.effects), -1);
});

test('offline checkout: limits, cap, Offline Expiry Date capped at the license end', () => {
  const off = (l: License, seconds: number, st: Partial<CheckoutState> = {}) =>
    decideOfflineCheckout(state({ license: l, ...st }), { ...cmd(), durationSeconds: seconds }, T0);
  const forbidden = off(license({ maxOfflineSeconds: 0 }), 3600);
  assert.equal(!forbidden.result.ok && forbidden.result.error.code, 'OFFLINE_NOT_ALLOWED');
  const tooLong = off(license(), 4 * 86400);
  assert.equal(!tooLong.result.ok && tooLong.result.error.code, 'OFFLINE_DURATION_EXCEEDED');
  const capped = off(license({ maxOfflineSeats: 1, seatsUsed: 1, seatsOffline: 1 }), 3600);
  assert.equal(!capped.result.ok && capped.result.error.code, 'OFFLINE_SEAT_LIMIT_REACHED');
  assert.deepEqual(capped.effects, []);

  const granted = off(license(), 3 * 86400);
  assert.ok(granted.result.ok);
  assert.equal(granted.result.value.lease.offline, true);
  assert.equal(granted.result.value.lease.offlineExpiresAt, T0 + 3 * 86400 * S);
  assert.equal(
    granted.effects.filter((e) => e.type === 'seats').reduce((n, e) => n + (e.type === 'seats' ? e.offline : 0), 0),
    1,
  );

  const sub = off(license({ model: 'subscription', expiresAt: T0 + 3600 * S }), 86400);
  assert.ok(sub.result.ok);
  assert.equal(sub.result.value.lease.offlineExpiresAt, T0 + 3600 * S);

  const converted = off(license({ seatsUsed: 1 }), 3600, { device: device(), deviceLeases: [lease()] });
  assert.ok(converted.result.ok);
  assert.equal(converted.result.value.lease.id, 'lse_1');
  assert.equal(seatDelta(converted.effects), 0);
});

test('admin release of an unexpired offline lease is refused unless forced', () => {
  const off = lease({ offline: true, offlineExpiresAt: T0 + 3 * 86400 * S, expiresAt: T0 + 3 * 86400 * S });
  const lic = license({ seatsUsed: 1, seatsOffline: 1 });
  const refused = decideRelease({ license: lic, lease: off }, { leaseId: 'lse_1', force: false, actor: 'admin' }, T0 + 86400 * S);
  assert.equal(!refused.result.ok && refused.result.error.code, 'OFFLINE_LEASE_ACTIVE');
  assert.deepEqual(refused.effects, []);
  const forced = decideRelease({ license: lic, lease: off }, { leaseId: 'lse_1', force: true, actor: 'admin' }, T0 + 86400 * S);
  assert.ok(forced.result.ok);
  assert.equal(forced.result.value.offlineOverridden, true);
  assert.ok(forced.effects.some((e) => e.type === 'audit' && e.entry.reason === 'force-release' && e.entry.data.forced === true));
  const after = decideRelease({ license: lic, lease: off }, { leaseId: 'lse_1', force: false, actor: 'admin' }, T0 + 3 * 86400 * S);
  assert.ok(after.result.ok);
});

test('return offline frees the seat; an online lease cannot be returned', () => {
  const off = lease({ offline: true, offlineExpiresAt: T0 + 86400 * S, expiresAt: T0 + 86400 * S });
  const d = decideReturnOffline(
    { license: license({ seatsUsed: 1, seatsOffline: 1 }), lease: off, device: device() },
    { leaseId: 'lse_1', actor: 'client' },
    T0,
  );
  assert.ok(d.result.ok);
  assert.ok(d.effects.some((e) => e.type === 'seats' && e.used === -1 && e.offline === -1));
  const online = decideReturnOffline(
    { license: license({ seatsUsed: 1 }), lease: lease(), device: device() },
    { leaseId: 'lse_1', actor: 'client' },
    T0,
  );
  assert.equal(!online.result.ok && online.result.error.code, 'LEASE_NOT_OFFLINE');
});

test('reclaim frees dead leases, drops dead instances, and never touches an unexpired offline lease', () => {
  const lic = license({ seatsUsed: 3, seatsOffline: 1 });
  const dead = lease({ id: 'lse_dead', expiresAt: T0 - 1 });
  const off = lease({ id: 'lse_off', offline: true, offlineExpiresAt: T0 + 10 * S, expiresAt: T0 + 10 * S });
  const mixed = lease({
    id: 'lse_mixed',
    expiresAt: T0 + 50 * S,
    instances: [
      {
        instanceId: 'old',
        deviceId: 'dev_1',
        meta: EMPTY_META,
        features: [],
        startedAt: T0 - 100 * S,
        lastHeartbeatAt: T0 - 100 * S,
        expiresAt: T0 - 40 * S,
      },
      {
        instanceId: 'new',
        deviceId: 'dev_1',
        meta: EMPTY_META,
        features: [],
        startedAt: T0,
        lastHeartbeatAt: T0 - 10 * S,
        expiresAt: T0 + 50 * S,
      },
    ],
  });
  const d = decideReclaim(lic, [dead, off, mixed], T0, 'reclaimer');
  assert.ok(d.result.ok);
  assert.deepEqual(
    d.result.value.freed.map((f) => f.leaseId),
    ['lse_dead'],
  );
  assert.equal(d.result.value.instancesDropped, 1);
  assert.equal(seatDelta(d.effects), -1);
  const later = decideReclaim(lic, [off], T0 + 10 * S, 'reclaimer');
  assert.ok(later.result.ok);
  assert.deepEqual(
    later.result.value.freed.map((f) => f.leaseId),
    ['lse_off'],
  );
});

test('a license without TTL keeps leases forever: nothing to reclaim', () => {
  const lic = license({ leaseTtlSeconds: null, seatsUsed: 1 });
  const d = decideCheckout(state({ license: lic }), cmd('fp-9'), T0);
  assert.ok(d.result.ok);
  assert.equal(d.result.value.lease.expiresAt, null);
  const r = decideReclaim(lic, [d.result.value.lease], T0 + 365 * 86400 * S, 'reclaimer');
  assert.ok(r.result.ok);
  assert.equal(r.result.value.freed.length, 0);
});

test('a denial after freeing dead leases keeps them freed (seats lowered below the leases held)', () => {
  const dead = lease({ id: 'lse_dead', deviceId: 'dev_9', expiresAt: T0 - 1 });
  const d = decideCheckout(state({ license: license({ seats: 2, seatsUsed: 4 }), deadLeases: [dead] }), cmd('fp-2'), T0);
  assert.equal(!d.result.ok && d.result.error.code, 'NO_SEATS_AVAILABLE');
  assert.equal(!d.result.ok && d.result.error.details?.seatsUsed, 3);
  assert.ok(d.effects.some((e) => e.type === 'lease.delete' && e.leaseId === 'lse_dead'));
  assert.equal(seatDelta(d.effects), -1);
});

test('per-instance: a new instance on a device that still borrows an idle offline seat reuses it instead of taking another', () => {
  const borrowed = lease({
    shareGroup: 'instance=lse_1',
    offline: true,
    offlineExpiresAt: T0 + 86400 * S,
    expiresAt: T0 + 86400 * S,
    instances: [],
  });
  const lic = license({ sharing: PER_INSTANCE, seatsUsed: 1, seatsOffline: 1 });
  const d = decideCheckout(state({ license: lic, device: device(), deviceLeases: [borrowed] }), cmd('fp-1', 'restarted'), T0 + 3600 * S);
  assert.ok(d.result.ok);
  assert.equal(d.result.value.lease.id, 'lse_1');
  assert.equal(d.result.value.lease.offline, true);
  assert.equal(d.result.value.created, false);
  assert.equal(seatDelta(d.effects), 0);
});

test('per-instance: reviving a dead lease is refused when the device has since taken as many seats as it may hold (found by the property test)', () => {
  const lic = license({ sharing: PER_INSTANCE, maxInstancesPerDevice: 1, seatsUsed: 2 });
  const dead = lease({
    id: 'lse_old',
    shareGroup: 'instance=lse_old',
    expiresAt: T0 - S,
    instances: [
      {
        instanceId: 'a',
        deviceId: 'dev_1',
        meta: EMPTY_META,
        features: [],
        startedAt: T0 - 120 * S,
        lastHeartbeatAt: T0 - 120 * S,
        expiresAt: T0 - S,
      },
    ],
  });
  const fresh = lease({
    id: 'lse_new',
    shareGroup: 'instance=lse_new',
    instances: [
      { instanceId: 'b', deviceId: 'dev_1', meta: EMPTY_META, features: [], startedAt: T0, lastHeartbeatAt: T0, expiresAt: T0 + 60 * S },
    ],
  });
  const refused = decideHeartbeat(
    { license: lic, lease: dead, device: device(), deviceLeases: [dead, fresh] },
    { leaseId: 'lse_old', instanceId: 'a', actor: 'client' },
    T0,
  );
  assert.ok(!refused.decision.result.ok);
  assert.equal(refused.decision.result.error.code, 'LEASE_NOT_FOUND');
  assert.deepEqual(refused.decision.effects, []);
  // with room for a second instance, the same lease is revived
  const revived = decideHeartbeat(
    { license: { ...lic, maxInstancesPerDevice: 2 }, lease: dead, device: device(), deviceLeases: [dead, fresh] },
    { leaseId: 'lse_old', instanceId: 'a', actor: 'client' },
    T0,
  );
  assert.ok(revived.decision.result.ok);
  assert.equal(revived.decision.result.value.lease.id, 'lse_old');
});

test('per-instance: an instance checking out again on its dead lease is refused when the device is at its limit (found by the property test)', () => {
  const lic = license({ sharing: PER_INSTANCE, maxInstancesPerDevice: 1, seatsUsed: 2 });
  const dead = lease({
    id: 'lse_old',
    shareGroup: 'instance=lse_old',
    expiresAt: T0 - S,
    instances: [
      {
        instanceId: 'a',
        deviceId: 'dev_1',
        meta: EMPTY_META,
        features: [],
        startedAt: T0 - 120 * S,
        lastHeartbeatAt: T0 - 120 * S,
        expiresAt: T0 - S,
      },
    ],
  });
  const fresh = lease({
    id: 'lse_new',
    shareGroup: 'instance=lse_new',
    instances: [
      { instanceId: 'b', deviceId: 'dev_1', meta: EMPTY_META, features: [], startedAt: T0, lastHeartbeatAt: T0, expiresAt: T0 + 60 * S },
    ],
  });
  const d = decideCheckout(state({ license: lic, device: device(), deviceLeases: [dead, fresh] }), cmd('fp-1', 'a'), T0);
  assert.ok(!d.result.ok);
  assert.equal(d.result.error.code, 'INSTANCE_LIMIT_REACHED');
  assert.deepEqual(d.effects, []);
});
