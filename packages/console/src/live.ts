/**
 * Live updates: reads GET /v1/admin/events (server-sent events) with fetch() and a stream
 * reader, because EventSource cannot send the Authorization header. Reconnects with
 * exponential backoff and jitter; after a reconnect it emits a `resync` so pages refetch
 * whatever they may have missed while disconnected.
 */
import { pathOf, routes } from '@floatd/protocol';

/** A change the server announced, or `resync` (after a reconnect of the stream or of the server's own change feed: whatever was missed must be read again). */
export type ChangeEvent = routes.admin.ChangeEvent;
export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'stopped';

/** The server sends `: ping` every 15 s; silence for this long means a dead connection. */
const IDLE_MS = 40_000;
const MAX_BACKOFF_MS = 30_000;
/** A request whose answer has not begun by then is given up and tried again (a stuck connection would keep "Connecting…" for ever). */
const CONNECT_MS = 10_000;

export function startLive(
  token: string,
  onEvent: (e: ChangeEvent) => void,
  onStatus: (s: LiveStatus) => void,
  onUnauthenticated: () => void,
): () => void {
  let stopped = false;
  let controller: AbortController | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let attempt = 0;
  let everConnected = false;

  const scheduleRetry = () => {
    if (stopped) return;
    onStatus('reconnecting');
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
    attempt++;
    retryTimer = setTimeout(connect, delay);
  };

  const connect = async () => {
    if (stopped) return;
    controller = new AbortController();
    const ctl = controller;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => ctl.abort(), IDLE_MS);
    };
    const connecting = setTimeout(() => ctl.abort(), CONNECT_MS);
    try {
      const res = await fetch(pathOf(routes.admin.events), {
        headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
        signal: ctl.signal,
        cache: 'no-store',
      });
      clearTimeout(connecting);
      if (res.status === 401) {
        stopped = true;
        onStatus('stopped');
        onUnauthenticated();
        return;
      }
      if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
      onStatus('live');
      if (everConnected) onEvent({ kind: 'resync', licenseId: null, at: new Date().toISOString() });
      everConnected = true;
      attempt = 0;
      touch();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        touch();
        buf += value.replace(/\r\n?/g, '\n');
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const e = parseBlock(block);
          if (e) onEvent(e);
        }
      }
    } catch {
      // network error, idle abort or sign-out: handled below
    } finally {
      clearTimeout(connecting);
      clearTimeout(idle);
    }
    scheduleRetry();
  };

  onStatus('connecting');
  void connect();
  return () => {
    stopped = true;
    clearTimeout(retryTimer);
    controller?.abort();
    onStatus('stopped');
  };
}

function parseBlock(block: string): ChangeEvent | null {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (event !== 'change' || data.length === 0) return null;
  try {
    const d = JSON.parse(data.join('\n')) as Partial<ChangeEvent>;
    if (d.kind !== 'seats' && d.kind !== 'denied' && d.kind !== 'license' && d.kind !== 'resync') return null;
    return { kind: d.kind, licenseId: typeof d.licenseId === 'string' ? d.licenseId : null, at: String(d.at ?? '') };
  } catch {
    return null;
  }
}
