/**
 * Test harness: a real floatd HTTP server on a real SQLite file in a fresh
 * temporary data directory, listening on an ephemeral port, with a manual
 * clock so time rules are tested without sleeping. Used by this package's
 * tests and by the end-to-end tests of the other packages.
 */
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type ConfigInput } from '../config.js';
import { ManualClock } from '../domain/clock.js';
import { pino, destination } from 'pino';
import { startServer, type RunningServer } from '../server.js';
import { createTempDatabase, TEST_KEY_ENCRYPTION_KEY } from './pg.js';
export { mountSmallDisk, type SmallDisk } from './smallDisk.js';
export { createTempDatabase, TEST_KEY_ENCRYPTION_KEY, type TempDatabase } from './pg.js';
export { freePort, startFloatdProcess, spawnListening, type FloatdProcess } from './process.js';

export interface HttpAnswer<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface TestServer {
  server: RunningServer;
  url: string;
  clock: ManualClock;
  dataDir: string;
  adminToken: string;
  /** Calls the admin API with the initial admin token. */
  admin<T = any>(method: string, path: string, body?: unknown): Promise<HttpAnswer<T>>;
  /** Calls the client API with `Authorization: License <key>`. */
  client<T = any>(key: string, method: string, path: string, body?: unknown): Promise<HttpAnswer<T>>;
  /** Raw request: full control of headers and body text. */
  raw(method: string, path: string, init?: { headers?: Record<string, string>; body?: string }): Promise<HttpAnswer>;
  /** Which database this server runs on. */
  store: 'sqlite' | 'postgres';
  /** PostgreSQL: its database (pass it as `database` to start the next server on it: a restart). */
  database: import('./pg.js').TempDatabase | undefined;
  /** Reads the database directly, bypassing the server (`?` placeholders), for independent checks. */
  rows(query: string, ...params: unknown[]): Promise<Record<string, unknown>[]>;
  /** Writes to the database directly, behind the server's back (`?` placeholders): what a customer who owns the machine could do. */
  tamper(query: string, ...params: unknown[]): Promise<void>;
  /**
   * Every row of every table (but `nodes`, which a timer rewrites), each table's rows
   * sorted: compare two snapshots to prove a refused request changed nothing.
   */
  snapshot(): Promise<Record<string, string[]>>;
  /** Creates a product and a license key with the given policy; returns the license (with its key). */
  license(policy?: Record<string, unknown>): Promise<any>;
  close(): Promise<void>;
}

/** The store the test servers use: SQLite by default, PostgreSQL with FLOATD_TEST_STORE=postgres. */
export const TEST_STORE: 'sqlite' | 'postgres' = process.env.FLOATD_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';

export async function startTestServer(
  opts: {
    clock?: ManualClock;
    dataDir?: string;
    reclaimer?: boolean;
    reclaimIntervalSeconds?: number;
    store?: 'sqlite' | 'postgres';
    /** PostgreSQL: reuse this database (a restart); it is not dropped on close. */
    database?: import('./pg.js').TempDatabase;
    /**
     * FLOATD_* security settings (e.g. `{ FLOATD_RATE_LIMIT_CLIENT_KEY: '5/60' }`). Rate limiting is off
     * unless given here: test files send thousands of requests, and fail authentication on purpose, from one address.
     */
    securityEnv?: Record<string, string>;
    /** more settings, as flags would give them (e.g. `{ mode: 'on-prem', vendorPublicKey: file }`) */
    config?: Partial<ConfigInput>;
  } = {},
): Promise<TestServer> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'floatd-test-')));
  const clock = opts.clock ?? new ManualClock(Date.parse('2026-03-02T09:00:00Z'));
  const pg = opts.database ?? ((opts.store ?? TEST_STORE) === 'postgres' ? await createTempDatabase() : undefined);
  const config = parseConfig({
    host: '127.0.0.1',
    port: '0',
    dataDir,
    logLevel: 'silent',
    reclaimInterval: String(opts.reclaimIntervalSeconds ?? 30),
    databaseUrl: pg?.url,
    keyEncryptionKey: pg ? TEST_KEY_ENCRYPTION_KEY : undefined,
    // Test files run two at a time, each with several servers: small pools keep all of them under PostgreSQL's max_connections.
    databasePoolSize: pg ? '4' : undefined,
    rateLimit: opts.securityEnv ? (opts.securityEnv.FLOATD_RATE_LIMIT ?? 'on') : 'off',
    rateLimitClientIp: opts.securityEnv?.FLOATD_RATE_LIMIT_CLIENT_IP,
    rateLimitClientKey: opts.securityEnv?.FLOATD_RATE_LIMIT_CLIENT_KEY,
    rateLimitAuthFailures: opts.securityEnv?.FLOATD_RATE_LIMIT_AUTH_FAILURES,
    trustProxy: opts.securityEnv?.FLOATD_TRUST_PROXY,
    corsOrigins: opts.securityEnv?.FLOATD_CORS_ORIGINS,
    // Tests move the manual clock back and forth at will: the server clock rollback check is off
    // (ten years of tolerance) unless a test sets `config.clockTolerance` to test it.
    clockTolerance: String(10 * 365 * 86_400),
    ...opts.config,
  });
  // Only errors are logged (to stderr): a 500 in a test shows its cause in the test output.
  const logger = pino({ level: 'error' }, destination(2));
  const server = await startServer(config, { clock, logger, reclaimer: opts.reclaimer ?? false });
  const { readFile } = await import('node:fs/promises');
  const adminToken = (await readFile(server.adminTokenFile, 'utf8')).trim();

  const raw = async (method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}): Promise<HttpAnswer> => {
    const res = await fetch(server.url + path, { method, headers: init.headers ?? {}, body: init.body ?? null });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body, headers: res.headers };
  };
  const call = (auth: string) => (method: string, path: string, body?: unknown) =>
    raw(method, path, {
      headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const admin = call(`Bearer ${adminToken}`);
  let productId: string | undefined;
  const rows = async (query: string, ...params: unknown[]): Promise<Record<string, unknown>[]> => {
    if (pg) {
      const { default: postgres } = await import('postgres');
      const sql = postgres(pg.url, { max: 1, onnotice: () => undefined });
      try {
        let n = 0;
        const result = await sql.unsafe(
          query.replace(/\?/g, () => `$${++n}`),
          params as never[],
        );
        return result.map((r) =>
          Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v])),
        );
      } finally {
        await sql.end();
      }
    }
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(dataDir, 'floatd.db'), { readonly: true });
    try {
      return db.prepare(query).all(...params) as Record<string, unknown>[];
    } finally {
      db.close();
    }
  };
  const tamper = async (query: string, ...params: unknown[]): Promise<void> => {
    if (pg) {
      await rows(query, ...params);
      return;
    }
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(dataDir, 'floatd.db'));
    try {
      db.pragma('busy_timeout = 5000');
      db.prepare(query).run(...params);
    } finally {
      db.close();
    }
  };
  const snapshot = async () => {
    const out: Record<string, string[]> = {};
    const tables = pg
      ? await rows(
          "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        )
      : await rows("SELECT name FROM sqlite_master WHERE type = 'table'");
    for (const { name } of tables as { name: string }[]) {
      if (name === 'nodes') continue;
      out[name] = (await rows(`SELECT * FROM "${name.replace(/"/g, '""')}"`)).map((r) => JSON.stringify(r)).sort();
    }
    return out;
  };
  return {
    store: pg ? 'postgres' : 'sqlite',
    database: pg,
    rows,
    tamper,
    snapshot,
    server,
    url: server.url,
    clock,
    dataDir,
    adminToken,
    admin,
    client: (key, method, path, body) => call(`License ${key}`)(method, path, body),
    raw,
    async license(policy = {}) {
      if (!productId) productId = (await admin('POST', '/v1/admin/products', { name: 'Test product' })).body.id;
      const res = await admin('POST', '/v1/admin/licenses', { productId, seats: 5, ...policy });
      if (res.status !== 201) throw new Error(`license creation failed: ${JSON.stringify(res.body)}`);
      return res.body;
    },
    async close() {
      await server.close();
      if (!opts.database) await pg?.drop();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The nodes a parallel-exactness test spreads its requests over: `t` alone on SQLite; on PostgreSQL `t`
 * and a second node on the same database (its own data directory, `t`'s first admin token and clock).
 * `close` stops the second node.
 */
export async function clusterOf(t: TestServer): Promise<{ nodes: TestServer[]; close(): Promise<void> }> {
  if (t.store !== 'postgres') return { nodes: [t], close: async () => undefined };
  const dir = await mkdtemp(join(tmpdir(), 'floatd-node2-'));
  await copyFile(join(t.dataDir, 'admin-token'), join(dir, 'admin-token'));
  const second = await startTestServer({ database: t.database, dataDir: dir, clock: t.clock });
  return {
    nodes: [t, second],
    close: async () => {
      await second.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
