/**
 * `FloatingLicense`: the object an application embeds. It checks out a seat,
 * keeps it with heartbeats, survives server outages on its signed lease token,
 * borrows seats offline, detects clock tampering, and reports what it cannot fix
 * as `violation` events. It never ends the process: the application decides.
 *
 * This file is the public face and the start-up; the work is in its parts: the acquire
 * loop (`acquire.ts`), lease keeping (`leaseKeeper.ts`), the shared seat state and
 * grant adoption (`session.ts`), token storage (`tokenStore.ts`) and trusted time
 * (`trustedTime.ts`). The public types are in `types.ts`.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { normalizeKey, routes, type LicenseInfo, type SyncResult } from '@floatd/protocol';
import { acquire } from './acquire.js';
import { systemClock } from './clock.js';
import { FloatingLicenseError } from './errors.js';
import { deviceFingerprint, FINGERPRINT_PATTERN } from './fingerprint.js';
import { Api, normalizeServerUrl } from './http.js';
import { LeaseKeeper } from './leaseKeeper.js';
import { DEFAULT_RETRY } from './retry.js';
import { isCode, Session } from './session.js';
import { StateDir } from './state.js';
import { TokenStore } from './tokenStore.js';
import { KeyTrust, parseKeys } from './trust.js';
import type {
  CheckinResult,
  CheckoutOptions,
  CheckoutResult,
  FloatingLicenseEvents,
  FloatingLicenseOptions,
  LicenseStatus,
} from './types.js';

export type {
  FloatingLicenseOptions,
  FloatingLicenseEvents,
  LicenseState,
  LicenseStatus,
  ViolationCode,
  Violation,
  CheckoutOptions,
  CheckoutResult,
  CheckoutGranted,
  CheckoutDenied,
  CheckinResult,
  RetryInfo,
  WaitingInfo,
} from './types.js';

const CLIENT_VERSION = '0.1.0';

/**
 * A floating license held by this process.
 *
 * @example
 * import { FloatingLicense } from '@floatd/client';
 * const lic = new FloatingLicense({ serverUrl: 'https://licenses.example.com', licenseKey: process.env.LICENSE_KEY!, handleExit: true });
 * lic.on('violation', (v) => console.warn(`license problem: ${v.code}: ${v.message}`));
 * const seat = await lic.checkout();
 * if (!seat.ok) { console.error(seat.message); process.exit(75); }
 * // … run the application …
 * await lic.checkin();
 */
export class FloatingLicense extends EventEmitter<FloatingLicenseEvents> {
  /** This process's instance id (sent with every call). @example console.log(lic.instanceId) */
  readonly instanceId: string;

  private readonly session: Session;
  private readonly keeper: LeaseKeeper;
  private readonly serverUrl: string;
  private readonly licenseKey: string;
  private readonly stateRoot: string;
  private readonly fixedKeys: ReturnType<typeof parseKeys> | undefined;
  private initialized: Promise<void> | undefined;
  private readonly waits = new Set<AbortController>();
  private exitHandlers: { signal: (s: NodeJS.Signals) => void; beforeExit: () => void } | undefined;

  /**
   * @example
   * const lic = new FloatingLicense({
   *   serverUrl: 'https://licenses.example.com',
   *   licenseKey: 'ABCDE-FGHJK-MNPQR-STVWX-YZ012',
   *   stateDir: app.getPath('userData'), // Electron
   *   appVersion: '4.2.0',
   * });
   */
  constructor(options: FloatingLicenseOptions) {
    super();
    const clock = options.clock ?? systemClock;
    this.serverUrl = normalizeServerUrl(options.serverUrl);
    const key = normalizeKey(String(options.licenseKey ?? ''));
    if (!key)
      throw new FloatingLicenseError(
        'INVALID_LICENSE_KEY',
        'the license key is not well formed (25 symbols in five groups, with a valid check symbol)',
      );
    this.licenseKey = key;
    this.instanceId = options.instanceId ?? `i-${randomBytes(12).toString('base64url')}`;
    if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(this.instanceId))
      throw new FloatingLicenseError('VALIDATION_FAILED', 'instanceId must be 1-128 of A-Z a-z 0-9 _ . : -');
    this.stateRoot = options.stateDir ?? join(homedir(), '.floatd');
    if (options.serverPublicKeys) {
      this.fixedKeys = parseKeys(options.serverPublicKeys);
      if (this.fixedKeys.length === 0) throw new FloatingLicenseError('INVALID_SIGNATURE', 'serverPublicKeys holds no Ed25519 public key');
    }
    const api = new Api({
      serverUrl: this.serverUrl,
      licenseKey: key,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
      timeoutMs: options.requestTimeoutMs ?? 10_000,
      userAgent: `floatd-client/${CLIENT_VERSION} node/${process.versions.node}`,
      now: () => clock.now(),
    });
    this.session = new Session(
      options,
      clock,
      api,
      this.instanceId,
      { ...DEFAULT_RETRY, ...options.retry },
      options.random ?? Math.random,
      this,
    );
    this.keeper = new LeaseKeeper(this.session);
  }

  // -------------------------------------------------------------------------
  // public API

  /**
   * Gets a seat. In order: a seat this object already holds; an offline lease
   * stored by an earlier run (no network needed); the server, retrying network
   * errors and 5xx with back-off (never a 4xx); the lease token stored by an
   * earlier run when the server is unreachable (the laptop that left the office).
   *
   * Resolves `{ ok: false, … }` when every seat is taken (with `wait: true`, asks
   * again until one frees or `timeoutMs`). Rejects with a {@link FloatingLicenseError}
   * for a refusal (`LICENSE_SUSPENDED`, `LICENSE_EXPIRED`, `INSTANCE_LIMIT_REACHED`,
   * `INVALID_LICENSE_KEY`, …), a forged answer (`INVALID_SIGNATURE`) or an
   * unreachable server with nothing stored (`NETWORK_ERROR`).
   *
   * @example
   * const r = await lic.checkout({ wait: true, timeoutMs: 10 * 60_000 });
   * if (!r.ok) return showDialog(r.message); // "all 20 seats are in use; the earliest lease expires at … unless its holder renews it"
   */
  async checkout(opts: CheckoutOptions = {}): Promise<CheckoutResult> {
    await this.init();
    this.session.assertOpen();
    opts.signal?.throwIfAborted();
    return acquire(this.session, this.waits, opts);
  }

  /**
   * Changes the pools this instance holds (`base` and feature names) without giving its seat back: features
   * added are granted all or none (`NO_FEATURE_SEATS_AVAILABLE` rejects and changes nothing), dropped ones go
   * back to their pools. The base pool of a held seat stays as it is (`BASE_POOL_FIXED`).
   *
   * @example
   * await lic.setFeatures(['base', 'render']); // before a render job
   * await lic.setFeatures(['base']);           // after it
   */
  async setFeatures(features: string[]): Promise<LicenseStatus> {
    await this.init();
    this.session.assertOpen();
    return this.session.serial(async () => {
      await this.session.changeFeatures(features);
      return this.session.status();
    });
  }

  /** Whether this instance holds a valid seat of `pool` (`base` or a feature name). @example if (lic.hasFeature('render')) enableRender(); */
  hasFeature(pool: string): boolean {
    const status = this.session.status();
    return status.valid && status.features.includes(pool);
  }

  /**
   * Borrows this device's seat until an Offline Expiry Date, `durationSeconds`
   * from now (within the license's maximum). The signed offline token is stored
   * atomically in the state directory: a later start with no network finds it and
   * runs until that date. No heartbeats are sent meanwhile.
   *
   * @example
   * const status = await lic.checkoutOffline({ durationSeconds: 7 * 86400 });
   * console.log(`offline until ${status.offlineExpiresAt}`);
   */
  async checkoutOffline(opts: { durationSeconds: number }): Promise<LicenseStatus> {
    await this.init();
    this.session.assertOpen();
    this.session.time.check();
    return this.session.serial(async () => {
      const grant = await this.session.api.call(routes.client.offlineCheckout, {
        body: { ...this.session.meta(), durationSeconds: opts.durationSeconds },
      });
      const claims = await this.session.verifyGrant(grant, { offline: true });
      await this.session.adopt(grant, claims);
      await this.session.cleanupOrphans();
      this.session.clearViolations();
      return this.session.status();
    });
  }

  /**
   * Gives a borrowed (offline) seat back before its Offline Expiry Date and
   * deletes the stored offline token. The seat returns to the pool; call
   * `checkout()` to keep running online.
   *
   * @example
   * await lic.returnOffline();
   * await lic.checkout();
   */
  async returnOffline(): Promise<{ released: boolean }> {
    await this.init();
    return this.session.serial(async () => {
      const held = this.session.held;
      if (!held || !held.claims.offline) throw new FloatingLicenseError('NOT_CHECKED_OUT', 'no offline lease is held');
      let released = true;
      try {
        released = (await this.session.api.call(routes.client.returnOffline, { params: { leaseId: held.claims.lse } })).released;
      } catch (err) {
        if (!isCode(err, 'LEASE_NOT_FOUND')) throw err;
      }
      await this.session.store.removeOffline();
      await this.session.store.removeLease();
      await this.session.store.state.unregisterInstance(this.instanceId);
      this.session.unregistered();
      this.keeper.stopTimers();
      this.session.held = undefined;
      this.session.mode = 'idle';
      return { released };
    });
  }

  /**
   * Gives the seat back (this instance leaves; the seat returns to the pool when
   * no other instance of this device runs). Stops heartbeats. Best effort: if the
   * server is unreachable the seat stays checked out by this device (the laptop
   * story) and `reachedServer` is false. A borrowed offline seat stays borrowed.
   *
   * @example
   * process.on('SIGTERM', async () => { await lic.checkin(); process.exit(0); });
   */
  async checkin(opts: { timeoutMs?: number } = {}): Promise<CheckinResult> {
    await this.init();
    for (const w of this.waits) w.abort(new FloatingLicenseError('NOT_CHECKED_OUT', 'checked in while waiting for a seat'));
    this.keeper.stopTimers();
    return this.session.serial(async () => {
      const held = this.session.held;
      const wasOffline = this.session.mode === 'offline';
      this.keeper.stopTimers();
      if (this.session.mode !== 'closed') this.session.mode = 'idle';
      this.session.held = undefined;
      this.session.violations.clear();
      await this.session.persistClock().catch(() => undefined);
      if (!held) return { released: false, instances: null, reachedServer: false };
      // A stored token of an earlier run: that run's instance is the one on the lease
      // (unless that run is still alive: then it is not ours to check in).
      const instanceId = held.own ? this.instanceId : held.claims.ins;
      if (!held.own && (await this.session.store.state.instances()).some((e) => e.instanceId === instanceId && e.alive)) {
        return { released: false, instances: null, reachedServer: false };
      }
      const timeout = opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {};
      try {
        const r = await this.session.api.call(
          routes.client.checkin,
          { params: { leaseId: held.claims.lse }, body: { instanceId } },
          timeout,
        );
        this.session.instanceCount = r.instances;
        this.session.lastContactAt = this.session.clock.now();
        await this.session.store.state.unregisterInstance(instanceId);
        await this.session.store.state.unregisterInstance(this.instanceId);
        this.session.unregistered();
        if (r.released) await this.session.store.removeLease();
        return { released: r.released, instances: r.instances, reachedServer: true };
      } catch (err) {
        if (isCode(err, 'LEASE_NOT_FOUND')) {
          await this.session.store.state.unregisterInstance(instanceId);
          await this.session.store.state.unregisterInstance(this.instanceId);
          this.session.unregistered();
          if (!wasOffline) await this.session.store.removeLease();
          return { released: true, instances: 0, reachedServer: true };
        }
        this.session.reachable = false;
        // This instance is done but still on the lease: the next run checks it in (see cleanupOrphans).
        if (held.own)
          await this.session.store.state
            .registerInstance({
              instanceId,
              pid: process.pid,
              leaseId: held.claims.lse,
              startedAt: this.session.clock.now(),
              closedAt: this.session.clock.now(),
            })
            .catch(() => undefined);
        this.session.unregistered();
        return { released: false, instances: null, reachedServer: false };
      }
    });
  }

  /**
   * Tells the server which instances of this device are alive — those in the
   * state directory whose process still runs — so instances left by crashes are
   * dropped (QLM's ProcessOrphanedInstances). Every copy of the application on
   * the device must share the state directory, or the others are dropped too.
   *
   * @example
   * const { dropped } = await lic.syncInstances();
   * if (dropped.length) console.log(`dropped ${dropped.length} orphaned instance(s)`);
   */
  async syncInstances(): Promise<SyncResult> {
    await this.init();
    return this.session.serial(async () => {
      const entries = await this.session.store.state.instances();
      const alive = new Set(entries.filter((e) => e.alive).map((e) => e.instanceId));
      if (this.session.held?.own && this.session.mode !== 'idle' && this.session.mode !== 'closed') alive.add(this.instanceId);
      const r = await this.session.api.call(routes.client.syncDevice, {
        body: { fingerprint: this.session.fingerprint!, instanceIds: [...alive].slice(0, 1024) },
      });
      this.session.lastContactAt = this.session.clock.now();
      this.session.instanceCount = r.instances;
      for (const e of entries)
        if (!e.alive || r.dropped.includes(e.instanceId)) await this.session.store.state.unregisterInstance(e.instanceId);
      return r;
    });
  }

  /**
   * The license as the server sees it (seats used/total, this device's lease).
   * Informational: this answer is not signed.
   *
   * @example const { license } = await lic.info(); console.log(`${license.seatsUsed}/${license.seatsTotal} seats in use`);
   */
  async info(): Promise<LicenseInfo> {
    await this.init();
    const r = await this.session.api.call(routes.client.licenseInfo, { query: { fingerprint: this.session.fingerprint! } });
    this.session.license = r.license;
    this.session.lastContactAt = this.session.clock.now();
    return r;
  }

  /**
   * A snapshot: state, seat, lease expiry, offline state, last contact, seats used/total.
   *
   * @example
   * const s = lic.status();
   * statusBar.text = s.offline ? `offline until ${s.offlineExpiresAt?.toLocaleString()}` : `${s.seatsUsed}/${s.seatsTotal} seats`;
   */
  status(): LicenseStatus {
    return this.session.status();
  }

  /**
   * Stops every timer and detaches the exit handlers. Checks in first unless
   * `checkin: false` (which leaves the seat held, as a crash or a closed laptop would).
   *
   * @example await lic.close();
   */
  async close(opts: { checkin?: boolean } = {}): Promise<void> {
    if (opts.checkin !== false && this.initialized) await this.checkin().catch(() => undefined);
    for (const w of this.waits) w.abort(new FloatingLicenseError('CLOSED', 'the license object was closed'));
    this.keeper.stopTimers();
    this.removeExitHandlers();
    await this.session.idle();
    this.keeper.stopTimers();
    this.session.mode = 'closed';
    await this.session.persistClock().catch(() => undefined);
    this.session.files?.stopAtExit();
  }

  // -------------------------------------------------------------------------
  // setup

  private init(): Promise<void> {
    return (this.initialized ??= this.start());
  }

  private async start(): Promise<void> {
    const session = this.session;
    const fingerprint = session.options.fingerprint ?? deviceFingerprint({ stateDir: this.stateRoot });
    if (!FINGERPRINT_PATTERN.test(fingerprint))
      throw new FloatingLicenseError('VALIDATION_FAILED', 'fingerprint must be 8-128 of A-Z a-z 0-9 _ . : + / = -');
    session.fingerprint = fingerprint;
    const state = new StateDir(this.stateRoot, this.serverUrl, this.licenseKey, fingerprint);
    await state.ensure();
    session.trust = new KeyTrust(state, this.fixedKeys, () => session.api.call(routes.ops.jwks, {}));
    session.api.verifier = (kid, data, sig) => session.trust.verifySignature(kid, data, sig);
    const files = new TokenStore(state, session.time, session.trust, fingerprint, this.instanceId);
    session.files = files;

    // The latest trusted time: the sealed record, and the one kept beside an offline token.
    const now = session.clock.now();
    const stored = await files.storedTrustedTime();
    // This run continues from the stored time: the wall clock may be earlier (set back), the trusted time is not.
    session.time.raise(stored.t);
    if (stored.tampered !== undefined) {
      session.violate('CLOCK_TAMPERED', `the trusted-time record in ${state.dir} was edited (${stored.tampered})`);
      session.time.raise(now);
    } else {
      session.time.check();
    }
    // at start: a run that ends before anything else is written has still been here
    await session.persistClock();
    files.persistOnExit();
    if (session.options.handleExit) this.installExitHandlers();
  }

  // -------------------------------------------------------------------------
  // process exit

  private installExitHandlers(): void {
    const signal = (sig: NodeJS.Signals) => {
      this.removeExitHandlers();
      const done = () => {
        // no one else handles it: do what the signal would have done
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
      };
      this.checkin({ timeoutMs: 3000 }).then(done, done);
    };
    const beforeExit = () => {
      this.removeExitHandlers();
      void this.checkin({ timeoutMs: 3000 }).catch(() => undefined);
    };
    this.exitHandlers = { signal, beforeExit };
    process.once('SIGINT', signal);
    process.once('SIGTERM', signal);
    process.once('beforeExit', beforeExit);
  }

  private removeExitHandlers(): void {
    const handlers = this.exitHandlers;
    if (!handlers) return;
    this.exitHandlers = undefined;
    process.removeListener('SIGINT', handlers.signal);
    process.removeListener('SIGTERM', handlers.signal);
    process.removeListener('beforeExit', handlers.beforeExit);
  }
}
