/**
 * Tools for the PostgreSQL fault tests: a TCP proxy that cuts every open connection at
 * once (the database stays reachable) and can move to another address (a virtual IP or
 * HAProxy after a fail-over), a `floatd serve` child process, and devices that check
 * out, heartbeat and check in while recording what the server acknowledged, so a
 * checker can tell a lost or a resurrected lease.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { TEST_KEY_ENCRYPTION_KEY } from './pg.js';

const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));

export interface CutProxy {
  port: number;
  /** connections open through the proxy right now */
  readonly open: number;
  /** how many connections it has cut */
  readonly cutCount: number;
  /** Resets every open connection (both sides), or ends them gracefully (FIN) with `how: 'end'`; new connections are accepted. */
  cut(how?: 'reset' | 'end'): number;
  /**
   * Makes every open connection half-open, as a firewall that dropped its state does: from now on nothing
   * passes either way on them and neither end is told (no FIN, no RST); new connections work normally.
   * After `databaseNoticesAfterMs` the database's end is closed (its keepalives found the client gone:
   * the session ends and its locks go), while floatd's end stays open and silent until floatd gives up.
   * Returns how many connections went silent.
   */
  silence(opts?: { databaseNoticesAfterMs?: number }): number;
  /** Forwards new connections to this port from now on (the address moved). */
  moveTo(port: number): void;
  /** Refuses new connections (the database is down) or accepts them again. */
  refuse(on: boolean): void;
  close(): Promise<void>;
}

export async function cutProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<CutProxy> {
  const pairs = new Set<[Socket, Socket]>();
  /** floatd's ends of half-open connections (see silence) */
  const silenced = new Set<Socket>();
  let target = targetPort;
  let cuts = 0;
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) return void client.resetAndDestroy();
    const upstream = connect(target, targetHost);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    get open() {
      return pairs.size;
    },
    get cutCount() {
      return cuts;
    },
    cut(how = 'reset') {
      const n = pairs.size;
      for (const pair of [...pairs]) {
        for (const s of pair) how === 'reset' ? s.resetAndDestroy() : s.end();
        if (how === 'end') setTimeout(() => pair.forEach((s) => s.destroy()), 50).unref();
        pairs.delete(pair);
      }
      cuts += n;
      return n;
    },
    silence({ databaseNoticesAfterMs = 5000 } = {}) {
      const n = pairs.size;
      for (const pair of [...pairs]) {
        const [client, upstream] = pair;
        // Neither end learns what happens to the other from now on.
        for (const socket of pair)
          socket
            .removeAllListeners('close')
            .removeAllListeners('error')
            .on('error', () => undefined);
        client.unpipe(upstream);
        upstream.unpipe(client);
        // Bytes sent from now on are lost: read and dropped.
        client.on('data', () => undefined).resume();
        upstream.on('data', () => undefined).resume();
        pairs.delete(pair);
        silenced.add(client);
        client.once('close', () => silenced.delete(client));
        setTimeout(() => upstream.destroy(), databaseNoticesAfterMs).unref();
      }
      return n;
    },
    moveTo(port) {
      target = port;
    },
    refuse(on) {
      refusing = on;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const pair of pairs) pair.forEach((s) => s.destroy());
        for (const socket of silenced) socket.destroy();
        server.close(() => r());
      }),
  };
}

export interface NodeProcess {
  child: ChildProcess;
  url: string;
  /** stdout and stderr so far */
  output(): string;
  /** set once the process exited (with its code or signal) */
  exit: { code: number | null; signal: string | null } | undefined;
  stop(): Promise<void>;
}

/** `floatd serve` on PostgreSQL `databaseUrl`, in its own process. */
export async function startNode(
  dataDir: string,
  databaseUrl: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<NodeProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn', ...extra], {
    env: { ...process.env, FLOATD_DATABASE_URL: databaseUrl, FLOATD_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const node: NodeProcess = {
    child,
    url: '',
    output: () => out,
    exit: undefined,
    async stop() {
      if (node.exit) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    },
  };
  child.on('exit', (code, signal) => (node.exit = { code, signal }));
  node.url = await new Promise<string>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`node did not start: ${out}`)), 60_000);
    const look = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(t);
        res(m[1]);
      }
    };
    child.stdout!.on('data', look);
    child.on('exit', () => rej(new Error(`node exited: ${out}`)));
  });
  return node;
}

export interface Answer {
  status: number;
  body: any;
  retryAfter: string | null;
}

export async function call(url: string, auth: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const r = await fetch(url + path, {
    method,
    headers: { ...(auth ? { authorization: auth } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : null,
    // floatd's longest answer: a wait for the license's queue (5 s) then the database deadline (10 s).
    signal: AbortSignal.timeout(16_000),
  });
  const text = await r.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: r.status, body: parsed, retryAfter: r.headers.get('retry-after') };
}

/** What the devices saw, for the checker. */
export interface LoadReport {
  requests: number;
  ok: number;
  /** 503 STORAGE_UNAVAILABLE / SERVICE_UNAVAILABLE answers, all with Retry-After */
  unavailable: number;
  /** 409 NO_SEATS_AVAILABLE */
  noSeats: number;
  /** answers no honest outage explains (5xx other than a 503 with Retry-After, a bad body, …) */
  wrong: string[];
  /** network failures talking to floatd itself (the process gone or wedged) */
  networkErrors: string[];
  /** lease ids whose holder's last acknowledged answer was a grant or renewal and that sent no check-in since */
  held: Map<string, string>;
  /** lease ids whose check-in floatd acknowledged */
  checkedIn: Set<string>;
  /** heartbeats answered 404 LEASE_NOT_FOUND for a lease its holder still held */
  lost: string[];
  /** time of the last 503, and of the first 2xx after each 503 run */
  lastUnavailableAt: number;
  /** when each committed write was acknowledged (a checkout's 201, a check-in's 2xx): a batched heartbeat's 200 proves no write */
  writesAt: number[];
  recoveries: { from: number; at: number }[];
  /** other answers (a 404 of a check-in retried after its 503 had committed, …), by status and code */
  other: Record<string, number>;
}

/**
 * `devices` devices on license `key` at `url()` (asked before every request, so a test can move them):
 * each checks out, heartbeats `beats` times, checks in, again, until `stop()`. A 503 is retried after a
 * short pause (the device keeps what it had). Seats are fewer than devices, so 409s happen too.
 */
export function runDevices(url: () => string, key: string, devices: number, opts: { beats?: number; pauseMs?: number } = {}) {
  const report: LoadReport = {
    requests: 0,
    ok: 0,
    unavailable: 0,
    noSeats: 0,
    wrong: [],
    networkErrors: [],
    held: new Map(),
    checkedIn: new Set(),
    lost: [],
    lastUnavailableAt: 0,
    writesAt: [],
    recoveries: [],
    other: {},
  };
  let stopping = false;
  let inOutage: number | undefined;
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const send = async (path: string, body: unknown): Promise<Answer | undefined> => {
    report.requests++;
    let a: Answer;
    try {
      a = await call(url(), `License ${key}`, 'POST', path, body);
    } catch (e) {
      report.networkErrors.push(`${path}: ${(e as Error).message}`);
      return undefined;
    }
    if (a.status >= 200 && a.status < 300) {
      report.ok++;
      if (inOutage !== undefined) {
        report.recoveries.push({ from: inOutage, at: Date.now() });
        inOutage = undefined;
      }
    } else if (a.status === 503) {
      const code = a.body?.error?.code;
      if ((code === 'STORAGE_UNAVAILABLE' || code === 'SERVICE_UNAVAILABLE') && /^\d+$/.test(a.retryAfter ?? '')) report.unavailable++;
      else report.wrong.push(`${path} → 503 ${JSON.stringify(a.body)} retry-after=${a.retryAfter}`);
      report.lastUnavailableAt = Date.now();
      inOutage ??= Date.now();
    } else if (a.status === 409 && a.body?.error?.code === 'NO_SEATS_AVAILABLE') report.noSeats++;
    else if (a.status >= 500) report.wrong.push(`${path} → ${a.status} ${JSON.stringify(a.body)}`);
    else {
      const k = `${a.status} ${a.body?.error?.code ?? ''}`;
      report.other[k] = (report.other[k] ?? 0) + 1;
    }
    return a;
  };
  const device = async (i: number) => {
    const fingerprint = `fault-device-${i}`;
    const beats = opts.beats ?? 3;
    const pauseMs = opts.pauseMs ?? 40;
    while (!stopping) {
      const out = await send('/v1/client/checkout', { fingerprint, instanceId: 'app' });
      if (!out || out.status !== 201) {
        await pause(out?.status === 409 ? pauseMs * 3 : pauseMs);
        continue;
      }
      const lease = String(out.body.lease.id);
      report.held.set(lease, fingerprint);
      report.writesAt.push(Date.now());
      let beat = 0;
      while (!stopping && beat < beats) {
        await pause(pauseMs);
        const hb = await send(`/v1/client/leases/${lease}/heartbeat`, { instanceId: 'app' });
        if (hb?.status === 200) beat++;
        else if (hb?.status === 404) {
          report.lost.push(`${lease}: heartbeat → 404 ${JSON.stringify(hb.body)}`);
          report.held.delete(lease);
          break;
        } else if (hb && hb.status !== 503) report.wrong.push(`heartbeat → ${hb.status} ${JSON.stringify(hb.body)}`);
      }
      if (!report.held.has(lease)) continue;
      if (stopping) break; // keeps its lease: the checker looks for it
      // Check in until acknowledged (a 503 may or may not have committed: a retry then finds it gone, 404).
      report.held.delete(lease);
      for (;;) {
        const ci = await send(`/v1/client/leases/${lease}/checkin`, { instanceId: 'app' });
        if (ci && (ci.status === 200 || ci.status === 204)) {
          report.checkedIn.add(lease);
          report.writesAt.push(Date.now());
          break;
        }
        if (ci?.status === 404) break; // an earlier check-in answered 503 had committed after all
        if (stopping && !ci) break;
        await pause(pauseMs);
      }
    }
  };
  const running = Promise.all(Array.from({ length: devices }, (_, i) => device(i)));
  return {
    report,
    async stop() {
      stopping = true;
      await running;
      return report;
    },
  };
}
