/**
 * What floatd holds by itself against a connection flood (issue #24): one
 * address, or a few, opening sockets and trickling bytes so that nobody else
 * gets one. A flood spread over many addresses belongs to a reverse proxy or
 * load balancer in front (docs/operations.md, docs/security.md).
 *
 * - per-address cap: at most `perAddress` open connections from one peer address;
 * - total cap: at most `total` open connections, sized below the process's
 *   file-descriptor limit so the database, its WAL and the log always get a
 *   descriptor (past the limit, accept() itself fails and nobody is served);
 * - headers deadline: a connection must deliver a complete request head within
 *   `headersTimeoutMs` of opening (or of its previous answer);
 * - idle deadline: a connection that has not yet made an authenticated request
 *   is closed `unauthenticatedIdleMs` after its last answer (authenticated ones
 *   keep the normal keep-alive).
 *
 * Past a cap a new connection is refused at once (`503` + close, no waiting),
 * and every refusal or closure is counted in `floatd_connections_refused_total`.
 * Timers are the sockets' own (not the injectable Clock): they bound resources
 * held by a peer, not a licensing rule.
 */
import { readFileSync } from 'node:fs';
import type { Server, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Counter, Gauge } from 'prom-client';

export interface ConnectionLimits {
  /** open connections per peer address; 0 = no per-address cap */
  perAddress: number;
  /** open connections in all; 0 = no total cap */
  total: number;
  headersTimeoutMs: number;
  unauthenticatedIdleMs: number;
}

/** Descriptors kept free for everything that is not a client connection (database, WAL, log, DNS, node itself). */
export const FD_RESERVE = 128;
/** Below this soft limit the server warns at start and `floatd doctor` warns. */
export const FD_LIMIT_LOW = 4096;

/** The process's soft limit on open files, or undefined where it cannot be read (not Linux). */
export function fileDescriptorLimit(limitsFile = '/proc/self/limits'): number | undefined {
  try {
    const line = readFileSync(limitsFile, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft === 'unlimited') return Number.MAX_SAFE_INTEGER;
    const n = Number(soft);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The total cap that fits under `fdLimit` with room for the database pool and `FD_RESERVE`. */
export function totalCapFor(fdLimit: number | undefined, poolSize: number): number {
  if (fdLimit === undefined) return 4096;
  return Math.max(16, Math.min(fdLimit - FD_RESERVE - poolSize, 1_000_000));
}

const AUTHENTICATED = Symbol('floatd.authenticated');
type TrackedSocket = Socket & { [AUTHENTICATED]?: boolean; floatdTimer?: NodeJS.Timeout | undefined };

/**
 * Whether an answer shows that its request authenticated: a client or admin route answered with anything but
 * 401 (no valid key or token) or 429 (rate limited, possibly before the check); on a client route also not 400,
 * which is a validation answered before the key is looked up. A 403 (a valid admin token without the role)
 * or a 409 denial did authenticate.
 */
export function authenticates(route: string, status: number): boolean {
  if (status === 401 || status === 429) return false;
  if (route.startsWith('/v1/admin/')) return true;
  return route.startsWith('/v1/client/') && status !== 400 && status < 500;
}

/** Marks the connection a request came on as authenticated. */
export function markAuthenticated(req: IncomingMessage): void {
  (req.socket as TrackedSocket)[AUTHENTICATED] = true;
}

export function isAuthenticated(req: IncomingMessage): boolean {
  return (req.socket as TrackedSocket)[AUTHENTICATED] === true;
}

/**
 * The `Keep-Alive` hint for an answer on a connection that will idle under the short deadline: a client that
 * honours it (undici, browsers) closes the idle connection itself a second early instead of racing the server's close.
 */
export function keepAliveHint(unauthenticatedIdleMs: number): string {
  return `timeout=${Math.max(1, Math.floor(unauthenticatedIdleMs / 1000))}`;
}

const REFUSAL =
  'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ';

function refuse(socket: Socket, message: string): void {
  const body = JSON.stringify({ error: { code: 'SERVICE_UNAVAILABLE', message } });
  socket.on('error', () => {});
  // Written and closed at once; destroy() right after end() so the descriptor is given back now, not after a FIN handshake.
  socket.end(`${REFUSAL}${Buffer.byteLength(body)}\r\n\r\n${body}`);
  setImmediate(() => socket.destroy());
}

export function guardConnections(
  server: Server,
  limits: ConnectionLimits,
  metrics: { connectionRefusals: Counter<'reason'>; connectionsOpen: Gauge },
): { open(): number } {
  const perAddress = new Map<string, number>();
  let open = 0;
  // Node's own head deadline is checked only every `connectionsCheckingInterval`: keep it but rely on the timers below.
  server.headersTimeout = Math.max(limits.headersTimeoutMs, 1000);
  server.requestTimeout = Math.max(server.requestTimeout || 0, limits.headersTimeoutMs + 1000);

  const arm = (socket: TrackedSocket, ms: number, reason: string) => {
    clearTimeout(socket.floatdTimer);
    socket.floatdTimer = setTimeout(() => {
      metrics.connectionRefusals.inc({ reason });
      socket.destroy();
    }, ms);
    socket.floatdTimer.unref();
  };

  server.on('connection', (raw: Socket) => {
    const socket = raw as TrackedSocket;
    const address = socket.remoteAddress ?? 'unknown';
    if (limits.total > 0 && open >= limits.total) {
      metrics.connectionRefusals.inc({ reason: 'total' });
      return refuse(socket, 'the server is at its connection limit; retry');
    }
    const mine = perAddress.get(address) ?? 0;
    if (limits.perAddress > 0 && mine >= limits.perAddress) {
      metrics.connectionRefusals.inc({ reason: 'per-address' });
      return refuse(socket, 'too many connections from this address; retry');
    }
    open++;
    perAddress.set(address, mine + 1);
    metrics.connectionsOpen.set(open);
    arm(socket, limits.headersTimeoutMs, 'headers-timeout');
    socket.once('close', () => {
      clearTimeout(socket.floatdTimer);
      open--;
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
      metrics.connectionsOpen.set(open);
    });
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as TrackedSocket;
    // The head arrived: the request runs under the normal timeouts.
    clearTimeout(socket.floatdTimer);
    socket.floatdTimer = undefined;
    res.once('finish', () => {
      if (socket.destroyed) return;
      // The next request's head must come in time too; an unauthenticated connection may not idle long.
      if (socket[AUTHENTICATED])
        arm(socket, Math.max(limits.headersTimeoutMs, server.keepAliveTimeout + limits.headersTimeoutMs), 'headers-timeout');
      else arm(socket, limits.unauthenticatedIdleMs, 'idle-unauthenticated');
    });
  });

  return { open: () => open };
}
