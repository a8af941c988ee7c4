/** withSessionKey: a checkout's session key rides on the write of its use's row, and nowhere else. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Effect } from '../domain/effects.js';
import type { Instance, Lease } from '../domain/types.js';
import { withSessionKey } from './licensing.js';

const use = (instanceId: string, sessionKey?: string): Instance => ({
  instanceId,
  deviceId: 'dev_1',
  meta: {} as Instance['meta'],
  features: [],
  startedAt: 1,
  lastHeartbeatAt: 1,
  expiresAt: 2,
  ...(sessionKey ? { sessionKey } : {}),
});
const lease = (id: string, instances: Instance[]) => ({ id, licenseId: 'lic_1', deviceId: 'dev_1', instances }) as unknown as Lease;

test("a new lease's use carries the key; its other uses, other leases and other effects are left as they were", () => {
  const effects: Effect[] = [
    { type: 'lease.insert', lease: lease('lse_1', [use('a'), use('b', 'old-b')]) },
    { type: 'lease.insert', lease: lease('lse_2', [use('a')]) },
    { type: 'seats', licenseId: 'lic_1', used: 1, offline: 0 },
  ];
  const before = structuredClone(effects);
  const keyed = withSessionKey(effects, 'lse_1', 'a', 'new-a');
  assert.ok(keyed);
  assert.deepEqual(effects, before, 'the given effects are not changed');
  const first = keyed[0] as Extract<Effect, { type: 'lease.insert' }>;
  assert.deepEqual(
    first.lease.instances.map((i) => [i.instanceId, i.sessionKey]),
    [
      ['a', 'new-a'],
      ['b', 'old-b'],
    ],
  );
  assert.deepEqual(keyed.slice(1), effects.slice(1));
});

test('a use joining a seat (instance.put) carries the key; a decision that writes no row of the use carries none', () => {
  const put: Effect = { type: 'instance.put', leaseId: 'lse_1', instance: use('c') };
  const keyed = withSessionKey([put, { type: 'instance.put', leaseId: 'lse_9', instance: use('c') }], 'lse_1', 'c', 'new-c');
  assert.ok(keyed);
  assert.equal((keyed[0] as Extract<Effect, { type: 'instance.put' }>).instance.sessionKey, 'new-c');
  assert.equal((keyed[1] as Extract<Effect, { type: 'instance.put' }>).instance.sessionKey, undefined, 'same use id on another lease');
  assert.equal(withSessionKey([put], 'lse_1', 'd', 'k'), undefined, 'another use');
  assert.equal(withSessionKey([{ type: 'seats', licenseId: 'lic_1', used: 0, offline: 0 }], 'lse_1', 'c', 'k'), undefined);
});
