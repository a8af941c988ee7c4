/**
 * Lease keeping: once a seat is held, three timers keep it. The contact timer sends
 * heartbeats (an own online token), or checks out again (a stored token, a lost lease),
 * and retries with back-off when the server cannot be reached; the expiry timer acts
 * when the token (or the Offline Expiry Date) runs out; the guard checks the clock and
 * writes the trusted time every interval. A failure is a retry while the token is still
 * valid, and a violation once it is not; a refusal by the server is a lost seat. Every
 * timer is armed through the trusted time, so setting the clock back delays nothing.
 */
import { routes, type Grant, type LeaseTokenClaims } from '@floatd/protocol';
import type { TimerHandle } from './clock.js';
import type { FloatingLicenseError } from './errors.js';
import { backoff } from './retry.js';
import { asError, isCode, type Scheduler, type Session } from './session.js';
import type { RetryInfo, ViolationCode } from './types.js';

export class LeaseKeeper implements Scheduler {
  private contactTimer: TimerHandle | undefined;
  private expiryTimer: TimerHandle | undefined;
  private guardTimer: TimerHandle | undefined;
  private contactRunning: Promise<void> | undefined;
  private readonly guardMs: number;
  private readonly jitter: number;

  constructor(private readonly session: Session) {
    this.guardMs = (session.options.guardIntervalSeconds ?? 60) * 1000;
    this.jitter = Math.min(0.5, Math.max(0, session.options.heartbeatJitter ?? 0.1));
    session.keeper = this;
  }

  schedule(): void {
    const session = this.session;
    if (session.mode === 'online') this.scheduleContact(this.heartbeatDelay());
    else if (session.mode === 'offline') this.clearContact();
    this.scheduleExpiry();
    this.ensureGuard();
  }

  scheduleContact(ms: number): void {
    this.clearContact();
    this.contactTimer = this.session.time.arm(() => this.contactNow(), ms);
  }

  stopTimers(): void {
    const clock = this.session.clock;
    this.clearContact();
    if (this.expiryTimer !== undefined) clock.clearTimeout(this.expiryTimer);
    if (this.guardTimer !== undefined) clock.clearTimeout(this.guardTimer);
    this.expiryTimer = undefined;
    this.guardTimer = undefined;
  }

  private heartbeatDelay(): number {
    const seconds = this.session.heartbeatIntervalSeconds ?? 60;
    return Math.max(1000, Math.round(seconds * 1000 * (1 - this.jitter * this.session.random())));
  }

  private clearContact(): void {
    if (this.contactTimer !== undefined) this.session.clock.clearTimeout(this.contactTimer);
    this.contactTimer = undefined;
  }

  private scheduleExpiry(): void {
    const session = this.session;
    if (this.expiryTimer !== undefined) session.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    const at = session.held?.expiresAt;
    if (at === null || at === undefined) return;
    this.expiryTimer = session.time.arm(() => {
      this.expiryTimer = undefined;
      return this.onExpiry();
    }, at - session.time.effectiveNow());
  }

  private ensureGuard(): void {
    if (this.guardTimer !== undefined) return;
    this.guardTimer = this.session.time.arm(() => {
      this.guardTimer = undefined;
      return this.guard();
    }, this.guardMs);
  }

  private active(): boolean {
    const mode = this.session.mode;
    return mode === 'online' || mode === 'offline' || mode === 'cached' || mode === 'lost';
  }

  /** Every guard interval: the clock, the token's expiry (a wall-clock jump), and the trusted time on disk. */
  private async guard(): Promise<void> {
    const session = this.session;
    if (!this.active()) return;
    session.time.check();
    this.ensureGuard();
    await session.persistClock().catch(() => undefined);
    // the token ran out by the wall clock before its timer (the clock jumped forward): try the server now
    const held = session.held;
    if (
      held &&
      session.expired(held) &&
      !session.violations.has('SERVER_UNREACHABLE') &&
      !session.violations.has('OFFLINE_EXPIRED') &&
      !this.contactRunning
    )
      await this.onExpiry();
  }

  /** The token (or the Offline Expiry Date) ran out: try the server once more now; the violation comes if that fails. */
  private async onExpiry(): Promise<void> {
    const session = this.session;
    if (!this.active() || !session.held) return;
    if (!session.expired(session.held)) return this.scheduleExpiry();
    // A renewal can bring a token that is already over (the license ends within the
    // second): ask again a second later, not in a loop.
    if (session.time.effectiveNow() - session.lastGrantAt < 1000) return this.scheduleContact(1000);
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
    const session = this.session;
    if (!this.active()) return;
    session.time.check();
    await session.serial(async () => {
      if (!this.active()) return;
      const before = session.held;
      const hadViolation = [...session.violations.keys()].some((c) => c !== 'CLOCK_TAMPERED') || session.mode === 'lost';
      const operation: RetryInfo['operation'] = before?.own && session.mode !== 'cached' ? 'heartbeat' : 'reconnect';
      try {
        let grant: Grant | undefined;
        let claims: LeaseTokenClaims | undefined;
        if (before?.own && session.mode !== 'cached') {
          try {
            const ask = session.renewalAsk();
            const renewal = await session.api.call(routes.client.heartbeat, {
              params: { leaseId: before.claims.lse },
              body: { instanceId: session.instanceId, ...ask.body },
            });
            session.renewalAnswered(ask.offer, renewal);
            if (renewal.token === undefined) {
              // Renewed without a new token (an HMAC-signed answer under the session key): the held token stays.
              await session.adoptRenewal(renewal);
              session.clearViolations();
              session.emitSafe(hadViolation ? 'reacquired' : 'renewed', session.status());
              return;
            }
            grant = { ...renewal, token: renewal.token };
            claims = await session.verifyGrant(grant, { leaseId: before.claims.lse });
          } catch (err) {
            if (!isCode(err, 'LEASE_NOT_FOUND')) throw err;
            // The lease is gone (reclaimed, released): check out again at once.
            grant = undefined;
          }
        }
        let joined = false;
        if (!grant || !claims) {
          ({ grant, claims } = await session.requestCheckout());
          joined = true;
        }
        const sameLease = before !== undefined && before.claims.lse === claims.lse;
        await session.adopt(grant, claims);
        if (joined) await session.cleanupOrphans();
        session.clearViolations();
        session.emitSafe(hadViolation || !sameLease ? 'reacquired' : 'renewed', session.status());
      } catch (err) {
        await this.onContactFailure(asError(err), operation);
      }
    });
  }

  private async onContactFailure(e: FloatingLicenseError, operation: RetryInfo['operation']): Promise<void> {
    const session = this.session;
    if (!this.active()) return;
    await session.persistClock().catch(() => undefined);
    const held = session.held;
    const untrusted = e.code === 'INVALID_SIGNATURE' || e.code === 'TOKEN_MISMATCH';
    if (e.transient || untrusted) {
      // Unreachable (or not trustworthy): keep running on the token; report only once it has run out.
      if (!untrusted && e.code !== 'RATE_LIMITED') session.reachable = false;
      session.failures++;
      let delay = backoff(session.failures, session.retry, session.random);
      if (held && !session.expired(held) && session.heartbeatIntervalSeconds !== null)
        delay = Math.min(delay, session.heartbeatIntervalSeconds * 1000);
      // 429: the server is there and asks to wait; honour it (the token keeps the app running meanwhile)
      if (e.retryAfterMs !== undefined) delay = Math.max(delay, e.retryAfterMs);
      this.scheduleContact(delay);
      if (held && session.expired(held)) {
        if (held.claims.offline) {
          session.mode = 'lost';
          session.violate(
            'OFFLINE_EXPIRED',
            `the Offline Expiry Date passed and the server could not confirm the license: ${e.message}`,
            e.code,
          );
          await session.store.removeOffline().catch(() => undefined);
        } else {
          session.violate('SERVER_UNREACHABLE', `the lease token expired while the server was unreachable: ${e.message}`, e.code);
        }
      }
      session.emitSafe('retry', { operation, attempt: session.failures, delayMs: delay, error: e });
      return;
    }
    // The server refused: the seat is lost until it comes back.
    session.reachable = true;
    session.lastContactAt = session.clock.now();
    session.failures = 0;
    const code: ViolationCode =
      e.code === 'LICENSE_SUSPENDED'
        ? 'LICENSE_SUSPENDED'
        : e.code === 'LICENSE_EXPIRED' || e.code === 'TRIAL_EXPIRED'
          ? 'LICENSE_EXPIRED'
          : 'SEAT_LOST';
    // A suspension leaves the lease in place (heartbeats may resume); anything else means it is gone.
    if (code !== 'LICENSE_SUSPENDED' && code !== 'LICENSE_EXPIRED') {
      session.held = undefined;
      // the stored token names a lease the server no longer has: a restart without network must not run on it
      await session.store.removeLease().catch(() => undefined);
    }
    if (held?.claims.offline) await session.store.removeOffline().catch(() => undefined);
    session.mode = 'lost';
    if (this.expiryTimer !== undefined) session.clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    session.violate(code, e.message, e.code);
    this.scheduleContact(this.heartbeatDelay());
  }
}
