/**
 * TurnView (issue #17): what a turn read once for all its units is handed to a unit only while it is what a read would
 * give then. Pure: the database's side is in the store contract and store/postgres/pipeline.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Effect } from '../../domain/effects.js';
import { TurnView, type DeviceReads, type LeaseReads } from './turnView.js';

const lic = () => ({ id: 'lic_1', key: 'K', seats: 5, seats_used: 2, seats_offline: 1 });
const deviceOf = (id: string, own: string[] = [], onSeats: string[] = []): DeviceReads => ({
  row: { id, fingerprint: `fp-${id}` },
  own: own.map((l) => ({ id: l })),
  onSeats: onSeats.map((l) => ({ lease_id: l })),
  instances: [],
});
const leaseOf = (id: string, devices: string[]): LeaseReads => ({
  rows: [{ id }],
  instances: [],
  devices: devices.map((d) => ({ id: d })),
});

function view(devices: Record<string, DeviceReads | undefined> = {}, leases: Record<string, LeaseReads> = {}) {
  const absent: DeviceReads = { row: undefined, own: [], onSeats: [], instances: [] };
  return new TurnView(
    'K',
    lic(),
    { used: 2, offline: 1 },
    [],
    new Map(Object.entries(devices).map(([f, d]) => [f, d ?? absent])),
    new Map(Object.entries(leases)),
  );
}
const lease = (id: string, deviceId: string, instanceDevices: string[] = []) =>
  ({ id, deviceId, instances: instanceDevices.map((d) => ({ instanceId: `i-${d}`, deviceId: d })) }) as never;

test('seat counters and the tally move by the seats deltas; a repair sets the counters; audit and usage change nothing', () => {
  const v = view();
  v.written([
    { type: 'seats', licenseId: 'lic_1', used: 1, offline: 0 },
    { type: 'audit', entry: {} } as Effect,
    { type: 'usage' } as Effect,
    { type: 'webhook.event' } as Effect,
  ]);
  assert.equal(v.exact, true);
  assert.deepEqual([v.license!.seats_used, v.license!.seats_offline], [3, 1]);
  assert.deepEqual(v.counts, { used: 3, offline: 1 });
  v.written([{ type: 'seats', licenseId: 'lic_1', used: -2, offline: -1 }]);
  assert.deepEqual(v.counts, { used: 1, offline: 0 });
  v.written([{ type: 'seats.set', licenseId: 'lic_1', used: 4, offline: 0 }]);
  assert.deepEqual([v.license!.seats_used, v.license!.seats_offline], [4, 0], 'the counters set');
  assert.deepEqual(v.counts, { used: 1, offline: 0 }, 'the rows are not changed by a repair of the counters');
  assert.equal(v.exact, true);
});

test('an effect the view does not project, or a seats effect of another license, gives up its license part', () => {
  for (const e of [
    { type: 'license.update', license: {} },
    { type: 'license.trialStarted', licenseId: 'lic_1', at: 1 },
    { type: 'waiter.put', waiter: {} },
    { type: 'waiters.drop', seqs: [1] },
    { type: 'kv.put', name: 'x', value: 'y', at: 1 },
    { type: 'seats', licenseId: 'lic_2', used: 1, offline: 0 },
  ] as Effect[]) {
    const v = view();
    v.written([e]);
    assert.equal(v.exact, false, e.type);
  }
});

test("a unit's own reads are handed out once, and only if no earlier write touched the fingerprint, device or leases they name", () => {
  const v = view(
    { a: deviceOf('dev_a', ['lse_a']), b: deviceOf('dev_b', [], ['lse_shared']), c: undefined, d: deviceOf('dev_d') },
    { lse_x: leaseOf('lse_x', ['dev_x']) },
  );
  assert.ok(v.device('d'), 'untouched');
  assert.equal(v.device('d'), undefined, 'once');
  assert.equal(v.device('zz'), undefined, 'not read by the turn');

  v.written([{ type: 'instance.put', leaseId: 'lse_shared', instance: { deviceId: 'dev_q' } } as Effect]);
  assert.equal(v.device('b'), undefined, 'a use joined the seat its device is on');
  v.written([{ type: 'device.upsert', device: { id: 'dev_new', fingerprint: 'c' } } as Effect]);
  assert.equal(v.device('c'), undefined, 'an earlier unit made a device of the fingerprint that had none');
  v.written([{ type: 'lease.delete', leaseId: 'lse_a' }]);
  assert.equal(v.device('a'), undefined, 'its lease was deleted');
  v.written([{ type: 'lease.insert', lease: lease('lse_y', 'dev_z', ['dev_x']) }]);
  assert.equal(v.lease('lse_x'), undefined, 'a device of the lease took part in a write');
  assert.equal(v.exact, true, 'none of these changed the license part');
});

test('every write that touches a lease or device is seen: renewals, instance changes, session keys, updates', () => {
  const cases: [string, (v: TurnView) => void][] = [
    ['lease.renew', (v) => v.written([{ type: 'lease.renew', renewal: { leaseId: 'lse_x' } } as Effect])],
    ['instance.delete', (v) => v.written([{ type: 'instance.delete', leaseId: 'lse_x', instanceId: 'i' }])],
    ['lease.update', (v) => v.written([{ type: 'lease.update', lease: lease('lse_x', 'dev_x') }])],
    ['instance.put', (v) => v.written([{ type: 'instance.put', leaseId: 'lse_x', instance: { deviceId: 'dev_x' } } as Effect])],
    ['device.upsert', (v) => v.written([{ type: 'device.upsert', device: { id: 'dev_x', fingerprint: 'other' } } as Effect])],
    ['session key', (v) => v.keyed('lse_x')],
  ];
  for (const [name, write] of cases) {
    const v = view({}, { lse_x: leaseOf('lse_x', ['dev_x']) });
    write(v);
    assert.equal(v.lease('lse_x'), undefined, name);
  }
  const untouched = view({}, { lse_x: leaseOf('lse_x', ['dev_x']) });
  untouched.written([
    { type: 'lease.delete', leaseId: 'lse_other' },
    { type: 'device.upsert', device: { id: 'dev_o', fingerprint: 'o' } } as Effect,
  ]);
  assert.ok(untouched.lease('lse_x'), 'writes to other rows leave it');
});
