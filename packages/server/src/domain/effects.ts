/**
 * What a domain decision asks the store to write. The store applies a decision's
 * effects in order, inside the same transaction that read the state the decision
 * was made on; a `seats` effect carries the guard (never above the seat count,
 * never below zero) so an adapter refuses an over-allocation even if a decision were wrong.
 */
import type { AdminToken, AuditEntry, Customer, Device, Instance, Lease, License, Product } from './types.js';
import type { Waiter } from './queue.js';
import type { WebhookEndpoint, WebhookEvent } from './webhooks.js';

export type Effect =
  | { type: 'customer.insert'; customer: Customer }
  | { type: 'customer.update'; customer: Customer }
  | { type: 'customer.delete'; customerId: string }
  | { type: 'product.insert'; product: Product }
  | { type: 'product.update'; product: Product }
  | { type: 'product.delete'; productId: string }
  | { type: 'license.insert'; license: License }
  | { type: 'license.update'; license: License }
  | { type: 'license.delete'; licenseId: string }
  | { type: 'license.trialStarted'; licenseId: string; at: number }
  | { type: 'device.upsert'; device: Device }
  | { type: 'lease.insert'; lease: Lease }
  | { type: 'lease.update'; lease: Lease }
  | { type: 'lease.delete'; leaseId: string }
  | { type: 'instance.put'; leaseId: string; instance: Instance }
  | { type: 'lease.renew'; renewal: Renewal }
  | { type: 'instance.delete'; leaseId: string; instanceId: string }
  | { type: 'seats'; licenseId: string; used: number; offline: number }
  /** Repairs counters that disagree with the lease rows they count (absolute values, see `service/seatCounters.ts`). */
  | { type: 'seats.set'; licenseId: string; used: number; offline: number }
  | { type: 'adminToken.insert'; token: AdminToken }
  | { type: 'adminToken.revoke'; tokenId: string; at: number }
  | { type: 'audit'; entry: AuditEntry }
  /**
   * An audit entry kept in aggregate: the first one of `key` is inserted with a count of 1, later ones add to its
   * count and last time. At most `cap` distinct keys per `window`; past it, they add to the window's `overflow` entry,
   * so a flood of fresh fingerprints still costs a bounded number of rows (see `denialAudit` in seats.ts).
   */
  | { type: 'audit.aggregate'; entry: AuditEntry; key: string; window: string; cap: number; overflow: { key: string; entry: AuditEntry } }
  | {
      type: 'usage';
      licenseId: string;
      at: number;
      seatsUsed: number;
      peak: number;
      checkouts: number;
      denials: number;
      /** seats held beyond the count at the peak of this change (overdraft in use) */
      peakOverdraft: number;
      /** seats held beyond the count after this change */
      overdraftAtEnd: number;
      overdraftCheckouts: number;
      /** set (true) when this change took the base pool's last seat: a `seats.full` webhook event (domain/webhooks.ts) */
      full?: true;
    }
  /**
   * A feature pool's hourly figures (`domain/features.ts`): its level after a grant (the hour's peak is the highest
   * of these: a level rises only at a grant), grants and denials.
   */
  | { type: 'usage.feature'; licenseId: string; feature: string; at: number; held: number; checkouts: number; denials: number }
  /** The fair queue (`domain/queue.ts`): a waiter written (by license, pool, fingerprint and instance: a new one gets its `seq` then; an existing one keeps its `seq` and `enqueuedAt`). */
  | { type: 'waiter.put'; waiter: Waiter }
  /** a checkout got its seat: out of every queue of the license */
  | { type: 'waiter.delete'; licenseId: string; fingerprint: string; instanceId: string }
  /** waiters that stopped asking or timed out */
  | { type: 'waiters.drop'; seqs: number[] }
  /** the queue's hourly figures; `level` (the seats held) fills the hour's row if this is its first change */
  | { type: 'usage.queue'; licenseId: string; at: number; level: number; queued: number; grants: number; waitMs: number }
  /** A named server-state record (on-premise entitlements, trusted time, deployments): replaced whole. */
  /**
   * A webhook event (domain/webhooks.ts), written with one delivery per endpoint subscribed to its type, in
   * this transaction; with `dedupe`, dropped when an event with that key exists; with `webhookId`, for that
   * endpoint only (a ping).
   */
  | { type: 'webhook.event'; event: WebhookEvent; dedupe: string | null; webhookId?: string }
  | { type: 'webhook.put'; webhook: WebhookEndpoint }
  | { type: 'webhook.delete'; webhookId: string }
  | { type: 'kv.put'; name: string; value: string; at: number }
  | { type: 'kv.delete'; name: string };

/** Thrown by an adapter when a `seats` guard refuses: the transaction is rolled back. */
export class SeatGuardError extends Error {
  constructor(licenseId: string) {
    super(`seat guard refused a change on ${licenseId}`);
    this.name = 'SeatGuardError';
  }
}

/**
 * A heartbeat's whole write when it only moves a live online lease forward: the
 * lease's and the instance's last heartbeat and expiry, and the device's last
 * access. Applied monotonically (never moves anything back) and update-only (a
 * lease or instance that is gone stays gone), so renewals may be applied late,
 * in batches and in any order.
 */
export interface Renewal {
  leaseId: string;
  instanceId: string;
  deviceId: string;
  at: number;
  /** the new expiry of the lease and of the instance; null when the license has no TTL */
  expiresAt: number | null;
}
