/**
 * The SDK's public types: the options of `FloatingLicense`, what its calls resolve
 * with, its states and its events. No behaviour lives here.
 */
import type { LicenseSummary } from '@floatd/protocol';
import type { Clock } from './clock.js';
import type { FloatingLicenseError, FloatingLicenseErrorCode } from './errors.js';
import type { FetchLike } from './http.js';
import type { RetryPolicy } from './retry.js';
import type { ServerPublicKeys } from './trust.js';

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
  /** The display or terminal session sent to the server, for a sharing rule by display (default `$DISPLAY`; `null` sends none). */
  display?: string | null;
  /**
   * The value of the license's `key` sharing attribute: uses that send the same share key share a seat under a rule by
   * key (a project, a session: any string your application chooses). Default: none.
   */
  shareKey?: string;
  /**
   * Report whether this process runs in a virtual machine or a container, and the boot id (default true): the server's
   * VM and clone policies read them. `false` sends none of the three.
   */
  reportEnvironment?: boolean;
  /**
   * The license's pools this application needs: `base` (the license's own seats) and feature names, granted all or
   * none (default: the base pool). `checkout({ features })` and `setFeatures()` change them.
   */
  features?: string[];
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
export type ViolationCode =
  | 'SEAT_LOST'
  | 'LICENSE_EXPIRED'
  | 'LICENSE_SUSPENDED'
  | 'SERVER_UNREACHABLE'
  | 'OFFLINE_EXPIRED'
  | 'CLOCK_TAMPERED';

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
  /** the share group whose uses hold the seat (e.g. `device=dev_…`, `user=alice`), as of the last answer */
  shareGroup: string | null;
  /** the seat was granted beyond the license's count (overdraft) */
  overdraft: boolean;
  /** the pools granted to this instance (`base`, feature names), as the lease token says; [] without a seat */
  features: string[];
  /** checkouts waiting for a seat of this license, as of the last answer */
  othersWaiting: number | null;
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
  /** no seat of the base pool, or (`NO_FEATURE_SEATS_AVAILABLE`) of a feature asked for, is free */
  code: 'NO_SEATS_AVAILABLE' | 'NO_FEATURE_SEATS_AVAILABLE';
  /** the full feature pool, for `NO_FEATURE_SEATS_AVAILABLE` */
  feature?: string;
  /**
   * With `wait`: this checkout's place in the pool's first-come-first-served queue (the server holds a freed seat for
   * the head of the queue; the SDK asks again within `pollWithinSeconds` to keep the place).
   */
  queue?: { pool: string; position: number; length: number; pollWithinSeconds: number };
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
  /** The pools to check out (`base` and feature names; default the `features` option, else the base pool). */
  features?: string[];
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
  /** No seat free; `checkout({ wait: true })` asks again after `retryInMs` (its place in the queue: `info.queue`). */
  waiting: [info: WaitingInfo];
  /** How many checkouts wait for a seat of this license changed (heartbeat and grant answers say): ask an idle user to give the seat back. */
  othersWaiting: [info: { waiting: number }];
}
