/**
 * A private PostgreSQL 15 cluster on a moved clock, for tests that move a floatd server's clock on PostgreSQL
 * (the conformance suite's `serverClock` scenarios, with either SDK). A node on PostgreSQL decides on the
 * database's clock and fences itself when its own is more than 2 s off (service/clockFence.ts): moving only the
 * server's clock would fence it. Here the database runs under libfaketime reading the same timestamp file as the
 * server, so both clocks move together, as two machines' clocks do when the time itself moved. The production
 * fence is untouched.
 *
 * The cluster: `initdb` in a temporary directory owned by the postgres user (the test runs as root, as CI does),
 * `pg_ctl start` under LD_PRELOAD=libfaketime with FAKETIME_TIMESTAMP_FILE (the file, `+<seconds>`, is in that
 * directory: the test writes it, postgres reads it), FAKETIME_NO_CACHE=1 (every read of the clock sees the file's
 * offset now) and FAKETIME_DONT_FAKE_MONOTONIC=1 (PostgreSQL's waits and timeouts keep real time; only the wall
 * clock, which `now()` and floatd's clock sample read, moves). `pg_ctl` detaches the postmaster: the cluster outlives
 * the process that started it until `stop()` or `stopFaketimePostgres(dir)` (the Python harness starts and stops it
 * through `node` one-liners).
 *
 * The floatd server must run under the same libfaketime and file (`serverEnv`); its own monotonic clock moves too
 * (no FAKETIME_DONT_FAKE_MONOTONIC there), or the server would take every move of its wall clock for a step
 * (domain/clock.ts, SilenceWatch) and never for time passing.
 */
import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm, appendFile, writeFile, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PG_BIN, pairUnavailable } from './pgpair.js';
import { fakedClockEnv, libfaketime } from './process.js';

const run = promisify(execFile);

export interface FaketimePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/floatd` (trust authentication, loopback only) */
  url: string;
  port: number;
  /** the cluster's temporary directory (data directory `data`, log `postgres.log`, timestamp file) */
  dir: string;
  /** libfaketime's timestamp file: `+<seconds>` moves the database's clock (and the server's, under `serverEnv`) */
  timestampFile: string;
  /** The environment that puts a floatd server process on the same clock. */
  serverEnv: Record<string, string>;
  /** Stops the cluster (immediate) and removes its directory. */
  stop(): Promise<void>;
}

/** Why a moved-clock cluster cannot run here, or undefined. */
export function faketimePostgresUnavailable(): string | undefined {
  return pairUnavailable() ?? (libfaketime() ? undefined : 'libfaketime is not installed (Debian: apt-get install faketime)');
}

async function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => r(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

const asPostgres = (bin: string, args: string[], env: Record<string, string> = {}) =>
  run('runuser', ['-u', 'postgres', '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), join(PG_BIN, bin), ...args], {
    timeout: 60_000,
  });

export async function startFaketimePostgres(): Promise<FaketimePostgres> {
  const why = faketimePostgresUnavailable();
  if (why) throw new Error(`a PostgreSQL cluster on a moved clock cannot run here: ${why}`);
  const lib = libfaketime()!;
  const dir = await mkdtemp(join(tmpdir(), 'floatd-pgclock-'));
  await chown(
    dir,
    Number((await run('id', ['-u', 'postgres'])).stdout.trim()),
    Number((await run('id', ['-g', 'postgres'])).stdout.trim()),
  );
  const data = join(dir, 'data');
  const timestampFile = join(dir, 'faketime');
  await writeFile(timestampFile, '+0\n', { mode: 0o644 });
  const port = await freePort();
  try {
    await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale', 'C']);
    await appendFile(
      join(data, 'postgresql.conf'),
      [
        `port = ${port}`,
        `listen_addresses = '127.0.0.1'`,
        `unix_socket_directories = '${dir}'`,
        `max_connections = 40`,
        // only processes stop in these tests, never the machine
        `fsync = off`,
        `shared_buffers = 16MB`,
        '',
      ].join('\n'),
    );
    await asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'postgres.log'), '-w', 'start'], {
      LD_PRELOAD: lib,
      FAKETIME_TIMESTAMP_FILE: timestampFile,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    });
    await asPostgres('createdb', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'floatd']);
  } catch (e) {
    const log = await readFile(join(dir, 'postgres.log'), 'utf8').catch(() => '');
    await stopFaketimePostgres(dir);
    throw new Error(`PostgreSQL on a moved clock did not start: ${(e as Error).message}\n${log.slice(-2000)}`);
  }
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/floatd`,
    port,
    dir,
    timestampFile,
    serverEnv: fakedClockEnv(timestampFile),
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopFaketimePostgres(dir);
    },
  };
}

/** Stops the cluster in `dir` (a `FaketimePostgres.dir`) if it runs, and removes the directory. */
export async function stopFaketimePostgres(dir: string): Promise<void> {
  await asPostgres('pg_ctl', ['-D', join(dir, 'data'), '-m', 'immediate', 'stop']).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
}
