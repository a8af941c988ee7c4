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
import { connect, PostgresStore } from './store/postgres/store.js';
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
import { ServerClockGuard } from './service/serverClock.js';
import { EntitlementService } from './onprem/entitlements.js';
import { openIdentity, type ServerIdentity } from './onprem/identity.js';
import { readPrivateKeyFile, readVendorPublicKeys } from './onprem/keyFiles.js';
import { signerOf, publicKeyFrom } from './onprem/signed.js';
import { VendorService } from './onprem/vendor.js';
import type { Store } from './store/port.js';
import { StorageHealth, storageFailure } from './store/errors.js';

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
  const leadership = pgLeadership(connect(config.database.url, 1), 'floatd:jobs');
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
  clockGuard: ServerClockGuard;
  /** on-prem only */
  entitlements: EntitlementService | undefined;
  identity: ServerIdentity | undefined;
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
  const storageHealth = new StorageHealth();
  const renewals =
    config.heartbeatBatchMs > 0
      ? new RenewalBuffer(store, {
          intervalMs: config.heartbeatBatchMs,
          onError: (err) => {
            // a batch refused by a full disk makes /readyz report it, like a refused request
            const failure = storageFailure(err);
            if (failure) storageHealth.failed(failure, clock.now());
            if (logger) logger.error({ err }, 'writing batched heartbeats failed (kept for the next batch)');
          },
        })
      : undefined;
  const reclaim = new ReclaimService(store, clock, metrics, renewals);

  // Key files are read before anything else starts: a missing or readable-by-others key stops the server here.
  const onPrem = config.mode === 'on-prem';
  const vendorKeys = onPrem ? await readVendorPublicKeys(config.vendorPublicKeyFile) : undefined;
  const vendorSigner = config.vendorPrivateKeyFile ? signerOf(await readPrivateKeyFile(config.vendorPrivateKeyFile)) : undefined;
  const encryptionKey = config.database.kind === 'postgres' ? config.database.keyEncryptionKey : undefined;
  const identity = onPrem ? await openIdentity(store, clock.now(), encryptionKey) : undefined;
  const clockGuard = new ServerClockGuard(store, clock, metrics, {
    toleranceSeconds: config.clockToleranceSeconds,
    signer: identity ? { signer: identity.signer, publicKey: publicKeyFrom(identity.publicKey) } : undefined,
    logger,
  });
  await clockGuard.start();
  const entitlements =
    onPrem && identity && vendorKeys
      ? new EntitlementService(store, clock, metrics, { vendorKeys, identity, clockGuard, licenseFile: config.licenseFile, logger })
      : undefined;
  await entitlements?.start();
  const vendor = vendorSigner ? new VendorService(store, clock, vendorSigner) : undefined;
  let started = false;
  const app = await buildApp(
    {
      store,
      clock,
      keys,
      auth,
      metrics,
      reclaim,
      licensing: new LicensingService(store, clock, keys, metrics, renewals, {
        admit: entitlements && ((license) => entitlements.admit(license)),
        grantRefusal: (now) => clockGuard.refusal(now),
      }),
      catalogue: new CatalogueService(store, clock, metrics, keys, onPrem),
      clockGuard,
      entitlements,
      identity,
      vendor,
      mode: config.mode,
      version: VERSION,
      settings: { reclaimIntervalSeconds: config.reclaimIntervalSeconds },
      storageHealth,
      started: () => started,
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
  started = true;
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const reclaimer = opts.reclaimer === false ? undefined : startReclaimer(reclaim, config.reclaimIntervalSeconds, (err) => logger && logger.error({ err }, 'reclaimer sweep failed'), leadership);

  // Saves the trusted time and picks up a renewed license file (disk, or loaded on another node).
  let stateTick: Promise<void> = Promise.resolve();
  const stateTimer = setInterval(() => {
    stateTick = (async () => {
      await clockGuard.tick();
      await entitlements?.poll();
    })().catch((err: unknown) => {
      if (logger) logger.error({ err }, 'trusted-time / license-file check failed');
    });
  }, config.stateIntervalSeconds * 1000);
  stateTimer.unref();

  let closing: Promise<void> | undefined;
  return {
    app,
    url: `http://${host}:${port}`,
    store,
    reclaim,
    keys,
    clockGuard,
    entitlements,
    identity,
    createdAdminSecret,
    adminTokenFile,
    close() {
      closing ??= (async () => {
        clearInterval(stateTimer);
        await stateTick;
        await reclaimer?.stop();
        await leadership.stop();
        await membership?.stop();
        await app.close();
        await renewals?.close();
        await clockGuard.tick().catch((err: unknown) => logger && logger.error({ err }, 'could not save the trusted time at shutdown'));
        await store.close();
      })();
      return closing;
    },
  };
}
