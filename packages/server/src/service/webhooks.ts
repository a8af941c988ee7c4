/**
 * Webhooks (issue #16): the endpoints administrators add, and the sender that delivers the outbox
 * (`domain/webhooks.ts`) to them.
 *
 * Delivery is at least once. Each node's sender claims due deliveries (`Store.claimDeliveries`: one
 * claimer per delivery on the whole cluster), POSTs each with Standard Webhooks headers (`webhook-id`
 * = the event id, the same on every attempt, for the receiver's deduplication; `webhook-timestamp`;
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`), and records the answer:
 * a 2xx is delivered, anything else is tried again with backoff for a day, then marked failed. A node
 * that dies mid-send leaves its claim to expire (`CLAIM_MS`; SQLite forgets claims at start), and the
 * delivery is sent again: a receiver may see an event twice, never zero times.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { CreateWebhook, UpdateWebhook } from '@floatd/protocol';
import type { Clock } from '../domain/clock.js';
import type { Effect } from '../domain/effects.js';
import { licenseEndsAt } from '../domain/policy.js';
import { fail, ok, type Result } from '../domain/result.js';
import type { AuditEntry } from '../domain/types.js';
import {
  expiryEvent,
  nextAttemptAt,
  type ClaimedDelivery,
  type DeliveryAttempt,
  type DeliveryView,
  type WebhookEndpoint,
} from '../domain/webhooks.js';
import { newId } from '../ids.js';
import type { Store } from '../store/port.js';

/** How long one attempt may take (connect, send, the receiver's answer). */
export const ATTEMPT_TIMEOUT_MS = 10_000;
/** How long a claimed delivery is kept from other senders: longer than an attempt, short enough to resend soon after a crash. */
export const CLAIM_MS = 60_000;
/** Deliveries a sender claims per round, and sends at once. */
const BATCH = 16;

/** The Standard Webhooks signature of a delivery: HMAC-SHA256 keyed with the secret's bytes, over `<id>.<timestamp>.<body>`. */
export function signDelivery(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** What a receiver gets: the event, as JSON. */
export function deliveryBody(d: ClaimedDelivery): string {
  const e = d.event;
  return JSON.stringify({ id: e.id, type: e.type, createdAt: new Date(e.at).toISOString(), licenseId: e.licenseId, data: e.data });
}

export class WebhookService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async create(input: CreateWebhook, actor: string): Promise<WebhookEndpoint> {
    const now = this.clock.now();
    const webhook: WebhookEndpoint = {
      id: newId('whk'),
      url: input.url,
      events: [...input.events].sort(),
      description: input.description ?? '',
      enabled: input.enabled ?? true,
      secret: `whsec_${randomBytes(32).toString('base64')}`,
      createdAt: now,
      updatedAt: now,
    };
    await this.store.transaction((tx) =>
      tx.apply([{ type: 'webhook.put', webhook }, audit(now, 'webhook.created', actor, { webhookId: webhook.id, url: webhook.url })]),
    );
    return webhook;
  }

  async update(id: string, patch: UpdateWebhook, actor: string): Promise<Result<WebhookEndpoint>> {
    const current = await this.store.getWebhook(id);
    if (!current) return fail('WEBHOOK_NOT_FOUND', `no webhook ${id}`);
    const now = this.clock.now();
    const webhook: WebhookEndpoint = {
      ...current,
      url: patch.url ?? current.url,
      events: patch.events ? [...patch.events].sort() : current.events,
      description: patch.description ?? current.description,
      enabled: patch.enabled ?? current.enabled,
      updatedAt: now,
    };
    await this.store.transaction((tx) =>
      tx.apply([{ type: 'webhook.put', webhook }, audit(now, 'webhook.updated', actor, { webhookId: id, changed: Object.keys(patch) })]),
    );
    return ok(webhook);
  }

  async delete(id: string, actor: string): Promise<Result<{ deleted: true }>> {
    if (!(await this.store.getWebhook(id))) return fail('WEBHOOK_NOT_FOUND', `no webhook ${id}`);
    const now = this.clock.now();
    await this.store.transaction((tx) =>
      tx.apply([{ type: 'webhook.delete', webhookId: id }, audit(now, 'webhook.deleted', actor, { webhookId: id })]),
    );
    return ok({ deleted: true as const });
  }

  /** Queues a `ping` event for one endpoint (enabled or not), and answers its delivery. */
  async ping(id: string, actor: string): Promise<Result<DeliveryView>> {
    if (!(await this.store.getWebhook(id))) return fail('WEBHOOK_NOT_FOUND', `no webhook ${id}`);
    const now = this.clock.now();
    const eventId = newId('evt');
    await this.store.transaction((tx) =>
      tx.apply([
        {
          type: 'webhook.event',
          event: { id: eventId, type: 'ping', licenseId: null, at: now, data: { actor } },
          dedupe: null,
          webhookId: id,
        },
      ]),
    );
    const page = await this.store.listDeliveries(id, { limit: 5 });
    const delivery = page.items.find((d) => d.eventId === eventId);
    return delivery ? ok(delivery) : fail('WEBHOOK_NOT_FOUND', `no webhook ${id}`);
  }

  async redeliver(deliveryId: string): Promise<Result<DeliveryView>> {
    if (!(await this.store.redeliver(deliveryId, this.clock.now())))
      return fail('WEBHOOK_DELIVERY_NOT_FOUND', `no webhook delivery ${deliveryId}`);
    const d = await this.store.getDelivery(deliveryId);
    return d ? ok(d) : fail('WEBHOOK_DELIVERY_NOT_FOUND', `no webhook delivery ${deliveryId}`);
  }

  async deliveries(id: string, page: { limit: number; cursor?: string | undefined; state?: DeliveryView['state'] | undefined }) {
    if (!(await this.store.getWebhook(id))) return fail('WEBHOOK_NOT_FOUND', `no webhook ${id}`);
    return ok(await this.store.listDeliveries(id, page));
  }
}

/** What the sender reports, for metrics and the note's figures. */
export interface SenderObserver {
  attempt?(outcome: 'delivered' | 'retry' | 'failed', ms: number): void;
}

/**
 * The sender: every `intervalMs` it claims due deliveries and sends them; every `scanEveryMs` it writes the
 * expiry events of licenses ending within `expiringDays` (each once per end: a dedupe key). Runs on every node.
 */
export class WebhookSender {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastScan = -Infinity;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly opts: {
      expiringDays: number;
      intervalMs?: number;
      scanEveryMs?: number;
      /** default ATTEMPT_TIMEOUT_MS */
      attemptTimeoutMs?: number;
      userAgent: string;
      onError?: (err: unknown) => void;
      observer?: SenderObserver;
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick().catch((err) => this.opts.onError?.(err)), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One round (the timer's, or a test's): the expiry scan when due, then one batch of deliveries. Never two at once. */
  tick(): Promise<void> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async round(): Promise<void> {
    const now = this.clock.now();
    if (now - this.lastScan >= (this.opts.scanEveryMs ?? 300_000) || now < this.lastScan) {
      this.lastScan = now;
      await this.scanExpiries(now);
    }
    const claimed = await this.store.claimDeliveries(now, now + CLAIM_MS, BATCH);
    await Promise.all(claimed.map((d) => this.send(d)));
  }

  private async scanExpiries(now: number): Promise<void> {
    if ((await this.store.listWebhooks()).length === 0) return;
    const effects: Effect[] = [];
    for (let cursor: string | undefined, first = true; first || cursor; first = false) {
      const page = await this.store.listLicenses({ limit: 500, cursor });
      for (const l of page.items) {
        if (l.model === 'trial' && l.trialStartedAt === null) continue; // a trial not started has no end yet
        const end = licenseEndsAt(l, now);
        const e = end === null ? undefined : expiryEvent(newId('evt'), l.id, end, now, this.opts.expiringDays);
        if (e) effects.push(e);
      }
      cursor = page.nextCursor ?? undefined;
    }
    if (effects.length) await this.store.transaction((tx) => tx.apply(effects));
  }

  private async send(d: ClaimedDelivery): Promise<void> {
    const started = Date.now();
    const at = this.clock.now();
    const body = deliveryBody(d);
    const timestamp = Math.floor(at / 1000);
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(d.endpoint.url, {
        method: 'POST',
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.opts.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS),
        headers: {
          'content-type': 'application/json',
          'user-agent': this.opts.userAgent,
          'webhook-id': d.event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signDelivery(d.endpoint.secret, d.event.id, timestamp, body),
        },
      });
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
      if (status < 200 || status > 299) error = `the receiver answered ${status}`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      error =
        e.name === 'TimeoutError'
          ? `no answer within ${(this.opts.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS) / 1000} s`
          : `not sent: ${e.cause?.code ?? e.message}`;
    }
    const durationMs = Date.now() - started;
    const attempt: DeliveryAttempt = { at, status, error, durationMs };
    const now = this.clock.now();
    const next = error === null ? null : nextAttemptAt(d.event.at, d.attempts + 1, now);
    const state = error === null ? 'delivered' : next === null ? 'failed' : 'pending';
    await this.store.recordAttempt(d.id, attempt, { state, nextAttemptAt: next });
    this.opts.observer?.attempt?.(state === 'delivered' ? 'delivered' : state === 'failed' ? 'failed' : 'retry', durationMs);
  }
}

function audit(at: number, type: AuditEntry['type'], actor: string, data: Record<string, unknown>): Effect {
  return { type: 'audit', entry: { at, type, actor, licenseId: null, deviceId: null, leaseId: null, reason: null, data } };
}
