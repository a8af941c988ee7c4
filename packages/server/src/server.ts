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
import { SilenceWatch, systemClock, type Clock } from './domain/clock.js';
import { ClockFence, DatabaseAlignedClock } from './service/clockFence.js';
import { buildApp } from './http/app.js';
import { KeyRing } from './keys/ring.js';
import { openStore } from './store/open.js';
import { transactionMetrics } from './service/metrics.js';
import { startRetention } from './jobs/retention.js';
import { AdminAuth } from './service/auth.js';
import { CatalogueService } from './service/catalogue.js';
import { OverviewService } from './service/overview.js';
import { CustomerService } from './service/customers.js';
import { WebhookSender, WebhookService } from './service/webhooks.js';
import { LicensingService } from './service/licensing.js';
import { SessionKeys } from './service/sessions.js';
import { createMetrics } from './service/metrics.js';
import { ReclaimService } from './service/reclaim.js';
import { startReclaimer } from './jobs/reclaimer.js';
import { RenewalBuffer } from './service/renewals.js';
import { ServerClockGuard } from './service/serverClock.js';
import { EntitlementService } from './onprem/entitlements.js';
import { openIdentity, type ServerIdentity } from './onprem/identity.js';
import { readPrivateKeyFile, readVendorPublicKeys } from './keys/files.js';
import { signerOf, publicKeyFrom } from './keys/documents.js';
import { VendorService } from './onprem/vendor.js';
import type { Store } from './store/port.js';
import { observedStore, SealedState } from './onprem/sealedState.js';
import { TRUSTED_TIME_KV } from './service/serverClock.js';
import { StorageHealth, storageFailure } from './store/errors.js';
import { FD_LIMIT_LOW, fileDescriptorLimit, guardConnections, totalCapFor } from './http/connections.js';

export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  store: Store;
  reclaim: ReclaimService;
  /** the webhook sender (tests call `tick()` to send now) */
  webhookSender: WebhookSender;
  keys: KeyRing;
  clockGuard: ServerClockGuard;
  /** on-prem only */
  entitlements: EntitlementService | undefined;
  seal: SealedState | undefined;
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
  // In a cluster every node decides on the database's time (its own clock corrected by its measured offset).
  const aligned = config.database.kind === 'postgres' ? new DatabaseAlignedClock(opts.clock ?? systemClock) : undefined;
  const clock: Clock = aligned ?? opts.clock ?? systemClock;
  const logger =
    opts.logger === undefined
      ? pino({ level: config.logLevel, redact: ['req.headers.authorization', '*.token', '*.secret'] })
      : opts.logger;
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });

  let fence: ClockFence | undefined;
  let firstOffset: [number, number] | undefined;
  const opened = await openStore(config, VERSION, (offset, rtt) => {
    firstOffset ??= [offset, rtt];
    aligned?.measured(offset, rtt);
    fence?.measured(offset, rtt);
  });
  const { keyPersistence, leadership, membership } = opened;
  // On-premise, committed usage is counted into the sealed state (see onprem/sealedState.ts).
  let seal: SealedState | undefined;
  const store = config.mode === 'on-prem' ? observedStore(opened.store, (effects) => seal?.observe(effects)) : opened.store;
  const keys = await KeyRing.open(keyPersistence, clock.now());
  const auth = new AdminAuth(store, clock);

  const metrics = createMetrics(store, { now: () => clock.now() });
  if (logger) metrics.onIntegrity = (message, data) => logger.warn(data, message);
  // Silence is measured from this start: a lease that looks expired gets one TTL of grace (see SilenceWatch).
  const silence = new SilenceWatch(clock, (deltaMs, at) => {
    metrics.clockSteps.inc();
    if (logger)
      logger.warn(
        { stepMs: Math.round(deltaMs), at: new Date(at).toISOString() },
        'the wall clock stepped: leases that look expired get one TTL of grace before they are reclaimed',
      );
  });
  const stepTimer = setInterval(() => silence.check(), 1000);
  stepTimer.unref();
  if (config.database.kind === 'postgres') fence = new ClockFence(metrics, logger);
  // The first offset measurement comes before the node listens: a node started with a wrong clock is fenced from its first request.
  await membership?.first;
  if (fence && firstOffset !== undefined) fence.measured(...firstOffset);
  const clockGate = {
    reclaimCutoff: (ttl: number | null, now: number) => silence.reclaimCutoff(ttl, now),
    fenced: () => fence?.fenced() ?? false,
    watchClock: () => void silence.check(),
  };
  opened.store.observer = transactionMetrics(metrics);
  const storageHealth = new StorageHealth();
  const renewals =
    config.heartbeatBatchMs > 0
      ? new RenewalBuffer(store, {
          intervalMs: config.heartbeatBatchMs,
          now: () => clock.now(),
          onError: (err) => {
            // a batch refused by a full disk makes /readyz report it, like a refused request
            const failure = storageFailure(err);
            if (failure) storageHealth.failed(failure, clock.now());
            if (logger) logger.error({ err }, 'writing batched heartbeats failed (kept for the next batch)');
          },
        })
      : undefined;
  if (renewals) metrics.pendingRenewals = () => renewals.size;
  const encryptionKey = config.database.kind === 'postgres' ? config.database.keyEncryptionKey : undefined;
  // Session keys at rest: sealed like the signing keys on PostgreSQL. Open ones are cached; a check-in and the
  // reclaimer take an ended use's key out.
  const sessions = new SessionKeys(encryptionKey);
  const reclaim = new ReclaimService(store, clock, metrics, renewals, clockGate, sessions);

  // Key files are read before anything else starts: a missing or readable-by-others key stops the server here.
  const onPrem = config.mode === 'on-prem';
  const vendorKeys = onPrem ? await readVendorPublicKeys(config.vendorPublicKeyFile) : undefined;
  const vendorSigner = config.vendorPrivateKeyFile ? signerOf(await readPrivateKeyFile(config.vendorPrivateKeyFile)) : undefined;
  const identity = onPrem ? await openIdentity(store, clock.now(), encryptionKey) : undefined;
  const clockGuard = new ServerClockGuard(store, clock, metrics, {
    toleranceSeconds: config.clockToleranceSeconds,
    signer: identity ? { signer: identity.signer, publicKey: publicKeyFrom(identity.publicKey) } : undefined,
    logger,
  });
  let floor = 0;
  if (identity) {
    const trustedRecord = await store.getKv(TRUSTED_TIME_KV);
    let sealedMarker = false;
    try {
      sealedMarker = trustedRecord
        ? (JSON.parse(trustedRecord.value) as { payload?: { sealed?: unknown } }).payload?.sealed === true
        : false;
    } catch {
      /* a broken record: the clock guard finds it */
    }
    seal = new SealedState(opened.store, clock, metrics, {
      signer: identity.signer,
      publicKey: publicKeyFrom(identity.publicKey),
      dataDir: config.dataDir,
      logger,
    });
    await seal.start({
      firstStart: identity.created === true,
      legacyUpgrade: trustedRecord !== undefined && !sealedMarker,
      trustedTimeMissing: trustedRecord === undefined,
    });
    floor = Math.max(seal.state()?.trustedTime ?? 0, await store.newestRecordedTime({ leases: true }));
  } else {
    floor = await store.newestRecordedTime({ leases: false });
  }
  await clockGuard.start(floor);
  // Leases that expired before the previous run last stored its trusted time died while a server watched: no grace for them.
  silence.watchedBefore(clockGuard.storedAtStart);
  const entitlements =
    onPrem && identity && vendorKeys
      ? new EntitlementService(store, clock, metrics, { vendorKeys, identity, clockGuard, licenseFile: config.licenseFile, logger, seal })
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
      renewals,
      licensing: new LicensingService(
        store,
        clock,
        keys,
        metrics,
        renewals,
        {
          admit: entitlements && ((license) => entitlements.admit(license)),
          grantRefusal: (now) => fence?.refusal() ?? seal?.refusal() ?? clockGuard.refusal(now),
          renewRefusal: () => fence?.refusal(),
          reclaimCutoff: clockGate.reclaimCutoff,
          watchClock: clockGate.watchClock,
        },
        sessions,
      ),
      catalogue: new CatalogueService(store, clock, metrics, keys, onPrem, (id) => entitlements?.setsAccess(id) ?? false),
      overview: new OverviewService(store, clock),
      customers: new CustomerService(store, clock),
      webhooks: new WebhookService(store, clock),
      clockGuard,
      entitlements,
      identity,
      seal,
      vendor,
      mode: config.mode,
      version: VERSION,
      settings: { reclaimIntervalSeconds: config.reclaimIntervalSeconds },
      storageHealth,
      clockFence: fence,
      started: () => started,
    },
    {
      logger,
      logRequests: config.logRequests,
      security: config.security,
      trustProxy: config.security.trustProxy,
      unauthenticatedIdleMs: config.connections.unauthenticatedIdleMs,
    },
  );
  // The connection caps: the total is sized from the descriptor limit read now (docs/operations.md, "Connection floods").
  const fdLimit = fileDescriptorLimit();
  const poolSize = config.database.kind === 'postgres' ? config.database.poolSize + 1 : 4;
  const totalCap = config.connections.total ?? totalCapFor(fdLimit, poolSize);
  guardConnections(app.server, { ...config.connections, total: totalCap }, metrics);
  if (logger) {
    const limits = { fdLimit: fdLimit ?? 'unknown', maxConnections: totalCap, maxConnectionsPerAddress: config.connections.perAddress };
    if (fdLimit !== undefined && fdLimit < FD_LIMIT_LOW) {
      logger.warn(
        limits,
        `the open-file limit is low (${fdLimit}): at most ${totalCap} connections; raise it (systemd LimitNOFILE=65536, docker --ulimit nofile=65536:65536)`,
      );
    } else logger.info(limits, 'connection limits');
  }
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
  const reclaimer =
    opts.reclaimer === false
      ? undefined
      : startReclaimer(
          reclaim,
          config.reclaimIntervalSeconds,
          (err) => logger && logger.error({ err }, 'reclaimer sweep failed'),
          leadership,
        );
  // Webhooks: on every node (claims keep two nodes off one delivery); SQLite's claims are this process's, so any left is a crashed send.
  if (store.kind === 'sqlite') await store.releaseDeliveryClaims();
  const webhookSender = new WebhookSender(store, clock, {
    expiringDays: config.licenseExpiringDays,
    userAgent: `floatd/${VERSION}`,
    onError: (err) => logger && logger.warn({ err }, 'webhook delivery round failed'),
    observer: { attempt: (outcome) => metrics.webhookAttempts.inc({ outcome }) },
  });
  if (opts.reclaimer !== false) webhookSender.start();
  const retention =
    opts.reclaimer === false
      ? undefined
      : startRetention(store, clock, config.retention, (err) => logger && logger.error({ err }, 'retention pruning failed'), leadership);

  // Saves the trusted time and picks up a renewed license file (disk, or loaded on another node).
  let stateTick: Promise<void> = Promise.resolve();
  const stateTimer = setInterval(() => {
    stateTick = (async () => {
      await clockGuard.tick();
      await entitlements?.poll();
      await seal?.tick(clockGuard.state().trustedTime);
    })().catch((err: unknown) => {
      if (logger) logger.error({ err }, 'trusted-time / license-file check failed');
    });
  }, config.stateIntervalSeconds * 1000);
  stateTimer.unref();

  // DNS-SD (off by default): a network without multicast is a warning, never a failed start.
  const announcer = config.announce
    ? (await import('./ops/announce.js')).startAnnouncer({
        name: config.announce.name,
        port,
        listenHost: config.host,
        interface: config.announce.interface,
        mdnsPort: config.announce.mdnsPort,
        warn: (message, err) => (logger ? logger.warn({ err }, message) : process.stderr.write(`floatd: warning: ${message}\n`)),
        info: (message) => logger && logger.info(message),
      })
    : undefined;

  let closing: Promise<void> | undefined;
  return {
    app,
    url: `http://${host}:${port}`,
    store,
    reclaim,
    webhookSender,
    keys,
    clockGuard,
    entitlements,
    identity,
    seal,
    createdAdminSecret,
    adminTokenFile,
    close() {
      closing ??= (async () => {
        await announcer?.stop();
        clearInterval(stateTimer);
        clearInterval(stepTimer);
        await stateTick;
        await reclaimer?.stop();
        await webhookSender.stop();
        await retention?.stop();
        await leadership.stop();
        await membership?.stop();
        await app.close();
        await renewals?.close();
        await clockGuard.tick().catch((err: unknown) => logger && logger.error({ err }, 'could not save the trusted time at shutdown'));
        await seal
          ?.tick(clockGuard.state().trustedTime)
          .catch((err: unknown) => logger && logger.error({ err }, 'could not seal the state at shutdown'));
        await store.close();
      })();
      return closing;
    },
  };
}
