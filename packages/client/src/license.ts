/**
 * `FloatingLicense`: the object an application embeds. It checks out a seat,
 * keeps it with heartbeats, survives server outages on its signed lease token,
 * borrows seats offline, detects clock tampering, and reports what it cannot fix
 * as `violation` events. It never ends the process: the application decides.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { homedir, hostname as osHostname, userInfo } from 'node:os';
import { join } from 'node:path';
import {
  normalizeKey,
  routes,
  visibleText,
  type Grant,
  type LeaseTokenClaims,
  type LicenseInfo,
  type LicenseSummary,
  type SyncResult,
} from '@floatd/protocol';
import { systemClock, sleep, type Clock, type TimerHandle } from './clock.js';
import { FloatingLicenseError, type FloatingLicenseErrorCode } from './errors.js';
import { deviceFingerprint, FINGERPRINT_PATTERN } from './fingerprint.js';
import { Api, normalizeServerUrl, type FetchLike } from './http.js';
import { backoff, DEFAULT_RETRY, type RetryPolicy } from './retry.js';
import { StateDir } from './state.js';
import { KeyTrust, parseKeys, type ServerPublicKeys } from './trust.js';

const CLIENT_VERSION = '0.1.0';
const LEASE_FILE = 'lease.json';
const OFFLINE_FILE = 'offline.json';
const CLOCK_FILE = 'clock.json';

// ---------------------------------------------------------------------------
// public types

/**
 * Options of {@link FloatingLicense}. Only `serverUrl` and `licenseKey` are required.
 *
 * @example
 * const opts: FloatingLicenseOptions = { serverUrl: 'https://licenses.example.com', licenseKey, stateDir: app.getPath('userData'), handleExit: true };
 */
export interface FloatingLicenseOptions {
  /** The floatd server, e.g. `https://licenses.example.com`. */
  serverUrl: string;
  /** The customer's license key (`XXXXX-XXXXX-XXXXX-XXXXX-XXXXX`; case, spaces and I/L/O look-alikes are forgiven). */
  licenseKey: string;
  /** Where tokens, pinned keys and the trusted time are kept (default `~/.floatd`; in Electron pass `app.getPath('userData')`). */
  stateDir?: string;
  /** Device fingerprint override (default: {@link deviceFingerprint}, a hash of the machine id). */
  fingerprint?: string;
  /** The server's public keys (its saved `/.well-known/jwks.json`). Given: only these are trusted. Absent: pinned on first contact. */
  serverPublicKeys?: ServerPublicKeys;
  /** Your application's version, shown to administrators. */
  appVersion?: string;
  /** Time source and timers (default the system clock); tests pass `FakeClock`. */
  clock?: Clock;
  /** This process's instance id (default: random per object). */
  instanceId?: string;
  /** Host name sent to the server (default `os.hostname()`; `null` sends none). */
  hostname?: string | null;
  /** User name sent to the server (default the OS user; `null` sends none). */
  user?: string | null;
  /** Check in on SIGINT, SIGTERM and `beforeExit` (default false). */
  handleExit?: boolean;
  /** Retry policy for transient failures. */
  retry?: Partial<RetryPolicy>;
  /** How far the clock may go back before `CLOCK_TAMPERED` (default 600 s). */
  clockToleranceSeconds?: number;
  /** Heartbeats come at the advised interval shortened by up to this fraction (default 0.1). */
  heartbeatJitter?: number;
  /** How often the clock and the token's expiry are checked, seconds (default 60). */
  guardIntervalSeconds?: number;
  /** While waiting for a seat (`checkout({ wait: true })`), how often to ask, seconds (default 15). */
  waitIntervalSeconds?: number;
  /** Timeout of one HTTP request, ms (default 10000). */
  requestTimeoutMs?: number;
  /** Check in, when a seat is granted, the instances this state directory started whose process is gone (default true). */
  cleanupOrphans?: boolean;
  /** `fetch` implementation (default the global one). */
  fetch?: FetchLike;
  /** Random source for jitter (default `Math.random`). */
  random?: () => number;
}

/**
 * Where the SDK stands.
 * - `idle`: no seat (not checked out yet, or checked in).
 * - `online`: a seat confirmed by the server, renewed by heartbeats.
 * - `offline`: a seat borrowed until its Offline Expiry Date; no heartbeats.
 * - `cached`: running on the lease token stored by an earlier run because the server is unreachable; reconnecting.
 * - `lost`: the server took the seat away or refused it (see the violation); still trying to get it back.
 * - `closed`: `close()` was called.
 *
 * @example if (lic.status().state === 'cached') statusBar.text = 'license server unreachable: running on the stored lease';
 */
export type LicenseState = 'idle' | 'online' | 'offline' | 'cached' | 'lost' | 'closed';

/** Why the application may no longer be licensed. @example lic.on('violation', (v) => { if (v.code === 'SEAT_LOST') saveAndGoReadOnly(); }); */
export type ViolationCode = 'SEAT_LOST' | 'LICENSE_EXPIRED' | 'LICENSE_SUSPENDED' | 'SERVER_UNREACHABLE' | 'OFFLINE_EXPIRED' | 'CLOCK_TAMPERED';

/** Payload of the `violation` event. @example lic.on('violation', ({ code, message, at }) => log.warn(`${at.toISOString()} ${code}: ${message}`)); */
export interface Violation {
  code: ViolationCode;
  message: string;
  at: Date;
  /** the server's (or client's) error code behind it, when there is one */
  cause?: FloatingLicenseErrorCode;
}

/** A snapshot of the license as this process holds it. @example const { valid, leaseExpiresAt } = lic.status(); */
export interface LicenseStatus {
  state: LicenseState;
  /** true while the process holds a verified, unexpired lease token */
  valid: boolean;
  leaseId: string | null;
  deviceId: string | null;
  instanceId: string;
  fingerprint: string | null;
  /** when the current token stops being valid without a renewal (null: it does not expire) */
  leaseExpiresAt: Date | null;
  offline: boolean;
  /** Offline Expiry Date of a borrowed seat */
  offlineExpiresAt: Date | null;
  /** the last successful answer from the server */
  lastContactAt: Date | null;
  /** false after the last attempt to reach the server failed */
  serverReachable: boolean;
  seatsUsed: number | null;
  seatsTotal: number | null;
  /** running instances on this device's lease (QLM activation count), as of the last answer */
  instances: number | null;
  heartbeatIntervalSeconds: number | null;
  /** active violations (cleared when the seat comes back or the clock is right again) */
  violations: ViolationCode[];
  /** the license as of the last answer */
  license: LicenseSummary | null;
  /** the current lease token (a signed JWT your own backend can verify) */
  token: string | null;
}

/** `checkout()` got a seat. @example const r = await lic.checkout(); if (r.ok && r.source === 'offline-token') showOfflineBadge(); */
export interface CheckoutGranted {
  ok: true;
  /** where the seat came from: the server; a stored offline token; the stored token of an earlier run (server unreachable); already held */
  source: 'server' | 'offline-token' | 'cached-token' | 'current';
  /** a new seat was taken (false: joined this device's seat, or renewed) */
  created: boolean;
  status: LicenseStatus;
}

/** `checkout()` found every seat taken: show `message` to the user. @example if (!r.ok) dialog.showErrorBox('No license free', r.message); */
export interface CheckoutDenied {
  ok: false;
  code: 'NO_SEATS_AVAILABLE';
  /** e.g. "all 20 seats are in use; the earliest lease expires at 2026-03-02T10:15:00.000Z unless its holder renews it" */
  message: string;
  seatsTotal: number | null;
  seatsUsed: number | null;
  /** when the earliest lease expires (null: leases never expire on their own) */
  earliestExpiryAt: Date | null;
  /** who holds the seats, when the server says (it does not yet) */
  holders?: unknown[];
  /** `wait` gave up at its timeout */
  timedOut: boolean;
}

/** What `checkout()` resolves with. @example const r: CheckoutResult = await lic.checkout(); if (!r.ok) return; */
export type CheckoutResult = CheckoutGranted | CheckoutDenied;

/** Options of `checkout()`. @example await lic.checkout({ wait: true, timeoutMs: 5 * 60_000 }) */
export interface CheckoutOptions {
  /** Keep asking until a seat frees (or `timeoutMs`). */
  wait?: boolean;
  /** Give up waiting (or retrying) after this many ms. */
  timeoutMs?: number;
  /** Cancel the checkout (it rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** What `checkin()` resolves with. @example const { released, reachedServer } = await lic.checkin(); */
export interface CheckinResult {
  /** true when the seat went back to the pool (or was already gone) */
  released: boolean;
  /** instances left on the lease, when the server answered */
  instances: number | null;
  /** false when the server could not be reached (the seat stays checked out by this device) */
  reachedServer: boolean;
}

/** Payload of the `retry` event. @example lic.on('retry', (r) => log.debug(`${r.operation} failed (${r.error.code}); again in ${r.delayMs} ms`)); */
export interface RetryInfo {
  operation: 'checkout' | 'heartbeat' | 'reconnect';
  attempt: number;
  delayMs: number;
  error: FloatingLicenseError;
}

/** Payload of the `waiting` event (`checkout({ wait: true })` found no seat and will ask again). @example lic.on('waiting', (w) => splash.text = `${w.message}; retrying in ${Math.round(w.retryInMs / 1000)} s`); */
export interface WaitingInfo extends Omit<CheckoutDenied, 'ok' | 'timedOut'> {
  retryInMs: number;
}

/** Events of {@link FloatingLicense}. @example lic.on('reacquired', (s) => banner.hide()); */
export interface FloatingLicenseEvents {
  /** A heartbeat renewed the lease token. */
  renewed: [status: LicenseStatus];
  /** The seat came back after it was lost (lease gone, violation, outage past the token's expiry). */
  reacquired: [status: LicenseStatus];
  /** Something the application should act on. */
  violation: [violation: Violation];
  /** A transient failure; the SDK tries again after `delayMs`. */
  retry: [info: RetryInfo];
  /** No seat free; `checkout({ wait: true })` asks again after `retryInMs`. */
  waiting: [info: WaitingInfo];
}

interface Held {
  token: string;
  claims: LeaseTokenClaims;
  /** this instance's own token (heartbeats possible) or an earlier run's (stored) */
  own: boolean;
  /** local effective time the token stops being valid; null = no expiry */
  expiresAt: number | null;
  /** local effective Offline Expiry Date */
  oedAt: number | null;
}

interface StoredToken {
  token: string;
  receivedAt: number;
  trustedAt?: number;
}

const isCode = (err: unknown, ...codes: FloatingLicenseErrorCode[]) => err instanceof FloatingLicenseError && codes.includes(err.code);

function asError(err: unknown): FloatingLicenseError {
  if (err instanceof FloatingLicenseError) return err;
  return new FloatingLicenseError('BAD_RESPONSE', err instanceof Error ? err.message : String(err), { cause: err });
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The trusted time is written when the process exits, whatever the application
 * did (no check-in, no `close()`): one `exit` listener for every live object,
 * held weakly so an object the application dropped is not kept alive by it.
 */
const PERSIST_AT_EXIT = Symbol('persistAtExit');
interface ExitPersisted {
  [PERSIST_AT_EXIT](): void;
}
const liveAtExit = new Set<WeakRef<ExitPersisted>>();
let exitListener = false;

function persistAllAtExit(): void {
  for (const ref of liveAtExit) ref.deref()?.[PERSIST_AT_EXIT]();
}

function registerAtExit(ref: WeakRef<ExitPersisted>): void {
  for (const r of liveAtExit) if (r.deref() === undefined) liveAtExit.delete(r);
  liveAtExit.add(ref);
  if (!exitListener) {
    exitListener = true;
    process.on('exit', persistAllAtExit);
  }
}

// ---------------------------------------------------------------------------

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

  private readonly opts: FloatingLicenseOptions;
  private readonly clock: Clock;
  private readonly api: Api;
  private readonly serverUrl: string;
  private readonly licenseKey: string;
  private readonly stateRoot: string;
  private readonly retry: RetryPolicy;
  private readonly random: () => number;
  private readonly tolMs: number;
  private readonly guardMs: number;
  private readonly jitter: number;
  private readonly fixedKeys: ReturnType<typeof parseKeys> | undefined;

  private initP: Promise<void> | undefined;
  private fp: string | undefined;
  private state!: StateDir;
  private trust!: KeyTrust;

  private mode: LicenseState = 'idle';
  private held: Held | undefined;
  private license: LicenseSummary | null = null;
  private instanceCount: number | null = null;
  private hbi: number | null = null;
  private lastContactAt: number | null = null;
  private reachable = true;
  private failures = 0;
  private readonly violations = new Map<ViolationCode, Violation>();

  /**
   * The trusted time is `trustBase + mono()`: the latest time this object trusted
   * (server time, a clock reading, the record an earlier run left) carried forward
   * by the monotonic time elapsed since, so it moves on with real time whatever
   * the wall clock does. Raising it raises `trustBase`; nothing lowers it.
   */
  private trustBase: number;
  private readonly mono: () => number;
  private persistChain: Promise<void> = Promise.resolve();
  private fileOpsPending = 0;
  private exitRef: WeakRef<ExitPersisted> | undefined;
  /** effective time of the last grant */
  private lastGrantAt = 0;
  /** the lease this instance is registered with in the state directory */
  private registeredLease: string | undefined;

  private contactTimer: TimerHandle | undefined;
  private expiryTimer: TimerHandle | undefined;
  private guardTimer: TimerHandle | undefined;
  private contactRunning: Promise<void> | undefined;
  private lock: Promise<unknown> = Promise.resolve();
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
  constructor(opts: FloatingLicenseOptions) {
    super();
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    const clock = this.clock;
    this.mono = typeof clock.monotonic === 'function' ? () => clock.monotonic!() : () => performance.now();
    this.trustBase = -this.mono();
    this.serverUrl = normalizeServerUrl(opts.serverUrl);
    const key = normalizeKey(String(opts.licenseKey ?? ''));
    if (!key) throw new FloatingLicenseError('INVALID_LICENSE_KEY', 'the license key is not well formed (25 symbols in five groups, with a valid check symbol)');
    this.licenseKey = key;
    this.instanceId = opts.instanceId ?? `i-${randomBytes(12).toString('base64url')}`;
    if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(this.instanceId)) throw new FloatingLicenseError('VALIDATION_FAILED', 'instanceId must be 1-128 of A-Z a-z 0-9 _ . : -');
    this.stateRoot = opts.stateDir ?? join(homedir(), '.floatd');
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.random = opts.random ?? Math.random;
    this.tolMs = (opts.clockToleranceSeconds ?? 600) * 1000;
    this.guardMs = (opts.guardIntervalSeconds ?? 60) * 1000;
    this.jitter = Math.min(0.5, Math.max(0, opts.heartbeatJitter ?? 0.1));
    if (opts.serverPublicKeys) {
      this.fixedKeys = parseKeys(opts.serverPublicKeys);
      if (this.fixedKeys.length === 0) throw new FloatingLicenseError('INVALID_SIGNATURE', 'serverPublicKeys holds no Ed25519 public key');
    }
    this.api = new Api({
      serverUrl: this.serverUrl,
      licenseKey: key,
      fetch: opts.fetch ?? ((input, init) => fetch(input, init)),
      timeoutMs: opts.requestTimeoutMs ?? 10_000,
      userAgent: `floatd-client/${CLIENT_VERSION} node/${process.versions.node}`,
      now: () => this.clock.now(),
    });
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
    this.assertOpen();
    opts.signal?.throwIfAborted();
    if (this.held && this.mode !== 'lost' && this.isValid()) return { ok: true, source: 'current', created: false, status: this.status() };
    const clockOk = this.checkClock();

    // 1. A seat borrowed offline by an earlier run: no network needed.
    let storedError: FloatingLicenseError | undefined;
    try {
      const off = await this.loadStored(OFFLINE_FILE);
      if (off) {
        if (!clockOk) throw new FloatingLicenseError('CLOCK_TAMPERED', 'the system clock was set back: the stored offline lease cannot be trusted until it is corrected');
        return await this.serial(async () => {
          this.adoptStored(off, 'offline');
          return { ok: true as const, source: 'offline-token' as const, created: false, status: this.status() };
        });
      }
    } catch (err) {
      if (isCode(err, 'CLOCK_TAMPERED')) throw err;
      storedError = asError(err);
    }

    // 2. The server.
    const ctl = new AbortController();
    this.waits.add(ctl);
    const onAbort = () => ctl.abort(opts.signal!.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timeout = opts.timeoutMs !== undefined ? this.clock.setTimeout(() => ((timedOut = true), ctl.abort(new Error('timeout'))), opts.timeoutMs) : undefined;
    try {
      let attempt = 0;
      let lastDenial: CheckoutDenied | undefined;
      for (;;) {
        attempt++;
        try {
          const granted = await this.serial(async () => {
            this.assertOpen();
            const { grant, claims, created } = await this.requestCheckout();
            await this.adopt(grant, claims);
            await this.cleanupOrphans();
            this.clearViolations();
            return { ok: true as const, source: 'server' as const, created, status: this.status() };
          });
          return granted;
        } catch (err) {
          const e = asError(err);
          if (e.code === 'NO_SEATS_AVAILABLE') {
            lastDenial = denialFrom(e, false);
            if (!opts.wait || timedOut) return { ...lastDenial, timedOut };
            attempt = 0;
            const delay = this.waitDelay(lastDenial);
            const { ok: _ok, timedOut: _t, ...info } = lastDenial;
            await this.pause(delay, ctl, () => this.emitSafe('waiting', { ...info, retryInMs: delay })).catch((r: unknown) => {
              if (!timedOut) throw r;
            });
            if (timedOut) return { ...lastDenial, timedOut: true };
            continue;
          }
          if (!e.transient) throw e;
          if (e.code !== 'RATE_LIMITED') this.reachable = false;
          // The server is unreachable: run on the token an earlier run stored, if it is still valid.
          if (attempt === 1 && !this.held) {
            try {
              const cached = await this.loadStored(LEASE_FILE);
              if (cached) {
                if (!clockOk) throw new FloatingLicenseError('CLOCK_TAMPERED', 'the system clock was set back: the stored lease cannot be trusted until it is corrected');
                return await this.serial(async () => {
                  this.adoptStored(cached, 'cached');
                  return { ok: true as const, source: 'cached-token' as const, created: false, status: this.status() };
                });
              }
            } catch (err2) {
              if (isCode(err2, 'CLOCK_TAMPERED')) throw err2;
              storedError ??= asError(err2);
            }
          }
          if (timedOut || (!opts.wait && attempt >= this.retry.maxAttempts)) {
            if (lastDenial) return { ...lastDenial, timedOut };
            throw storedError ?? e;
          }
          const delay = Math.max(backoff(attempt, this.retry, this.random), e.retryAfterMs ?? 0);
          await this.pause(delay, ctl, () => this.emitSafe('retry', { operation: 'checkout', attempt, delayMs: delay, error: e })).catch((r: unknown) => {
            if (!timedOut) throw r;
          });
          if (timedOut) {
            if (lastDenial) return { ...lastDenial, timedOut: true };
            throw storedError ?? e;
          }
        }
      }
    } finally {
      if (timeout !== undefined) this.clock.clearTimeout(timeout);
      opts.signal?.removeEventListener('abort', onAbort);
      this.waits.delete(ctl);
    }
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
    this.assertOpen();
    this.checkClock();
    return this.serial(async () => {
      const grant = await this.api.call(routes.client.offlineCheckout, { body: { ...this.meta(), durationSeconds: opts.durationSeconds } });
      const claims = await this.verifyGrant(grant, { offline: true });
      await this.adopt(grant, claims);
      await this.cleanupOrphans();
      this.clearViolations();
      return this.status();
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
    return this.serial(async () => {
      const h = this.held;
      if (!h || !h.claims.offline) throw new FloatingLicenseError('NOT_CHECKED_OUT', 'no offline lease is held');
      let released = true;
      try {
        released = (await this.api.call(routes.client.returnOffline, { params: { leaseId: h.claims.lse } })).released;
      } catch (err) {
        if (!isCode(err, 'LEASE_NOT_FOUND')) throw err;
      }
      await this.fileOp(() => this.state.remove(OFFLINE_FILE));
      await this.state.remove(LEASE_FILE);
      await this.state.unregisterInstance(this.instanceId);
      this.registeredLease = undefined;
      this.stopTimers();
      this.held = undefined;
      this.mode = 'idle';
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
    this.stopTimers();
    return this.serial(async () => {
      const h = this.held;
      const wasOffline = this.mode === 'offline';
      this.stopTimers();
      if (this.mode !== 'closed') this.mode = 'idle';
      this.held = undefined;
      this.violations.clear();
      await this.persistClock().catch(() => undefined);
      if (!h) return { released: false, instances: null, reachedServer: false };
      // A stored token of an earlier run: that run's instance is the one on the lease
      // (unless that run is still alive: then it is not ours to check in).
      const instanceId = h.own ? this.instanceId : h.claims.ins;
      if (!h.own && (await this.state.instances()).some((e) => e.instanceId === instanceId && e.alive)) {
        return { released: false, instances: null, reachedServer: false };
      }
      const timeout = opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {};
      try {
        const r = await this.api.call(routes.client.checkin, { params: { leaseId: h.claims.lse }, body: { instanceId } }, timeout);
        this.instanceCount = r.instances;
        this.lastContactAt = this.clock.now();
        await this.state.unregisterInstance(instanceId);
        await this.state.unregisterInstance(this.instanceId);
        this.registeredLease = undefined;
        if (r.released) await this.state.remove(LEASE_FILE);
        return { released: r.released, instances: r.instances, reachedServer: true };
      } catch (err) {
        if (isCode(err, 'LEASE_NOT_FOUND')) {
          await this.state.unregisterInstance(instanceId);
          await this.state.unregisterInstance(this.instanceId);
          this.registeredLease = undefined;
          if (!wasOffline) await this.state.remove(LEASE_FILE);
          return { released: true, instances: 0, reachedServer: true };
        }
        this.reachable = false;
        // This instance is done but still on the lease: the next run checks it in (see cleanupOrphans).
        if (h.own) await this.state.registerInstance({ instanceId, pid: process.pid, leaseId: h.claims.lse, startedAt: this.clock.now(), closedAt: this.clock.now() }).catch(() => undefined);
        this.registeredLease = undefined;
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
    return this.serial(async () => {
      const entries = await this.state.instances();
      const alive = new Set(entries.filter((e) => e.alive).map((e) => e.instanceId));
      if (this.held?.own && this.mode !== 'idle' && this.mode !== 'closed') alive.add(this.instanceId);
      const r = await this.api.call(routes.client.syncDevice, { body: { fingerprint: this.fp!, instanceIds: [...alive].slice(0, 1024) } });
      this.lastContactAt = this.clock.now();
      this.instanceCount = r.instances;
      for (const e of entries) if (!e.alive || r.dropped.includes(e.instanceId)) await this.state.unregisterInstance(e.instanceId);
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
    const r = await this.api.call(routes.client.licenseInfo, { query: { fingerprint: this.fp! } });
    this.license = r.license;
    this.lastContactAt = this.clock.now();
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
    const h = this.held;
    const date = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms));
    return {
      state: this.mode,
      valid: this.isValid(),
      leaseId: h?.claims.lse ?? null,
      deviceId: h?.claims.dev ?? null,
      instanceId: this.instanceId,
      fingerprint: this.fp ?? null,
      leaseExpiresAt: date(h?.expiresAt),
      offline: h?.claims.offline ?? false,
      offlineExpiresAt: date(h?.oedAt),
      lastContactAt: date(this.lastContactAt),
      serverReachable: this.reachable,
      seatsUsed: this.license?.seatsUsed ?? null,
      seatsTotal: this.license?.seatsTotal ?? null,
      instances: this.instanceCount,
      heartbeatIntervalSeconds: this.hbi,
      violations: [...this.violations.keys()],
      license: this.license,
      token: h?.token ?? null,
    };
  }

  /**
   * Stops every timer and detaches the exit handlers. Checks in first unless
   * `checkin: false` (which leaves the seat held, as a crash or a closed laptop would).
   *
   * @example await lic.close();
   */
  async close(opts: { checkin?: boolean } = {}): Promise<void> {
    if (opts.checkin !== false && this.initP) await this.checkin().catch(() => undefined);
    for (const w of this.waits) w.abort(new FloatingLicenseError('CLOSED', 'the license object was closed'));
    this.stopTimers();
    this.removeExitHandlers();
    await this.lock.catch(() => undefined);
    this.stopTimers();
    this.mode = 'closed';
    await this.persistClock().catch(() => undefined);
    if (this.exitRef) liveAtExit.delete(this.exitRef);
    this.exitRef = undefined;
  }

  // -------------------------------------------------------------------------
  // setup

  private init(): Promise<void> {
    return (this.initP ??= this.doInit());
  }

  private async doInit(): Promise<void> {
    const fp = this.opts.fingerprint ?? deviceFingerprint({ stateDir: this.stateRoot });
    if (!FINGERPRINT_PATTERN.test(fp)) throw new FloatingLicenseError('VALIDATION_FAILED', 'fingerprint must be 8-128 of A-Z a-z 0-9 _ . : + / = -');
    this.fp = fp;
    this.state = new StateDir(this.stateRoot, this.serverUrl, this.licenseKey, fp);
    await this.state.ensure();
    this.trust = new KeyTrust(this.state, this.fixedKeys, () => this.api.call(routes.ops.jwks, {}));
    this.api.verifier = (kid, data, sig) => this.trust.verifySignature(kid, data, sig);

    // The latest trusted time: the sealed record, and the one kept beside an offline token.
    const now = this.clock.now();
    let trusted = 0;
    const rec = await this.state.readSealed<{ t: number }>(CLOCK_FILE);
    if (rec.kind === 'ok' && typeof rec.data.t === 'number') trusted = rec.data.t;
    const off = await this.state.readSealed<StoredToken>(OFFLINE_FILE);
    if (off.kind === 'ok' && typeof off.data.trustedAt === 'number') trusted = Math.max(trusted, off.data.trustedAt);
    // This run continues from the stored time: the wall clock may be earlier (set back), the trusted time is not.
    this.raiseTrusted(trusted);
    if (rec.kind === 'tampered') {
      this.violate('CLOCK_TAMPERED', `the trusted-time record in ${this.state.dir} was edited (${rec.reason})`);
      this.raiseTrusted(now);
    } else {
      this.checkClock();
    }
    // at start: a run that ends before anything else is written has still been here
    await this.persistClock();
    this.exitRef = new WeakRef<ExitPersisted>(this);
    registerAtExit(this.exitRef);
    if (this.opts.handleExit) this.installExitHandlers();
  }

  private assertOpen(): void {
    if (this.mode === 'closed') throw new FloatingLicenseError('CLOSED', 'the license object was closed');
  }

  private meta() {
    const host = this.opts.hostname === undefined ? osHostname() : this.opts.hostname;
    let user = this.opts.user;
    if (user === undefined) {
      try {
        user = userInfo().username;
      } catch {
        user = null;
      }
    }
    return {
      fingerprint: this.fp!,
      instanceId: this.instanceId,
      // The server refuses control characters and bidi overrides in identity text (protocol/text.ts); an odd
      // host or user name from the OS is sent with them escaped rather than cost the checkout.
      ...(host ? { hostname: visibleText(host).slice(0, 255) } : {}),
      ...(user ? { user: visibleText(user).slice(0, 255) } : {}),
      ...(this.opts.appVersion ? { appVersion: visibleText(this.opts.appVersion).slice(0, 64) } : {}),
    };
  }

  /** Runs state-changing work one at a time (a heartbeat never races a check-in). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private emitSafe<K extends keyof FloatingLicenseEvents>(event: K, ...args: FloatingLicenseEvents[K]): void {
    try {
      (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
    } catch (err) {
      // a throwing listener is the application's bug: surface it like any uncaught exception, not inside the SDK's state machine
      process.nextTick(() => {
        throw err;
      });
    }
  }

  private pause(ms: number, ctl: AbortController, announce: () => void): Promise<void> {
    const p = sleep(this.clock, ms, ctl.signal);
    announce(); // after the timer exists, so a test clock advanced from the event fires it
    return p;
  }

  private waitDelay(d: CheckoutDenied): number {
    const poll = (this.opts.waitIntervalSeconds ?? 15) * 1000;
    let delay = poll;
    if (d.earliestExpiryAt) delay = Math.min(poll, Math.max(1000, d.earliestExpiryAt.getTime() - this.effNow() + 500));
    return Math.round(delay * (0.8 + 0.2 * this.random()));
  }

  // -------------------------------------------------------------------------
  // grants and tokens

  private async requestCheckout(): Promise<{ grant: Grant; claims: LeaseTokenClaims; created: boolean }> {
    const r = await this.api.request(routes.client.checkout, { body: this.meta() });
    const claims = await this.verifyGrant(r.body, {});
    return { grant: r.body, claims, created: r.status === 201 };
  }

  private async verifyGrant(g: Grant, expect: { leaseId?: string; offline?: boolean }): Promise<LeaseTokenClaims> {
    if (!g || typeof g !== 'object' || typeof g.token !== 'string' || !g.lease || typeof g.lease.id !== 'string') {
      throw new FloatingLicenseError('BAD_RESPONSE', 'the grant is not a floatd grant');
    }
    const claims = await this.trust.verify(g.token, {
      fingerprint: this.fp!,
      instanceId: this.instanceId,
      leaseId: expect.leaseId ?? g.lease.id,
      ...(expect.offline !== undefined ? { offline: expect.offline } : {}),
    });
    if (claims.lse !== g.lease.id) throw new FloatingLicenseError('TOKEN_MISMATCH', 'the grant and its token name different leases');
    return claims;
  }

  private makeHeld(token: string, claims: LeaseTokenClaims, receivedAt: number): Held {
    return {
      token,
      claims,
      own: claims.ins === this.instanceId,
      expiresAt: claims.exp !== undefined ? receivedAt + (claims.exp - claims.iat) * 1000 : null,
      oedAt: claims.oed !== undefined ? receivedAt + (claims.oed - claims.iat) * 1000 : null,
    };
  }

  /** Takes a verified grant: keeps its token, persists it, schedules heartbeats and the expiry. */
  private async adopt(grant: Grant, claims: LeaseTokenClaims): Promise<void> {
    this.observeServerTime(claims.iat * 1000);
    const receivedAt = this.effNow();
    this.held = this.makeHeld(grant.token, claims, receivedAt);
    this.lastGrantAt = receivedAt;
    this.mode = claims.offline ? 'offline' : 'online';
    this.license = grant.license;
    this.instanceCount = grant.lease.instances;
    this.hbi = claims.hbi;
    this.lastContactAt = this.clock.now();
    this.reachable = true;
    this.failures = 0;
    const stored: StoredToken = { token: grant.token, receivedAt, trustedAt: Math.floor(this.trustedNow()) };
    if (claims.offline) {
      await this.fileOp(() => this.state.writeSealed(OFFLINE_FILE, stored));
      // the online token of this lease is superseded: it must not outlive the Offline Expiry Date
      await this.state.remove(LEASE_FILE);
    } else {
      await this.state.writeSealed(LEASE_FILE, stored);
      await this.fileOp(() => this.state.remove(OFFLINE_FILE));
    }
    if (this.registeredLease !== claims.lse) {
      await this.state.registerInstance({ instanceId: this.instanceId, pid: process.pid, leaseId: claims.lse, startedAt: this.clock.now() });
      this.registeredLease = claims.lse;
    }
    this.schedule();
    await this.persistClock();
  }

  /** Runs on a token an earlier run stored (offline lease, or the last online lease while unreachable). */
  private adoptStored(s: { held: Held }, mode: 'offline' | 'cached'): void {
    this.held = s.held;
    this.mode = mode;
    this.hbi = s.held.claims.hbi;
    this.schedule();
    if (mode === 'cached') this.scheduleContact(backoff(1, this.retry, this.random));
  }

  /** A stored token, verified with the pinned keys (no network); undefined when missing or expired. */
  private async loadStored(name: string): Promise<{ held: Held } | undefined> {
    const r = await this.state.readSealed<StoredToken>(name);
    if (r.kind === 'missing') return undefined;
    if (r.kind === 'tampered') {
      await this.fileOp(() => this.state.remove(name));
      throw new FloatingLicenseError('INVALID_SIGNATURE', `the stored lease token ${name} was tampered with (${r.reason})`);
    }
    const offline = name === OFFLINE_FILE;
    let claims: LeaseTokenClaims;
    try {
      claims = await this.trust.verify(r.data.token, { fingerprint: this.fp!, offline }, false);
    } catch (err) {
      await this.fileOp(() => this.state.remove(name));
      throw err;
    }
    this.observeServerTime(claims.iat * 1000);
    const held = this.makeHeld(r.data.token, claims, Math.min(r.data.receivedAt, this.effNow()));
    if (this.expired(held)) {
      await this.fileOp(() => this.state.remove(name));
      return undefined;
    }
    return { held };
  }

  /** Checks in instances this state directory started whose process is gone (crashes, closed laptops). */
  private async cleanupOrphans(): Promise<void> {
    if (this.opts.cleanupOrphans === false) return;
    for (const e of await this.state.instances()) {
      if (e.alive || e.instanceId === this.instanceId) continue;
      if (!e.leaseId) {
        await this.state.unregisterInstance(e.instanceId);
        continue;
      }
      try {
        const r = await this.api.call(routes.client.checkin, { params: { leaseId: e.leaseId }, body: { instanceId: e.instanceId } });
        if (e.leaseId === this.held?.claims.lse) this.instanceCount = r.instances;
        await this.state.unregisterInstance(e.instanceId);
      } catch (err) {
        if (isCode(err, 'LEASE_NOT_FOUND')) await this.state.unregisterInstance(e.instanceId);
        // anything else: try again on the next grant
      }
    }
  }

  // -------------------------------------------------------------------------
  // time

  /** The trusted time now: the latest trusted reading plus the monotonic time elapsed since it. */
  private trustedNow(): number {
    return this.trustBase + this.mono();
  }

  /** Raises the trusted time to `t` (never lowers it). */
  private raiseTrusted(t: number): void {
    const base = t - this.mono();
    if (base > this.trustBase) this.trustBase = base;
  }

  /** Wall time never earlier than the trusted time: setting the clock back buys nothing. */
  private effNow(): number {
    return Math.max(this.clock.now(), this.trustedNow());
  }

  private observeServerTime(ms: number): void {
    this.raiseTrusted(ms);
    this.checkClock();
  }

  /** False (and a CLOCK_TAMPERED violation) when the clock is earlier than the trusted time by more than the tolerance. */
  private checkClock(): boolean {
    const now = this.clock.now();
    const trusted = this.trustedNow();
    if (now < trusted - this.tolMs) {
      this.violate(
        'CLOCK_TAMPERED',
        `the system clock (${iso(now)}) is earlier than the last trusted time (${iso(trusted)}) by more than ${this.tolMs / 1000} s`,
      );
      return false;
    }
    this.violations.delete('CLOCK_TAMPERED');
    this.raiseTrusted(now);
    return true;
  }

  /**
   * Writes the trusted time to `clock.json`, and beside a stored offline token (so
   * deleting `clock.json` gives nothing back): at start, at every check (guard,
   * heartbeat, failed contact), at each grant, check-in, close and process exit.
   * What another run of this state directory wrote is never lowered: the larger
   * value wins, and this object continues from it. Writes run one at a time.
   */
  private persistClock(): Promise<void> {
    if (!this.state) return Promise.resolve();
    return this.fileOp(async () => {
      const rec = await this.state.readSealed<{ t: number }>(CLOCK_FILE);
      const t = this.trustedToWrite(rec);
      await this.state.writeSealed(CLOCK_FILE, { t });
      const off = await this.state.readSealed<StoredToken>(OFFLINE_FILE);
      if (off.kind === 'ok' && !((off.data.trustedAt ?? 0) >= t)) await this.state.writeSealed(OFFLINE_FILE, { ...off.data, trustedAt: t });
    });
  }

  /**
   * Runs writes of `clock.json` and `offline.json` one at a time: the trusted time's
   * copy is a read-modify-write of the offline token's file, which must never put
   * back a token that a removal (return, expiry, going online) just deleted.
   */
  private fileOp<T>(fn: () => Promise<T>): Promise<T> {
    this.fileOpsPending++;
    const run = this.persistChain.then(fn).finally(() => {
      this.fileOpsPending--;
    });
    this.persistChain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** {@link persistClock} from a process `exit` handler: synchronous, best effort. */
  [PERSIST_AT_EXIT](): void {
    if (!this.state) return;
    try {
      const t = this.trustedToWrite(this.state.readSealedSync<{ t: number }>(CLOCK_FILE));
      this.state.writeSealedSync(CLOCK_FILE, { t });
      // a write or removal of the offline token still in flight: leave that file alone (never put back a removed token)
      if (this.fileOpsPending > 0) return;
      const off = this.state.readSealedSync<StoredToken>(OFFLINE_FILE);
      if (off.kind === 'ok' && !((off.data.trustedAt ?? 0) >= t)) this.state.writeSealedSync(OFFLINE_FILE, { ...off.data, trustedAt: t });
    } catch {
      /* the state directory is gone or read-only: nothing more can be done at exit */
    }
  }

  /** The value to store: this object's trusted time, the wall clock if later, and never less than `rec`. */
  private trustedToWrite(rec: { kind: string; data?: { t?: unknown } }): number {
    // a wall clock ahead of the trusted time is a reading like any other (one far behind is not)
    this.raiseTrusted(this.clock.now());
    if (rec.kind === 'ok' && typeof rec.data?.t === 'number' && Number.isFinite(rec.data.t)) this.raiseTrusted(rec.data.t);
    return Math.floor(this.trustedNow());
  }

  private expired(h: Held): boolean {
    return h.expiresAt !== null && this.effNow() >= h.expiresAt;
  }

  private isValid(): boolean {
    const h = this.held;
    return !!h && (this.mode === 'online' || this.mode === 'offline' || this.mode === 'cached') && !this.expired(h);
  }

  // -------------------------------------------------------------------------
  // violations

  private violate(code: ViolationCode, message: string, cause?: FloatingLicenseErrorCode): void {
    if (this.violations.has(code)) return;
    const v: Violation = { code, message, at: new Date(this.clock.now()), ...(cause ? { cause } : {}) };
    this.violations.set(code, v);
    this.emitSafe('violation', v);
  }

  /** The seat is back: every violation but a wrong clock is over. */
  private clearViolations(): void {
    for (const code of [...this.violations.keys()]) if (code !== 'CLOCK_TAMPERED') this.violations.delete(code);
  }

  // -------------------------------------------------------------------------
  // the scheduler: one contact timer (heartbeat / retry / reconnect), one expiry timer, one guard timer

  private schedule(): void {
    if (this.mode === 'online') this.scheduleContact(this.heartbeatDelay());
    else if (this.mode === 'offline') this.clearContact();
    this.scheduleExpiry();
    this.ensureGuard();
  }

  private heartbeatDelay(): number {
    const s = this.hbi ?? 60;
    return Math.max(1000, Math.round(s * 1000 * (1 - this.jitter * this.random())));
  }

  private clearContact(): void {
    if (this.contactTimer !== undefined) this.clock.clearTimeout(this.contactTimer);
    this.contactTimer = undefined;
  }

  /**
   * A timer that also keeps the trusted time honest: a timer never fires early, so
   * when it fires at least `ms` passed since it was armed, whatever the wall clock
   * says. The trusted time (and with it every expiry) keeps moving while the clock
   * is set back.
   */
  private arm(fn: () => Promise<void> | void, ms: number): TimerHandle {
    const delay = Math.max(0, ms);
    const base = this.trustedNow();
    return this.clock.setTimeout(() => {
      this.raiseTrusted(base + delay);
      return fn();
    }, delay);
  }

  private scheduleContact(ms: number): void {
    this.clearContact();
    this.contactTimer = this.arm(() => this.contactNow(), ms);
  }

  private scheduleExpiry(): void {
    if (this.expiryTimer !== undefined) this.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    const at = this.held?.expiresAt;
    if (at === null || at === undefined) return;
    this.expiryTimer = this.arm(() => {
      this.expiryTimer = undefined;
      return this.onExpiry();
    }, at - this.effNow());
  }

  private ensureGuard(): void {
    if (this.guardTimer !== undefined) return;
    this.guardTimer = this.arm(() => {
      this.guardTimer = undefined;
      return this.guard();
    }, this.guardMs);
  }

  private stopTimers(): void {
    this.clearContact();
    if (this.expiryTimer !== undefined) this.clock.clearTimeout(this.expiryTimer);
    if (this.guardTimer !== undefined) this.clock.clearTimeout(this.guardTimer);
    this.expiryTimer = undefined;
    this.guardTimer = undefined;
  }

  private active(): boolean {
    return this.mode === 'online' || this.mode === 'offline' || this.mode === 'cached' || this.mode === 'lost';
  }

  /** Every guard interval: the clock, the token's expiry (a wall-clock jump), and the trusted time on disk. */
  private async guard(): Promise<void> {
    if (!this.active()) return;
    this.checkClock();
    this.ensureGuard();
    await this.persistClock().catch(() => undefined);
    // the token ran out by the wall clock before its timer (the clock jumped forward): try the server now
    const h = this.held;
    if (h && this.expired(h) && !this.violations.has('SERVER_UNREACHABLE') && !this.violations.has('OFFLINE_EXPIRED') && !this.contactRunning) await this.onExpiry();
  }

  /** The token (or the Offline Expiry Date) ran out: try the server once more now; the violation comes if that fails. */
  private async onExpiry(): Promise<void> {
    if (!this.active() || !this.held) return;
    if (!this.expired(this.held)) return this.scheduleExpiry();
    // A renewal can bring a token that is already over (the license ends within the
    // second): ask again a second later, not in a loop.
    if (this.effNow() - this.lastGrantAt < 1000) return this.scheduleContact(1000);
    await this.contactNow();
  }

  private contactNow(): Promise<void> {
    if (this.contactRunning) return this.contactRunning;
    this.clearContact();
    const run = this.contact().finally(() => {
      this.contactRunning = undefined;
    });
    this.contactRunning = run;
    return run;
  }

  /** Heartbeat (own token) or checkout (stored token, lost lease); on failure, retry or report. */
  private async contact(): Promise<void> {
    if (!this.active()) return;
    this.checkClock();
    await this.serial(async () => {
      if (!this.active()) return;
      const before = this.held;
      const hadViolation = [...this.violations.keys()].some((c) => c !== 'CLOCK_TAMPERED') || this.mode === 'lost';
      const operation: RetryInfo['operation'] = before?.own && this.mode !== 'cached' ? 'heartbeat' : 'reconnect';
      try {
        let grant: Grant | undefined;
        let claims: LeaseTokenClaims | undefined;
        if (before?.own && this.mode !== 'cached') {
          try {
            grant = await this.api.call(routes.client.heartbeat, { params: { leaseId: before.claims.lse }, body: { instanceId: this.instanceId } });
            claims = await this.verifyGrant(grant, { leaseId: before.claims.lse });
          } catch (err) {
            if (!isCode(err, 'LEASE_NOT_FOUND')) throw err;
            // The lease is gone (reclaimed, released): check out again at once.
            grant = undefined;
          }
        }
        let joined = false;
        if (!grant || !claims) {
          ({ grant, claims } = await this.requestCheckout());
          joined = true;
        }
        const sameLease = before !== undefined && before.claims.lse === claims.lse;
        await this.adopt(grant, claims);
        if (joined) await this.cleanupOrphans();
        this.clearViolations();
        this.emitSafe(hadViolation || !sameLease ? 'reacquired' : 'renewed', this.status());
      } catch (err) {
        await this.onContactFailure(asError(err), operation);
      }
    });
  }

  private async onContactFailure(e: FloatingLicenseError, operation: RetryInfo['operation']): Promise<void> {
    if (!this.active()) return;
    await this.persistClock().catch(() => undefined);
    const h = this.held;
    const untrusted = e.code === 'INVALID_SIGNATURE' || e.code === 'TOKEN_MISMATCH';
    if (e.transient || untrusted) {
      // Unreachable (or not trustworthy): keep running on the token; report only once it has run out.
      if (!untrusted && e.code !== 'RATE_LIMITED') this.reachable = false;
      this.failures++;
      let delay = backoff(this.failures, this.retry, this.random);
      if (h && !this.expired(h) && this.hbi !== null) delay = Math.min(delay, this.hbi * 1000);
      // 429: the server is there and asks to wait; honour it (the token keeps the app running meanwhile)
      if (e.retryAfterMs !== undefined) delay = Math.max(delay, e.retryAfterMs);
      this.scheduleContact(delay);
      if (h && this.expired(h)) {
        if (h.claims.offline) {
          this.mode = 'lost';
          this.violate('OFFLINE_EXPIRED', `the Offline Expiry Date passed and the server could not confirm the license: ${e.message}`, e.code);
          await this.fileOp(() => this.state.remove(OFFLINE_FILE)).catch(() => undefined);
        } else {
          this.violate('SERVER_UNREACHABLE', `the lease token expired while the server was unreachable: ${e.message}`, e.code);
        }
      }
      this.emitSafe('retry', { operation, attempt: this.failures, delayMs: delay, error: e });
      return;
    }
    // The server refused: the seat is lost until it comes back.
    this.reachable = true;
    this.lastContactAt = this.clock.now();
    this.failures = 0;
    const code: ViolationCode =
      e.code === 'LICENSE_SUSPENDED' ? 'LICENSE_SUSPENDED' : e.code === 'LICENSE_EXPIRED' || e.code === 'TRIAL_EXPIRED' ? 'LICENSE_EXPIRED' : 'SEAT_LOST';
    // A suspension leaves the lease in place (heartbeats may resume); anything else means it is gone.
    if (code !== 'LICENSE_SUSPENDED' && code !== 'LICENSE_EXPIRED') {
      this.held = undefined;
      // the stored token names a lease the server no longer has: a restart without network must not run on it
      await this.state.remove(LEASE_FILE).catch(() => undefined);
    }
    if (h?.claims.offline) await this.fileOp(() => this.state.remove(OFFLINE_FILE)).catch(() => undefined);
    this.mode = 'lost';
    if (this.expiryTimer !== undefined) this.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.violate(code, e.message, e.code);
    this.scheduleContact(this.heartbeatDelay());
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
    const h = this.exitHandlers;
    if (!h) return;
    this.exitHandlers = undefined;
    process.removeListener('SIGINT', h.signal);
    process.removeListener('SIGTERM', h.signal);
    process.removeListener('beforeExit', h.beforeExit);
  }
}

function denialFrom(e: FloatingLicenseError, timedOut: boolean): CheckoutDenied {
  const d = e.details;
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  const earliest = typeof d.earliestExpiryAt === 'string' ? new Date(d.earliestExpiryAt) : null;
  const total = num(d.seatsTotal);
  const used = num(d.seatsUsed);
  const message =
    (total !== null ? `all ${total} seats are in use` : 'all seats are in use') +
    // Worded as the server words it: the earliest lease expiry, which a holder that still runs renews.
    (earliest ? `; the earliest lease expires at ${earliest.toISOString()} unless its holder renews it` : '; no lease expires on its own, a seat frees when someone checks in');
  return {
    ok: false,
    code: 'NO_SEATS_AVAILABLE',
    message,
    seatsTotal: total,
    seatsUsed: used,
    earliestExpiryAt: earliest,
    ...(Array.isArray(d.holders) ? { holders: d.holders } : {}),
    timedOut,
  };
}
