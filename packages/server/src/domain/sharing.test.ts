import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkRule,
  countingOf,
  describeRule,
  machineLabel,
  normalRule,
  PER_DEVICE,
  PER_INSTANCE,
  sameMachine,
  shareGroupOf,
  useMeta,
} from './sharing.js';
import type { SharingRule } from './types.js';

const lic = (sharing: SharingRule, vmPolicy: 'allow' | 'count-per-instance' | 'deny' = 'allow') => ({ sharing, vmPolicy });
const meta = useMeta({ user: 'ann', hostname: 'ws 1', display: ':0', shareKey: 'proj/x&y' }, '10.0.0.5');

test('share groups: named by the rule attributes in one order, values URL-encoded; site and instance', () => {
  assert.equal(shareGroupOf(lic(PER_DEVICE), 'dev_1', meta), 'device=dev_1');
  assert.equal(shareGroupOf(lic({ by: ['host', 'user'], cap: null }), 'dev_1', meta), 'user=ann&host=ws%201');
  assert.equal(shareGroupOf(lic({ by: ['key'], cap: 2 }), 'dev_1', meta), 'key=proj%2Fx%26y');
  assert.equal(shareGroupOf(lic({ by: ['display', 'device'], cap: null }), 'dev_1', meta), 'device=dev_1&display=%3A0');
  assert.equal(shareGroupOf(lic({ by: ['site'], cap: null }), 'dev_1', meta), 'site');
  assert.equal(shareGroupOf(lic(PER_INSTANCE), 'dev_1', meta), null, 'instance: shares with no one');
});

test('a use lacking an attribute of the rule shares with no one (absent never equals absent)', () => {
  const bare = useMeta({}, null);
  assert.equal(shareGroupOf(lic({ by: ['user'], cap: null }), 'dev_1', bare), null);
  assert.equal(shareGroupOf(lic({ by: ['user'], cap: null }), 'dev_1', useMeta({ user: '' }, null)), null, 'an empty value is absent');
  assert.equal(shareGroupOf(lic({ by: ['device', 'key'], cap: null }), 'dev_1', meta), 'device=dev_1&key=proj%2Fx%26y');
  assert.equal(shareGroupOf(lic({ by: ['device', 'key'], cap: null }), 'dev_1', bare), null);
  // the device is always known
  assert.equal(shareGroupOf(lic(PER_DEVICE), 'dev_1', bare), 'device=dev_1');
});

test('VM policy count-per-instance: a VM or container use shares with no one; others follow the rule', () => {
  const policy = lic({ by: ['user'], cap: null }, 'count-per-instance');
  assert.equal(shareGroupOf(policy, 'dev_1', useMeta({ user: 'ann', vm: true }, null)), null);
  assert.equal(shareGroupOf(policy, 'dev_1', useMeta({ user: 'ann', container: true }, null)), null);
  assert.equal(shareGroupOf(policy, 'dev_1', useMeta({ user: 'ann', vm: false }, null)), 'user=ann');
});

test('rules: one spelling, the classic modes, and what the schema cannot refuse', () => {
  assert.deepEqual(normalRule({ by: ['key', 'user', 'device'], cap: 3 }), { by: ['device', 'user', 'key'], cap: 3 });
  assert.equal(countingOf({ by: ['device'], cap: null }), 'per-device');
  assert.equal(countingOf({ by: ['instance'], cap: null }), 'per-instance');
  assert.equal(countingOf({ by: ['device'], cap: 2 }), 'shared');
  assert.equal(countingOf({ by: ['user'], cap: null }), 'shared');
  assert.equal(describeRule({ by: ['host', 'user'], cap: 3 }), 'user+host, cap 3');
  assert.equal(checkRule({ by: ['instance', 'user'], cap: null }).ok, false);
  assert.equal(checkRule({ by: ['site', 'device'], cap: null }).ok, false);
  assert.equal(checkRule({ by: ['instance'], cap: 1 }).ok, false);
  assert.equal(checkRule({ by: ['site'], cap: 5 }).ok, true);
});

test('machines: equal where both are known; a part one side did not send proves nothing', () => {
  const a = useMeta({ hostname: 'h1', bootId: 'b1' }, '10.0.0.1');
  assert.equal(sameMachine(a, useMeta({ hostname: 'h1', bootId: 'b1' }, '10.0.0.1')), true);
  assert.equal(sameMachine(a, useMeta({ hostname: 'h2', bootId: 'b1' }, '10.0.0.1')), false);
  assert.equal(sameMachine(a, useMeta({ hostname: 'h1', bootId: 'b2' }, '10.0.0.1')), false);
  assert.equal(sameMachine(a, useMeta({ hostname: 'h1', bootId: 'b1' }, '10.0.0.2')), false);
  assert.equal(sameMachine(a, useMeta({}, null)), true);
  assert.equal(sameMachine(a, useMeta({ hostname: 'h1' }, null)), true);
  assert.equal(machineLabel(a), 'h1 (boot b1, 10.0.0.1)');
  assert.equal(machineLabel(useMeta({}, null)), 'unknown host');
});
