/**
 * Cluster membership for operators: each node records itself in the `nodes`
 * table every few seconds with its clock's offset from the database's clock,
 * which `floatd doctor` reports (the `Membership` port, store/cluster.ts). Each node decides on its own clock corrected by that offset (DatabaseAlignedClock),
 * so each measurement also feeds the node's clock fence (service/clockFence.ts),
 * which stops a node whose offset passes the bound.
 */
import { hostname } from 'node:os';
import type postgres from 'postgres';
import { newId } from '../../ids.js';
import type { Membership, NodeRow } from '../cluster.js';

export type { NodeRow };

/** This node's clock minus the database's, in ms (half the round trip is taken as the query's moment). */
export async function clockOffset(sql: postgres.Sql, now: () => number = Date.now): Promise<number> {
  return (await clockSample(sql, now)).offsetMs;
}

/** The offset and the round trip it was measured over: the true offset is within ±rttMs/2 of offsetMs. */
export async function clockSample(sql: postgres.Sql, now: () => number = Date.now): Promise<{ offsetMs: number; rttMs: number }> {
  const before = now();
  const [r] = await sql`SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS db_ms`;
  const after = now();
  return { offsetMs: Math.round((before + after) / 2 - Number(r!.db_ms)), rttMs: Math.max(0, after - before) };
}

export function reportNode(
  sql: postgres.Sql,
  version: string,
  isLeader: () => boolean,
  everyMs = 2000,
  /** each measurement, for the clock fence (service/clockFence.ts) */
  onOffset: (offsetMs: number, rttMs: number) => void = () => {},
  /**
   * The store's ears (PostgresStore): each failure of the tick or the reaper, and each time the reaper finds its
   * connection on a read-only server (a fenced old primary that kept floatd's connections).
   */
  store: { heard(err: unknown): void; onReadOnly(): void },
): Membership & { id: string } {
  const id = newId('req').replace('req_', 'node_');
  const startedAt = Date.now();
  const tick = async () => {
    const { offsetMs: offset, rttMs } = await clockSample(sql);
    onOffset(offset, rttMs);
    await sql`INSERT INTO nodes (id, host, version, started_at, last_seen_at, clock_offset_ms, leader)
      VALUES (${id}, ${hostname()}, ${version}, ${startedAt}, ${Date.now()}, ${offset}, ${isLeader()})
      ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at, clock_offset_ms = excluded.clock_offset_ms, leader = excluded.leader`;
    // Forget nodes gone for a day.
    await sql`DELETE FROM nodes WHERE last_seen_at < ${Date.now() - 86_400_000}`;
  };
  // The reaper of wedged sessions on its own, faster timer: a wedge holds a license's turn (every write
  // on that key waits behind it), and the registry's tick fails whenever the database does.
  let reaping: Promise<unknown> | undefined;
  const reaper = setInterval(() => {
    reaping ??= reapWedged(sql)
      .then(({ readOnly }) => {
        if (readOnly) store.onReadOnly();
      })
      .catch((err: unknown) => store.heard(err))
      .finally(() => {
        reaping = undefined;
      });
  }, REAP_EVERY_MS);
  reaper.unref();
  let running: Promise<unknown> = tick().catch((err: unknown) => store.heard(err));
  const first = running;
  const timer = setInterval(() => {
    running = tick().catch((err: unknown) => store.heard(err));
  }, everyMs);
  timer.unref();
  return {
    id,
    first,
    async stop() {
      clearInterval(timer);
      clearInterval(reaper);
      await Promise.all([running, reaping]);
      await sql`DELETE FROM nodes WHERE id = ${id}`.catch(() => undefined);
    },
  };
}

/**
 * Ends floatd's own database sessions that have waited mid-statement for their client for more
 * than `seconds` (state `active`, waiting on ClientRead: the server got the first half of an
 * extended-protocol exchange and the rest never came). A connection cut at the wrong moment
 * can leave postgres.js waiting on such a session for ever (with no timeout of its own); ending
 * it fails the waiting query with CONNECTION_CLOSED (a 503 to the request) and frees the pool's
 * connection. A healthy floatd session never waits on its client for seconds inside a statement.
 *
 * Seen after a fail-over by multi-host URL (1 run in about 15 of failover.test.ts): the first statement
 * of a transaction on a connection opened just after the promotion was left half-sent (Parse, Describe
 * and Flush, never the Bind) while the driver went on to the ROLLBACK; the license's writes then
 * waited behind that session until it was ended. Checked every REAP_EVERY_MS, ended after
 * WEDGED_AFTER_SECONDS: such a wedge costs at most about 3 s, not the 5-10 s of the registry's tick.
 *
 * It also says whether the server it ran on refuses writes (`readOnly`): a fenced old primary keeps floatd's
 * connections, and the pool must not go on reading there (reportNode hands that to the store, which leaves it).
 */
export const REAP_EVERY_MS = 1000;
export const WEDGED_AFTER_SECONDS = 2;
export async function reapWedged(sql: postgres.Sql, seconds = WEDGED_AFTER_SECONDS): Promise<{ reaped: number; readOnly: boolean }> {
  // array_agg evaluates pg_terminate_backend for every row (a count(*) need not).
  const [row] = await sql`SELECT current_setting('transaction_read_only') = 'on' AS read_only, (
      SELECT array_agg(pg_terminate_backend(pid)) FROM pg_stat_activity
      WHERE application_name = 'floatd' AND datname = current_database() AND pid <> pg_backend_pid()
        AND state = 'active' AND wait_event = 'ClientRead' AND state_change < now() - make_interval(secs => ${seconds})) AS reaped`;
  return { reaped: (row!.reaped as unknown[] | null)?.length ?? 0, readOnly: row!.read_only === true };
}

export async function listNodes(sql: postgres.Sql): Promise<NodeRow[]> {
  const rows = await sql`SELECT * FROM nodes ORDER BY started_at`;
  return rows.map((r) => ({
    id: String(r.id),
    host: String(r.host),
    version: String(r.version),
    startedAt: Number(r.started_at),
    lastSeenAt: Number(r.last_seen_at),
    clockOffsetMs: Number(r.clock_offset_ms),
    leader: Boolean(r.leader),
  }));
}
