/**
 * A real `floatd serve` process for tests that must watch or bend the process from
 * outside: under strace (the order of syncs and answers), under libfaketime (a stepped
 * clock), or stopped and restarted on the same data. Port 0: the banner says which port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SERVER_CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli.js');

export interface FloatdProcess {
  url: string;
  child: ChildProcess;
  adminToken: string;
  output(): string;
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

/**
 * Starts `floatd serve --port 0 --data-dir <dataDir> <args>`, optionally behind a wrapper
 * command (`['strace', '-f', …]`), and waits for its banner and its admin token file.
 */
export async function startFloatdProcess(opts: {
  dataDir: string;
  args?: string[];
  env?: Record<string, string>;
  wrapper?: string[];
  /** wait for `admin-token` in the data directory (only the first node of a cluster writes one) */
  adminToken?: boolean | string;
}): Promise<FloatdProcess> {
  const argv = [process.execPath, SERVER_CLI, 'serve', '--port', '0', '--data-dir', opts.dataDir, '--log-level', 'warn', ...(opts.args ?? [])];
  const cmd = [...(opts.wrapper ?? []), ...argv];
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLOATD_RATE_LIMIT: 'off', ...opts.env } });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`floatd did not start within 30 s:\n${out}`)), 30_000);
    const look = () => {
      const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', look);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`floatd exited with ${code} before listening:\n${out}`));
    });
  });
  let adminToken = typeof opts.adminToken === 'string' ? opts.adminToken : '';
  for (let i = 0; i < 400 && !adminToken && opts.adminToken !== false; i++) {
    adminToken = (await readFile(join(opts.dataDir, 'admin-token'), 'utf8').catch(() => '')).trim();
    if (!adminToken) await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url,
    child,
    adminToken,
    output: () => out,
    admin: (method, path, body) => call(url, `Bearer ${adminToken}`, method, path, body),
    client: (key, method, path, body) => call(url, `License ${key}`, method, path, body),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // Behind a wrapper (strace), the server is the wrapper's child: signal it, the wrapper ends with it.
      const target = opts.wrapper ? childPids(child.pid!) : [child.pid!];
      const signal = (sig: NodeJS.Signals) => target.forEach((pid) => { try { process.kill(pid, sig); } catch { /* gone */ } });
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
