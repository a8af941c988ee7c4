/**
 * Token storage: the lease tokens and the trusted time this device keeps in its state
 * directory (`state.ts` seals the files). `lease.json` is the last online token (a
 * restart without network runs on it), `offline.json` a borrowed seat's token (with a
 * copy of the trusted time, so deleting `clock.json` gives nothing back), `clock.json`
 * the trusted time. A stored token is believed only after its signature verifies with
 * the pinned keys, and only until it expires by the trusted time. The trusted time is
 * also written when the process exits, whatever the application did.
 */
import type { LeaseTokenClaims } from '@floatd/protocol';
import { FloatingLicenseError } from './errors.js';
import type { StateDir } from './state.js';
import type { KeyTrust } from './trust.js';
import type { TrustedTime } from './trustedTime.js';

export const LEASE_FILE = 'lease.json';
export const OFFLINE_FILE = 'offline.json';
const CLOCK_FILE = 'clock.json';

/** A lease token this process runs on. */
export interface Held {
  token: string;
  claims: LeaseTokenClaims;
  /** this instance's own token (heartbeats possible) or an earlier run's (stored) */
  own: boolean;
  /** local effective time the lease ends (renewals without a new token extend it); null = no expiry */
  expiresAt: number | null;
  /** local effective time the held token itself expires; null = no expiry */
  tokenExpiresAt: number | null;
  /** local effective Offline Expiry Date */
  offlineExpiresAt: number | null;
}

interface StoredToken {
  token: string;
  receivedAt: number;
  trustedAt?: number;
}

/** A token's times moved onto the local effective clock, from when it was received. */
export function heldFrom(token: string, claims: LeaseTokenClaims, receivedAt: number, instanceId: string): Held {
  return {
    token,
    claims,
    own: claims.ins === instanceId,
    expiresAt: claims.exp !== undefined ? receivedAt + (claims.exp - claims.iat) * 1000 : null,
    tokenExpiresAt: claims.exp !== undefined ? receivedAt + (claims.exp - claims.iat) * 1000 : null,
    offlineExpiresAt: claims.oed !== undefined ? receivedAt + (claims.oed - claims.iat) * 1000 : null,
  };
}

/**
 * The trusted time is written when the process exits, whatever the application
 * did (no check-in, no `close()`): one `exit` listener for every live store,
 * held weakly so an object the application dropped is not kept alive by it.
 */
const liveAtExit = new Set<WeakRef<TokenStore>>();
let exitListener = false;

function persistAllAtExit(): void {
  for (const ref of liveAtExit) ref.deref()?.persistAtExit();
}

export class TokenStore {
  private persistChain: Promise<void> = Promise.resolve();
  private fileOpsPending = 0;
  private exitRef: WeakRef<TokenStore> | undefined;

  constructor(
    readonly state: StateDir,
    private readonly time: TrustedTime,
    private readonly trust: KeyTrust,
    private readonly fingerprint: string,
    private readonly instanceId: string,
  ) {}

  /** The latest trusted time earlier runs left: the sealed record (or that it was edited), and the copy beside an offline token. */
  async storedTrustedTime(): Promise<{ t: number; tampered?: string }> {
    let t = 0;
    const rec = await this.state.readSealed<{ t: number }>(CLOCK_FILE);
    if (rec.kind === 'ok' && typeof rec.data.t === 'number') t = rec.data.t;
    const off = await this.state.readSealed<StoredToken>(OFFLINE_FILE);
    if (off.kind === 'ok' && typeof off.data.trustedAt === 'number') t = Math.max(t, off.data.trustedAt);
    return rec.kind === 'tampered' ? { t, tampered: rec.reason } : { t };
  }

  /** Writes the trusted time at process exit from now on (until `stopAtExit`). */
  persistOnExit(): void {
    this.exitRef = new WeakRef(this);
    for (const r of liveAtExit) if (r.deref() === undefined) liveAtExit.delete(r);
    liveAtExit.add(this.exitRef);
    if (!exitListener) {
      exitListener = true;
      process.on('exit', persistAllAtExit);
    }
  }

  stopAtExit(): void {
    if (this.exitRef) liveAtExit.delete(this.exitRef);
    this.exitRef = undefined;
  }

  /** Keeps a verified grant's token: offline in `offline.json` (the online one is superseded), online in `lease.json`. */
  async keep(token: string, claims: LeaseTokenClaims, receivedAt: number): Promise<void> {
    const stored: StoredToken = { token, receivedAt, trustedAt: Math.floor(this.time.now()) };
    if (claims.offline) {
      await this.fileOp(() => this.state.writeSealed(OFFLINE_FILE, stored));
      // the online token of this lease is superseded: it must not outlive the Offline Expiry Date
      await this.state.remove(LEASE_FILE);
    } else {
      await this.state.writeSealed(LEASE_FILE, stored);
      await this.fileOp(() => this.state.remove(OFFLINE_FILE));
    }
  }

  /** Forgets the online token (the lease is gone, or checked in). */
  removeLease(): Promise<void> {
    return this.state.remove(LEASE_FILE);
  }

  /** Forgets the offline token (returned, or past its Offline Expiry Date), in turn with the trusted time's writes. */
  removeOffline(): Promise<void> {
    return this.fileOp(() => this.state.remove(OFFLINE_FILE));
  }

  /** A stored token, verified with the pinned keys (no network); undefined when missing or expired. */
  async load(name: typeof LEASE_FILE | typeof OFFLINE_FILE): Promise<{ held: Held } | undefined> {
    const r = await this.state.readSealed<StoredToken>(name);
    if (r.kind === 'missing') return undefined;
    if (r.kind === 'tampered') {
      await this.fileOp(() => this.state.remove(name));
      throw new FloatingLicenseError('INVALID_SIGNATURE', `the stored lease token ${name} was tampered with (${r.reason})`);
    }
    const offline = name === OFFLINE_FILE;
    let claims: LeaseTokenClaims;
    try {
      claims = await this.trust.verify(r.data.token, { fingerprint: this.fingerprint, offline }, false);
    } catch (err) {
      await this.fileOp(() => this.state.remove(name));
      throw err;
    }
    this.time.observeServerTime(claims.iat * 1000);
    const held = heldFrom(r.data.token, claims, Math.min(r.data.receivedAt, this.time.effectiveNow()), this.instanceId);
    if (this.expired(held)) {
      await this.fileOp(() => this.state.remove(name));
      return undefined;
    }
    return { held };
  }

  /** Whether a token ran out by the trusted (effective) time. */
  expired(held: Held): boolean {
    return held.expiresAt !== null && this.time.effectiveNow() >= held.expiresAt;
  }

  /**
   * Writes the trusted time to `clock.json`, and beside a stored offline token (so
   * deleting `clock.json` gives nothing back): at start, at every check (guard,
   * heartbeat, failed contact), at each grant, check-in, close and process exit.
   * What another run of this state directory wrote is never lowered: the larger
   * value wins, and this object continues from it. Writes run one at a time.
   */
  persistClock(): Promise<void> {
    return this.fileOp(async () => {
      const rec = await this.state.readSealed<{ t: number }>(CLOCK_FILE);
      const t = this.trustedToWrite(rec);
      await this.state.writeSealed(CLOCK_FILE, { t });
      const off = await this.state.readSealed<StoredToken>(OFFLINE_FILE);
      if (off.kind === 'ok' && !((off.data.trustedAt ?? 0) >= t)) await this.state.writeSealed(OFFLINE_FILE, { ...off.data, trustedAt: t });
    });
  }

  /** {@link persistClock} from a process `exit` handler: synchronous, best effort. */
  persistAtExit(): void {
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

  /** The value to store: this object's trusted time, the wall clock if later, and never less than `rec`. */
  private trustedToWrite(rec: { kind: string; data?: { t?: unknown } }): number {
    // a wall clock ahead of the trusted time is a reading like any other (one far behind is not)
    this.time.raise(this.time.effectiveNow());
    if (rec.kind === 'ok' && typeof rec.data?.t === 'number' && Number.isFinite(rec.data.t)) this.time.raise(rec.data.t);
    return Math.floor(this.time.now());
  }
}
