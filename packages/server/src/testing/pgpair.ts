/**
 * A real PostgreSQL 15 primary and a real streaming standby on this machine, for the
 * fail-over tests: two private clusters (initdb, pg_basebackup) on free ports under a
 * temporary directory, with synchronous replication (`synchronous_standby_names`), so a
 * commit the primary acknowledged is on the standby. Runs as the `postgres` user (the
 * test runs as root, as CI does); `available()` says why not otherwise.
 */
import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm, appendFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const PG_BIN = process.env.FLOATD_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export function pairUnavailable(): string | undefined {
  if (!existsSync(join(PG_BIN, 'initdb'))) return `no PostgreSQL 15 binaries in ${PG_BIN} (Debian: apt-get install postgresql-15)`;
  if (process.getuid?.() !== 0) return 'needs root (the clusters run as the postgres user)';
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => r(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

const asPostgres = (bin: string, args: string[]) =>
  run('runuser', ['-u', 'postgres', '--', join(PG_BIN, bin), ...args], { timeout: 60_000 });

export interface PgPair {
  primaryPort: number;
  standbyPort: number;
  /** Crashes the primary (`pg_ctl stop -m immediate`: no shutdown checkpoint, connections cut). */
  crashPrimary(): Promise<void>;
  /** Makes the primary refuse writes without dropping a connection (how an old primary is fenced): SQLSTATE 25006. */
  fencePrimary(): Promise<void>;
  /** Promotes the standby (`pg_ctl promote -w`: returns once it accepts writes). */
  promoteStandby(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPair(): Promise<PgPair> {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-pgpair-'));
  await chown(
    dir,
    Number((await run('id', ['-u', 'postgres'])).stdout.trim()),
    Number((await run('id', ['-g', 'postgres'])).stdout.trim()),
  );
  const primary = join(dir, 'primary');
  const standby = join(dir, 'standby');
  const [primaryPort, standbyPort] = [await freePort(), await freePort()];
  await asPostgres('initdb', ['-D', primary, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale', 'C']);
  await appendFile(
    join(primary, 'postgresql.conf'),
    [
      `port = ${primaryPort}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${dir}'`,
      `wal_level = replica`,
      `max_wal_senders = 5`,
      `synchronous_standby_names = 'standby1'`,
      `synchronous_commit = on`,
      `max_connections = 60`,
      // Only processes crash in these tests, never the machine: the OS keeps what was written.
      `fsync = off`,
      `shared_buffers = 16MB`,
      `hot_standby = on`,
      '',
    ].join('\n'),
  );
  await appendFile(join(primary, 'pg_hba.conf'), 'host replication all 127.0.0.1/32 trust\n');
  await asPostgres('pg_ctl', ['-D', primary, '-l', join(dir, 'primary.log'), '-w', 'start']);
  await asPostgres('pg_basebackup', [
    '-h',
    '127.0.0.1',
    '-p',
    String(primaryPort),
    '-U',
    'postgres',
    '-D',
    standby,
    '-X',
    'stream',
    '--no-sync',
  ]);
  await appendFile(
    join(standby, 'postgresql.conf'),
    // Promoted, it has no standby of its own: it must not wait for one (a fail-over manager sets this in production).
    [
      `port = ${standbyPort}`,
      `synchronous_standby_names = ''`,
      `primary_conninfo = 'host=127.0.0.1 port=${primaryPort} user=postgres application_name=standby1'`,
      '',
    ].join('\n'),
  );
  await appendFile(join(standby, 'standby.signal'), '');
  await asPostgres('pg_ctl', ['-D', standby, '-l', join(dir, 'standby.log'), '-w', 'start']);
  // Wait until the standby is the synchronous one.
  const psql = (port: number, q: string) => asPostgres('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-Atc', q]);
  for (let i = 0; ; i++) {
    const r = await psql(primaryPort, `SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'`).catch(() => ({
      stdout: '',
    }));
    if (r.stdout.trim() === 'sync') break;
    if (i > 100) throw new Error('the standby did not become synchronous');
    await new Promise((r) => setTimeout(r, 100));
  }
  await psql(primaryPort, 'CREATE DATABASE floatd');
  let stopped = false;
  return {
    primaryPort,
    standbyPort,
    async crashPrimary() {
      await asPostgres('pg_ctl', ['-D', primary, '-m', 'immediate', 'stop']);
    },
    async fencePrimary() {
      await psql(primaryPort, 'ALTER SYSTEM SET default_transaction_read_only = on');
      await psql(primaryPort, 'SELECT pg_reload_conf()');
    },
    async promoteStandby() {
      await asPostgres('pg_ctl', ['-D', standby, '-w', 'promote']);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const d of [primary, standby]) await asPostgres('pg_ctl', ['-D', d, '-m', 'immediate', 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
