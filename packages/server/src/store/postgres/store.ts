/**
 * PostgreSQL adapter of the Store port, for several floatd nodes on one database.
 *
 * Concurrency: READ COMMITTED transactions with row locks. Every seat-changing
 * transaction first locks its license row (`SELECT … FOR UPDATE`), so seat
 * decisions for one license are serialised across all nodes while different
 * licenses proceed in parallel. Leases a decision reads are locked too (`FOR
 * UPDATE`): a renewal that only moves a live lease's expiry may then run without
 * the license lock (the heartbeat fast path), because a reclaimer that wants the
 * same lease waits for it and re-checks the lease's expiry after the wait
 * (PostgreSQL re-evaluates the WHERE clause of a locked row that changed). Lock
 * order is always license → lease, and the fast path takes no license lock, so
 * there is no deadlock cycle. The `seats` effect is the same guarded UPDATE as
 * in SQLite. Committed changes are announced with NOTIFY inside the transaction,
 * so every node's LISTEN hears them exactly when they commit.
 */
import postgres from 'postgres';
import { SeatGuardError, type Effect, type Renewal } from '../../domain/effects.js';
import type { AdminToken, Customer, Device, Instance, Lease, License, Product } from '../../domain/types.js';
import {
  withWebhookEvents,
  type ClaimedDelivery,
  type DeliveryAttempt,
  type DeliveryState,
  type DeliveryView,
  type WebhookEndpoint,
} from '../../domain/webhooks.js';
import { newId } from '../../ids.js';
import type {
  AuditFilter,
  ChangeEvent,
  DeviceView,
  KvRecord,
  LeaseView,
  PageOf,
  PageRequest,
  ReadAhead,
  Store,
  StoredAudit,
  StoreObserver,
  StoreTx,
  UsageRow,
} from '../port.js';
import { decodeCursor, encodeCursor, fillHours, hourOf, HOUR_MS, likeEscaped, sweepPage, type SweepRow } from '../common.js';
import { ChangeFeed, changeKey, changeOf } from '../changes.js';
import { countingOf } from '../../domain/sharing.js';
import {
  instanceParams,
  toWaiter,
  namesColumn,
  countNames,
  withFeatureUsage,
  num,
  numOrNull,
  toAdminToken,
  toCustomer,
  toClaimed,
  toDelivery,
  toWebhook,
  toAudit,
  toDevice,
  toInstance,
  toLease,
  toLicense,
  toProduct,
  toUsage,
  type Row,
} from '../rows.js';
import { storageFailure } from '../errors.js';
import { GroupCommit, type GroupUnit, type UnitOutcome } from '../groupCommit.js';
import { TickBatch } from '../tickBatch.js';
import { QUEUE_POLL_WINDOW_MS, type Waiter } from '../../domain/queue.js';
import { PG_MIGRATIONS } from './migrations.js';
import { TurnView, type DeviceReads, type LeaseReads } from './turnView.js';
import { assertDriverPatched, reconnectBackoff } from './driver.js';
import type { KeyPersistence, Leadership, Membership, NodeRow } from '../cluster.js';
import { pgKeyPersistence } from './keys.js';
import { pgLeadership } from './leadership.js';
import { clockOffset, listNodes, reportNode } from './nodes.js';

type Sql = postgres.Sql | postgres.TransactionSql;
const CHANNEL = 'floatd_changes';
/** Effects from which a decision is bulk (a sweep's batch): `apply` asks first whether any webhook endpoint exists. */
const BULK = 64;

export interface PostgresOptions {
  url: string;
  /** connections in this node's pool */
  max?: number;
  /** per-license group commit of seat transactions (default on; off only to measure what it saves) */
  groupCommit?: boolean;
  /** a seat transaction counts the license's lease rows every this many checks of it, else reads the tally (`seatCount`); 1 on-premise */
  recountEvery?: number;
}

/** Checks of a license (per node) between two counts of its lease rows where the database's tally is read instead. */
export const RECOUNT_EVERY = 256;

/**
 * A pool on `url`, which may name several hosts (`postgres://a:5432,b:5433/floatd?target_session_attrs=read-write`,
 * libpq's convention): each new connection tries them in turn and, with `read-write`, keeps only the primary.
 */
export function connect(
  url: string,
  max = 10,
  opts: { silence?: boolean; backoff?: (retries: number) => number; idleTimeoutSeconds?: number; fetchTypes?: boolean } = {},
): postgres.Sql {
  assertDriverPatched();
  // Writable servers only, unless the URL says otherwise: a connection that lands on a standby (a
  // multi-host URL, an address that moved, a fenced old primary) is dropped and the next host tried.
  const explicit = /[?&]target_session_attrs=/.test(url) || process.env.PGTARGETSESSIONATTRS;
  return postgres(url, {
    max,
    ...(explicit ? {} : { target_session_attrs: 'read-write' as const }),
    onnotice: () => undefined,
    backoff: opts.backoff ?? reconnectBackoff,
    connect_timeout: 5,
    ...(opts.idleTimeoutSeconds ? { idle_timeout: opts.idleTimeoutSeconds } : {}),
    ...(opts.fetchTypes === false ? { fetch_types: false } : {}),
    // BIGINT (ms timestamps, counts) as JS numbers: every value we store is far below 2^53.
    types: { bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } } as never,
    // A query that hears nothing for this long is on a half-open connection: the connection is destroyed
    // (the query fails with CONNECTION_CLOSED, a 503) and the pool opens a new one (floatd's driver patch 5).
    ...(opts.silence === false ? {} : { silence_timeout: SILENCE_TIMEOUT_SECONDS }),
    connection: {
      application_name: 'floatd',
      // The database's side of a half-open connection: a session whose client vanished mid-transaction
      // would hold its row locks (a license's) until the server noticed; these bound that.
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_MS,
      tcp_keepalives_idle: 10,
      tcp_keepalives_interval: 5,
      tcp_keepalives_count: 3,
    },
  } as unknown as postgres.Options<Record<string, postgres.PostgresType>>);
}

/**
 * Seconds a connection with a query in flight may hear nothing from the database before it is taken for
 * half-open and destroyed. Above the request deadline (TRANSACTION_DEADLINE_MS: the request has had its 503
 * by then) and below the database's own detection of the vanished client (keepalives 10 s + 3 × 5 s), so a
 * node gives up its side first. No floatd query is silent this long when healthy: a row-lock wait is
 * bounded by the per-license turns (one per key and node, each within TRANSACTION_DEADLINE_MS) and IDLE_IN_TRANSACTION_MS. Migrations run without it.
 */
export const SILENCE_TIMEOUT_SECONDS = 12;
/** A transaction of floatd's left idle this long (its client gone) is ended by the database, releasing its locks. */
export const IDLE_IN_TRANSACTION_MS = 20_000;

/**
 * A seat transaction answers within this bound. A connection cut at the wrong moment can leave the driver
 * waiting on a dead socket for a long time (its session is gone, so the node's reaper of stuck sessions cannot
 * end it): past the bound the request is answered `503 STORAGE_UNAVAILABLE` (a connection failure) and the
 * client retries. Its transaction either never committed, or committed just then: the same ambiguity as a cut
 * during COMMIT (docs/operations.md), which a retried checkout or check-in resolves.
 */
export const TRANSACTION_DEADLINE_MS = 10_000;
/** The longest /readyz waits for the database's answer to its ping (and its test write) before it says not ready. */
export const PING_DEADLINE_MS = 2_000;
/**
 * A seat transaction (or a renewal) still unfinished after this long makes the node look for a read-only server among
 * its URL's hosts (`leaveReadOnly`): its COMMIT may be waiting on a fenced old primary for a synchronous standby that
 * was promoted meanwhile, which never answers, while nothing else fails with 25006 (every write of the license waits
 * behind that turn). Healthy, a turn takes milliseconds; a check costs one connection per host, at most once a second.
 */
export const SLOW_TRANSACTION_MS = 1_000;
/** A connection that does not answer a turn's BEGIN for this long is taken for half-open (see `beginLocked`). */
const TURN_LIVENESS_MS = 2_000;

/** A turn's reads for all its units failed (`turnView`): the turn runs again without them. */
class TurnViewFailed extends Error {
  constructor(override readonly cause: unknown) {
    super("the turn's reads failed");
  }
}

/** A turn's audit entries and usage rows, written together at its end (`writeTogether`), were refused. */
class TogetherFailed extends Error {
  constructor(override readonly cause: unknown) {
    super("the turn's audit entries and usage rows failed");
  }
}

/** A turn's attempt given up on a connection that did not answer in time (it ran nothing of the turn). */
class TurnAbandoned extends Error {
  constructor() {
    super('the turn moved to another connection');
    this.name = 'TurnAbandoned';
  }
}

/**
 * A read whose answer is not the answer to it: seen once in CI under cut connections (issue #17 stop), where the
 * heartbeat's read got a row of another query (no license in it) and answered 500. The cause, found later: a query
 * written between a cut's error and its close stayed queued, and the connection's next session handed each answer
 * to the query before it (fixed by the driver's patch 4, scripts/patch-postgres.mjs). The key-addressed hot reads
 * still check that the row is the one asked for; another is a connection failure (503 STORAGE_UNAVAILABLE, the
 * client retries), never a decision.
 */
function foreignResult(read: string): Error {
  return Object.assign(new Error(`${read}: the database connection answered with another query's result`), { code: 'RESULT_MISMATCH' });
}

/** A heartbeat's read (`leaseOfKey`) and its answer. */
interface LeaseRead {
  key: string;
  leaseId: string;
  instanceId: string;
  now: number;
}
interface LeaseOfKey {
  license: License;
  lease: Lease | undefined;
  device: Device | undefined;
}

const HOT_READS = ['getLicenseByKey', 'leaseOfKey', 'leasesOfFingerprint', 'expiryStats', 'leaseCounts', 'renew'] as const;

function settleWithin<T>(work: Promise<T>, ms: number, slow?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    const giveUp = () =>
      reject(
        Object.assign(new Error(`the database did not finish the transaction within ${ms} ms (connection lost?)`), {
          code: 'CONNECTION_CLOSED',
        }),
      );
    // One timer at a time: with `slow`, it is called every SLOW_TRANSACTION_MS until the deadline (the monotonic clock:
    // a stepped wall clock must not end a transaction early).
    const started = performance.now();
    const next = () => {
      const left = ms - (performance.now() - started);
      if (left <= 0) return giveUp();
      timer = setTimeout(
        () => {
          if (slow && performance.now() - started < ms) slow();
          next();
        },
        slow ? Math.min(SLOW_TRANSACTION_MS, left) : left,
      );
      timer.unref();
    };
    next();
  });
  // The transaction may still settle later: its outcome is then nobody's (a rejection is not left unhandled).
  work.catch(() => undefined);
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** A lease, its instances and their devices (sent together; read after the license lock). */
function leaseReads(sql: postgres.TransactionSql, id: string): Promise<LeaseReads> {
  return leasesReads(sql, [id]).then((reads) => reads.get(id)!);
}

/** A device's own leases (locked) and the leases its uses are on; `device` is its id, or a subquery giving it. */
function deviceReads(sql: postgres.TransactionSql, device: string | postgres.PendingQuery<Row[]>) {
  return Promise.all([
    sql`SELECT * FROM leases WHERE device_id = ${device} ORDER BY granted_at FOR UPDATE`,
    sql`SELECT DISTINCT lease_id FROM instances WHERE device_id = ${device}`,
  ]);
}

/** A checkout's reads for `fingerprint` on the license `licenseId` (a subquery): its device, leases and their instances. */
function fingerprintReads(
  sql: postgres.TransactionSql,
  licenseId: postgres.PendingQuery<Row[]>,
  fingerprint: string,
): Promise<DeviceReads> {
  return fingerprintsReads(sql, licenseId, [fingerprint]).then((reads) => reads.get(fingerprint)!);
}

/**
 * The checkout reads for some fingerprints on the license `licenseId` (a subquery), four statements whatever their
 * number (a turn's for all its units: `turnView`), told apart by device: each device, its leases (locked), the leases
 * its uses are on, and the instances of its leases; every row found by its own index look-up (`perValue`).
 */
async function fingerprintsReads(
  sql: postgres.TransactionSql,
  licenseId: postgres.PendingQuery<Row[]>,
  fingerprints: readonly string[],
): Promise<Map<string, DeviceReads>> {
  const list = distinct(sql, fingerprints);
  const devices = (column: postgres.PendingQuery<Row[]>) =>
    perValue(sql, list, sql`SELECT ${column} FROM devices WHERE license_id = ${licenseId} AND fingerprint = v.x`);
  const ids = sql`ARRAY(SELECT r.id FROM ${devices(sql`id`)})`;
  const leasesOf = (column: postgres.PendingQuery<Row[]>) => perValue(sql, ids, sql`SELECT ${column} FROM leases WHERE device_id = v.x`);
  const [rows, own, onSeats, instances] = await Promise.all([
    sql`SELECT r.* FROM ${devices(sql`*`)}`,
    sql`SELECT r.* FROM ${leasesOf(sql`*`)} ORDER BY r.granted_at FOR UPDATE OF r`,
    sql`SELECT DISTINCT r.device_id, r.lease_id FROM ${perValue(sql, ids, sql`SELECT device_id, lease_id FROM instances WHERE device_id = v.x`)}`,
    sql`SELECT r.* FROM ${perValue(sql, sql`ARRAY(SELECT r.id FROM ${leasesOf(sql`id`)})`, sql`SELECT * FROM instances WHERE lease_id = v.x`)}
      ORDER BY r.started_at`,
  ]);
  const reads = new Map<string, DeviceReads>();
  for (const fingerprint of fingerprints) {
    const row = rows.find((d) => d.fingerprint === fingerprint);
    if (!row) {
      reads.set(fingerprint, { row: undefined, own: [], onSeats: [], instances: [] });
      continue;
    }
    const mine = own.filter((l) => l.device_id === row.id);
    const leaseIds = new Set(mine.map((l) => String(l.id)));
    reads.set(fingerprint, {
      row,
      own: mine,
      onSeats: onSeats.filter((i) => i.device_id === row.id),
      instances: instances.filter((i) => leaseIds.has(String(i.lease_id))),
    });
  }
  return reads;
}

/** Leases (locked) with their instances and those instances' devices, three statements whatever their number, told apart by lease. */
async function leasesReads(sql: postgres.TransactionSql, ids: readonly string[]): Promise<Map<string, LeaseReads>> {
  const list = distinct(sql, [...ids].sort());
  const [rows, instances, devices] = await Promise.all([
    sql`SELECT r.* FROM ${perValue(sql, list, sql`SELECT * FROM leases WHERE id = v.x`)} ORDER BY r.id FOR UPDATE OF r`,
    sql`SELECT r.* FROM ${perValue(sql, list, sql`SELECT * FROM instances WHERE lease_id = v.x`)} ORDER BY r.started_at`,
    sql`SELECT r.* FROM ${perValue(
      sql,
      sql`ARRAY(SELECT r.device_id FROM ${perValue(sql, list, sql`SELECT device_id FROM leases WHERE id = v.x`)}
        UNION SELECT r.device_id FROM ${perValue(sql, list, sql`SELECT device_id FROM instances WHERE lease_id = v.x`)})`,
      sql`SELECT * FROM devices WHERE id = v.x`,
    )}`,
  ]);
  const reads = new Map<string, LeaseReads>();
  for (const id of ids) {
    const lease = rows.filter((l) => l.id === id);
    const uses = instances.filter((i) => i.lease_id === id);
    const deviceIds = new Set([...lease.map((l) => l.device_id), ...uses.map((i) => i.device_id)]);
    reads.set(id, { rows: lease, instances: uses, devices: devices.filter((d) => deviceIds.has(d.id)) });
  }
  return reads;
}

/**
 * `unnest(values) AS v(x) CROSS JOIN LATERAL (query OFFSET 0) AS r`: `query` (which names the value `v.x`) run once
 * per value, so each is one index look-up whatever the planner's statistics say. `column = ANY(array)` is planned
 * from the table's statistics, and on a table that grew since them (a new database, a license with many devices) it
 * was a scan of the whole table or of the whole license in every turn (issue #17: 0.7 ms growing to 7 ms a
 * statement within 20 seconds of one key's checkouts). OFFSET 0 keeps the planner from flattening it into one join.
 * `values` is an array expression (a parameter cast to an array type, or `ARRAY(subquery)`), without duplicates.
 */
function perValue(sql: Sql, values: postgres.PendingQuery<Row[]>, query: postgres.PendingQuery<Row[]>) {
  return sql`unnest(${values}) AS v(x) CROSS JOIN LATERAL (${query} OFFSET 0) AS r`;
}

/** `values` without duplicates as a `text[]` parameter (for `perValue`). */
function distinct(sql: Sql, values: readonly string[]) {
  return sql`${[...new Set(values)]}::text[]`;
}

function withInstances([rows, instances]: readonly [readonly Row[], readonly Row[]]): Lease[] {
  const by = new Map<string, Row[]>();
  for (const i of instances) {
    const k = String(i.lease_id);
    const list = by.get(k);
    if (list) list.push(i);
    else by.set(k, [i]);
  }
  return rows.map((row) => toLease(row, (by.get(String(row.id)) ?? []).map(toInstance)));
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly sweepOrder = 'license' as const;
  private readonly changes = new ChangeFeed();
  private listening: Promise<unknown> | undefined;

  /** per-license group commit (undefined: every transaction alone, the behaviour before it) */
  private readonly groups: GroupCommit<StoreTx, ReadAhead> | undefined;

  /** /readyz's connection of its own (see ping), opened at the first ping */
  private pingSql: postgres.Sql | undefined;
  /** the ping in flight: concurrent pings share it */
  private pinging: Promise<void> | undefined;

  private constructor(
    /** the pool; nothing outside store/postgres/ reaches it (the cluster ports below are how) */
    private readonly sql: postgres.Sql,
    private readonly url: string,
    private readonly poolSize = 10,
    groupCommit = true,
    /** how often a seat transaction counts a license's lease rows instead of reading the tally (1: every time) */
    private readonly recountEvery = RECOUNT_EVERY,
  ) {
    this.groups = groupCommit ? new GroupCommit<StoreTx, ReadAhead>((group, units) => this.runTurn(group, units)) : undefined;
    // The reads of the client hot paths answer within the deadline too (see TRANSACTION_DEADLINE_MS); of them only a
    // renewal writes, so only it can wait in a COMMIT (SLOW_TRANSACTION_MS).
    for (const name of HOT_READS) {
      const read = (this[name] as (...args: unknown[]) => Promise<unknown>).bind(this);
      const slow = name === 'renew' ? this.lookForReadOnly : undefined;
      (this as unknown as Record<string, unknown>)[name] = (...args: unknown[]) =>
        settleWithin(read(...args), TRANSACTION_DEADLINE_MS, slow);
    }
  }

  // --- the cluster ports (store/cluster.ts), in this database ---

  /** Who runs the background jobs: the holder of the advisory lock `name`, on a connection of its own to `url`. */
  static leadership(url: string, name: string, opts: { retryMs?: number; onChange?: (leader: boolean) => void } = {}): Leadership {
    return pgLeadership(() => connect(url, 1), name, opts);
  }

  /** The signing key ring, shared by every node, its private keys sealed with `encryptionKey`. */
  keyPersistence(encryptionKey: Buffer): KeyPersistence {
    return pgKeyPersistence(this.sql, encryptionKey);
  }

  /** Records this node in the node registry every `everyMs`, each time measuring its clock offset (`onOffset`). */
  reportNode(
    version: string,
    isLeader: () => boolean,
    everyMs?: number,
    onOffset?: (offsetMs: number, rttMs: number) => void,
  ): Membership & { id: string } {
    return reportNode(this.sql, version, isLeader, everyMs, onOffset, {
      heard: (err) => this.heard(err),
      onReadOnly: this.lookForReadOnly,
    });
  }

  /** The nodes as they last recorded themselves, oldest start first. */
  listNodes(): Promise<NodeRow[]> {
    return listNodes(this.sql);
  }

  /** This machine's clock minus the database's, ms. */
  clockOffset(): Promise<number> {
    return clockOffset(this.sql);
  }

  /** The PostgreSQL server's version and the highest schema migration applied. */
  async versions(): Promise<{ server: string; schema: number }> {
    const [v] = await this.sql`SELECT current_setting('server_version') AS v, (SELECT MAX(version)::int FROM schema_migrations) AS schema`;
    return { server: String(v!.v), schema: Number(v!.schema) };
  }

  /** Connects, applies pending migrations under an advisory lock, and starts listening for changes. */
  static async open(opts: PostgresOptions): Promise<PostgresStore> {
    // Migrations on a connection of their own without the silence bound: an index built on a large table may be silent for long.
    const migrations = connect(opts.url, 1, { silence: false });
    try {
      await migrate(migrations);
    } finally {
      await migrations.end({ timeout: 5 }).catch(() => undefined);
    }
    const store = new PostgresStore(
      connect(opts.url, opts.max),
      opts.url,
      opts.max ?? 10,
      opts.groupCommit !== false,
      Math.max(1, opts.recountEvery ?? RECOUNT_EVERY),
    );
    let subscribed = false;
    store.listening = store.sql.listen(
      CHANNEL,
      (payload) => {
        try {
          store.changes.deliver(JSON.parse(payload) as ChangeEvent);
        } catch {
          /* not ours */
        }
      },
      // Called on every (re)subscription: after the first, changes made while the connection was down were
      // missed, so viewers (the console's event streams) are told to reload.
      () => {
        if (subscribed) store.changes.deliver({ kind: 'resync', licenseId: null });
        subscribed = true;
      },
    );
    await store.listening;
    store.probeListen();
    return store;
  }

  private async leases(sql: Sql, rows: readonly Row[]): Promise<Lease[]> {
    if (rows.length === 0) return [];
    const ids = rows.map((row) => String(row.id));
    return withInstances([
      rows,
      (await sql`SELECT r.* FROM ${perValue(sql, distinct(sql, ids), sql`SELECT * FROM instances WHERE lease_id = v.x`)}
        ORDER BY r.started_at`) as unknown as Row[],
    ]);
  }

  /**
   * `defer`: in a turn of the group commit, `apply` issues the writes and hands their completion to the turn
   * instead of waiting for it: the next statements (this unit's, or the next unit's reads) are pipelined behind
   * them on the connection, which runs them in order, so they see the writes; the turn checks every write before
   * its COMMIT (`runTurn`), and a write that failed fails its own unit as if `apply` had thrown.
   */
  private makeTx(
    sql: postgres.TransactionSql,
    pending: ChangeEvent[],
    defer?: (written: Promise<void>) => void,
    view?: TurnView,
    together?: Effect[],
  ): StoreTx {
    const one = async (q: Promise<readonly Row[]>) => (await q)[0];
    // The devices of the last lease read (its own and its uses'), read with it: `leaseState` asks for one next.
    let leaseDevices: Map<string, Row> | undefined;
    // The seat-counter check reads the lease rows' counts right after the license lock: sent with it (the
    // connection runs them in order, so the count sees the locked state) and kept until a write changes them.
    let counted: { licenseId: string; used: number; offline: number } | undefined;
    // The license's queues are read in the same round trip as its lock (a checkout needs them: domain/queue.ts).
    let queued: { licenseId: string; waiters: Waiter[] } | undefined;
    // The reads a decision named with its lock (`ReadAhead`), sent in the lock's round trip (or read by the turn for
    // all its units: `view`): each answers its read once, and none survives a write (`apply`, `setSessionKey`).
    let aheadDevice: { licenseId: string; fingerprint: string; row: Row | undefined } | undefined;
    let aheadLeases: { deviceId: string; own: readonly Row[]; onSeats: readonly Row[]; instances: readonly Row[] } | undefined;
    let aheadLease: { id: string; rows: readonly Row[]; instances: readonly Row[]; devices: readonly Row[] } | undefined;
    const forgetAhead = () => {
      aheadDevice = aheadLeases = aheadLease = undefined;
    };
    // What the lock's round trip (or the turn's) read besides the license and its count, kept for the reads it answers.
    const keep = (
      licenseId: string,
      waiters: readonly Row[],
      ahead: ReadAhead | undefined,
      device: DeviceReads | undefined,
      lease: LeaseReads | undefined,
    ) => {
      queued = { licenseId, waiters: waiters.map(toWaiter) };
      if (device) {
        aheadDevice = { licenseId, fingerprint: ahead!.fingerprint!, row: device.row };
        if (device.row)
          aheadLeases = { deviceId: String(device.row.id), own: device.own, onSeats: device.onSeats, instances: device.instances };
      }
      if (lease) aheadLease = { id: ahead!.leaseId!, ...lease };
    };
    // The turn's reads answer this unit's first lock, if they still hold for it (`TurnView`).
    let viewed = false;
    const fromView = (key: string, ahead: ReadAhead | undefined): License | undefined | 'read' => {
      if (!view || viewed || !view.exact || view.key !== key) return 'read';
      viewed = true;
      const device = ahead?.fingerprint === undefined ? undefined : view.device(ahead.fingerprint);
      const lease = ahead?.leaseId === undefined ? undefined : view.lease(ahead.leaseId);
      if ((ahead?.fingerprint !== undefined && !device) || (ahead?.leaseId !== undefined && !lease)) return 'read';
      const row = view.license;
      if (!row) return undefined;
      const licenseId = String(row.id);
      counted = { licenseId, used: view.counts.used, offline: view.counts.offline };
      keep(licenseId, view.waiters, ahead, device, lease);
      this.viewed++;
      return toLicense(row);
    };
    return {
      lockLicenseByKey: async (key, ahead) => {
        forgetAhead();
        const seen = fromView(key, ahead);
        if (seen !== 'read') return seen;
        const id = sql`(SELECT id FROM licenses WHERE key = ${key})`;
        const fingerprint = ahead?.fingerprint;
        const leaseId = ahead?.leaseId;
        // Sent behind the lock on the one connection, so they read (and lock) after it, as the reads they stand for.
        const [[rows, counts, waiting], device, lease] = await Promise.all([
          this.licenseReads(sql, key, id),
          fingerprint === undefined ? undefined : fingerprintReads(sql, id, fingerprint),
          leaseId === undefined ? undefined : leaseReads(sql, leaseId),
        ]);
        const row = rows[0];
        if (!row) {
          // No such license: nothing to remember (a client's made-up keys must not grow `sinceCount`).
          this.sinceCount.delete(`key ${key}`);
          return undefined;
        }
        const licenseId = String(row.id);
        counted = { licenseId, ...(await this.tallied(sql, licenseId, counts)) };
        // The turn's projection disagrees with the rows (a tally set right by this count): the units after this one read.
        const disagrees = view?.counts.used !== counted.used || view?.counts.offline !== counted.offline;
        if (view?.exact && view.license && String(view.license.id) === licenseId && disagrees) view.exact = false;
        keep(licenseId, waiting, ahead, device, lease);
        return toLicense(row);
      },
      lockLicense: async (id) => {
        const row = await one(sql`SELECT * FROM licenses WHERE id = ${id} FOR UPDATE`);
        return row && toLicense(row);
      },
      device: async (licenseId, fingerprint) => {
        const read = aheadDevice;
        aheadDevice = undefined;
        const row =
          read?.licenseId === licenseId && read.fingerprint === fingerprint
            ? read.row
            : await one(sql`SELECT * FROM devices WHERE license_id = ${licenseId} AND fingerprint = ${fingerprint}`);
        return row && toDevice(row);
      },
      deviceById: async (id) => {
        const row = leaseDevices?.get(id) ?? (await one(sql`SELECT * FROM devices WHERE id = ${id}`));
        return row && toDevice(row);
      },
      // Two round trips on purpose: instances by a join on the device was planned as a seq scan (and JIT-compiled)
      // on a churned table whose statistics lag; by the leases' ids it is always the primary key.
      // The shared seats its uses are on are found by the uses (sent in the same round trip); only a seat the device
      // did not take costs a read of its own.
      leasesOfDevice: async (deviceId) => {
        const read = aheadLeases?.deviceId === deviceId ? aheadLeases : undefined;
        aheadLeases = undefined;
        const [own, onSeats] = read ? [read.own, read.onSeats] : await deviceReads(sql, deviceId);
        const have = new Set(own.map((row) => String(row.id)));
        const shared = onSeats.map((row) => String(row.lease_id)).filter((id) => !have.has(id));
        const more = shared.length
          ? await sql`SELECT r.* FROM ${perValue(sql, distinct(sql, shared), sql`SELECT * FROM leases WHERE id = v.x`)}
              ORDER BY r.granted_at FOR UPDATE OF r`
          : [];
        if (!read) return this.leases(sql, [...own, ...more]);
        return [...withInstances([own, read.instances]), ...(await this.leases(sql, more))];
      },
      leasesOfShareGroup: async (licenseId, group) =>
        this.leases(
          sql,
          await sql`SELECT * FROM leases WHERE license_id = ${licenseId} AND share_group = ${group} ORDER BY granted_at FOR UPDATE`,
        ),
      // The lease, its instances and their devices in one round trip (or in the lock's, named with it).
      lease: async (id) => {
        const read = aheadLease?.id === id ? aheadLease : undefined;
        aheadLease = undefined;
        const { rows, instances, devices } = read ?? (await leaseReads(sql, id));
        leaseDevices = new Map(devices.map((row) => [String(row.id), row]));
        return withInstances([rows, instances])[0];
      },
      deadLeases: async (licenseId, now, limit) =>
        this.leases(
          sql,
          await sql`SELECT * FROM leases WHERE license_id = ${licenseId} AND expires_at <= ${now} ORDER BY expires_at LIMIT ${limit} FOR UPDATE`,
        ),
      earliestExpiry: async (licenseId, now) =>
        numOrNull((await one(sql`SELECT MIN(expires_at) AS e FROM leases WHERE license_id = ${licenseId} AND expires_at > ${now}`))?.e),
      leasesToSweep: async (licenseId, ids) =>
        this.leases(
          sql,
          await sql`SELECT r.* FROM ${perValue(sql, distinct(sql, ids), sql`SELECT * FROM leases WHERE id = v.x AND license_id = ${licenseId}`)}
            FOR UPDATE OF r`,
        ),
      leasesOfLicense: async (licenseId) =>
        this.leases(sql, await sql`SELECT * FROM leases WHERE license_id = ${licenseId} ORDER BY granted_at FOR UPDATE`),
      waiters: async (licenseId) =>
        queued?.licenseId === licenseId
          ? queued.waiters
          : (await sql`SELECT * FROM waiters WHERE license_id = ${licenseId} ORDER BY seq`).map(toWaiter),
      leasesWithFeatures: async (licenseId, names) =>
        (
          await this.leases(
            sql,
            await sql`SELECT * FROM leases WHERE license_id = ${licenseId} AND features IS NOT NULL ORDER BY granted_at FOR UPDATE`,
          )
        ).filter((l) => l.features.some((f) => names.includes(f))),
      leaseCounts: async (licenseId) => {
        if (counted?.licenseId === licenseId) return { used: counted.used, offline: counted.offline };
        return this.tallied(sql, licenseId, await this.seatCount(sql, sql`${licenseId}`, this.countDue(`id ${licenseId}`)));
      },
      licenseCountOfProduct: async (productId) =>
        num((await one(sql`SELECT COUNT(*)::int AS n FROM licenses WHERE product_id = ${productId}`))?.n),
      product: async (id) => {
        const row = await one(sql`SELECT * FROM products WHERE id = ${id} FOR UPDATE`);
        return row && toProduct(row);
      },
      customer: async (id) => {
        const row = await one(sql`SELECT * FROM customers WHERE id = ${id} FOR UPDATE`);
        return row && toCustomer(row);
      },
      licenseCountOfCustomer: async (customerId) =>
        num((await one(sql`SELECT COUNT(*)::int AS n FROM licenses WHERE customer_id = ${customerId}`))?.n),
      customerTokens: async (customerId) =>
        (await sql`SELECT * FROM admin_tokens WHERE customer_id = ${customerId} AND revoked_at IS NULL FOR UPDATE`).map(toAdminToken),
      adminToken: async (id) => {
        const row = await one(sql`SELECT * FROM admin_tokens WHERE id = ${id} FOR UPDATE`);
        return row && toAdminToken(row);
      },
      lockKv: async (name) => {
        await sql`SELECT pg_advisory_xact_lock(hashtext(${'floatd:kv:' + name}))`;
        return kvRecord(await one(sql`SELECT * FROM kv WHERE name = ${name}`));
      },
      lockAdminTokens: async () => {
        await sql`SELECT pg_advisory_xact_lock(hashtext('floatd:admin-tokens'))`;
      },
      setSessionKey: async (leaseId, instanceId, stored) => {
        forgetAhead();
        leaseDevices = undefined;
        view?.keyed(leaseId);
        // In a turn, issued like `apply`'s writes (checked before the COMMIT), not waited for.
        const written = sql`UPDATE instances SET session_key = ${stored} WHERE lease_id = ${leaseId} AND instance_id = ${instanceId}`.then(
          () => undefined,
        );
        if (!defer) return written;
        written.catch(() => undefined);
        defer(written);
      },
      activeAdminCount: async () =>
        num(
          (await one(sql`SELECT COUNT(*)::int AS n FROM admin_tokens WHERE revoked_at IS NULL AND role = 'admin' AND customer_id IS NULL`))
            ?.n,
        ),
      apply: async (given) => {
        // A bulk decision (a sweep's batch) with no endpoint to tell: no event to derive (each would be dropped unwritten).
        const effects =
          given.length > BULK && !(await sql`SELECT 1 FROM webhooks LIMIT 1`).length ? given : withWebhookEvents(given, () => newId('evt'));
        counted = undefined;
        leaseDevices = undefined;
        forgetAhead();
        view?.written(effects);
        const issued: Promise<void>[] = [];
        // Fewer statements for the same rows: a use's delete before its lease's delete is left to the lease's (which
        // deletes every use of it), and the decision's audit entries go in one statement where the first stood (nothing
        // a decision writes reads them; `audit.aggregate` counts only the entries of its window).
        const deletedLater = new Set<string>();
        const redundant = new Set<number>();
        for (let k = effects.length - 1; k >= 0; k--) {
          const e = effects[k]!;
          if (e.type === 'lease.delete') deletedLater.add(e.leaseId);
          else if (e.type === 'instance.delete' && deletedLater.has(e.leaseId)) redundant.add(k);
        }
        const audits = effects.filter((e) => e.type === 'audit');
        let auditsIssued = false;
        for (let i = 0; i < effects.length; ) {
          // Runs of deletes or events (a reclamation batch) are written with one statement each.
          const type = effects[i]!.type;
          let j = i + 1;
          if (type === 'lease.delete' || type === 'webhook.event') while (j < effects.length && effects[j]!.type === type) j++;
          // Issued without waiting (each adapter function sends all its statements at once): the transaction's
          // connection pipelines them in order, so a decision's writes cost one round trip, not one per statement.
          if (together && (type === 'audit' || type === 'usage')) together.push(effects[i]!);
          else if (type === 'audit') {
            if (!auditsIssued) issued.push(writeAudits(sql, audits));
            auditsIssued = true;
          } else if (!redundant.has(i)) issued.push(j - i > 1 ? applyRun(sql, effects.slice(i, j)) : applyOne(sql, effects[i]!));
          for (let k = i; k < j; k++) {
            const c = changeOf(effects[k]!);
            if (c && !pending.some((p) => changeKey(p) === changeKey(c))) pending.push(c);
          }
          i = j;
        }
        const written = Promise.all(issued).then(() => undefined);
        if (!defer) return written;
        written.catch(() => undefined); // the turn hears it (runTurn)
        defer(written);
      },
    };
  }

  /** A failure of the database's: a write refused as read-only (SQLSTATE 25006) makes the node leave that server. */
  private heard(err: unknown): void {
    if ((err as { code?: unknown } | null)?.code === '25006') void this.leaveReadOnly();
  }

  /**
   * Leaves a read-only server (`leaveReadOnly`, at most once a second): a seat transaction past SLOW_TRANSACTION_MS
   * (see there), or the reaper's connection found on a read-only server.
   */
  private readonly lookForReadOnly = () => void this.leaveReadOnly();

  /**
   * When a server became read-only under floatd's connections (a write refused with 25006, a slow seat transaction,
   * the reaper's connection on a read-only server: it became a standby, or was fenced, and kept our connections):
   * ends floatd's sessions on every host of the URL that is read-only now, so that each connection (pool, LISTEN,
   * leader lock) reconnects and finds the writable server, and none stays behind to answer reads from the old one,
   * or to wait there for ever in a COMMIT for a synchronous standby that was promoted. At most once a second.
   */
  private async leaveReadOnly(): Promise<void> {
    if (Date.now() - this.leftReadOnlyAt < 1000 || !this.url) return;
    this.leftReadOnlyAt = Date.now();
    await Promise.all(
      hostsOf(this.url).map(async (one) => {
        const sql = postgres(one, {
          max: 1,
          connect_timeout: 2,
          onnotice: () => undefined,
          connection: { application_name: 'floatd-fence' },
        });
        try {
          await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE application_name = 'floatd' AND datname = current_database() AND current_setting('transaction_read_only') = 'on'`;
        } catch {
          /* unreachable host: nothing of ours there */
        } finally {
          await sql.end({ timeout: 1 }).catch(() => undefined);
        }
      }),
    );
  }
  private leftReadOnlyAt = 0;

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>, opts?: { group?: string | undefined; ahead?: ReadAhead | undefined }): Promise<T> {
    if (opts?.group !== undefined && this.groups) return this.groups.run(opts.group, fn, opts.ahead);
    try {
      return await settleWithin(this.runTransaction(fn), TRANSACTION_DEADLINE_MS, this.lookForReadOnly);
    } catch (err) {
      this.heard(err);
      throw err;
    }
  }

  private async runTransaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return (await this.begin(async (sql) => {
      const pending: ChangeEvent[] = [];
      const result = await fn(this.makeTx(sql, pending));
      // NOTIFY inside the transaction: delivered to every node (this one included) exactly when it commits.
      await Promise.all(pending.map((c) => sql`SELECT pg_notify(${CHANNEL}, ${JSON.stringify(c)})`));
      return result;
    })) as T;
  }

  /** `sql.begin`, counting the transactions that find every connection of the pool busy (`StoreObserver.poolWait`). */
  private async begin<T>(fn: (sql: postgres.TransactionSql) => Promise<T>): Promise<T> {
    if (this.inTransaction >= this.poolSize) this.watcher?.poolWait?.();
    this.inTransaction++;
    try {
      return (await this.sql.begin(fn)) as T;
    } finally {
      this.inTransaction--;
    }
  }
  private inTransaction = 0;
  private watcher: StoreObserver | undefined;
  get observer(): StoreObserver | undefined {
    return this.watcher;
  }
  set observer(observer: StoreObserver | undefined) {
    this.watcher = observer;
    if (this.groups) this.groups.observer = observer;
  }

  /** Units of a turn that read the turn's reads (`TurnView`) instead of their own (for tests). */
  private viewed = 0;
  /** Turns of one license running at once in this node, at most (1 by construction; for tests), the largest turn, and `viewed`. */
  groupStats(): { maxRunning: number; maxTurn: number; viewed: number } {
    return { maxRunning: this.groups?.maxRunning ?? 0, maxTurn: this.groups?.maxTurn ?? 0, viewed: this.viewed };
  }

  /**
   * One turn of a license's group commit (store/groupCommit.ts): every unit in one transaction, one after
   * another, one COMMIT for all. No savepoints (two more round trips per unit, under the license lock): a unit
   * that fails on its own (a seat guard, a constraint) ends the transaction, hears its own error, and the
   * others run again without it in a new transaction (nothing was committed nor answered, and each unit
   * decides again on the state it then finds). If the database as a whole fails (the connection, COMMIT, the
   * deadline), nothing committed and every unit not yet answered hears that failure.
   *
   * A unit's writes are not waited for before the next unit starts (`makeTx`'s `defer`): the next unit's reads
   * go out behind them, in the same round trip, and see them (one connection runs its statements in order). So a
   * write's failure may surface later, in a later unit's statement (a transaction aborted by an error refuses
   * everything after it) or at the turn's end: the unit that failed is always the first, in turn order, with a
   * failed write or a thrown error, and every write is checked before the COMMIT.
   */
  private async runTurn(group: string, units: readonly GroupUnit<StoreTx, ReadAhead>[]): Promise<UnitOutcome[]> {
    const outcomes: UnitOutcome[] = new Array(units.length);
    let remaining = units.map((_, i) => i);
    // The turn's reads for all its units (`TurnView`); not on-premise, where every unit counts the lease rows itself.
    let withView = this.recountEvery > 1;
    // The units' audit entries and usage rows written together at the turn's end (nothing in a turn reads them).
    let writeLater = true;
    while (remaining.length) {
      let failed: { index: number; error: unknown } | undefined;
      const values = new Map<number, unknown>();
      // per unit, its writes in flight
      const writes = new Map<number, Promise<void>[]>();
      /** Throws the turn's first failure, in turn order up to `upTo` (`thrown` by that unit itself, if given). */
      const fail = async (upTo?: { index: number; error: unknown }): Promise<void> => {
        for (const k of remaining) {
          for (const r of await Promise.allSettled(writes.get(k) ?? [])) {
            if (r.status === 'rejected') {
              failed = { index: k, error: r.reason };
              throw r.reason;
            }
          }
          if (k === upTo?.index) {
            failed = upTo;
            throw upTo.error;
          }
        }
      };
      try {
        await settleWithin(
          this.beginLocked(group, async (sql) => {
            const view = withView
              ? await this.turnView(
                  sql,
                  group,
                  remaining.map((i) => units[i]!.hint),
                )
              : undefined;
            // Each change once per turn (NOTIFY folds duplicates of a transaction anyway).
            const pending = new Map<string, ChangeEvent>();
            const later: Effect[] | undefined = writeLater ? [] : undefined;
            for (const i of remaining) {
              const own: ChangeEvent[] = [];
              const mine: Promise<void>[] = [];
              writes.set(i, mine);
              try {
                values.set(i, await units[i]!.run(this.makeTx(sql, own, (written) => mine.push(written), view, later)));
              } catch (error) {
                await fail({ index: i, error });
              }
              for (const c of own) pending.set(changeKey(c), c);
            }
            const together = later?.length
              ? writeTogether(sql, later).catch((err: unknown) => {
                  throw new TogetherFailed(err);
                })
              : undefined;
            together?.catch(() => undefined);
            // NOTIFY inside the transaction: delivered to every node (this one included) exactly when it commits.
            const notified = Promise.all([...pending.values()].map((c) => sql`SELECT pg_notify(${CHANNEL}, ${JSON.stringify(c)})`));
            notified.catch(() => undefined);
            await fail();
            await together;
            await notified;
          }),
          TRANSACTION_DEADLINE_MS,
          this.lookForReadOnly,
        );
      } catch (caught) {
        // The turn's reads were refused (not the database as a whole): again without them, each unit reading its own.
        if (caught instanceof TurnViewFailed && !storageFailure(caught.cause)) {
          withView = false;
          continue;
        }
        // The entries written together were refused (one unit's, most likely): again with each unit writing its own,
        // so that the unit they belong to fails alone.
        if (caught instanceof TogetherFailed && !storageFailure(caught.cause)) {
          writeLater = false;
          continue;
        }
        const err = caught instanceof TurnViewFailed || caught instanceof TogetherFailed ? caught.cause : caught;
        this.heard(err);
        const own = failed;
        // The unit that failed first may have heard "transaction aborted" (25P02) while the driver reports the statement
        // that aborted it (its own: every write before its statements was checked good by `fail`), e.g. a read of a
        // device sent behind a refused read of its leases. Either way the failure is that unit's.
        if (own && (own.error === err || (own.error as { code?: unknown } | null)?.code === '25P02') && !storageFailure(err)) {
          outcomes[own.index] = { ok: false, error: err };
          remaining = remaining.filter((i) => i !== own.index);
          continue;
        }
        throw err;
      }
      for (const [i, value] of values) outcomes[i] = { ok: true, value };
      break;
    }
    return outcomes;
  }

  /**
   * A turn's transaction, on a connection proven to answer, with its license locked first: the lock order stays
   * license → leases → usage for every unit (a denial, which takes no license lock alone, would otherwise hold
   * the usage row while a later unit of the turn waits for the license: a deadlock with another node's turn or
   * the reclaimer). A connection that does not answer BEGIN within TURN_LIVENESS_MS (half-open: a firewall
   * dropped its state; or the pool is busy) is left: that attempt is abandoned — nothing of the turn runs on it —
   * and the turn starts again on another connection, instead of every turn of the key finding the pool's dead
   * connections one at a time, each after a whole deadline. The lock itself is waited for in PostgreSQL's own
   * queue (first come, first served across nodes). The caller bounds the whole (TRANSACTION_DEADLINE_MS).
   */
  private async beginLocked(group: string, body: (sql: postgres.TransactionSql) => Promise<void>): Promise<void> {
    // Past the caller's deadline the turn has been answered (503): no attempt may start the units after it.
    const until = Date.now() + TRANSACTION_DEADLINE_MS;
    for (;;) {
      if (Date.now() >= until) throw new TurnAbandoned();
      let abandoned = false;
      let answered!: (alive: 'alive') => void;
      const alive = new Promise<'alive'>((resolve) => (answered = resolve));
      const attempt = this.begin(async (sql) => {
        // Called once BEGIN was answered: the connection is alive.
        answered('alive');
        if (abandoned || Date.now() >= until) throw new TurnAbandoned();
        await sql`SELECT 1 FROM licenses WHERE key = ${group} FOR UPDATE`;
        await body(sql);
      });
      attempt.catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      const silent = new Promise<'silent'>((resolve) => {
        timer = setTimeout(() => resolve('silent'), TURN_LIVENESS_MS);
      });
      const first = await Promise.race([
        alive,
        silent,
        attempt.then(
          () => 'done' as const,
          () => 'done' as const,
        ),
      ]);
      clearTimeout(timer);
      if (first === 'silent') {
        abandoned = true;
        continue;
      }
      return await attempt;
    }
  }

  async renew(renewals: readonly Renewal[]): Promise<Renewal[]> {
    try {
      return await this.renewNow(renewals);
    } catch (err) {
      this.heard(err);
      throw err;
    }
  }

  private async renewNow(renewals: readonly Renewal[]): Promise<Renewal[]> {
    if (renewals.length === 0) return [];
    return (await this.begin(async (sql) => {
      // Never wait for a lease another transaction holds (no deadlock with a checkout or the reclaimer): skip it and retry later.
      const ids = [...new Set(renewals.map((renewal) => renewal.leaseId))].sort();
      const locked = new Set(
        (await sql`SELECT id FROM leases WHERE id = ANY(${ids}::text[]) ORDER BY id FOR UPDATE SKIP LOCKED`).map((row) => String(row.id)),
      );
      const now = renewals.filter((renewal) => locked.has(renewal.leaseId));
      const skipped = renewals.filter((renewal) => !locked.has(renewal.leaseId));
      await renewBatch(sql, now);
      if (skipped.length === 0) return [];
      // Skipped: locked by someone else (retry) or gone (drop).
      const exist = new Set(
        (await sql`SELECT id FROM leases WHERE id = ANY(${[...new Set(skipped.map((renewal) => renewal.leaseId))]}::text[])`).map((row) =>
          String(row.id),
        ),
      );
      return skipped.filter((renewal) => exist.has(renewal.leaseId));
    })) as Renewal[];
  }

  async leaseOfKey(key: string, leaseId: string, instanceId: string, now = 0) {
    return this.heartbeatReads.call({ key, leaseId, instanceId, now });
  }

  /**
   * The heartbeat's reads of one turn of the event loop in one statement (issue #17): one write to the database and
   * one statement for it to run, instead of one each. A row is matched to its read by its position (`n`) and must be
   * the license and lease asked for; another is a connection failure for that read (RESULT_MISMATCH).
   */
  private readonly heartbeatReads = new TickBatch<LeaseRead, LeaseOfKey | undefined>(async (reads) => {
    // The device is the use's (on a shared seat, not always the lease's); the live waiters of the license come along.
    // Each read is the single read's join, run for its row of the list (LATERAL, fenced by OFFSET 0 from being
    // flattened into one join: the planner, not knowing the list is short, would hash whole tables).
    const rows = await this
      .sql`SELECT q.n::int AS n, r.* FROM unnest(${reads.map((r) => r.key)}::text[], ${reads.map((r) => r.leaseId)}::text[],
          ${reads.map((r) => r.instanceId)}::text[], ${reads.map((r) => String(r.now))}::bigint[]) WITH ORDINALITY AS q(key, lease_id, instance_id, now, n)
        CROSS JOIN LATERAL (SELECT to_jsonb(c.*) AS license, to_jsonb(l.*) AS lease, to_jsonb(d.*) AS device,
          (SELECT COALESCE(jsonb_agg(to_jsonb(i.*) ORDER BY i.started_at), '[]'::jsonb) FROM instances i WHERE i.lease_id = l.id) AS instances,
          (SELECT COUNT(DISTINCT (w.fingerprint, w.instance_id))::int FROM waiters w
            WHERE w.license_id = c.id AND w.last_poll_at > q.now - ${QUEUE_POLL_WINDOW_MS} AND w.expires_at > q.now) AS waiting
          FROM licenses c LEFT JOIN leases l ON l.id = q.lease_id AND l.license_id = c.id
            LEFT JOIN devices d ON d.id = COALESCE(
              (SELECT device_id FROM instances WHERE lease_id = l.id AND instance_id = q.instance_id), l.device_id)
          WHERE c.key = q.key OFFSET 0) r`;
    // Another statement's answer (a cut connection's queue shifted by one) has no `n` column.
    if (rows.command !== 'SELECT' || !rows.columns?.some((c) => c.name === 'n')) throw foreignResult('leaseOfKey');
    const out: (LeaseOfKey | undefined | Error)[] = reads.map(() => undefined);
    for (const row of rows) {
      const i = Number(row.n) - 1;
      const read = reads[i];
      if (!read) throw foreignResult('leaseOfKey');
      const answered = row.license as Row | undefined;
      const lease = row.lease as Row | null | undefined;
      if (answered?.key !== read.key || (lease != null && lease.id !== read.leaseId)) {
        out[i] = foreignResult('leaseOfKey');
        continue;
      }
      const license = toLicense(answered);
      if (read.now) license.waiting = num(row.waiting);
      out[i] = {
        license,
        lease: lease ? toLease(lease, (row.instances as Row[]).map(toInstance)) : undefined,
        device: row.device ? toDevice(row.device as Row) : undefined,
      };
    }
    return out;
  });

  async getProduct(id: string) {
    const [row] = await this.sql`SELECT * FROM products WHERE id = ${id}`;
    return row && toProduct(row);
  }

  async listProducts(page: PageRequest): Promise<PageOf<Product>> {
    const rows = await this.sql`SELECT * FROM products WHERE seq > ${decodeCursor(page.cursor)} ORDER BY seq LIMIT ${page.limit + 1}`;
    return paged(rows, page.limit, toProduct);
  }

  async getLicense(id: string) {
    const [row] = await this.sql`SELECT * FROM licenses WHERE id = ${id}`;
    return row && toLicense(row);
  }

  async getLicenseByKey(key: string) {
    const [row] = await this.sql`SELECT * FROM licenses WHERE key = ${key}`;
    if (row && row.key !== key) throw foreignResult('getLicenseByKey');
    return row && toLicense(row);
  }

  async listLicenses(page: PageRequest & { productId?: string | undefined; customerId?: string | undefined }): Promise<PageOf<License>> {
    const sql = this.sql;
    const after = decodeCursor(page.cursor);
    const product = page.productId ? sql`AND product_id = ${page.productId}` : sql``;
    const customer = page.customerId ? sql`AND customer_id = ${page.customerId}` : sql``;
    const rows = await sql`SELECT * FROM licenses WHERE seq > ${after} ${product} ${customer} ORDER BY seq LIMIT ${page.limit + 1}`;
    return paged(rows, page.limit, toLicense);
  }

  async getCustomer(id: string) {
    const [row] = await this.sql`SELECT * FROM customers WHERE id = ${id}`;
    return row && toCustomer(row);
  }

  async listCustomers(page: PageRequest & { search?: string | undefined; id?: string | undefined }): Promise<PageOf<Customer>> {
    const sql = this.sql;
    const after = decodeCursor(page.cursor);
    const only = page.id ? sql`AND c.id = ${page.id}` : sql``;
    const like = page.search ? `%${likeEscaped(page.search)}%` : '';
    const search = page.search
      ? sql`AND (c.name ILIKE ${like} ESCAPE '\\' OR EXISTS (SELECT 1 FROM licenses l WHERE l.customer_id = c.id AND (l.key = ${page.search}
          OR EXISTS (SELECT 1 FROM devices d WHERE d.license_id = l.id AND (d.hostname ILIKE ${like} ESCAPE '\\' OR d.user_name ILIKE ${like} ESCAPE '\\')))))`
      : sql``;
    const rows = await sql`SELECT c.* FROM customers c WHERE c.seq > ${after} ${only} ${search} ORDER BY c.seq LIMIT ${page.limit + 1}`;
    return paged(rows, page.limit, toCustomer);
  }

  private async withDevices(leases: Lease[]): Promise<LeaseView[]> {
    if (leases.length === 0) return [];
    const devices = await this.sql`SELECT * FROM devices WHERE id IN ${this.sql([...new Set(leases.map((l) => l.deviceId))])}`;
    const by = new Map(devices.map((d) => [String(d.id), toDevice(d)]));
    return leases.map((l) => ({ ...l, device: by.get(l.deviceId)! }));
  }

  async listLeases(licenseId: string): Promise<LeaseView[]> {
    return this.withDevices(
      await this.leases(this.sql, await this.sql`SELECT * FROM leases WHERE license_id = ${licenseId} ORDER BY granted_at`),
    );
  }

  async leasesOfFingerprint(licenseId: string, fingerprint: string): Promise<Lease[]> {
    return this.leases(
      this.sql,
      // Two index look-ups (the device's seats, the seats its uses are on), not an OR: with the OR, PostgreSQL scanned
      // every license's leases (a parallel hash join) on each denial, and a crowd of denials stalled the node. Then each
      // lease by its id (`perValue`): as `id IN (…)`, a plan cached while the table was small hashed the whole table.
      await this.sql`SELECT r.* FROM ${perValue(
        this.sql,
        this
          .sql`ARRAY(SELECT o.id FROM devices d JOIN leases o ON o.device_id = d.id WHERE d.license_id = ${licenseId} AND d.fingerprint = ${fingerprint}
          UNION
          SELECT i.lease_id FROM devices d JOIN instances i ON i.device_id = d.id WHERE d.license_id = ${licenseId} AND d.fingerprint = ${fingerprint})`,
        this.sql`SELECT * FROM leases WHERE id = v.x`,
      )} ORDER BY r.granted_at`,
    );
  }

  async listDevices(licenseId: string): Promise<DeviceView[]> {
    // Seats the device took; its uses wherever they run (on a shared seat, maybe another device's).
    const rows = await this.sql`SELECT d.*, COUNT(l.id)::int AS seats_held, MAX(l.offline_expires_at) AS offline_expires_at,
        (SELECT COUNT(*)::int FROM instances i WHERE i.device_id = d.id) AS instance_count
      FROM devices d LEFT JOIN leases l ON l.device_id = d.id
      WHERE d.license_id = ${licenseId} GROUP BY d.id ORDER BY d.last_accessed_at DESC`;
    return rows.map((row) => ({
      ...toDevice(row),
      seatsHeld: num(row.seats_held),
      instanceCount: num(row.instance_count),
      offlineExpiresAt: numOrNull(row.offline_expires_at),
    }));
  }

  async getLease(id: string) {
    return (await this.withDevices(await this.leases(this.sql, await this.sql`SELECT * FROM leases WHERE id = ${id}`)))[0];
  }

  async listAudit(filter: AuditFilter): Promise<PageOf<StoredAudit>> {
    const sql = this.sql;
    const conds = [
      filter.licenseId ? sql`license_id = ${filter.licenseId}` : null,
      filter.deviceId ? sql`device_id = ${filter.deviceId}` : null,
      filter.leaseId ? sql`lease_id = ${filter.leaseId}` : null,
      filter.type ? sql`type = ${filter.type}` : null,
      filter.actor ? sql`actor = ${filter.actor}` : null,
      filter.customerId ? sql`license_id IN (SELECT id FROM licenses WHERE customer_id = ${filter.customerId})` : null,
      filter.from !== undefined ? sql`at >= ${filter.from}` : null,
      filter.to !== undefined ? sql`at < ${filter.to}` : null,
      filter.cursor ? sql`id < ${decodeCursor(filter.cursor)}` : null,
    ].filter((c): c is NonNullable<typeof c> => c !== null);
    const where = conds.reduce((acc, c, i) => (i === 0 ? sql`WHERE ${c}` : sql`${acc} AND ${c}`), sql``);
    const rows = await sql`SELECT * FROM audit ${where} ORDER BY id DESC LIMIT ${filter.limit + 1}`;
    const items = rows.slice(0, filter.limit).map(toAudit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > filter.limit && last ? encodeCursor(last.id) : null };
  }

  // Retention: one small batch per call, each its own short transaction (no license lock taken).
  async pruneAudit(before: number, limit: number): Promise<number> {
    const row = await this.sql`DELETE FROM audit WHERE id IN (
      SELECT id FROM audit WHERE at < ${before} AND COALESCE(last_at, at) < ${before} ORDER BY at LIMIT ${limit})`;
    return row.count;
  }

  async pruneUsage(before: number, limit: number): Promise<number> {
    const row = await this.sql`DELETE FROM usage_hourly WHERE (license_id, hour) IN (
      SELECT license_id, hour FROM usage_hourly WHERE hour <= ${before - HOUR_MS} ORDER BY hour LIMIT ${limit})`;
    const features = await this.sql`DELETE FROM usage_features WHERE (license_id, feature, hour) IN (
      SELECT license_id, feature, hour FROM usage_features WHERE hour <= ${before - HOUR_MS} ORDER BY hour LIMIT ${limit})`;
    return row.count + features.count;
  }

  async usage(licenseId: string, from: number, to: number): Promise<UsageRow[]> {
    const [before] = await this
      .sql`SELECT seats_at_end FROM usage_hourly WHERE license_id = ${licenseId} AND hour < ${from} ORDER BY hour DESC LIMIT 1`;
    const rows = await this
      .sql`SELECT * FROM usage_hourly WHERE license_id = ${licenseId} AND hour >= ${from} AND hour < ${to} ORDER BY hour`;
    const features = await this
      .sql`SELECT * FROM usage_features WHERE license_id = ${licenseId} AND hour >= ${from} AND hour < ${to} ORDER BY hour, feature`;
    return withFeatureUsage(fillHours(rows.map(toUsage), from, to, before ? num(before.seats_at_end) : 0), features);
  }

  async waitingCounts(now: number): Promise<Map<string, number>> {
    const rows = await this.sql`SELECT license_id, COUNT(DISTINCT (fingerprint, instance_id))::int AS n FROM waiters
      WHERE last_poll_at > ${now - QUEUE_POLL_WINDOW_MS} AND expires_at > ${now} GROUP BY license_id`;
    return new Map(rows.map((r) => [String(r.license_id), num(r.n)]));
  }

  async featureSeats(licenseId: string): Promise<Record<string, number>> {
    return countNames(await this.sql`SELECT features FROM leases WHERE license_id = ${licenseId} AND features IS NOT NULL`);
  }

  async expiryStats(licenseId: string, now: number) {
    const [row] = await this
      .sql`SELECT COUNT(*) FILTER (WHERE expires_at <= ${now})::int AS dead, MIN(expires_at) FILTER (WHERE expires_at > ${now}) AS earliest
      FROM leases WHERE license_id = ${licenseId} AND expires_at IS NOT NULL`;
    return { dead: num(row!.dead), earliestExpiry: numOrNull(row!.earliest) };
  }

  // Range scans of leases_sweep and instances_sweep (index-only where the pages are all-visible), after the cursor's key.
  async sweepScan(now: number, cursor: string | null, limit: number) {
    return sweepPage(cursor, limit, async (from) =>
      (from.phase === 'lease'
        ? await this.sql`SELECT expires_at AS at, license_id, id AS lease_id, NULL AS instance_id FROM leases
            WHERE expires_at <= ${now} AND (expires_at, license_id, id) > (${from.at}::bigint, ${from.a}::text, ${from.b}::text)
            ORDER BY expires_at, license_id, id LIMIT ${limit}`
        : await this.sql`SELECT i.expires_at AS at, l.license_id, i.lease_id, i.instance_id
            FROM instances i JOIN leases l ON l.id = i.lease_id
            WHERE i.expires_at <= ${now} AND (i.expires_at, i.lease_id, i.instance_id) > (${from.at}::bigint, ${from.a}::text, ${from.b}::text)
              AND (l.expires_at IS NULL OR l.expires_at > ${now})
            ORDER BY i.expires_at, i.lease_id, i.instance_id LIMIT ${limit}`
      ).map((r): SweepRow => [num(r.at), String(r.license_id), String(r.lease_id), String(r.instance_id)]),
    );
  }

  async newestRecordedTime(opts: { leases: boolean }) {
    const [row] = (await this.sql`SELECT GREATEST(
        COALESCE((SELECT MAX(at) FROM audit), 0), COALESCE((SELECT MAX(hour) FROM usage_hourly), 0), COALESCE((SELECT MAX(updated_at) FROM kv), 0),
        CASE WHEN ${opts.leases} THEN COALESCE((SELECT MAX(last_heartbeat_at) FROM leases), 0) ELSE 0 END)::bigint AS t`) as unknown as Row[];
    return num(row?.t);
  }

  /** The license's seats as its lease rows hold them, by the database's tally (unlocked: the denial path's check). */
  async leaseCounts(licenseId: string) {
    const [row] = (await this.sql`SELECT used, offline FROM lease_tally WHERE license_id = ${licenseId}`) as unknown as Row[];
    // no tally row: no lease was ever written for the license
    return { used: num(row?.used ?? 0), offline: num(row?.offline ?? 0) };
  }

  /**
   * The seat-counter check's count of a license's lease rows (issue #17). Most transactions read the database's tally
   * (`lease_tally`, kept by triggers on every write to the rows: one row, where counting the rows under the license's
   * lock took 4-8 ms at 10,000 leases). Every `recountEvery`-th check of a license on this node (and every one
   * on-premise, where the customer owns the database and could write past the triggers) counts the rows themselves,
   * and a tally that disagrees with them is set right in the same transaction.
   */
  private seatCount(sql: postgres.TransactionSql, licenseId: postgres.PendingQuery<Row[]>, full: boolean) {
    return full
      ? sql`SELECT c.used, c.offline, t.used AS t_used, t.offline AS t_offline
          FROM (SELECT COUNT(*) FILTER (WHERE base)::int AS used, COUNT(*) FILTER (WHERE offline AND base)::int AS offline
            FROM leases WHERE license_id = ${licenseId}) c LEFT JOIN lease_tally t ON t.license_id = ${licenseId}`
      : sql`SELECT used, offline FROM lease_tally WHERE license_id = ${licenseId}`;
  }

  /** The license row locked, its seat count (`seatCount`) and its queue: sent together, behind the lock. */
  private licenseReads(sql: postgres.TransactionSql, key: string, id: postgres.PendingQuery<Row[]>) {
    return Promise.all([
      sql`SELECT * FROM licenses WHERE key = ${key} FOR UPDATE`,
      this.seatCount(sql, id, this.countDue(`key ${key}`)),
      sql`SELECT * FROM waiters WHERE license_id = ${id} ORDER BY seq`,
    ]);
  }

  /**
   * A turn's reads for all its units (`TurnView`), in one round trip behind its lock: the license, its seat count
   * and queue, and what each unit named up front. Throws `TurnViewFailed` if a read failed (a unit's hint the database
   * refused): the turn then runs again without a view, and each unit hears its own error.
   */
  private async turnView(sql: postgres.TransactionSql, key: string, hints: readonly (ReadAhead | undefined)[]): Promise<TurnView> {
    const id = sql`(SELECT id FROM licenses WHERE key = ${key})`;
    const fingerprints = [...new Set(hints.flatMap((h) => (h?.fingerprint === undefined ? [] : [h.fingerprint])))];
    const leaseIds = [...new Set(hints.flatMap((h) => (h?.leaseId === undefined ? [] : [h.leaseId])))];
    try {
      const [[rows, counts, waiting], devices, leases] = await Promise.all([
        this.licenseReads(sql, key, id),
        fingerprints.length ? fingerprintsReads(sql, id, fingerprints) : new Map<string, DeviceReads>(),
        leaseIds.length ? leasesReads(sql, leaseIds) : new Map<string, LeaseReads>(),
      ]);
      const row = rows[0];
      if (!row) this.sinceCount.delete(`key ${key}`);
      const tally = row ? await this.tallied(sql, String(row.id), counts) : { used: 0, offline: 0 };
      return new TurnView(key, row, tally, waiting, devices, leases);
    } catch (err) {
      throw new TurnViewFailed(err);
    }
  }

  /** The counts `seatCount` read; after a full count, the tally set to it if it disagreed. */
  private async tallied(sql: postgres.TransactionSql, licenseId: string, rows: readonly Row[]): Promise<{ used: number; offline: number }> {
    const row = rows[0];
    const counts = { used: num(row?.used ?? 0), offline: num(row?.offline ?? 0) };
    if (row && 't_used' in row && (num(row.t_used ?? 0) !== counts.used || num(row.t_offline ?? 0) !== counts.offline)) {
      await sql`INSERT INTO lease_tally (license_id, used, offline) VALUES (${licenseId}, ${counts.used}, ${counts.offline})
        ON CONFLICT (license_id) DO UPDATE SET used = EXCLUDED.used, offline = EXCLUDED.offline`;
    }
    return counts;
  }

  /** Whether this check of `what` (a license by key or by id) counts the rows themselves (see `seatCount`). */
  private countDue(what: string): boolean {
    const n = this.sinceCount.get(what);
    if (n === undefined || n + 1 >= this.recountEvery) {
      this.sinceCount.set(what, 0);
      return true;
    }
    this.sinceCount.set(what, n + 1);
    return false;
  }
  /** Checks since the last count, by license key or id (only of licenses that exist). */
  private readonly sinceCount = new Map<string, number>();

  async seatTotals() {
    const [row] = await this
      .sql`SELECT COALESCE(SUM(seats_used), 0)::int AS used, COALESCE(SUM(seats_offline), 0)::int AS offline FROM licenses`;
    return { seatsUsed: num(row!.used), seatsOffline: num(row!.offline) };
  }

  async adminTokenById(id: string) {
    const [row] = await this.sql`SELECT * FROM admin_tokens WHERE id = ${id}`;
    return row && toAdminToken(row);
  }

  async listAdminTokens(): Promise<AdminToken[]> {
    return (await this.sql`SELECT * FROM admin_tokens ORDER BY created_at, id`).map(toAdminToken);
  }

  async countAdminTokens() {
    const [row] = await this.sql`SELECT COUNT(*)::int AS n FROM admin_tokens WHERE revoked_at IS NULL`;
    return num(row!.n);
  }

  async touchAdminToken(id: string, at: number) {
    await this.sql`UPDATE admin_tokens SET last_used_at = ${at} WHERE id = ${id}`;
  }

  async denialsSince(from: number) {
    const rows = await this
      .sql`SELECT license_id, SUM(denials)::int AS n FROM usage_hourly WHERE hour >= ${hourOf(from)} GROUP BY license_id`;
    return new Map(rows.map((row) => [String(row.license_id), num(row.n)]));
  }

  subscribe(listener: (e: ChangeEvent) => void) {
    return this.changes.subscribe(listener);
  }

  async getKv(name: string) {
    return kvRecord((await this.sql`SELECT * FROM kv WHERE name = ${name}`)[0]);
  }

  async listKv(prefix: string) {
    const rows = await this.sql`SELECT * FROM kv WHERE left(name, ${prefix.length}) = ${prefix} ORDER BY name COLLATE "C"`;
    return rows.map((row) => kvRecord(row)!);
  }

  async listWebhooks(): Promise<WebhookEndpoint[]> {
    return (await this.sql`SELECT * FROM webhooks ORDER BY seq`).map(toWebhook);
  }

  async getWebhook(id: string): Promise<WebhookEndpoint | undefined> {
    const [row] = await this.sql`SELECT * FROM webhooks WHERE id = ${id}`;
    return row && toWebhook(row);
  }

  async claimDeliveries(now: number, until: number, limit: number): Promise<ClaimedDelivery[]> {
    // SKIP LOCKED: nodes claiming at once take different deliveries; claimed_until keeps them off until the send is recorded.
    // A claim runs every second on every node, so its 25006 is often the first a fenced old primary gives.
    const rows = await this.sql`WITH c AS (
        UPDATE webhook_deliveries SET claimed_until = ${until} WHERE id IN (
          SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ${now}
            AND (claimed_until IS NULL OR claimed_until <= ${now}) ORDER BY next_attempt_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        RETURNING id, attempts, event_id, webhook_id)
      SELECT c.*, e.type, e.license_id, e.at AS event_at, e.data, w.url, w.secret
      FROM c JOIN webhook_events e ON e.id = c.event_id JOIN webhooks w ON w.id = c.webhook_id`.catch((err: unknown) => {
      this.heard(err);
      throw err;
    });
    return rows.map(toClaimed);
  }

  async recordAttempt(deliveryId: string, attempt: DeliveryAttempt, next: { state: DeliveryState; nextAttemptAt: number | null }) {
    await this.sql.begin(async (sql) => {
      await Promise.all([
        sql`INSERT INTO webhook_attempts (delivery_id, at, status, error, duration_ms)
          VALUES (${deliveryId}, ${attempt.at}, ${attempt.status}, ${attempt.error}, ${attempt.durationMs})`,
        sql`UPDATE webhook_deliveries SET state = ${next.state}, attempts = attempts + 1, next_attempt_at = ${next.nextAttemptAt},
          claimed_until = NULL, delivered_at = CASE WHEN ${next.state} = 'delivered' THEN ${attempt.at}::bigint ELSE delivered_at END
          WHERE id = ${deliveryId}`,
      ]);
    });
  }

  private async withAttempts(rows: readonly Row[]): Promise<DeliveryView[]> {
    if (!rows.length) return [];
    const ids = rows.map((r) => String(r.id));
    const attempts = await this.sql`SELECT * FROM (
        SELECT a.*, row_number() OVER (PARTITION BY delivery_id ORDER BY seq DESC) AS n FROM webhook_attempts a WHERE delivery_id = ANY(${ids}::text[])
      ) x WHERE n <= 5 ORDER BY seq DESC`;
    return rows.map((r) =>
      toDelivery(
        r,
        attempts.filter((a) => a.delivery_id === r.id),
      ),
    );
  }

  async listDeliveries(webhookId: string, page: PageRequest & { state?: DeliveryState | undefined }): Promise<PageOf<DeliveryView>> {
    const sql = this.sql;
    const before = decodeCursor(page.cursor);
    const rows =
      await sql`SELECT d.seq, d.*, e.type AS event_type, e.license_id FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
      WHERE d.webhook_id = ${webhookId} ${page.state ? sql`AND d.state = ${page.state}` : sql``} ${before ? sql`AND d.seq < ${before}` : sql``}
      ORDER BY d.seq DESC LIMIT ${page.limit + 1}`;
    const items = await this.withAttempts(rows.slice(0, page.limit));
    const last = rows[page.limit - 1];
    return { items, nextCursor: rows.length > page.limit && last ? encodeCursor(num(last.seq)) : null };
  }

  async getDelivery(id: string): Promise<DeliveryView | undefined> {
    const rows = await this.sql`SELECT d.seq, d.*, e.type AS event_type, e.license_id FROM webhook_deliveries d
      JOIN webhook_events e ON e.id = d.event_id WHERE d.id = ${id}`;
    return (await this.withAttempts(rows))[0];
  }

  async redeliver(id: string, now: number): Promise<boolean> {
    const r = await this
      .sql`UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ${now}, claimed_until = NULL WHERE id = ${id}`;
    return r.count > 0;
  }

  /** Claims are other nodes' too on a cluster: they expire by themselves (claimed_until), nothing is forgotten here. */
  async releaseDeliveryClaims(): Promise<void> {}

  /**
   * Whether the database answers this node, for /readyz: on a connection of its own, not the pool's. After an
   * outage the pool's queue holds the requests and transactions that piled up, and its connections come back one
   * backoff at a time (reconnectBackoff); a ping queued behind them said "ready" 0.2-1.35 s after the database
   * came back (cuts.test.ts, under CI's load; up to 965 ms after a fresh connection of the test's own answered).
   * This connection opens on demand without backoff (a ping is the only thing that ever waits for it), concurrent
   * pings share one round trip, and none waits longer than PING_DEADLINE_MS. It closes after a minute without pings.
   */
  async ping() {
    this.pinging ??= this.readiness((sql) => sql`SELECT 1`).then(
      () => {
        this.pinging = undefined;
      },
      (err: unknown) => {
        this.pinging = undefined;
        throw err;
      },
    );
    await this.pinging;
  }

  /**
   * `ask` on /readyz's connection (see ping), within PING_DEADLINE_MS. A question that fails or times out takes the
   * connection with it: the next one asks over a new connection. Otherwise a connection that went half-open while
   * idle would fail every ping for the silence bound (12 s).
   */
  private async readiness<T>(ask: (sql: postgres.Sql) => Promise<T>): Promise<T> {
    // No array types fetched at connection (one round trip less): neither statement of readiness takes an array.
    const sql = (this.pingSql ??= connect(this.url, 1, { backoff: () => 0, idleTimeoutSeconds: 60, fetchTypes: false }));
    try {
      return await settleWithin(ask(sql), PING_DEADLINE_MS);
    } catch (err) {
      if (this.pingSql === sql) {
        this.pingSql = undefined;
        void sql.end({ timeout: 0 }).catch(() => undefined);
      }
      throw err;
    }
  }

  async probeWrite() {
    // A row written and deleted in one transaction: WAL is written and flushed at commit, the content ends as it was.
    // On /readyz's own connection, for the reason given at ping.
    await this.readiness((sql) =>
      sql
        // Both statements sent at once: one round trip for the two.
        .begin((tx) => [
          tx`INSERT INTO schema_migrations (version, name, applied_at) VALUES (-1, 'write probe', 0)`,
          tx`DELETE FROM schema_migrations WHERE version = -1`,
        ])
        .catch((err: unknown) => {
          this.heard(err);
          throw err;
        }),
    );
  }

  private probe: NodeJS.Timeout | undefined;

  /**
   * The LISTEN connection is idle between notifications, so a half-open one (a firewall that dropped its
   * state) would go unnoticed and the node would miss every change for ever. Every LISTEN_PROBE_MS a query
   * runs on it (LISTEN and UNLISTEN of a probe channel): on a half-open connection it hears nothing, the
   * driver's silence bound destroys the connection, and the driver subscribes again on a new one (then a
   * `resync` tells viewers to reload).
   */
  private probeListen(): void {
    let running = false;
    this.probe = setInterval(() => {
      if (running) return;
      running = true;
      this.sql
        .listen(LISTEN_PROBE_CHANNEL, () => undefined)
        .then((l) => l.unlisten())
        .catch(() => undefined)
        .finally(() => (running = false));
    }, LISTEN_PROBE_MS);
    this.probe.unref();
  }

  async close() {
    clearInterval(this.probe);
    await Promise.all([this.sql.end({ timeout: 5 }), this.pingSql?.end({ timeout: 1 })]);
  }
}

const LISTEN_PROBE_CHANNEL = 'floatd_probe';
/** How often the LISTEN connection is exercised (see probeListen). */
export const LISTEN_PROBE_MS = 5_000;

/** One URL per host of a (multi-host) PostgreSQL URL, without target_session_attrs. */
export function hostsOf(url: string): string[] {
  const authority = url.slice(url.indexOf('://') + 3).split(/[?/]/)[0] ?? '';
  const hosts = authority.slice(authority.lastIndexOf('@') + 1);
  return hosts.split(',').map((h) => {
    const one = new URL(url.replace(hosts, h));
    one.searchParams.delete('target_session_attrs');
    return one.toString();
  });
}

function paged<T>(rows: readonly Row[], limit: number, map: (row: Row) => T): PageOf<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items: items.map(map), nextCursor: rows.length > limit && last ? encodeCursor(num(last.seq)) : null };
}

/**
 * A turn's audit entries (one statement, in turn order) and usage rows (one upsert per license and hour: the units'
 * changes folded in order, as the upserts one after another would leave the row), at the turn's end.
 */
function writeTogether(sql: postgres.TransactionSql, effects: readonly Effect[]): Promise<unknown> {
  const audits = effects.filter((e) => e.type === 'audit');
  const usage = new Map<string, Extract<Effect, { type: 'usage' }>>();
  for (const e of effects) {
    if (e.type !== 'usage') continue;
    const key = `${e.licenseId} ${hourOf(e.at)}`;
    const was = usage.get(key);
    usage.set(
      key,
      was
        ? {
            ...e,
            peak: Math.max(was.peak, e.peak),
            checkouts: was.checkouts + e.checkouts,
            denials: was.denials + e.denials,
            peakOverdraft: Math.max(was.peakOverdraft, e.peakOverdraft),
            overdraftCheckouts: was.overdraftCheckouts + e.overdraftCheckouts,
          }
        : e,
    );
  }
  return Promise.all([writeAudits(sql, audits), ...[...usage.values()].map((e) => applyOne(sql, e))]);
}

/** Audit entries, in their order: one statement for all of them. */
function writeAudits(sql: postgres.TransactionSql, audits: Effect[]): Promise<void> {
  if (audits.length === 0) return Promise.resolve();
  return audits.length > 1 ? applyRun(sql, audits) : applyOne(sql, audits[0]!);
}

async function applyRun(sql: postgres.TransactionSql, run: Effect[]): Promise<void> {
  if (run[0]!.type === 'webhook.event') {
    const events = run.flatMap((e) => (e.type === 'webhook.event' ? [e] : []));
    // An event for one endpoint (a ping) is written alone.
    if (events.some((e) => e.webhookId)) {
      await Promise.all(events.map((e) => applyOne(sql, e)));
      return;
    }
    // As one event (`applyOne`), for the whole run: the events (none when no endpoint exists, nor those whose dedupe
    // key is taken) and a delivery per subscribed endpoint of each.
    const ev = events.map((e) => e.event);
    await sql`WITH ev AS (
        INSERT INTO webhook_events (id, type, license_id, at, data, dedupe_key)
        SELECT id, type, license_id, at, data, dedupe FROM unnest(${ev.map((x) => x.id)}::text[], ${ev.map((x) => x.type)}::text[],
          ${ev.map((x) => x.licenseId)}::text[], ${ev.map((x) => x.at)}::bigint[], ${ev.map((x) => JSON.stringify(x.data))}::jsonb[],
          ${events.map((e) => e.dedupe)}::text[]) WITH ORDINALITY AS t(id, type, license_id, at, data, dedupe, n)
        WHERE EXISTS (SELECT 1 FROM webhooks) ORDER BY n
        ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, type, at)
      INSERT INTO webhook_deliveries (id, webhook_id, event_id, state, attempts, next_attempt_at, created_at)
      SELECT 'dlv_' || substr(md5(random()::text || w.id || ev.id), 1, 20), w.id, ev.id, 'pending', 0, ev.at, ev.at FROM ev, webhooks w
      WHERE w.enabled AND (w.events #>> '{}')::jsonb ?| array['*', ev.type]`;
    return;
  }
  if (run[0]!.type === 'lease.delete') {
    const ids = run.map((e) => (e.type === 'lease.delete' ? e.leaseId : ''));
    await Promise.all([
      sql`DELETE FROM instances WHERE lease_id = ANY(${ids}::text[])`,
      sql`DELETE FROM leases WHERE id = ANY(${ids}::text[])`,
    ]);
    return;
  }
  const a = run.flatMap((e) => (e.type === 'audit' ? [e.entry] : []));
  await sql`INSERT INTO audit (at, type, actor, license_id, device_id, lease_id, reason, data)
    SELECT at, type, actor, license_id, device_id, lease_id, reason, data FROM unnest(${a.map((x) => x.at)}::bigint[], ${a.map((x) => x.type)}::text[], ${a.map((x) => x.actor)}::text[],
      ${a.map((x) => x.licenseId)}::text[], ${a.map((x) => x.deviceId)}::text[], ${a.map((x) => x.leaseId)}::text[],
      ${a.map((x) => x.reason)}::text[], ${a.map((x) => JSON.stringify(x.data))}::jsonb[]) WITH ORDINALITY AS t(at, type, actor, license_id, device_id, lease_id, reason, data, n)
    ORDER BY n`;
}

async function applyOne(sql: postgres.TransactionSql, e: Effect): Promise<void> {
  switch (e.type) {
    case 'customer.insert': {
      const c = e.customer;
      await sql`INSERT INTO customers (id, name, contact, metadata, created_at, updated_at)
        VALUES (${c.id}, ${c.name}, ${JSON.stringify(c.contact)}::jsonb, ${JSON.stringify(c.metadata)}::jsonb, ${c.createdAt}, ${c.updatedAt})`;
      return;
    }
    case 'customer.update': {
      const c = e.customer;
      await sql`UPDATE customers SET name = ${c.name}, contact = ${JSON.stringify(c.contact)}::jsonb, metadata = ${JSON.stringify(c.metadata)}::jsonb,
        updated_at = ${c.updatedAt} WHERE id = ${c.id}`;
      return;
    }
    case 'customer.delete':
      await sql`DELETE FROM customers WHERE id = ${e.customerId}`;
      return;
    case 'product.insert': {
      const p = e.product;
      await sql`INSERT INTO products (id, name, metadata, created_at, updated_at) VALUES (${p.id}, ${p.name}, ${JSON.stringify(p.metadata)}::jsonb, ${p.createdAt}, ${p.updatedAt})`;
      return;
    }
    case 'product.update': {
      const p = e.product;
      await sql`UPDATE products SET name = ${p.name}, metadata = ${JSON.stringify(p.metadata)}::jsonb, updated_at = ${p.updatedAt} WHERE id = ${p.id}`;
      return;
    }
    case 'product.delete':
      await sql`DELETE FROM products WHERE id = ${e.productId}`;
      return;
    case 'license.insert': {
      const l = e.license;
      await sql`INSERT INTO licenses (id, product_id, customer_id, key, seats, model, expires_at, trial_days, trial_started_at, lease_ttl_seconds,
          heartbeat_interval_seconds, max_offline_seconds, max_offline_seats, max_instances_per_device, counting, sharing,
          clone_policy, vm_policy, linger_seconds, overdraft_seats, access, features, suspended, metadata, seats_used, seats_offline, created_at, updated_at)
        VALUES (${l.id}, ${l.productId}, ${l.customerId}, ${l.key}, ${l.seats}, ${l.model}, ${l.expiresAt}, ${l.trialDays}, ${l.trialStartedAt}, ${l.leaseTtlSeconds},
          ${l.heartbeatIntervalSeconds}, ${l.maxOfflineSeconds}, ${l.maxOfflineSeats}, ${l.maxInstancesPerDevice}, ${countingOf(l.sharing)},
          ${JSON.stringify(l.sharing)}, ${l.clonePolicy}, ${l.vmPolicy}, ${l.lingerSeconds}, ${l.overdraftSeats}, ${JSON.stringify(l.access)},
          ${l.features.length ? JSON.stringify(l.features) : null}, ${l.suspended},
          ${JSON.stringify(l.metadata)}::jsonb, 0, 0, ${l.createdAt}, ${l.updatedAt})`;
      return;
    }
    case 'license.update': {
      // Policy fields only: the seat counters are written only by the guarded `seats` effect.
      const l = e.license;
      await sql`UPDATE licenses SET customer_id = ${l.customerId}, seats = ${l.seats}, model = ${l.model}, expires_at = ${l.expiresAt}, trial_days = ${l.trialDays},
          trial_started_at = ${l.trialStartedAt}, lease_ttl_seconds = ${l.leaseTtlSeconds}, heartbeat_interval_seconds = ${l.heartbeatIntervalSeconds},
          max_offline_seconds = ${l.maxOfflineSeconds}, max_offline_seats = ${l.maxOfflineSeats}, max_instances_per_device = ${l.maxInstancesPerDevice},
          counting = ${countingOf(l.sharing)}, sharing = ${JSON.stringify(l.sharing)}, clone_policy = ${l.clonePolicy}, vm_policy = ${l.vmPolicy},
          linger_seconds = ${l.lingerSeconds}, overdraft_seats = ${l.overdraftSeats}, access = ${JSON.stringify(l.access)},
          features = ${l.features.length ? JSON.stringify(l.features) : null}, suspended = ${l.suspended}, metadata = ${JSON.stringify(l.metadata)}::jsonb, updated_at = ${l.updatedAt}
        WHERE id = ${l.id}`;
      return;
    }
    case 'license.delete':
      await Promise.all([
        sql`DELETE FROM instances WHERE lease_id IN (SELECT id FROM leases WHERE license_id = ${e.licenseId})`,
        sql`DELETE FROM leases WHERE license_id = ${e.licenseId}`,
        sql`DELETE FROM devices WHERE license_id = ${e.licenseId}`,
        sql`DELETE FROM usage_hourly WHERE license_id = ${e.licenseId}`,
        sql`DELETE FROM usage_features WHERE license_id = ${e.licenseId}`,
        sql`DELETE FROM waiters WHERE license_id = ${e.licenseId}`,
        sql`DELETE FROM licenses WHERE id = ${e.licenseId}`,
      ]);
      return;
    case 'license.trialStarted':
      await sql`UPDATE licenses SET trial_started_at = ${e.at} WHERE id = ${e.licenseId} AND trial_started_at IS NULL`;
      return;
    case 'device.upsert': {
      const d = e.device;
      await sql`INSERT INTO devices (id, license_id, fingerprint, hostname, user_name, app_version, first_seen_at, last_accessed_at,
          machines_seen, clone_suspected_at)
        VALUES (${d.id}, ${d.licenseId}, ${d.fingerprint}, ${d.hostname}, ${d.user}, ${d.appVersion}, ${d.firstSeenAt}, ${d.lastAccessedAt},
          ${JSON.stringify(d.machinesSeen)}, ${d.cloneSuspectedAt})
        ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, user_name = excluded.user_name,
          app_version = excluded.app_version, last_accessed_at = excluded.last_accessed_at,
          machines_seen = excluded.machines_seen, clone_suspected_at = excluded.clone_suspected_at`;
      return;
    }
    case 'lease.insert': {
      const l = e.lease;
      const lease = sql`INSERT INTO leases (id, license_id, device_id, share_group, overdraft, base, features, offline, granted_at, last_heartbeat_at,
            expires_at, offline_expires_at)
          VALUES (${l.id}, ${l.licenseId}, ${l.deviceId}, ${l.shareGroup}, ${l.overdraft}, ${l.base}, ${namesColumn(l.features)}, ${l.offline},
            ${l.grantedAt}, ${l.lastHeartbeatAt}, ${l.expiresAt}, ${l.offlineExpiresAt})`;
      // A lease with its one use (a checkout): one statement.
      if (l.instances.length === 1) await sql`WITH lease AS (${lease}) ${putInstance(sql, l.id, l.instances[0]!)}`;
      else await Promise.all([lease, ...l.instances.map((i) => putInstance(sql, l.id, i))]);
      return;
    }
    case 'lease.update': {
      const l = e.lease;
      await sql`UPDATE leases SET offline = ${l.offline}, last_heartbeat_at = ${l.lastHeartbeatAt}, expires_at = ${l.expiresAt},
        offline_expires_at = ${l.offlineExpiresAt}, linger_until = ${l.lingerUntil}, features = ${namesColumn(l.features)} WHERE id = ${l.id}`;
      return;
    }
    case 'lease.delete':
      await sql`WITH uses AS (DELETE FROM instances WHERE lease_id = ${e.leaseId}) DELETE FROM leases WHERE id = ${e.leaseId}`;
      return;
    case 'instance.put':
      await putInstance(sql, e.leaseId, e.instance);
      return;
    case 'instance.delete':
      await sql`DELETE FROM instances WHERE lease_id = ${e.leaseId} AND instance_id = ${e.instanceId}`;
      return;
    case 'lease.renew':
      await renewBatch(sql, [e.renewal]);
      return;
    case 'seats.set':
      await sql`UPDATE licenses SET seats_used = ${e.used}, seats_offline = ${e.offline} WHERE id = ${e.licenseId}`;
      return;
    case 'seats': {
      // The guard: never above the seat count (or the offline cap), never below zero, whatever the decision said.
      const row = await sql`UPDATE licenses SET seats_used = seats_used + ${e.used}, seats_offline = seats_offline + ${e.offline}
        WHERE id = ${e.licenseId}
          AND seats_used + ${e.used} >= 0 AND seats_offline + ${e.offline} >= 0
          AND (${e.used}::int <= 0 OR seats_used + ${e.used} <= seats + overdraft_seats)
          AND (${e.offline}::int <= 0 OR seats_offline + ${e.offline} <= LEAST(seats, COALESCE(max_offline_seats, seats)))`;
      if (row.count !== 1) throw new SeatGuardError(e.licenseId);
      return;
    }
    case 'adminToken.insert': {
      const t = e.token;
      await sql`INSERT INTO admin_tokens (id, name, role, customer_id, token_hash, created_at, last_used_at, revoked_at)
        VALUES (${t.id}, ${t.name}, ${t.role}, ${t.customerId}, ${t.tokenHash}, ${t.createdAt}, ${t.lastUsedAt}, ${t.revokedAt})`;
      return;
    }
    case 'adminToken.revoke':
      await sql`UPDATE admin_tokens SET revoked_at = ${e.at} WHERE id = ${e.tokenId} AND revoked_at IS NULL`;
      return;
    case 'audit': {
      const a = e.entry;
      await sql`INSERT INTO audit (at, type, actor, license_id, device_id, lease_id, reason, data)
        VALUES (${a.at}, ${a.type}, ${a.actor}, ${a.licenseId}, ${a.deviceId}, ${a.leaseId}, ${a.reason}, ${JSON.stringify(a.data)}::jsonb)`;
      return;
    }
    case 'audit.aggregate': {
      // Add to the key's entry, or insert it under the window's cap (concurrent first denials of one key meet in
      // ON CONFLICT; concurrent new keys of one window may pass the cap by the number of them in flight).
      const bumped =
        await sql`UPDATE audit SET count = count + 1, last_at = GREATEST(COALESCE(last_at, at), ${e.entry.at}) WHERE agg_key = ${e.key}`;
      if (bumped.count > 0) return;
      const [c] = await sql`SELECT COUNT(*)::int AS n FROM audit WHERE agg_window = ${e.window}`;
      const { key, entry: a } = Number(c!.n) < e.cap ? e : e.overflow;
      await sql`INSERT INTO audit (at, type, actor, license_id, device_id, lease_id, reason, data, agg_key, agg_window, count, last_at)
        VALUES (${a.at}, ${a.type}, ${a.actor}, ${a.licenseId}, ${a.deviceId}, ${a.leaseId}, ${a.reason}, ${JSON.stringify(a.data)}::jsonb,
          ${key}, ${e.window}, 1, ${a.at})
        ON CONFLICT (agg_key) WHERE agg_key IS NOT NULL DO UPDATE SET count = audit.count + 1, last_at = GREATEST(audit.last_at, excluded.last_at)`;
      return;
    }
    case 'webhook.event': {
      // One statement: the event (none when no endpoint exists, or its dedupe key is taken) and a delivery per subscribed endpoint.
      const ev = e.event;
      const target = e.webhookId ?? null;
      await sql`WITH ev AS (
          INSERT INTO webhook_events (id, type, license_id, at, data, dedupe_key)
          SELECT ${ev.id}, ${ev.type}, ${ev.licenseId}, ${ev.at}, ${JSON.stringify(ev.data)}::jsonb, ${e.dedupe}
          WHERE ${target}::text IS NOT NULL OR EXISTS (SELECT 1 FROM webhooks)
          ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, type, at)
        INSERT INTO webhook_deliveries (id, webhook_id, event_id, state, attempts, next_attempt_at, created_at)
        SELECT 'dlv_' || substr(md5(random()::text || w.id || ev.id), 1, 20), w.id, ev.id, 'pending', 0, ev.at, ev.at FROM ev, webhooks w
        WHERE (${target}::text IS NOT NULL AND w.id = ${target}) OR (${target}::text IS NULL AND w.enabled AND (w.events #>> '{}')::jsonb ?| array['*', ev.type])`;
      return;
    }
    case 'webhook.put': {
      const w = e.webhook;
      await sql`INSERT INTO webhooks (id, url, events, description, enabled, secret, created_at, updated_at)
        VALUES (${w.id}, ${w.url}, ${JSON.stringify(w.events)}::jsonb, ${w.description}, ${w.enabled}, ${w.secret}, ${w.createdAt}, ${w.updatedAt})
        ON CONFLICT (id) DO UPDATE SET url = excluded.url, events = excluded.events, description = excluded.description,
          enabled = excluded.enabled, secret = excluded.secret, updated_at = excluded.updated_at`;
      return;
    }
    case 'webhook.delete':
      await Promise.all([
        sql`DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE webhook_id = ${e.webhookId})`,
        sql`DELETE FROM webhook_deliveries WHERE webhook_id = ${e.webhookId}`,
        sql`DELETE FROM webhooks WHERE id = ${e.webhookId}`,
      ]);
      return;
    case 'kv.put':
      await sql`INSERT INTO kv (name, value, updated_at) VALUES (${e.name}, ${e.value}, ${e.at})
        ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`;
      return;
    case 'kv.delete':
      await sql`DELETE FROM kv WHERE name = ${e.name}`;
      return;
    case 'usage':
      await sql`INSERT INTO usage_hourly (license_id, hour, peak_seats, seats_at_end, checkouts, denials, peak_overdraft,
          overdraft_at_end, overdraft_checkouts)
        VALUES (${e.licenseId}, ${hourOf(e.at)}, ${e.peak}, ${e.seatsUsed}, ${e.checkouts}, ${e.denials}, ${e.peakOverdraft},
          ${e.overdraftAtEnd}, ${e.overdraftCheckouts})
        ON CONFLICT (license_id, hour) DO UPDATE SET peak_seats = GREATEST(usage_hourly.peak_seats, excluded.peak_seats),
          seats_at_end = excluded.seats_at_end, checkouts = usage_hourly.checkouts + excluded.checkouts,
          denials = usage_hourly.denials + excluded.denials,
          peak_overdraft = GREATEST(usage_hourly.peak_overdraft, excluded.peak_overdraft), overdraft_at_end = excluded.overdraft_at_end,
          overdraft_checkouts = usage_hourly.overdraft_checkouts + excluded.overdraft_checkouts`;
      return;
    case 'usage.queue':
      await sql`INSERT INTO usage_hourly (license_id, hour, peak_seats, seats_at_end, checkouts, denials, queued, queue_grants, queue_wait_ms)
        VALUES (${e.licenseId}, ${hourOf(e.at)}, ${e.level}, ${e.level}, 0, 0, ${e.queued}, ${e.grants}, ${e.waitMs})
        ON CONFLICT (license_id, hour) DO UPDATE SET queued = usage_hourly.queued + excluded.queued,
          queue_grants = usage_hourly.queue_grants + excluded.queue_grants, queue_wait_ms = usage_hourly.queue_wait_ms + excluded.queue_wait_ms`;
      return;
    case 'waiter.put': {
      const w = e.waiter;
      await sql`INSERT INTO waiters (license_id, pool, fingerprint, instance_id, enqueued_at, last_poll_at, expires_at)
        VALUES (${w.licenseId}, ${w.pool}, ${w.fingerprint}, ${w.instanceId}, ${w.enqueuedAt}, ${w.lastPollAt}, ${w.expiresAt})
        ON CONFLICT (license_id, pool, fingerprint, instance_id) DO UPDATE SET last_poll_at = excluded.last_poll_at,
          expires_at = excluded.expires_at`;
      return;
    }
    case 'waiter.delete':
      await sql`DELETE FROM waiters WHERE license_id = ${e.licenseId} AND fingerprint = ${e.fingerprint} AND instance_id = ${e.instanceId}`;
      return;
    case 'waiters.drop':
      await sql`DELETE FROM waiters WHERE seq = ANY(${e.seqs}::bigint[])`;
      return;
    case 'usage.feature':
      await sql`INSERT INTO usage_features (license_id, feature, hour, peak, checkouts, denials)
        VALUES (${e.licenseId}, ${e.feature}, ${hourOf(e.at)}, ${e.held}, ${e.checkouts}, ${e.denials})
        ON CONFLICT (license_id, feature, hour) DO UPDATE SET peak = GREATEST(usage_features.peak, excluded.peak),
          checkouts = usage_features.checkouts + excluded.checkouts, denials = usage_features.denials + excluded.denials`;
      return;
  }
}

function putInstance(sql: postgres.TransactionSql, leaseId: string, instance: Instance) {
  const i = instanceParams(leaseId, instance);
  return sql`INSERT INTO instances (lease_id, instance_id, started_at, last_heartbeat_at, expires_at, device_id, meta, features, session_key)
    VALUES (${leaseId}, ${i.instanceId}, ${i.startedAt}, ${i.lastHeartbeatAt}, ${i.expiresAt}, ${i.deviceId}, ${i.meta}, ${i.features},
      ${i.sessionKey})
    ON CONFLICT (lease_id, instance_id) DO UPDATE SET last_heartbeat_at = excluded.last_heartbeat_at, expires_at = excluded.expires_at,
      features = excluded.features, session_key = COALESCE(excluded.session_key, instances.session_key)`;
}

/** Applies pending migrations; an advisory lock makes concurrent starts of several nodes wait for each other. */
export async function migrate(sql: postgres.Sql): Promise<number[]> {
  return (await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtext('floatd:migrate'))`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`;
    const done = new Set((await tx`SELECT version FROM schema_migrations`).map((row) => Number(row.version)));
    const applied: number[] = [];
    for (const m of PG_MIGRATIONS) {
      if (done.has(m.version)) continue;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO schema_migrations (version, name, applied_at) VALUES (${m.version}, ${m.name}, ${Date.now()})`;
      applied.push(m.version);
    }
    return applied;
  })) as number[];
}

/**
 * Renewals in three statements whatever their number (monotonic, update-only:
 * see domain/effects.ts `Renewal`). The caller holds the leases' locks or is
 * inside the seat transaction that does.
 */
async function renewBatch(sql: postgres.TransactionSql, renewals: readonly Renewal[]): Promise<void> {
  if (renewals.length === 0) return;
  // One row per lease and per device for the UPDATE … FROM (a row is updated once per statement).
  const leases = new Map<string, { at: number; expiresAt: number | null }>();
  const devices = new Map<string, number>();
  for (const renewal of renewals) {
    const known = leases.get(renewal.leaseId);
    leases.set(renewal.leaseId, {
      at: Math.max(known?.at ?? 0, renewal.at),
      expiresAt:
        known === undefined
          ? renewal.expiresAt
          : known.expiresAt === null || renewal.expiresAt === null
            ? null
            : Math.max(known.expiresAt, renewal.expiresAt),
    });
    devices.set(renewal.deviceId, Math.max(devices.get(renewal.deviceId) ?? 0, renewal.at));
  }
  const lIds = [...leases.keys()];
  const lAt = lIds.map((id) => leases.get(id)!.at);
  const lExp = lIds.map((id) => leases.get(id)!.expiresAt);
  const leaseUpdate = sql`UPDATE leases l SET last_heartbeat_at = GREATEST(l.last_heartbeat_at, r.at),
      expires_at = CASE WHEN r.exp IS NULL OR l.expires_at IS NULL THEN r.exp ELSE GREATEST(l.expires_at, r.exp) END
    FROM unnest(${lIds}::text[], ${lAt}::bigint[], ${lExp}::bigint[]) AS r(id, at, exp)
    WHERE l.id = r.id AND NOT l.offline`;
  // The instances of online leases only (an offline lease's instances keep its Offline Expiry Date); the
  // subquery sees the leases as they were before this statement's neighbours, and `offline` is not changed by them.
  const inst = renewals;
  const instanceUpdate = sql`UPDATE instances i SET last_heartbeat_at = GREATEST(i.last_heartbeat_at, r.at),
        expires_at = CASE WHEN r.exp IS NULL OR i.expires_at IS NULL THEN r.exp ELSE GREATEST(i.expires_at, r.exp) END
      FROM unnest(${inst.map((renewal) => renewal.leaseId)}::text[], ${inst.map((renewal) => renewal.instanceId)}::text[], ${inst.map((renewal) => renewal.at)}::bigint[],
        ${inst.map((renewal) => renewal.expiresAt)}::bigint[]) AS r(lease_id, instance_id, at, exp)
      WHERE i.lease_id = r.lease_id AND i.instance_id = r.instance_id
        AND EXISTS (SELECT 1 FROM leases l WHERE l.id = r.lease_id AND NOT l.offline)`;
  const dIds = [...devices.keys()];
  // Last access is informational: a device row another transaction is writing keeps that transaction's value.
  const deviceUpdate = sql`UPDATE devices d SET last_accessed_at = GREATEST(d.last_accessed_at, r.at)
    FROM unnest(${dIds}::text[], ${dIds.map((id) => devices.get(id)!)}::bigint[]) AS r(id, at)
    WHERE d.id = r.id AND d.id IN (SELECT id FROM devices WHERE id = ANY(${dIds}::text[]) FOR UPDATE SKIP LOCKED)`;
  await Promise.all([leaseUpdate, instanceUpdate, deviceUpdate]);
}

function kvRecord(row: Row | undefined): KvRecord | undefined {
  return row && { name: String(row.name), value: String(row.value), updatedAt: num(row.updated_at) };
}
