/**
 * Composition root: builds the store, keys, services and HTTP app once, starts
 * the background reclaimer, and closes everything in order on shutdown.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { systemClock, type Clock } from './domain/clock.js';
import { buildApp } from './http/app.js';
import { fileKeyPersistence, KeyRing, type KeyPersistence } from './keys.js';
import { PostgresStore } from './store/postgres/store.js';
import { pgKeyPersistence } from './store/postgres/keys.js';
import { alwaysLeader, pgLeadership, type Leadership } from './jobs/leader.js';
import { reportNode } from './jobs/nodes.js';
import { AdminAuth } from './service/auth.js';
import { CatalogueService } from './service/catalogue.js';
import { LicensingService } from './service/licensing.js';
import { createMetrics } from './service/metrics.js';
import { ReclaimService, startReclaimer } from './service/reclaim.js';
import { RenewalBuffer } from './service/renewals.js';
import { SqliteStore } from './store/sqlite/store.js';
import type { Store } from './store/port.js';

export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/** The store named by the configuration, where its signing keys live, and who runs the background jobs. */
export async function openStore(
  config: Config,
): Promise<{ store: Store; keyPersistence: KeyPersistence; leadership: Leadership; membership?: { stop(): Promise<void> } }> {
  if (config.database.kind === 'sqlite') {
    const store = new SqliteStore({ path: config.database.path, synchronous: config.sqliteSynchronous });
    return { store, keyPersistence: fileKeyPersistence(config.dataDir), leadership: alwaysLeader };
  }
  const store = await PostgresStore.open({ url: config.database.url, max: config.database.poolSize });
  const leadership = pgLeadership(store.sql, 'floatd:jobs');
  return {
    store,
    keyPersistence: pgKeyPersistence(store.sql, config.database.keyEncryptionKey),
    leadership,
    membership: reportNode(store.sql, VERSION, () => leadership.isLeader()),
  };
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  store: Store;
  reclaim: ReclaimService;
  keys: KeyRing;
  /** the first admin token's secret, only on the start that created it */
  createdAdminSecret: string | undefined;
  adminTokenFile: string;
  close(): Promise<void>;
}

export interface StartOptions {
  clock?: Clock;
  logger?: Logger | false;
  /** run the background reclaimer (default true) */
  reclaimer?: boolean;
}

export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger === undefined ? pino({ level: config.logLevel, redact: ['req.headers.authorization', '*.token', '*.secret'] }) : opts.logger;
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });

  const { store, keyPersistence, leadership, membership } = await openStore(config);
  const keys = await KeyRing.open(keyPersistence, clock.now());
  const auth = new AdminAuth(store, clock);

  const metrics = createMetrics(store);
  const renewals =
    config.heartbeatBatchMs > 0
      ? new RenewalBuffer(store, { intervalMs: config.heartbeatBatchMs, onError: (err) => logger && logger.error({ err }, 'writing batched heartbeats failed (kept for the next batch)') })
      : undefined;
  const reclaim = new ReclaimService(store, clock, metrics, renewals);
  const app = await buildApp(
    {
      store,
      clock,
      keys,
      auth,
      metrics,
      reclaim,
      licensing: new LicensingService(store, clock, keys, metrics, renewals),
      catalogue: new CatalogueService(store, clock, metrics, keys),
      version: VERSION,
      settings: { reclaimIntervalSeconds: config.reclaimIntervalSeconds },
    },
    { logger, logRequests: config.logRequests, security: config.security, trustProxy: config.security.trustProxy },
  );
  await app.listen({ host: config.host, port: config.port });
  // The first admin token is made once the server is up, so a failed first start never leaves an unseen token behind.
  const adminTokenFile = join(config.dataDir, 'admin-token');
  const createdAdminSecret = await auth.createFirst();
  if (createdAdminSecret) {
    await writeFile(adminTokenFile, createdAdminSecret + '\n', { mode: 0o600 });
    await chmod(adminTokenFile, 0o600);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const reclaimer = opts.reclaimer === false ? undefined : startReclaimer(reclaim, config.reclaimIntervalSeconds, (err) => logger && logger.error({ err }, 'reclaimer sweep failed'), leadership);

  let closing: Promise<void> | undefined;
  return {
    app,
    url: `http://${host}:${port}`,
    store,
    reclaim,
    keys,
    createdAdminSecret,
    adminTokenFile,
    close() {
      closing ??= (async () => {
        await reclaimer?.stop();
        await leadership.stop();
        await membership?.stop();
        await app.close();
        await renewals?.close();
        await store.close();
      })();
      return closing;
    },
  };
}
