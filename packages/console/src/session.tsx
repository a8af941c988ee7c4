/** Who is signed in (token + role) and the live-update hub, shared by every page. */
import { createContext, useCallback, useContext, useEffect, useRef, useState } from 'react';
import type { AdminTokenInfo, Role } from './api';
import type { ChangeEvent, LiveStatus } from './live';

export interface Session {
  token: string;
  me: AdminTokenInfo;
  signOut: (reason?: string) => void;
  can: (needed: Role) => boolean;
  live: LiveHub;
  /** An on-premise server: the catalogue (products, keys, seats, expiry) comes from the license file and is read-only here. */
  onPrem: boolean;
  /** A customer's token (`me.customerId`): that customer's name; null for the vendor's tokens. */
  customerName: string | null;
}

export class LiveHub {
  private listeners = new Set<(e: ChangeEvent) => void>();
  private statusListeners = new Set<(s: LiveStatus) => void>();
  status: LiveStatus = 'connecting';
  emit(e: ChangeEvent): void {
    for (const l of [...this.listeners]) l(e);
  }
  setStatus(s: LiveStatus): void {
    this.status = s;
    for (const l of [...this.statusListeners]) l(s);
  }
  on(l: (e: ChangeEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  onStatus(l: (s: LiveStatus) => void): () => void {
    this.statusListeners.add(l);
    return () => this.statusListeners.delete(l);
  }
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in console');
  return s;
}

export function useCan(needed: Role): boolean {
  return useSession().can(needed);
}

export function useLiveStatus(): LiveStatus {
  const { live } = useSession();
  const [s, set] = useState(live.status);
  useEffect(() => live.onStatus(set), [live]);
  return s;
}

/**
 * Calls `refetch` (debounced) after live changes that `match`es, so a burst of checkouts
 * causes one reload, not one per event. A `resync` (after a reconnect) always matches.
 */
export function useLiveRefetch(refetch: () => void, match: (e: ChangeEvent) => boolean = () => true, delayMs = 300): void {
  const { live } = useSession();
  const fn = useRef(refetch);
  const m = useRef(match);
  fn.current = refetch;
  m.current = match;
  useEffect(() => {
    let t: ReturnType<typeof setTimeout> | undefined;
    const off = live.on((e) => {
      if (e.kind !== 'resync' && !m.current(e)) return;
      clearTimeout(t);
      t = setTimeout(() => fn.current(), delayMs);
    });
    return () => {
      clearTimeout(t);
      off();
    };
  }, [live, delayMs]);
}

/** Loads data; keeps the previous data while reloading so live refreshes do not flicker. */
export function useLoad<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: unknown[],
): {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  setData: (d: T) => void;
} {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  useEffect(() => {
    const ctl = new AbortController();
    setLoading(true);
    load(ctl.signal).then(
      (d) => {
        if (ctl.signal.aborted) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e: unknown) => {
        if (ctl.signal.aborted) return;
        setError(e);
        setLoading(false);
      },
    );
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { data, error, loading, reload, setData };
}

export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · floatd console`;
  }, [title]);
}
