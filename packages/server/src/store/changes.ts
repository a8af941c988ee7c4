/** Which committed effects a console cares about, shared by the adapters. */
import type { Effect } from '../domain/effects.js';
import type { ChangeEvent } from './port.js';

export function changeOf(e: Effect): ChangeEvent | undefined {
  switch (e.type) {
    case 'seats':
      return { kind: 'seats', licenseId: e.licenseId };
    case 'usage':
      return e.denials > 0 ? { kind: 'denied', licenseId: e.licenseId } : undefined;
    case 'license.insert':
    case 'license.update':
      return { kind: 'license', licenseId: e.license.id };
    case 'license.delete':
      return { kind: 'license', licenseId: e.licenseId };
    default:
      return undefined;
  }
}

/** Collects a transaction's changes, once each, and hands them to listeners after commit. */
export class ChangeFeed {
  private readonly listeners = new Set<(e: ChangeEvent) => void>();
  private pending = new Map<string, ChangeEvent>();

  record(effect: Effect): void {
    const c = changeOf(effect);
    if (c && this.listeners.size) this.pending.set(`${c.kind}:${c.licenseId}`, c);
  }
  discard(): void {
    this.pending.clear();
  }
  flush(): void {
    if (!this.pending.size) return;
    const events = [...this.pending.values()];
    this.pending = new Map();
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
