/**
 * A real `floatd serve` process for tests that must watch or bend the process from
 * outside: under strace (the order of syncs and answers), under libfaketime (a stepped
 * clock), or stopped and restarted on the same data. Port 0: the banner says which port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer as createNetServer } from 'node:net';

export const SERVER_CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli.js');

export interface FloatdProcess {
  url: string;
  port: number;
  child: ChildProcess;
  adminToken: string;
  output(): string;
  /** resolves when the process has exited */
  exited: Promise<void>;
  /** how the process ended (its code or signal), or undefined while it runs */
  readonly exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** SIGKILL and wait for the exit */
  kill9(): Promise<void>;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  client(key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** SIGTERM and wait for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

async function call(url: string, auth: string, method: string, path: string, body?: unknown) {
  const r = await fetch(url + path, {
    method,
    headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

/** A free TCP port on 127.0.0.1 (closed again: the caller binds it next). */
export async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  await new Promise<void>((r) => srv.close(() => r()));
  return typeof addr === 'object' && addr ? addr.port : 0;
}

/** The environment for a child: `base` with `env` on top; an `undefined` value removes the variable. */
function childEnv(base: NodeJS.ProcessEnv, env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...base };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

/**
 * Runs `floatd <args>` (this build's cli.js) to its end and collects what it printed: an admin command, or a
 * `serve` that must refuse to start. `env` on top of process.env; an `undefined` value removes a variable.
 */
export function runFloatd(
  args: string[],
  opts: {
    env?: Record<string, string | undefined>;
    /** the environment to start from (default process.env) */
    baseEnv?: NodeJS.ProcessEnv;
    cwd?: string;
    /** SIGKILL after this long (code null) */
    timeoutMs?: number;
  } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [SERVER_CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv(opts.baseEnv ?? process.env, opts.env ?? {}),
    cwd: opts.cwd,
    ...(opts.timeoutMs ? { timeout: opts.timeoutMs, killSignal: 'SIGKILL' as const } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface ListeningProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  /** resolves when the process has exited */
  exited: Promise<void>;
}

/**
 * Spawns `cmd` (e.g. `[process.execPath, script, …]`) and waits for the line `listening on http://…` on its
 * stdout: floatd's banner (and the bench's baseline server). Rejects when the process exits first or after
 * `timeoutMs`; stdout and stderr are collected in `output()`.
 */
export async function spawnListening(
  cmd: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<ListeningProcess> {
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd.join(' ')} did not start within ${timeoutMs / 1000} s:\n${out}`)), timeoutMs);
    const look = () => {
      const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', look);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${cmd.join(' ')} exited with ${code ?? signal} before listening:\n${out}`));
    });
  });
  return { url, child, output: () => out, exited };
}

/**
 * Starts `floatd serve --port <port, 0> --data-dir <dataDir> --log-level <warn> <args>`, optionally behind a
 * wrapper command (`['strace', '-f', …]`), and waits for its banner and its admin token file. Rate limits are
 * off unless `env` says otherwise (`FLOATD_RATE_LIMIT: undefined` restores the server's default).
 */
export async function startFloatdProcess(opts: {
  dataDir: string;
  args?: string[];
  /** on top of `baseEnv`; `undefined` removes a variable */
  env?: Record<string, string | undefined>;
  /** the environment to start from (default process.env) */
  baseEnv?: NodeJS.ProcessEnv;
  wrapper?: string[];
  /** node's own flags, before the script (`--cpu-prof`, …) */
  nodeArgs?: string[];
  /** what runs `serve` (default: this node with `nodeArgs` on this build's cli.js); e.g. `['floatd']` from PATH */
  command?: string[];
  /** the child's working directory (default: this process's) */
  cwd?: string;
  /** default 0: the banner says which port */
  port?: number;
  /** default 'warn'; null: no --log-level flag (the server's default) */
  logLevel?: string | null;
  /** how long to wait for the banner (default 30 s) */
  timeoutMs?: number;
  /** wait for `admin-token` in the data directory (only the first node of a cluster writes one) */
  adminToken?: boolean | string;
}): Promise<FloatdProcess> {
  const logLevel = opts.logLevel === undefined ? 'warn' : opts.logLevel;
  const argv = [
    ...(opts.command ?? [process.execPath, ...(opts.nodeArgs ?? []), SERVER_CLI]),
    'serve',
    '--port',
    String(opts.port ?? 0),
    '--data-dir',
    opts.dataDir,
    ...(logLevel === null ? [] : ['--log-level', logLevel]),
    ...(opts.args ?? []),
  ];
  const { url, child, output, exited } = await spawnListening([...(opts.wrapper ?? []), ...argv], {
    env: childEnv(opts.baseEnv ?? process.env, { FLOATD_RATE_LIMIT: 'off', ...opts.env }),
    timeoutMs: opts.timeoutMs,
    cwd: opts.cwd,
  });
  let adminToken = typeof opts.adminToken === 'string' ? opts.adminToken : '';
  for (let i = 0; i < 400 && !adminToken && opts.adminToken !== false; i++) {
    adminToken = (await readFile(join(opts.dataDir, 'admin-token'), 'utf8').catch(() => '')).trim();
    if (!adminToken) await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url,
    port: Number(new URL(url).port),
    child,
    adminToken,
    output,
    exited,
    get exit() {
      return child.exitCode === null && child.signalCode === null ? undefined : { code: child.exitCode, signal: child.signalCode };
    },
    admin: (method, path, body) => call(url, `Bearer ${adminToken}`, method, path, body),
    client: (key, method, path, body) => call(url, `License ${key}`, method, path, body),
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // Behind a wrapper (strace), the server is the wrapper's child: signal it, the wrapper ends with it.
      const target = opts.wrapper ? childPids(child.pid!) : [child.pid!];
      const signal = (sig: NodeJS.Signals) =>
        target.forEach((pid) => {
          try {
            process.kill(pid, sig);
          } catch {
            /* gone */
          }
        });
      signal('SIGTERM');
      const t = setTimeout(() => {
        signal('SIGKILL');
        child.kill('SIGKILL');
      }, 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

function childPids(pid: number): number[] {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return kids.length ? kids : [pid];
  } catch {
    return [pid];
  }
}

/** Why strace cannot be used here (not installed, ptrace refused), or undefined when it can. */
export function straceUnavailable(): string | undefined {
  const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=fsync', '-o', '/dev/null', 'true'], { encoding: 'utf8' });
  if (r.error) return `strace is not installed (${(r.error as NodeJS.ErrnoException).code}); apt-get install strace`;
  if (r.status !== 0) return `strace cannot trace here (ptrace refused?): ${r.stderr.trim().split('\n')[0]}`;
  return undefined;
}

/** libfaketime's preload library (Debian's `faketime` package), or undefined. */
export function libfaketime(): string | undefined {
  for (const p of [
    '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
    '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
    '/usr/lib/faketime/libfaketime.so.1',
  ]) {
    if (existsSync(p)) return p;
  }
  return undefined;
}

let quietDelayMonitor: string | undefined;

/**
 * The environment of a floatd process whose monotonic clock libfaketime moves with its wall clock (`offsetFile`:
 * `+<seconds>`, re-read at every clock read), the harness's "time passed" for a server. Its event-loop delay
 * histogram (prom-client's `nodejs_eventloop_lag`, Node's `monitorEventLoopDelay`) is replaced by an empty one: Node
 * asserts that the monotonic clock never goes back between two of its samples, and under libfaketime it was seen to
 * (twice in one CI run: `Histogram::RecordDelta`, "(time) >= (prev_)", the server aborted). A real monotonic clock does
 * not go back, so the product keeps the histogram; only these test processes go without it. They keep its sampling
 * timer, which wakes the loop every 10 ms: the scenarios count on a clock move being seen that soon.
 */
export function fakedClockEnv(offsetFile: string): Record<string, string> {
  const lib = libfaketime();
  if (!lib) throw new Error("libfaketime is not installed (Debian's faketime package)");
  if (!quietDelayMonitor) {
    // One file per user at a fixed path (no temporary directory left behind per test process), written whole and
    // renamed into place: another process may be starting a server from it at that moment.
    quietDelayMonitor = join(tmpdir(), `floatd-no-event-loop-delay-${process.getuid?.() ?? 0}.cjs`);
    const part = `${quietDelayMonitor}.${process.pid}`;
    writeFileSync(
      part,
      `const perf = require('node:perf_hooks');
perf.monitorEventLoopDelay = ({ resolution = 10 } = {}) => {
  // The histogram's sampling timer also woke the loop every 10 ms, and the harness relies on that: a move of the
  // faked clock is seen by the server's timers at the next wake-up (epoll waits in real time). The same wake-ups stay.
  let timer;
  return {
    enable() { timer ??= setInterval(() => {}, resolution); timer.unref(); return true; },
    disable() { if (timer) clearInterval(timer); timer = undefined; return true; },
    reset() {}, percentile: () => 0, percentiles: new Map(), min: 0, max: 0, mean: 0, stddev: 0, exceeds: 0, count: 0,
  };
};
`,
    );
    renameSync(part, quietDelayMonitor);
  }
  return {
    LD_PRELOAD: lib,
    FAKETIME_TIMESTAMP_FILE: offsetFile,
    FAKETIME_NO_CACHE: '1',
    NODE_OPTIONS: [process.env.NODE_OPTIONS, `--require=${quietDelayMonitor}`].filter(Boolean).join(' '),
  };
}
