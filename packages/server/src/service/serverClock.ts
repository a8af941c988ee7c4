/**
 * Server clock rollback protection, in both roles (hosted and on-premise).
 *
 * The server keeps the latest time it trusted: a high-water mark of its own
 * clock, raised by every grant and by a periodic tick, and by the issue time of
 * a vendor-signed license file. It lives in memory (so the hot path costs two
 * comparisons and no database write) and is persisted by the tick, never
 * lowered (the write is a locked read-compare-write; in a cluster every node
 * merges the others' mark). On-premise the stored record is signed with the
 * server's identity key, so it cannot be edited down in the database.
 *
 * When the system clock reads earlier than the mark minus the tolerance, new
 * grants are refused with `SERVER_CLOCK_ROLLBACK` until the clock is corrected.
 * Heartbeats and check-ins still work: held leases live until their expiry.
 * Entering and leaving the state is logged, audited and exported as metrics.
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import type { DomainError } from '../domain/result.js';
import type { Store } from '../store/port.js';
import type { Metrics } from './metrics.js';
import { signDocument, verifyDocument, type Signer } from '../keys/documents.js';

export const TRUSTED_TIME_KV = 'server/trusted-time';
const NAME = TRUSTED_TIME_KV;
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 900;

export interface ClockGuardOptions {
  toleranceSeconds: number;
  /** on-premise: sign the stored mark with this key and refuse a record that does not verify */
  signer?: { signer: Signer; publicKey: KeyObject } | undefined;
  logger?: Logger | false | undefined;
}

export interface ClockState {
  trustedTime: number;
  serverTime: number;
  rolledBack: boolean;
  /** on-premise: the stored mark failed its signature check (grants refused until a new license file is loaded) */
  tampered: boolean;
}

export class ServerClockGuard {
  private trusted = 0;
  private persisted = 0;
  /** the mark the previous run left (0 when none or when it failed its check): the server was up until at least then */
  storedAtStart = 0;
  private rolledBack = false;
  private tampered = false;
  private readonly toleranceMs: number;
  private pendingAudit: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly opts: ClockGuardOptions,
  ) {
    this.toleranceMs = opts.toleranceSeconds * 1000;
    metrics.clockRollback.set(0);
  }

  /**
   * Reads the stored mark and checks the clock against it. `floor`: a time the mark is
   * at least (the sealed state's trusted time, the newest time recorded in the data), so
   * deleting the record gives no time back.
   */
  async start(floor = 0): Promise<void> {
    const stored = await this.readStored();
    if (stored === 'tampered') this.markTampered();
    else {
      this.storedAtStart = stored;
      this.persisted = stored;
      this.trusted = Math.max(this.trusted, stored, floor);
    }
    await this.tick();
  }

  /**
   * The hot-path check before a new grant: refuses while the clock is set back,
   * otherwise raises the in-memory mark to `now`. No I/O.
   */
  refusal(now: number): DomainError | undefined {
    const refused = this.evaluate(now);
    if (refused) this.metrics.clockRefusals.inc();
    return refused;
  }

  private evaluate(now: number): DomainError | undefined {
    if (this.tampered) {
      return {
        code: 'SERVER_CLOCK_ROLLBACK',
        message: 'the stored trusted time of this server failed its signature check; load a new license file from the vendor to reset it',
        details: { trustedTime: null, serverTime: new Date(now).toISOString() },
      };
    }
    if (now < this.trusted - this.toleranceMs) {
      this.enter(now);
      return {
        code: 'SERVER_CLOCK_ROLLBACK',
        message: `the server clock (${new Date(now).toISOString()}) is behind the latest time this server trusted (${new Date(this.trusted).toISOString()}); new seats are refused until the clock is corrected`,
        details: { trustedTime: new Date(this.trusted).toISOString(), serverTime: new Date(now).toISOString() },
      };
    }
    if (this.rolledBack) this.leave(now);
    if (now > this.trusted) this.trusted = now;
    return undefined;
  }

  /**
   * The periodic step (and the last one at shutdown): merges the mark other
   * nodes stored, checks the clock, and persists the mark if it went up.
   */
  async tick(): Promise<void> {
    const stored = await this.readStored();
    if (stored === 'tampered') {
      if (!this.tampered) this.markTampered();
    } else if (stored > this.trusted) {
      this.trusted = stored;
    }
    this.evaluate(this.clock.now());
    await this.pendingAudit;
    this.metrics.trustedTime.set(Math.floor(this.trusted / 1000));
    if (!this.tampered && this.trusted > this.persisted) await this.persist(this.trusted);
  }

  /**
   * A time vouched for by the vendor (a license file's issue time): the mark goes
   * at least that high, less the tolerance. `reset` also clears a failed signature check.
   */
  async vouch(issuedAt: number, reset = false): Promise<void> {
    // The vendor's clock may run a little ahead of this one: it vouches for its time less the tolerance.
    const at = issuedAt - this.toleranceMs;
    if (reset && this.tampered) {
      this.tampered = false;
      this.trusted = at;
      this.persisted = 0;
      await this.persist(at, true);
      this.opts.logger &&
        this.opts.logger.warn({ trustedTime: new Date(at).toISOString() }, 'trusted time reset from a vendor-signed license file');
    } else if (at > this.trusted) {
      this.trusted = at;
    }
    await this.tick();
  }

  state(): ClockState {
    return { trustedTime: this.trusted, serverTime: this.clock.now(), rolledBack: this.rolledBack, tampered: this.tampered };
  }

  // -------------------------------------------------------------------------

  private enter(now: number): void {
    if (this.rolledBack) return;
    this.rolledBack = true;
    this.metrics.clockRollback.set(1);
    const behindSeconds = Math.round((this.trusted - now) / 1000);
    this.opts.logger &&
      this.opts.logger.error(
        { serverTime: new Date(now).toISOString(), trustedTime: new Date(this.trusted).toISOString(), behindSeconds },
        'server clock rollback: the system clock is behind the latest trusted time; new grants are refused until it is corrected',
      );
    this.audit('server-clock.rollback', now, { trustedTime: new Date(this.trusted).toISOString(), behindSeconds });
  }

  private leave(now: number): void {
    this.rolledBack = false;
    this.metrics.clockRollback.set(0);
    this.opts.logger && this.opts.logger.warn({ serverTime: new Date(now).toISOString() }, 'server clock corrected: grants resume');
    this.audit('server-clock.recovered', now, {});
  }

  private markTampered(): void {
    this.tampered = true;
    this.metrics.clockRollback.set(1);
    this.opts.logger &&
      this.opts.logger.error(
        'the stored trusted time fails its signature check (edited database?): new grants are refused until a new license file is loaded',
      );
  }

  /** Audited out of band: the grant path never waits for it. */
  private audit(type: 'server-clock.rollback' | 'server-clock.recovered', at: number, data: Record<string, unknown>): void {
    this.pendingAudit = this.store
      .transaction((tx) =>
        tx.apply([
          { type: 'audit', entry: { at, type, actor: 'server', licenseId: null, deviceId: null, leaseId: null, reason: null, data } },
        ]),
      )
      .catch((err: unknown) => this.opts.logger && this.opts.logger.error({ err }, 'could not audit a server clock change'));
  }

  private encode(at: number): string {
    const s = this.opts.signer;
    // `sealed`: written by a server that also keeps the sealed state (onprem/sealedState.ts), so a record without it is from before.
    return JSON.stringify(s ? signDocument('floatd-trusted-time/1', { at, sealed: true }, s.signer) : { at });
  }

  private decode(value: string): number | 'tampered' {
    try {
      const doc = JSON.parse(value) as unknown;
      const s = this.opts.signer;
      if (!s) {
        const at = (doc as { at?: unknown }).at;
        return typeof at === 'number' ? at : 0;
      }
      const v = verifyDocument<{ at: unknown }>('floatd-trusted-time/1', doc, [s.publicKey]);
      return v.ok && typeof v.payload.at === 'number' ? v.payload.at : 'tampered';
    } catch {
      return this.opts.signer ? 'tampered' : 0;
    }
  }

  private async readStored(): Promise<number | 'tampered'> {
    const r = await this.store.getKv(NAME);
    return r ? this.decode(r.value) : 0;
  }

  /** Never lowers the stored mark (another node may have stored a higher one), unless resetting. */
  private async persist(at: number, reset = false): Promise<void> {
    const now = this.clock.now();
    await this.store.transaction(async (tx) => {
      const current = await tx.lockKv(NAME);
      const stored = current ? this.decode(current.value) : 0;
      if (!reset && stored !== 'tampered' && stored >= at) return;
      await tx.apply([{ type: 'kv.put', name: NAME, value: this.encode(at), at: now }]);
    });
    this.persisted = at;
  }
}
