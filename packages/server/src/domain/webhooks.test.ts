/** Which audited changes become which webhook events (domain/webhooks.ts), the dedupe keys, and the retry schedule. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Effect } from './effects.js';
import type { AuditEntry } from './types.js';
import { BACKOFF_MS, expiryEvent, nextAttemptAt, RETRY_FOR_MS, withWebhookEvents } from './webhooks.js';

const T = Date.parse('2026-03-02T09:30:00Z');
const audit = (type: AuditEntry['type'], over: Partial<AuditEntry> = {}): Effect => ({
  type: 'audit',
  entry: { at: T, type, actor: 'client', licenseId: 'lic_1', deviceId: null, leaseId: null, reason: null, data: {}, ...over },
});
let n = 0;
const ids = () => `evt_${String(++n).padStart(20, '0')}`;
const eventsOf = (effects: Effect[]) =>
  withWebhookEvents(effects, ids).flatMap((e) => (e.type === 'webhook.event' ? [{ type: e.event.type, dedupe: e.dedupe }] : []));

test('every audited change a receiver is told of maps to its event type; others to none', () => {
  const cases: [Effect, string | null][] = [
    [audit('denied', { reason: 'NO_SEATS_AVAILABLE' }), 'checkout.denied'],
    [audit('release', { reason: 'expired', actor: 'reclaimer' }), 'lease.reclaimed'],
    [audit('release', { reason: 'offline-returned' }), 'offline.returned'],
    [audit('release', { reason: 'checkin' }), null],
    [audit('release', { reason: 'force-release' }), null],
    [audit('offline-checkout'), 'offline.borrowed'],
    [audit('license.updated', { data: { changed: { suspended: true } } }), 'license.suspended'],
    [audit('license.updated', { data: { changed: { suspended: false } } }), null],
    [audit('license.updated', { data: { changed: { seats: 3 } } }), null],
    [audit('entitlements.loaded', { licenseId: null }), 'entitlements.loaded'],
    [audit('usage-report.imported', { licenseId: null }), 'usage-report.received'],
    [audit('server-clock.rollback', { licenseId: null }), 'server-clock.rollback'],
    [audit('state.tampered', { licenseId: null }), 'state.tampered'],
    [audit('checkout'), null],
    [audit('heartbeat-revive'), null],
  ];
  for (const [effect, type] of cases) {
    const got = eventsOf([effect]);
    assert.deepEqual(
      got.map((g) => g.type),
      type ? [type] : [],
      `${(effect as { entry: AuditEntry }).entry.type} ${(effect as { entry: AuditEntry }).entry.reason ?? ''}`,
    );
  }
});

test('the noisy events carry a per-license, per-hour dedupe key; a pool filling up is seats.full; events go after the effects', () => {
  const denied = eventsOf([audit('denied')]);
  assert.equal(denied[0]!.dedupe, `checkout.denied:lic_1:${Date.parse('2026-03-02T09:00:00Z')}`);
  const usage: Effect = {
    type: 'usage',
    licenseId: 'lic_1',
    at: T,
    seatsUsed: 3,
    peak: 3,
    checkouts: 1,
    denials: 0,
    peakOverdraft: 0,
    overdraftAtEnd: 0,
    overdraftCheckouts: 0,
    full: true,
  };
  const out = withWebhookEvents([usage, audit('checkout'), audit('checkout')], ids);
  assert.deepEqual(
    out.map((e) => e.type),
    ['usage', 'audit', 'audit', 'webhook.event'],
    'audit runs stay together: the events come last',
  );
  const full = out[3] as Extract<Effect, { type: 'webhook.event' }>;
  assert.equal(full.event.type, 'seats.full');
  assert.equal(full.dedupe, `seats.full:lic_1:${Date.parse('2026-03-02T09:00:00Z')}`);
  const none: Effect[] = [audit('checkout')];
  assert.equal(withWebhookEvents(none, ids), none, 'nothing to tell: the same array, no copy');
});

test('expiry: warned within the window once per end, told of the end within a day of it, not of an old end', () => {
  const day = 86_400_000;
  assert.equal(expiryEvent(ids(), 'lic_1', T + 20 * day, T, 14), undefined, 'not yet');
  const warn = expiryEvent(ids(), 'lic_1', T + 5 * day, T, 14)!;
  assert.equal(warn.event.type, 'license.expiring');
  assert.equal(warn.event.data.daysLeft, 5);
  assert.equal(warn.dedupe, `license.expiring:lic_1:${T + 5 * day}`);
  assert.equal(expiryEvent(ids(), 'lic_1', T - 3_600_000, T, 14)!.event.type, 'license.expired');
  assert.equal(expiryEvent(ids(), 'lic_1', T - 2 * day, T, 14), undefined, 'an end long past is not news');
});

test('retries: the backoff, one last try at the end of the day, then none', () => {
  assert.equal(nextAttemptAt(T, 1, T), T + BACKOFF_MS[0]);
  assert.equal(nextAttemptAt(T, 3, T + 60_000), T + 60_000 + BACKOFF_MS[2]);
  assert.equal(nextAttemptAt(T, 20, T + RETRY_FOR_MS - 60_000), T + RETRY_FOR_MS, 'the last try at the end of the day');
  assert.equal(nextAttemptAt(T, 21, T + RETRY_FOR_MS), null);
});
