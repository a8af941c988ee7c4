/**
 * Webhook events (issue #16): what floatd tells a vendor's systems, and when it tries again.
 *
 * Events are an outbox: a decision's effects that a receiver cares about (a refusal, a reclaimed seat,
 * an offline borrow, a suspension, a loaded license file, a tampered state…) are audited already, in the
 * transaction that makes the change; `withWebhookEvents` adds one `webhook.event` effect for each, so the
 * store writes the event (and one delivery per subscribed endpoint) in that same transaction. A crash loses
 * none, a rollback sends none. Events that could repeat without limit (refusals during a flood, a pool
 * that fills and frees all day) carry a dedupe key: one per license and hour. Pure: no I/O, no clock.
 */
import type { WebhookEventType } from '@floatd/protocol';
import { RELEASE_REASONS } from '@floatd/protocol';
import type { Effect } from './effects.js';
import type { AuditEntry } from './types.js';

/** A receiver: where events go, which types, and the secret that signs them. */
export interface WebhookEndpoint {
  id: string;
  url: string;
  /** event types, or `*` */
  events: string[];
  description: string;
  enabled: boolean;
  /** `whsec_` + base64 of 32 random bytes */
  secret: string;
  createdAt: number;
  updatedAt: number;
}

/** One try to deliver: the receiver's status (null: no answer), what went wrong, and how long it took. */
export interface DeliveryAttempt {
  at: number;
  status: number | null;
  error: string | null;
  durationMs: number;
}

export type DeliveryState = 'pending' | 'delivered' | 'failed';

/** A delivery as the log shows it. */
export interface DeliveryView {
  id: string;
  webhookId: string;
  eventId: string;
  eventType: string;
  licenseId: string | null;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number | null;
  createdAt: number;
  deliveredAt: number | null;
  /** the newest attempts, newest first */
  lastAttempts: DeliveryAttempt[];
}

/** A delivery claimed for sending: its event and where it goes. */
export interface ClaimedDelivery {
  id: string;
  attempts: number;
  event: WebhookEvent;
  endpoint: { id: string; url: string; secret: string };
}

export interface WebhookEvent {
  /** `evt_…`, the receiver's deduplication key (the same on every attempt and redelivery) */
  id: string;
  type: WebhookEventType;
  licenseId: string | null;
  at: number;
  data: Record<string, unknown>;
}

/** One event per dedupe key: a second with the same key is dropped (at most one per license and hour for the noisy types). */
export const HOURLY_MS = 3_600_000;

/** Deliveries are retried for this long after the event, then marked failed (redeliver by hand). */
export const RETRY_FOR_MS = 24 * HOURLY_MS;
/** Waits before the 2nd, 3rd, … attempt; the last repeats until RETRY_FOR_MS has passed. */
export const BACKOFF_MS = [30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 28_800_000] as const;

/** When a delivery that failed its `attempts`-th attempt is tried again: the backoff, one last try at the end of its day, then null. */
export function nextAttemptAt(eventAt: number, attempts: number, now: number): number | null {
  const next = now + BACKOFF_MS[Math.min(attempts, BACKOFF_MS.length) - 1]!;
  const end = eventAt + RETRY_FOR_MS;
  if (next <= end) return next;
  return now >= end ? null : end;
}

/** The event an audited change stands for, if a receiver is told of it (and its dedupe key). */
function eventOfAudit(entry: AuditEntry): { type: WebhookEventType; dedupe?: string; data: Record<string, unknown> } | undefined {
  const ids = { deviceId: entry.deviceId, leaseId: entry.leaseId, actor: entry.actor };
  switch (entry.type) {
    case 'denied':
      return {
        type: 'checkout.denied',
        dedupe: `checkout.denied:${entry.licenseId}:${entry.at - (entry.at % HOURLY_MS)}`,
        data: { ...ids, reason: entry.reason, ...entry.data },
      };
    case 'release':
      if (entry.reason === RELEASE_REASONS.EXPIRED) return { type: 'lease.reclaimed', data: { ...ids, reason: entry.reason } };
      if (entry.reason === RELEASE_REASONS.OFFLINE_RETURNED) return { type: 'offline.returned', data: ids };
      return undefined;
    case 'offline-checkout':
      return { type: 'offline.borrowed', data: { ...ids, ...entry.data } };
    case 'license.updated': {
      const changed = entry.data.changed as Record<string, unknown> | undefined;
      return changed?.suspended === true ? { type: 'license.suspended', data: { actor: entry.actor } } : undefined;
    }
    case 'entitlements.loaded':
      return { type: 'entitlements.loaded', data: entry.data };
    case 'usage-report.imported':
      return { type: 'usage-report.received', data: entry.data };
    case 'server-clock.rollback':
      return { type: 'server-clock.rollback', data: entry.data };
    case 'state.tampered':
      return { type: 'state.tampered', data: { reason: entry.reason, ...entry.data } };
    default:
      return undefined;
  }
}

/**
 * The effects, then one `webhook.event` for each audited change a receiver is told of (at the end, so runs of
 * audit entries stay one bulk write). The adapters call it on every `apply`, so every decision's events are
 * written in its own transaction without each decision saying so.
 */
export function withWebhookEvents(effects: readonly Effect[], newEventId: () => string): readonly Effect[] {
  let events: Effect[] | undefined;
  for (const e of effects) {
    if (e.type === 'usage' && e.full) {
      (events ??= []).push(seatsFullEvent(newEventId(), e.licenseId, e.at, { seatsUsed: e.seatsUsed }));
      continue;
    }
    const entry = e.type === 'audit' || e.type === 'audit.aggregate' ? e.entry : undefined;
    const found = entry && eventOfAudit(entry);
    if (!entry || !found) continue;
    (events ??= []).push({
      type: 'webhook.event',
      event: { id: newEventId(), type: found.type, licenseId: entry.licenseId, at: entry.at, data: found.data },
      dedupe: found.dedupe ?? null,
    });
  }
  return events ? [...effects, ...events] : effects;
}

/** The `seats.full` event of a checkout that took a pool's last seat (at most one per license and hour). */
export function seatsFullEvent(id: string, licenseId: string, at: number, data: { seatsUsed: number }): Effect & { type: 'webhook.event' } {
  return {
    type: 'webhook.event',
    event: { id, type: 'seats.full', licenseId, at, data },
    dedupe: `seats.full:${licenseId}:${at - (at % HOURLY_MS)}`,
  };
}

/** The expiry events of a license that ends at `endsAt`: warned `expiringDays` before, and when it ends (once each per end). */
export function expiryEvent(
  id: string,
  licenseId: string,
  endsAt: number,
  now: number,
  expiringDays: number,
): (Effect & { type: 'webhook.event' }) | undefined {
  if (endsAt <= now) {
    // Told once, within a day of the end (a license that ended long before webhooks existed is not news).
    if (now - endsAt > 24 * HOURLY_MS) return undefined;
    return {
      type: 'webhook.event',
      event: { id, type: 'license.expired', licenseId, at: now, data: { endedAt: new Date(endsAt).toISOString() } },
      dedupe: `license.expired:${licenseId}:${endsAt}`,
    };
  }
  if (endsAt - now > expiringDays * 24 * HOURLY_MS) return undefined;
  return {
    type: 'webhook.event',
    event: {
      id,
      type: 'license.expiring',
      licenseId,
      at: now,
      data: { endsAt: new Date(endsAt).toISOString(), daysLeft: Math.ceil((endsAt - now) / (24 * HOURLY_MS)) },
    },
    dedupe: `license.expiring:${licenseId}:${endsAt}`,
  };
}
