/**
 * A real pg_auto_failover formation on this machine, for the automatic fail-over test
 * (issue #23 part 2): a monitor and two PostgreSQL 15 nodes, each run by its own
 * `pg_autoctl create … --run` keeper as the `postgres` user, on free ports of 127.0.0.1,
 * data and pg_autoctl's configuration/state (XDG dirs) under one temporary directory.
 * Replication is pg_auto_failover's default: `number_sync_standbys = 0` with the standby in
 * the replication quorum, which makes the primary run `synchronous_standby_names =
 * 'ANY 1 (pgautofailover_standby_2)'` while the standby is healthy: a commit the primary
 * acknowledged is on the standby. The monitor's health-check timeouts are shortened (ALTER
 * SYSTEM on the monitor) so a fail-over takes seconds instead of the default ~30 s.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PG_BIN, pairUnavailable } from './pgpair.js';

const run = promisify(execFile);
export const PG_AUTOCTL = process.env.FLOATD_PG_AUTOCTL ?? '/usr/bin/pg_autoctl';

export function autoFailoverUnavailable(): string | undefined {
  const pair = pairUnavailable();
  if (pair) return pair;
  if (!existsSync(PG_AUTOCTL)) return `no pg_autoctl at ${PG_AUTOCTL} (Debian: apt-get install postgresql-15-auto-failover)`;
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

/** The monitor's timeouts for a test (defaults: period 5 s, timeout 5 s, 2 retries 2 s apart, unhealthy after 20 s). */
export const MONITOR_SETTINGS: Record<string, number> = {
  'pgautofailover.health_check_period': 1000,
  'pgautofailover.health_check_timeout': 1000,
  'pgautofailover.health_check_max_retries': 1,
  'pgautofailover.health_check_retry_delay': 500,
  'pgautofailover.node_considered_unhealthy_timeout': 2000,
  'pgautofailover.primary_demote_timeout': 5000,
  'pgautofailover.startup_grace_period': 2000,
};

export interface NodeState {
  nodeid: number;
  nodeport: number;
  reportedstate: string;
  goalstate: string;
}

export interface Formation {
  monitorPort: number;
  nodePorts: [number, number];
  /** `pg_autoctl show uri --formation default`: both nodes, `target_session_attrs=read-write`. */
  uri: string;
  /** The same with the database user (pg_autoctl's URI names none). */
  userUri(user: string): string;
  states(): Promise<NodeState[]>;
  primary(): Promise<NodeState>;
  /**
   * Crashes the primary's host, as far as one machine allows: SIGKILL to the keeper's whole
   * process group (pg_autoctl, the postmaster and every backend at once), so nothing restarts
   * it locally and nothing reports to the monitor: only the monitor's health checks find it gone.
   */
  crashPrimary(): Promise<NodeState>;
  /**
   * Waits until the monitor says `nodeid` was promoted and returns the time (ms since the epoch,
   * the monitor's own event time on this machine's clock) it reported `wait_primary`: promoted and
   * accepting writes without waiting for a synchronous standby.
   */
  waitPromotion(nodeid: number, timeoutMs: number): Promise<number>;
  output(): string;
  stop(): Promise<void>;
}

export async function startFormation(): Promise<Formation> {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-autofailover-'));
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  await chown(dir, uid, gid);
  const env = [`XDG_CONFIG_HOME=${dir}/cfg`, `XDG_DATA_HOME=${dir}/data`, `XDG_RUNTIME_DIR=${dir}/run`, `PATH=${PG_BIN}:/usr/bin:/bin`];
  const asPostgres = (cmd: string, args: string[]) =>
    run('runuser', ['-u', 'postgres', '--', 'env', ...env, cmd, ...args], { timeout: 60_000, cwd: dir });
  const psql = async (port: number, db: string, q: string) =>
    (await asPostgres(join(PG_BIN, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-XAtc', q])).stdout.trim();
  const [monitorPort, p1, p2] = [await freePort(), await freePort(), await freePort()];
  const common = ['--hostname', '127.0.0.1', '--auth', 'trust', '--no-ssl', '--pgctl', join(PG_BIN, 'pg_ctl'), '--run'];
  const keepers = new Map<string, ChildProcess>();
  let log = '';
  const keeper = (name: string, args: string[]) => {
    // detached: each keeper is the leader of its own process group (its postmaster and backends are in it).
    const child = spawn('runuser', ['-u', 'postgres', '--', 'env', ...env, PG_AUTOCTL, ...args, ...common], {
      cwd: dir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const add = (b: Buffer) => {
      log += b.toString().replace(/^(?=.)/gm, `[${name}] `);
      if (log.length > 200_000) log = log.slice(-100_000);
    };
    child.stdout!.on('data', add);
    child.stderr!.on('data', add);
    keepers.set(name, child);
  };
  const until = async <T>(what: string, timeoutMs: number, f: () => Promise<T | undefined>): Promise<T> => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await f().catch(() => undefined);
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`pg_auto_failover: ${what} not reached in ${timeoutMs} ms\n${log.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const states = async (): Promise<NodeState[]> => {
    const out = await psql(
      monitorPort,
      'pg_auto_failover',
      `SELECT json_agg(json_build_object('nodeid', nodeid, 'nodeport', nodeport, 'reportedstate', reportedstate, 'goalstate', goalstate) ORDER BY nodeid) FROM pgautofailover.node`,
    );
    return out ? (JSON.parse(out) as NodeState[]) : [];
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // SIGQUIT: pg_autoctl and PostgreSQL's immediate shutdown (shared memory released), then SIGKILL what is left.
    for (const c of keepers.values())
      if (c.exitCode === null && c.signalCode === null)
        try {
          process.kill(-c.pid!, 'SIGQUIT');
        } catch {
          /* gone */
        }
    const end = Date.now() + 10_000;
    while ([...keepers.values()].some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 100));
    for (const c of keepers.values())
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    await new Promise((r) => setTimeout(r, 300));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    keeper('monitor', ['create', 'monitor', '--pgdata', join(dir, 'monitor'), '--pgport', String(monitorPort)]);
    await until('monitor up', 60_000, async () =>
      (await psql(monitorPort, 'pg_auto_failover', `SELECT 1 FROM pg_extension WHERE extname = 'pgautofailover'`)) === '1'
        ? true
        : undefined,
    );
    for (const [k, v] of Object.entries(MONITOR_SETTINGS)) await psql(monitorPort, 'pg_auto_failover', `ALTER SYSTEM SET ${k} = ${v}`);
    await psql(monitorPort, 'pg_auto_failover', 'SELECT pg_reload_conf()');
    const monitorUri = `postgres://autoctl_node@127.0.0.1:${monitorPort}/pg_auto_failover?sslmode=disable`;
    const node = (i: number, port: number) =>
      keeper(`node${i}`, [
        'create',
        'postgres',
        '--pgdata',
        join(dir, `node${i}`),
        '--pgport',
        String(port),
        '--dbname',
        'floatd',
        '--name',
        `node_${i}`,
        '--monitor',
        monitorUri,
      ]);
    node(1, p1);
    await until('first node single', 90_000, async () => ((await states()).some((s) => s.reportedstate === 'single') ? true : undefined));
    node(2, p2);
    await until('primary + secondary', 120_000, async () => {
      const s = await states();
      // pg_basebackup waits for a spread checkpoint on the primary: ask for an immediate one.
      if (s.some((x) => x.reportedstate === 'catchingup' || x.goalstate === 'catchingup'))
        await psql(p1, 'postgres', 'CHECKPOINT').catch(() => undefined);
      return s.length === 2 &&
        s.some((x) => x.reportedstate === 'primary' && x.goalstate === 'primary') &&
        s.some((x) => x.reportedstate === 'secondary' && x.goalstate === 'secondary')
        ? true
        : undefined;
    });
    // Synchronous: the primary waits for the standby.
    await until('synchronous standby', 30_000, async () =>
      (await psql(p1, 'postgres', `SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')`)) === '1'
        ? true
        : undefined,
    );
    const uri = (await asPostgres(PG_AUTOCTL, ['show', 'uri', '--formation', 'default', '--pgdata', join(dir, 'monitor')])).stdout.trim();
    const primary = async () => {
      const p = (await states()).find((s) => s.reportedstate === 'primary');
      if (!p) throw new Error('no primary');
      return p;
    };
    return {
      monitorPort,
      nodePorts: [p1, p2],
      uri,
      userUri: (user) => uri.replace(/^postgres(ql)?:\/\//, (m) => `${m}${encodeURIComponent(user)}@`),
      states,
      primary,
      async crashPrimary() {
        const p = await primary();
        const k = keepers.get(`node${p.nodeport === p1 ? 1 : 2}`)!;
        process.kill(-k.pid!, 'SIGKILL');
        return p;
      },
      async waitPromotion(nodeid, timeoutMs) {
        return until(`node ${nodeid} promoted`, timeoutMs, async () => {
          const at = await psql(
            monitorPort,
            'pg_auto_failover',
            `SELECT (extract(epoch FROM min(eventtime)) * 1000)::bigint FROM pgautofailover.event WHERE nodeid = ${Number(nodeid)} AND reportedstate IN ('wait_primary', 'primary') AND eventtime > now() - interval '5 minutes'`,
          );
          return at ? Number(at) : undefined;
        });
      },
      output: () => log,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
