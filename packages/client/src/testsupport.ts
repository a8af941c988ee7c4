/**
 * Helpers for this package's tests (not exported): a server with a clock the
 * SDK's FakeClock drives, a proxy that can go down or rewrite answers, real
 * server processes, temporary directories, and cleanup.
 */
import { createSocket } from 'node:dgram';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { ManualClock } from '@floatd/server';
import { freePort, startFloatdProcess, startTestServer, type TestServer } from '@floatd/server/testing';
import { FloatingLicense, type FloatingLicenseOptions, type Violation } from './index.js';
import { FakeClock } from './testing.js';

export const T0 = Date.parse('2026-03-02T09:00:00Z');

/** Collects cleanups and runs them in reverse order. */
export class Cleanup {
  private fns: (() => unknown)[] = [];
  add(fn: () => unknown): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.fns.reverse()) {
      try {
        await fn();
      } catch {
        /* best effort */
      }
    }
    this.fns = [];
  }
}

export async function tempDir(cleanup: Cleanup, prefix = 'floatd-client-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A rewritten answer: `headers` are set over the server's (null removes one). */
export interface Rewritten {
  status: number;
  body: any;
  headers?: Record<string, string | null>;
}

export interface Rewrite {
  (
    req: { method: string; path: string; headers: Record<string, string> },
    res: { status: number; body: any; headers: Record<string, string> },
  ): Rewritten | undefined;
}

/** Response headers a proxy does not pass on as they are (hop-by-hop, or recomputed). */
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-encoding']);

/**
 * An HTTP proxy in front of the server: `down()` makes every request fail like a
 * lost network (the socket is destroyed), `rewrite` forges answers (the server's
 * headers, signature included, pass on unless the rewrite changes them), `failNext`
 * answers a few requests with an unsigned 5xx, and `requests` records what passed.
 */
export class TestProxy {
  url = '';
  isDown = false;
  rewrite: Rewrite | undefined;
  failNext: { count: number; status: number } | undefined;
  readonly requests: { method: string; path: string; status: number }[] = [];
  private server: Server | undefined;
  private sockets = new Set<Socket>();

  constructor(public target: string) {}

  async start(): Promise<this> {
    this.server = createHttpServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 1;
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    const addr = this.server.address();
    this.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    return this;
  }

  down(): void {
    this.isDown = true;
    for (const s of this.sockets) s.destroy();
  }

  up(): void {
    this.isDown = false;
  }

  count(pathPart: string): number {
    return this.requests.filter((r) => r.path.includes(pathPart)).length;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.isDown) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const path = req.url ?? '/';
    if (this.failNext && this.failNext.count > 0) {
      this.failNext.count--;
      this.requests.push({ method: req.method ?? 'GET', path, status: this.failNext.status });
      res.writeHead(this.failNext.status, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ error: { code: 'SERVICE_UNAVAILABLE', message: 'proxy says no' } }));
      return;
    }
    let status = 502;
    let text = '';
    const outHeaders: Record<string, string> = {};
    try {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (typeof v === 'string' && k !== 'host' && k !== 'connection' && k !== 'content-length') headers[k] = v;
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      const r = await fetch(this.target + path, { method: req.method ?? 'GET', headers, ...(body ? { body } : {}) });
      status = r.status;
      text = await r.text();
      r.headers.forEach((v, k) => {
        if (!HOP.has(k)) outHeaders[k] = v;
      });
    } catch {
      req.socket.destroy();
      this.requests.push({ method: req.method ?? 'GET', path, status: 0 });
      return;
    }
    if (this.isDown) {
      req.socket.destroy();
      return;
    }
    if (this.rewrite) {
      let body: any = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        /* keep text */
      }
      const reqHeaders: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') reqHeaders[k] = v;
      const out = this.rewrite({ method: req.method ?? 'GET', path, headers: reqHeaders }, { status, body, headers: { ...outHeaders } });
      if (out) {
        status = out.status;
        text = typeof out.body === 'string' ? out.body : JSON.stringify(out.body);
        for (const [k, v] of Object.entries(out.headers ?? {})) {
          if (v === null) delete outHeaders[k];
          else outHeaders[k] = v;
        }
      }
    }
    this.requests.push({ method: req.method ?? 'GET', path, status });
    res.writeHead(status, { 'content-type': 'application/json', ...outHeaders, connection: 'close' });
    res.end(text);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

let shared: Promise<TestServer> | undefined;

/**
 * One server per test file (each file runs in its own process): starting a server
 * per test costs more than the tests, on PostgreSQL most of all. Tests isolate by
 * license; its clock only moves forward, so tests read their start from `World.t0`.
 */
export function sharedServer(): Promise<TestServer> {
  return (shared ??= startTestServer({ clock: new ManualClock(T0) }));
}

/** Closes the shared server; call it from the file's `after()`. */
export async function closeSharedServer(): Promise<void> {
  const s = shared;
  shared = undefined;
  if (s) await (await s).close();
}

/** Everything a client test needs: a server and an SDK clock moving together, a proxy, a state dir. */
export interface World {
  ts: TestServer;
  /** wall time when the test started (server and SDK clocks agree on it) */
  t0: number;
  clock: FakeClock;
  proxy: TestProxy;
  stateDir: string;
  cleanup: Cleanup;
  /** a license key with the given policy */
  license(policy?: Record<string, unknown>): Promise<{ id: string; key: string }>;
  /** a FloatingLicense through the proxy, on the fake clock; closed (without check-in) at cleanup */
  client(opts: Partial<FloatingLicenseOptions> & { licenseKey: string }): FloatingLicense;
  /** seats used on a license, from the admin API */
  seatsUsed(licenseId: string): Promise<number>;
  /** leases of a license, from the admin API */
  leases(licenseId: string): Promise<any[]>;
}

/** A world on the shared server, or on a server of its own when `wall` (its clock's start) or `dataDir` is given. */
/** Runs `fn` in a fresh world and always cleans it up. */
export async function withWorld(fn: (w: World) => Promise<void>, opts: { wall?: number; dataDir?: string } = {}): Promise<void> {
  const w = await world(opts);
  try {
    await fn(w);
  } finally {
    await w.cleanup.run();
  }
}

export async function world(opts: { wall?: number; dataDir?: string } = {}): Promise<World> {
  const cleanup = new Cleanup();
  let ts: TestServer;
  if (opts.wall !== undefined || opts.dataDir !== undefined) {
    const own = await startTestServer({
      clock: new ManualClock(opts.wall ?? T0),
      ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}),
    });
    cleanup.add(() => own.close());
    ts = own;
  } else {
    ts = await sharedServer();
  }
  const start = ts.clock.now();
  const clock = new FakeClock(start).link(ts.clock);
  cleanup.add(() => clock.unlink(ts.clock));
  const proxy = await new TestProxy(ts.url).start();
  cleanup.add(() => proxy.close());
  const stateDir = await tempDir(cleanup);
  return {
    ts,
    t0: start,
    clock,
    proxy,
    stateDir,
    cleanup,
    license: (policy = {}) => ts.license(policy),
    client(overrides) {
      const lic = new FloatingLicense({
        serverUrl: proxy.url,
        stateDir,
        clock,
        fingerprint: 'fp-test-device-0001',
        hostname: 'test-host',
        user: 'tester',
        retry: { initialDelayMs: 1000, maxDelayMs: 20_000, maxAttempts: 3 },
        ...overrides,
      });
      cleanup.add(() => lic.close({ checkin: false }));
      return lic;
    },
    async seatsUsed(licenseId) {
      return (await ts.admin('GET', `/v1/admin/licenses/${licenseId}`)).body.seatsUsed;
    },
    async leases(licenseId) {
      return (await ts.admin('GET', `/v1/admin/licenses/${licenseId}/leases`)).body.items;
    },
  };
}

/** Records events of a FloatingLicense. */
export function record(lic: FloatingLicense) {
  const log = { violations: [] as Violation[], renewed: 0, reacquired: 0, retries: 0, events: [] as string[] };
  lic.on('violation', (v) => {
    log.violations.push(v);
    log.events.push(`violation:${v.code}`);
  });
  lic.on('renewed', () => {
    log.renewed++;
    log.events.push('renewed');
  });
  lic.on('reacquired', () => {
    log.reacquired++;
    log.events.push('reacquired');
  });
  lic.on('retry', (r) => {
    log.retries++;
    log.events.push(`retry:${r.operation}:${r.error.code}`);
  });
  return log;
}

/** Advances `clock` by each retry/waiting delay the SDK announces, so a checkout that retries completes. */
export function autoAdvance(lic: FloatingLicense, clock: FakeClock, before?: (kind: 'retry' | 'waiting') => Promise<void> | void): void {
  lic.on('retry', (r) => {
    if (r.operation !== 'checkout') return;
    setImmediate(async () => {
      await before?.('retry');
      await clock.advance(r.delayMs);
    });
  });
  lic.on('waiting', (w) => {
    setImmediate(async () => {
      await before?.('waiting');
      await clock.advance(w.retryInMs);
    });
  });
}

// ---------------------------------------------------------------------------
// real server processes

const require = createRequire(import.meta.url);
export const SERVER_CLI = join(dirname(require.resolve('@floatd/server/package.json')), 'dist', 'cli.js');
export const RUN_CLI = join(dirname(new URL(import.meta.url).pathname), 'run.js');

/**
 * Real floatd-run processes against one server and key, each with a state directory of its own (removed by
 * `cleanup`). `run(args, script)` runs `node -e script` under floatd-run: `started` resolves when the script prints
 * `ready`, `done` with its exit. `holdUntilStopped` is a script that holds its seat until `stop()` is called (a
 * fixed time would end early, or late, on a loaded machine).
 */
export async function floatdRuns(serverUrl: string, key: string) {
  const dirs: string[] = [];
  const stopDir = await mkdtemp(join(tmpdir(), 'floatd-run-stop-'));
  dirs.push(stopDir);
  const stopFile = join(stopDir, 'stop');
  const run = async (extra: string[], script: string, env: Record<string, string> = {}, opts: { quiet?: boolean } = {}) => {
    const dir = await mkdtemp(join(tmpdir(), 'floatd-run-'));
    dirs.push(dir);
    const child = spawn(
      process.execPath,
      [
        RUN_CLI,
        '--server',
        serverUrl,
        '--key',
        key,
        '--state-dir',
        dir,
        ...(opts.quiet === false ? [] : ['--quiet']),
        ...extra,
        '--',
        process.execPath,
        '-e',
        script,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
    );
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    /** resolves when what the run printed on stderr so far matches; rejects if it exits first */
    const said = (pattern: RegExp) =>
      new Promise<string>((resolve, reject) => {
        const check = () => pattern.test(err) && resolve(err);
        child.stderr!.on('data', check);
        child.once('close', (code) => reject(new Error(`floatd-run exited (${code}) before saying ${pattern}: ${err}${out}`)));
        check();
      });
    const started = new Promise<void>((resolve) => child.stdout!.on('data', () => out.includes('ready') && resolve()));
    const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
      child.once('close', (code) => resolve({ code, out, err })),
    );
    return { started, done, said };
  };
  return {
    run,
    holdUntilStopped: `console.log("ready"); const t = setInterval(() => require("fs").existsSync(${JSON.stringify(stopFile)}) && clearInterval(t), 50)`,
    stop: () => writeFile(stopFile, ''),
    cleanup: async () => {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    },
  };
}

/** One free-port helper and one way to start a floatd process for every package's tests. */
export { freePort } from '@floatd/server/testing';

export interface ServerProcess {
  url: string;
  port: number;
  dataDir: string;
  child: ChildProcess;
  adminToken: string;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** kill -9 and wait for the exit */
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** `floatd serve` as a child process on `port` (a free one when omitted), with extra environment (FLOATD_DATABASE_URL, …). */
export async function serverProcess(
  cleanup: Cleanup,
  dataDir: string,
  port?: number,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const p = await startFloatdProcess({
    dataDir,
    port: port ?? (await freePort()),
    logLevel: env.FLOATD_LOG_LEVEL ?? 'silent',
    // the server's own rate limits unless the test says otherwise (the shared helper turns them off by default)
    env: { FLOATD_RATE_LIMIT: process.env.FLOATD_RATE_LIMIT, ...env },
  });
  cleanup.add(() => p.kill9());
  // The first start writes the admin token just after it starts listening (on PostgreSQL that can take a moment).
  if (!p.adminToken) throw new Error(`no admin token in ${dataDir}`);
  return { url: p.url, port: p.port, dataDir, child: p.child, adminToken: p.adminToken, admin: p.admin, kill9: p.kill9, stop: p.stop };
}

/** Creates a product and a license on a server process. */
export async function processLicense(s: ServerProcess, policy: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const prd = await s.admin('POST', '/v1/admin/products', { name: 'Process test' });
  const lic = await s.admin('POST', '/v1/admin/licenses', { productId: prd.body.id, seats: 2, ...policy });
  if (lic.status !== 201) throw new Error(JSON.stringify(lic.body));
  return lic.body;
}

/** A tiny DNS responder (RFC 1035) answering SRV for one name, NXDOMAIN for the rest. */
export async function srvResponder(
  cleanup: Cleanup,
  name: string,
  target: string,
  port: number,
): Promise<{ addr: string; queries: string[] }> {
  const sock = createSocket('udp4');
  const queries: string[] = [];
  const labels = (n: string) =>
    Buffer.concat([
      ...n
        .split('.')
        .filter(Boolean)
        .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
      Buffer.from([0]),
    ]);
  sock.on('message', (msg, rinfo) => {
    let o = 12;
    const parts: string[] = [];
    while (msg[o]! > 0) {
      parts.push(msg.subarray(o + 1, o + 1 + msg[o]!).toString());
      o += 1 + msg[o]!;
    }
    o += 1;
    const qtype = msg.readUInt16BE(o);
    const question = msg.subarray(12, o + 4);
    const qname = parts.join('.');
    queries.push(`${qname}/${qtype}`);
    const hit = qname.toLowerCase() === name.toLowerCase() && qtype === 33;
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2);
    header.writeUInt16BE(0x8180 | (hit ? 0 : 3), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(hit ? 1 : 0, 6);
    const parts2 = [header, question];
    if (hit) {
      const rdata = Buffer.concat([Buffer.from([0, 10, 0, 5, port >> 8, port & 0xff]), labels(target)]);
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0);
      rr.writeUInt16BE(33, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(60, 6);
      rr.writeUInt16BE(rdata.length, 10);
      parts2.push(rr, rdata);
    }
    sock.send(Buffer.concat(parts2), rinfo.port, rinfo.address);
  });
  // 127.0.0.0/8 is all loopback: a resolver address of its own, not 127.0.0.1
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.53', resolve));
  cleanup.add(() => sock.close());
  return { addr: `127.0.0.53:${sock.address().port}`, queries };
}

/** Whether tmux is installed (the tests that drive floatd-run in a real terminal). */
export const hasTmux = (() => {
  try {
    execFileSync('tmux', ['-V']);
    return true;
  } catch {
    return false;
  }
})();
