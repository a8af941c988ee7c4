/** Which committed effects a console cares about, shared by the adapters. */
import type { Effect } from '../domain/effects.js';
import type { ChangeEvent } from './port.js';

export function changeOf(e: Effect): ChangeEvent | undefined {
  switch (e.type) {
    case 'seats':
    case 'seats.set':
      return { kind: 'seats', licenseId: e.licenseId };
    case 'usage':
      return e.denials > 0 ? { kind: 'denied', licenseId: e.licenseId } : undefined;
    case 'license.insert':
    case 'license.update':
      return { kind: 'license', licenseId: e.license.id };
    case 'license.delete':
      return { kind: 'license', licenseId: e.licenseId };
    case 'adminToken.revoke':
      return { kind: 'token-revoked', tokenId: e.tokenId };
    default:
      return undefined;
  }
}

/** Identifies a change, so a transaction announces each once. */
export function changeKey(c: ChangeEvent): string {
  return c.kind === 'token-revoked' ? `${c.kind}:${c.tokenId}` : `${c.kind}:${c.licenseId ?? ''}`;
}

/** Collects a transaction's changes, once each, and hands them to listeners after commit. */
export class ChangeFeed {
  private readonly listeners = new Set<(e: ChangeEvent) => void>();
  /** changes of the unit being written (a transaction, or one transaction of a group commit) */
  private pending = new Map<string, ChangeEvent>();
  /** changes of units that finished but whose commit is still to come (group commit) */
  private kept = new Map<string, ChangeEvent>();

  record(effect: Effect): void {
    const c = changeOf(effect);
    if (c && this.listeners.size) this.pending.set(changeKey(c), c);
  }
  /** The current unit rolled back: forget its changes (kept ones stay). */
  discard(): void {
    this.pending.clear();
  }
  /** The current unit finished (its savepoint released): keep its changes for the commit. */
  keep(): void {
    for (const [k, c] of this.pending) this.kept.set(k, c);
    this.pending.clear();
  }
  /** The whole transaction rolled back. */
  discardAll(): void {
    this.pending.clear();
    this.kept.clear();
  }
  /** Committed: deliver every kept and pending change once. */
  flush(): void {
    this.keep();
    if (!this.kept.size) return;
    const events = [...this.kept.values()];
    this.kept = new Map();
    for (const e of events) for (const l of this.listeners) l(e);
  }
  deliver(e: ChangeEvent): void {
    for (const l of this.listeners) l(e);
  }
  subscribe(listener: (e: ChangeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
