/**
 * What one `FloatingLicense` holds, shared by its parts: the seat (the token it runs on,
 * its state, the license as last seen), the violations it reports, and the steps every
 * part takes on a grant — verify it, adopt it (keep the token, register this instance,
 * schedule the lease keeping), check in the instances of dead processes. State-changing
 * work runs one at a time (`serial`): a heartbeat never races a check-in.
 */
import { sessionKeyId, sessionKeyOf, sharedSecret, x25519Pair, type X25519Pair } from '@floatd/protocol/sessionKeys';
import type { EventEmitter } from 'node:events';
import { hostname as osHostname, userInfo } from 'node:os';
import { machineEnvironment } from './environment.js';
import { routes, visibleText, type Grant, type LeaseTokenClaims, type LicenseSummary, type Renewal } from '@floatd/protocol';
import type { Clock } from './clock.js';
import { FloatingLicenseError, type FloatingLicenseErrorCode } from './errors.js';
import type { Api } from './http.js';
import { backoff, type RetryPolicy } from './retry.js';
import { heldFrom, type Held, type TokenStore } from './tokenStore.js';
import type { KeyTrust } from './trust.js';
import { TrustedTime } from './trustedTime.js';
import type { FloatingLicenseEvents, FloatingLicenseOptions, LicenseState, LicenseStatus, Violation, ViolationCode } from './types.js';

export const isCode = (err: unknown, ...codes: FloatingLicenseErrorCode[]) =>
  err instanceof FloatingLicenseError && codes.includes(err.code);

export function asError(err: unknown): FloatingLicenseError {
  if (err instanceof FloatingLicenseError) return err;
  return new FloatingLicenseError('BAD_RESPONSE', err instanceof Error ? err.message : String(err), { cause: err });
}

/** What the lease keeping offers the session (`leaseKeeper.ts`): timers follow the seat. */
export interface Scheduler {
  /** heartbeats (online), the expiry timer and the guard, after a grant */
  schedule(): void;
  /** the next contact with the server in `ms` */
  scheduleContact(ms: number): void;
  stopTimers(): void;
}

export class Session {
  /** Set at start (`FloatingLicense` init): the device fingerprint, the state directory's tokens, the trusted keys. */
  fingerprint: string | undefined;
  files: TokenStore | undefined;
  trust!: KeyTrust;
  /** Set once at construction, by the lease keeping. */
  keeper!: Scheduler;

  readonly time: TrustedTime;
  mode: LicenseState = 'idle';
  held: Held | undefined;
  license: LicenseSummary | null = null;
  instanceCount: number | null = null;
  shareGroup: string | null = null;
  /** the pools checkouts ask for (undefined: the server's default, the base pool) */
  features: string[] | undefined;
  heartbeatIntervalSeconds: number | null = null;
  lastContactAt: number | null = null;
  reachable = true;
  /** transient failures in a row (the back-off's attempt) */
  failures = 0;
  readonly violations = new Map<ViolationCode, Violation>();
  /** effective time of the last grant */
  lastGrantAt = 0;
  /** the lease this instance is registered with in the state directory */
  private registeredLease: string | undefined;
  private lock: Promise<unknown> = Promise.resolve();

  constructor(
    readonly options: FloatingLicenseOptions,
    readonly clock: Clock,
    readonly api: Api,
    readonly instanceId: string,
    readonly retry: RetryPolicy,
    readonly random: () => number,
    private readonly events: EventEmitter<FloatingLicenseEvents>,
  ) {
    this.features = options.features;
    this.time = new TrustedTime(clock, (options.clockToleranceSeconds ?? 600) * 1000, {
      tampered: (message) => this.violate('CLOCK_TAMPERED', message),
      clockOk: () => this.violations.delete('CLOCK_TAMPERED'),
    });
  }

  /** The state directory's files; only after start. */
  get store(): TokenStore {
    return this.files!;
  }

  assertOpen(): void {
    if (this.mode === 'closed') throw new FloatingLicenseError('CLOSED', 'the license object was closed');
  }

  /** Runs state-changing work one at a time (a heartbeat never races a check-in). */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Resolves when the work in progress is done. */
  idle(): Promise<void> {
    return this.lock.then(
      () => undefined,
      () => undefined,
    );
  }

  emitSafe<K extends keyof FloatingLicenseEvents>(event: K, ...args: FloatingLicenseEvents[K]): void {
    try {
      (this.events.emit as (e: string, ...a: unknown[]) => boolean).call(this.events, event, ...args);
    } catch (err) {
      // a throwing listener is the application's bug: surface it like any uncaught exception, not inside the SDK's state machine
      process.nextTick(() => {
        throw err;
      });
    }
  }

  violate(code: ViolationCode, message: string, cause?: FloatingLicenseErrorCode): void {
    if (this.violations.has(code)) return;
    const v: Violation = { code, message, at: new Date(this.clock.now()), ...(cause ? { cause } : {}) };
    this.violations.set(code, v);
    this.emitSafe('violation', v);
  }

  /** The seat is back: every violation but a wrong clock is over. */
  clearViolations(): void {
    for (const code of [...this.violations.keys()]) if (code !== 'CLOCK_TAMPERED') this.violations.delete(code);
  }

  /** The trusted time to disk (nothing before start). */
  persistClock(): Promise<void> {
    return this.files ? this.files.persistClock() : Promise.resolve();
  }

  /** Whether a token ran out by the trusted time (a token is held only after start). */
  expired(held: Held): boolean {
    return this.store.expired(held);
  }

  isValid(): boolean {
    const held = this.held;
    return !!held && (this.mode === 'online' || this.mode === 'offline' || this.mode === 'cached') && !this.expired(held);
  }

  status(): LicenseStatus {
    const held = this.held;
    const date = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms));
    return {
      state: this.mode,
      valid: this.isValid(),
      leaseId: held?.claims.lse ?? null,
      deviceId: held?.claims.dev ?? null,
      instanceId: this.instanceId,
      fingerprint: this.fingerprint ?? null,
      leaseExpiresAt: date(held?.expiresAt),
      offline: held?.claims.offline ?? false,
      offlineExpiresAt: date(held?.offlineExpiresAt),
      lastContactAt: date(this.lastContactAt),
      serverReachable: this.reachable,
      seatsUsed: this.license?.seatsUsed ?? null,
      seatsTotal: this.license?.seatsTotal ?? null,
      instances: this.instanceCount,
      shareGroup: this.shareGroup,
      overdraft: held?.claims.ovd === true,
      features: held ? (held.claims.fts ?? ['base']) : [],
      othersWaiting: this.license?.waiting ?? null,
      heartbeatIntervalSeconds: this.heartbeatIntervalSeconds,
      violations: [...this.violations.keys()],
      license: this.license,
      token: held?.token ?? null,
    };
  }

  /** Who asks: the device, this instance, and (escaped) host, user and application version. */
  meta() {
    const host = this.options.hostname === undefined ? osHostname() : this.options.hostname;
    const display = this.options.display === undefined ? process.env.DISPLAY : this.options.display;
    let user = this.options.user;
    if (user === undefined) {
      try {
        user = userInfo().username;
      } catch {
        user = null;
      }
    }
    return {
      fingerprint: this.fingerprint!,
      instanceId: this.instanceId,
      // The server refuses control characters and bidi overrides in identity text (protocol/text.ts); an odd
      // host or user name from the OS is sent with them escaped rather than cost the checkout.
      ...(host ? { hostname: visibleText(host).slice(0, 255) } : {}),
      ...(user ? { user: visibleText(user).slice(0, 255) } : {}),
      ...(this.options.appVersion ? { appVersion: visibleText(this.options.appVersion).slice(0, 64) } : {}),
      ...(display ? { display: visibleText(display).slice(0, 255) } : {}),
      ...(this.options.shareKey ? { shareKey: visibleText(this.options.shareKey).slice(0, 255) } : {}),
      ...(this.features ? { features: this.features } : {}),
      ...(this.options.reportEnvironment === false ? {} : machineEnvironment()),
    };
  }

  // -------------------------------------------------------------------------
  // grants and tokens

  /** `wait`: refused for want of a seat, wait in the pool's queue (the server keeps the place while it is asked again in time). */
  async requestCheckout(wait?: { timeoutSeconds: number }): Promise<{ grant: Grant; claims: LeaseTokenClaims; created: boolean }> {
    const offer = x25519Pair();
    const answer = await this.api.request(routes.client.checkout, {
      body: { ...this.meta(), ...(wait ? { wait } : {}), session: { x25519: offer.x25519 } },
    });
    const claims = await this.verifyGrant(answer.body, {});
    this.takeSession(offer, answer.body);
    return { grant: answer.body, claims, created: answer.status === 201 };
  }

  // -------------------------------------------------------------------------
  // session keys (issue #17): the checkout agrees one with the server; the answers on the use are then signed with
  // HMAC-SHA256 under it, and heartbeats carry no new token until the held one runs low.

  /** Whether the server agreed a session key at the last checkout (a server that predates them did not). */
  sessionCapable = false;
  /** The server answered a renewal with Ed25519 although a key was agreed: it lost the key; the next heartbeat offers a new one. */
  private rekey = false;

  /** Takes the session key a (signature-checked) answer agreed, or notes that the server agrees none. */
  takeSession(offer: X25519Pair, answer: { lease: { id: string }; session?: { x25519: string } | undefined }): void {
    if (!answer.session) {
      this.sessionCapable = false;
      this.api.sessionKey = undefined;
      return;
    }
    const key = agreedKey(offer, answer.session.x25519, answer.lease.id);
    this.api.sessionKey = { keyid: sessionKeyId(key), key };
    this.sessionCapable = true;
    this.rekey = false;
  }

  /**
   * What a heartbeat asks beside the renewal, and the offer it makes: a new token when the held one has less than
   * a third of the lease TTL (or two heartbeat intervals) left; a new session key when the server lost ours.
   */
  renewalAsk(): { body: { renewToken?: true; session?: { x25519: string } }; offer?: X25519Pair } {
    if (!this.sessionCapable) return { body: {} };
    const body: { renewToken?: true; session?: { x25519: string } } = {};
    let offer: X25519Pair | undefined;
    if (!this.api.sessionKey || this.rekey) {
      offer = x25519Pair();
      body.session = { x25519: offer.x25519 };
    }
    const until = this.held?.tokenExpiresAt ?? null;
    const ttlMs = (this.license?.leaseTtlSeconds ?? 0) * 1000;
    if (until !== null && until - this.time.effectiveNow() < Math.max(ttlMs / 3, 2 * (this.heartbeatIntervalSeconds ?? 0) * 1000))
      body.renewToken = true;
    return offer ? { body, offer } : { body };
  }

  /** After a renewal's answer (its signature checked): a new key it agreed, or a lost one noticed. */
  renewalAnswered(offer: X25519Pair | undefined, answer: Renewal): void {
    if (offer && answer.session) this.takeSession(offer, answer);
    else if (this.sessionCapable && this.api.lastSignedWith === 'ed25519') this.rekey = true;
  }

  /**
   * Takes a renewal that came without a token: believed on its answer's signature (HMAC-SHA256 under the session
   * key, for this lease), it extends the held lease; the token stays the one held.
   */
  async adoptRenewal(r: Renewal): Promise<void> {
    const held = this.held;
    if (!held || r.lease.id !== held.claims.lse || r.lease.instanceId !== this.instanceId)
      throw new FloatingLicenseError('TOKEN_MISMATCH', 'the renewal is for another lease or use');
    const serverTime = Date.parse(r.serverTime);
    this.time.observeServerTime(serverTime);
    const receivedAt = this.time.effectiveNow();
    const ends = [r.lease.expiresAt, r.license.expiresAt].filter((t): t is string => t !== null).map((t) => Date.parse(t));
    this.held = { ...held, expiresAt: ends.length ? receivedAt + (Math.min(...ends) - serverTime) : null };
    this.mode = r.lease.offline ? 'offline' : 'online';
    this.took(r, receivedAt, r.heartbeatIntervalSeconds);
    this.keeper.schedule();
    await this.persistClock();
  }

  /** The held use needs these pools now (added ones all or none): the server answers with a token that lists them. */
  async changeFeatures(features: readonly string[]): Promise<void> {
    const held = this.held;
    if (!held || held.claims.offline) throw new FloatingLicenseError('NOT_CHECKED_OUT', 'no online seat is held');
    const grant = await this.api.call(routes.client.changeFeatures, {
      params: { leaseId: held.claims.lse },
      body: { instanceId: this.instanceId, features: [...features] },
    });
    const claims = await this.verifyGrant(grant, { leaseId: held.claims.lse });
    this.features = [...features];
    await this.adopt(grant, claims);
  }

  async verifyGrant(grant: Grant, expect: { leaseId?: string; offline?: boolean }): Promise<LeaseTokenClaims> {
    if (!grant || typeof grant !== 'object' || typeof grant.token !== 'string' || !grant.lease || typeof grant.lease.id !== 'string') {
      throw new FloatingLicenseError('BAD_RESPONSE', 'the grant is not a floatd grant');
    }
    const claims = await this.trust.verify(grant.token, {
      fingerprint: this.fingerprint!,
      instanceId: this.instanceId,
      leaseId: expect.leaseId ?? grant.lease.id,
      ...(expect.offline !== undefined ? { offline: expect.offline } : {}),
    });
    if (claims.lse !== grant.lease.id) throw new FloatingLicenseError('TOKEN_MISMATCH', 'the grant and its token name different leases');
    return claims;
  }

  /** Takes a verified grant: keeps its token, persists it, schedules heartbeats and the expiry. */
  async adopt(grant: Grant, claims: LeaseTokenClaims): Promise<void> {
    this.time.observeServerTime(claims.iat * 1000);
    const receivedAt = this.time.effectiveNow();
    this.held = heldFrom(grant.token, claims, receivedAt, this.instanceId);
    this.mode = claims.offline ? 'offline' : 'online';
    this.took(grant, receivedAt, claims.hbi);
    await this.store.keep(grant.token, claims, receivedAt);
    if (this.registeredLease !== claims.lse) {
      await this.store.state.registerInstance({
        instanceId: this.instanceId,
        pid: process.pid,
        leaseId: claims.lse,
        startedAt: this.clock.now(),
      });
      this.registeredLease = claims.lse;
    }
    this.keeper.schedule();
    await this.persistClock();
  }

  /** What a grant or a renewal tells beside its token: the license, the lease's uses, the heartbeat interval. */
  private took(grant: Pick<Grant, 'license' | 'lease'>, receivedAt: number, heartbeatIntervalSeconds: number): void {
    this.lastGrantAt = receivedAt;
    const before = this.license?.waiting ?? 0;
    this.license = grant.license;
    const waiting = grant.license.waiting ?? 0;
    if (waiting !== before) this.emitSafe('othersWaiting', { waiting });
    this.instanceCount = grant.lease.instances;
    this.shareGroup = grant.lease.shareGroup ?? null;
    this.heartbeatIntervalSeconds = heartbeatIntervalSeconds;
    this.lastContactAt = this.clock.now();
    this.reachable = true;
    this.failures = 0;
  }

  /** Runs on a token an earlier run stored (offline lease, or the last online lease while unreachable). */
  adoptStored(stored: { held: Held }, mode: 'offline' | 'cached'): void {
    this.held = stored.held;
    this.mode = mode;
    this.heartbeatIntervalSeconds = stored.held.claims.hbi;
    this.keeper.schedule();
    if (mode === 'cached') this.keeper.scheduleContact(backoff(1, this.retry, this.random));
  }

  /** This instance is no longer registered with a lease in the state directory. */
  unregistered(): void {
    this.registeredLease = undefined;
  }

  /** Checks in instances this state directory started whose process is gone (crashes, closed laptops). */
  async cleanupOrphans(): Promise<void> {
    if (this.options.cleanupOrphans === false) return;
    const state = this.store.state;
    for (const e of await state.instances()) {
      if (e.alive || e.instanceId === this.instanceId) continue;
      if (!e.leaseId) {
        await state.unregisterInstance(e.instanceId);
        continue;
      }
      try {
        const r = await this.api.call(routes.client.checkin, { params: { leaseId: e.leaseId }, body: { instanceId: e.instanceId } });
        if (e.leaseId === this.held?.claims.lse) this.instanceCount = r.instances;
        await state.unregisterInstance(e.instanceId);
      } catch (err) {
        if (isCode(err, 'LEASE_NOT_FOUND')) await state.unregisterInstance(e.instanceId);
        // anything else: try again on the next grant
      }
    }
  }
}

/** The use's session key from the server's half (`SESSION_KDF`, salted with the lease id). */
function agreedKey(offer: X25519Pair, serverX25519: string, leaseId: string): Buffer {
  const shared = sharedSecret(offer.privateKey, serverX25519);
  if (!shared) throw new FloatingLicenseError('BAD_RESPONSE', "the server's session key is not a usable X25519 public key");
  return sessionKeyOf(shared, leaseId);
}
