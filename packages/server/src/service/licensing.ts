/**
 * Client-facing seat operations. Each one is a single store transaction:
 * lock the license, read what the decision needs, decide (pure domain), write
 * the decision's effects. Tokens are signed after commit, outside the lock.
 */
import {
  BASE_POOL,
  RELEASE_REASONS,
  type CheckoutRequest,
  type FeaturesRequest,
  type HeartbeatRequest,
  type OfflineCheckoutRequest,
  type SyncRequest,
} from '@floatd/protocol';
import { fingerprintHash } from '@floatd/protocol/fingerprint';
import type { Clock } from '../domain/clock.js';
import { invalidKey, tokenExpiry } from '../domain/policy.js';
import { ok, type DomainError, type Result } from '../domain/result.js';
import {
  decideCheckin,
  decideCheckout,
  decideFeatures,
  decideHeartbeat,
  decideOfflineCheckout,
  decideReturnOffline,
  decideSync,
  isDead,
  type CheckinOutcome,
  type CheckoutCommand,
  type CheckoutState,
  type Decision,
  type Granted,
  type LeaseState,
  type SyncOutcome,
} from '../domain/seats.js';
import { countsSeats, groupsNamed, isOpen } from '../domain/access.js';
import { groupNamesDevice, shareGroupOf, useMeta } from '../domain/sharing.js';
import { featureGroupsNamed, featuresGuarded, longestTtlSeconds, poolsOf } from '../domain/features.js';
import { loadGroups } from './catalogue.js';
import type { License } from '../domain/types.js';
import type { Effect } from '../domain/effects.js';
import { newId } from '../ids.js';
import type { KeyRing } from '../keys/ring.js';
import type { ReadAhead, Store, StoreTx } from '../store/port.js';
import type { Metrics } from './metrics.js';
import type { RenewalBuffer } from './renewals.js';
import { countedLicense } from './seatCounters.js';
import { SessionKeys, type SessionAgreement, type SessionKey } from './sessions.js';

/** How many dead leases a full checkout frees at most in its own transaction (the reclaimer does the rest). */
const DEAD_LEASES_PER_CHECKOUT = 32;
const ACTOR = 'client';
/** Refusals by a license's site policy, counted apart from denials for want of a seat. */
const POLICY_REFUSALS = new Set([
  'CHECKOUT_NOT_ALLOWED',
  'SEAT_LIMIT_REACHED',
  'RESERVED_FOR_OTHERS',
  'DEVICE_CLONE_REFUSED',
  'VM_NOT_ALLOWED',
  'NO_FEATURE_SEATS_AVAILABLE',
]);
/** Beyond the batch interval, how much longer a batched renewal's lease must stay alive as stored (clock skew between nodes, a slow batch). */
export const RENEWAL_MARGIN_MS = 10_000;

export interface SignedGrant {
  granted: Granted;
  /** absent from a renewal the client did not ask a token for (RFC 9421 answers) */
  token: string | undefined;
  serverTime: number;
  /** the server's half of a session-key exchange the request offered */
  session?: { x25519: string };
  /** the use's session key, when the request named it (`Accept-Signature` keyid): the answer is signed with it (HMAC-SHA256) */
  answerKey?: SessionKey;
}

/** What a heartbeat asks beside the renewal. */
export interface RenewalAsk {
  /** answer with a new lease token (one comes anyway whenever the answer is not HMAC-signed: no key named, or another's) */
  token: boolean;
  /** the session key the client holds (`Accept-Signature` keyid): the answer is HMAC-signed when it is the use's */
  keyid?: string | undefined;
  /** a new session-key exchange (the client lost its key) */
  session?: HeartbeatRequest['session'];
}

/**
 * What stands between a license record and a seat decision besides the domain:
 * on-premise, the vendor-signed license file (seats, model, expiry and offline
 * limits come from it, not from the database row); in both roles, the server
 * clock rollback check. Both answer from memory: no I/O on the hot path.
 */
export interface SeatGate {
  /** The license as the trusted source says it is, or why it may not be used. */
  admit?(license: License): Result<License>;
  /** Why no new seat may be granted now (the server clock is set back, or too far from the cluster's), if so. */
  grantRefusal?(now: number): DomainError | undefined;
  /** Why this node may not renew a lease now (its clock is too far from the cluster's: its expiries and tokens would be wrong), if so. */
  renewRefusal?(): DomainError | undefined;
  /** Leases of a license with this TTL that expired at or before the answer may be freed at `now` (`SilenceWatch.reclaimCutoff`). */
  reclaimCutoff?(leaseTtlSeconds: number | null, now: number): number;
  /** Looks for a wall-clock step now (two clock readings), so a step's grace starts when the step happened, not when a lease first looks dead. */
  watchClock?(): void;
}

export class LicensingService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly keys: KeyRing,
    private readonly metrics: Metrics,
    /** batched heartbeat writes; without it every heartbeat is written before its answer */
    private readonly renewals?: RenewalBuffer,
    private readonly gate: SeatGate = {},
    private readonly sessions: SessionKeys = new SessionKeys(),
  ) {}

  /** The server's half of the session-key exchange a request offers (none offered: none); refused for a bad key. */
  private agreement(offer: { x25519: string } | undefined): Result<SessionAgreement | undefined> {
    return offer ? this.sessions.agree(offer.x25519) : ok(undefined);
  }

  /**
   * The session key of a use as read from its lease, opened, when it is the key the client named (`keyid`): the
   * answer is then HMAC-signed; otherwise (none, or another process's request on the use) Ed25519-signed.
   */
  private answerKey(
    lease: { instances: readonly { instanceId: string; sessionKey?: string }[] } | undefined,
    instanceId: string,
    keyid: string | undefined,
  ): SessionKey | undefined {
    if (keyid === undefined) return undefined;
    const key = this.sessions.open(lease?.instances.find((i) => i.instanceId === instanceId)?.sessionKey);
    return key?.keyid === keyid ? key : undefined;
  }

  /** A license read by key, as the gate admits it (unknown key: the one invalid-key answer). */
  private admitted(license: License | undefined): Result<License> {
    if (!license) return invalidKey();
    return this.gate.admit ? this.gate.admit(license) : ok(license);
  }

  /** `address`: the client address the request came from (the clone policy compares it), if known. */
  checkout(key: string, req: CheckoutRequest, address?: string): Promise<Result<SignedGrant>> {
    const { session, ...use } = req;
    const cmd = { ...use, newDeviceId: newId('dev'), newLeaseId: newId('lse'), actor: ACTOR, address: address ?? null };
    return this.grant(key, cmd, (state, now) => decideCheckout(state, cmd, now), session);
  }

  offlineCheckout(key: string, req: OfflineCheckoutRequest, address?: string): Promise<Result<SignedGrant>> {
    const { session, ...use } = req;
    const cmd = { ...use, newDeviceId: newId('dev'), newLeaseId: newId('lse'), actor: ACTOR, address: address ?? null };
    return this.grant(key, cmd, (state, now) => decideOfflineCheckout(state, cmd, now), session);
  }

  /**
   * Renews one instance. The hot path at scale: renewing a live lease changes no
   * seat, so it runs without the license lock (the store still locks the lease
   * row, which a concurrent reclaimer waits for and then re-checks). Anything that
   * may change seats — reviving an expired lease, an offline lease past its date —
   * goes through the locked path.
   */
  async heartbeat(key: string, leaseId: string, instanceId: string, ask: RenewalAsk = { token: true }): Promise<Result<SignedGrant>> {
    const fenced = this.gate.renewRefusal?.();
    if (fenced) return { ok: false, error: fenced };
    const agreed = this.agreement(ask.session);
    if (!agreed.ok) return agreed;
    this.gate.watchClock?.();
    const now = this.clock.now();
    const command = { leaseId, instanceId, actor: ACTOR };
    await this.renewals?.settle(now);
    let read = await this.store.leaseOfKey(key, leaseId, instanceId, now);
    // A holder's key that reads as unknown is read once more before the answer says so: under cut PostgreSQL
    // connections a read was seen to come back empty for a valid key (once in a full run), and "unknown key" is the
    // one answer an SDK takes as final. (No new leak: on this route a real key already answers 404 where an unknown
    // one answers 401.) The cause was later found in the driver and patched (patch 4, scripts/patch-postgres.mjs:
    // answers handed to the query before); the second read stays as a guard.
    if (!read && key) read = await this.store.leaseOfKey(key, leaseId, instanceId, now);
    const admitted = this.admitted(read?.license);
    if (!admitted.ok) return admitted;
    const state = { ...read!, license: admitted.value };
    const outcome = decideHeartbeat(
      state,
      command,
      now,
      this.renewals ? { batchMarginMs: this.renewals.opts.intervalMs + RENEWAL_MARGIN_MS } : {},
    );
    if (outcome.kind === 'batchable' && this.renewals && !agreed.value) {
      this.renewals.add(outcome.renewal, outcome.dueAt);
      this.metrics.heartbeats.inc({ write: 'batched' });
      const answerKey = this.answerKey(read?.lease, instanceId, ask.keyid);
      return this.signed(outcome.decision.result, now, { token: ask.token || !answerKey, answerKey });
    }
    // A refusal on the unlocked read (unknown lease, suspended or expired license) changes nothing: answer it.
    if (outcome.kind === 'refused') return { ok: false, error: outcome.error };
    // Anything else is decided again on locked state and written before the answer: a renewal close to
    // its expiry (a reclaimer may be about to free it), a revival, an offline lease past its date.
    const result = await this.store.transaction(
      async (tx) => {
        const locked = await this.leaseState(tx, key, leaseId, now, instanceId);
        if (!locked.ok) return locked;
        const state = locked.value;
        // Reviving a dead unshared seat must not take the device past its instance limit (`revivalOverLimit`).
        // (The device of the use that revives it: on a shared seat, not always the one that took it.)
        if (state.lease && isDead(state.lease, now)) state.deviceLeases = await tx.leasesOfDevice(state.device?.id ?? state.lease.deviceId);
        const applied = await this.applied(tx, decideHeartbeat(state, command, now).decision);
        // A new exchange: the use's key replaced in the renewal's transaction (the answer, Ed25519-signed, carries the server's half).
        if (applied.ok && agreed.value) await this.keepSession(tx, agreed.value, applied.value);
        return applied;
      },
      { group: key, ahead: { leaseId } },
    );
    this.metrics.heartbeats.inc({ write: 'immediate' });
    if (agreed.value) return this.signed(result, now, { token: true, agreed: agreed.value });
    const answerKey = this.answerKey(read?.lease, instanceId, ask.keyid);
    return this.signed(result, now, { token: ask.token || !answerKey, answerKey });
  }

  /** Stores the session key an exchange gives the granted use. */
  private async keepSession(tx: StoreTx, agreement: SessionAgreement, granted: Granted): Promise<void> {
    await tx.setSessionKey(granted.lease.id, granted.instanceId, agreement.derive(granted.lease.id).stored);
  }

  /** `answerKey`: the use's session key, read before its row went (the answer is signed with it). */
  async checkin(
    key: string,
    leaseId: string,
    instanceId: string,
    keyid?: string,
  ): Promise<Result<CheckinOutcome & { answerKey?: SessionKey }>> {
    const now = this.clock.now();
    let answerKey: SessionKey | undefined;
    let stored: string | undefined;
    const checked = await this.store.transaction(
      async (tx) => {
        const state = await this.leaseState(tx, key, leaseId, now, instanceId);
        if (!state.ok) return state;
        answerKey = this.answerKey(state.value.lease, instanceId, keyid);
        stored = state.value.lease?.instances.find((i) => i.instanceId === instanceId)?.sessionKey;
        return this.applied(tx, decideCheckin(state.value, { leaseId, instanceId, actor: ACTOR }, now));
      },
      { group: key, ahead: { leaseId } },
    );
    // The use is gone: its key leaves the cache (its answer below is already signed with `answerKey`, in hand).
    if (checked.ok) this.sessions.forget(stored);
    const result = checked.ok && answerKey ? ok({ ...checked.value, answerKey }) : checked;
    if (result.ok && result.value.released) this.metrics.released.inc({ reason: RELEASE_REASONS.CHECKIN });
    return result;
  }

  /** A held use changes the feature pools it needs (`decideFeatures`): answered with a token that lists them. */
  async changeFeatures(key: string, leaseId: string, req: FeaturesRequest, keyid?: string): Promise<Result<SignedGrant>> {
    this.gate.watchClock?.();
    const now = this.clock.now();
    const refused = this.gate.grantRefusal?.(now);
    if (refused) return { ok: false, error: refused };
    await this.renewals?.settle(now);
    const wanted = featureNames(req.features);
    let answerKey: SessionKey | undefined;
    const result = await this.store.transaction(
      async (tx) => {
        const locked = await this.leaseState(tx, key, leaseId, now, req.instanceId);
        if (!locked.ok) return locked;
        const state = {
          ...locked.value,
          featureLeases: wanted.length ? await tx.leasesWithFeatures(locked.value.license.id, wanted) : [],
          reclaimBefore: this.gate.reclaimCutoff?.(longestTtlSeconds(locked.value.license), now),
          waiters: wanted.length ? await tx.waiters(locked.value.license.id) : [],
          groups: featuresGuarded(locked.value.license)
            ? await loadGroups(this.store, featureGroupsNamed(locked.value.license))
            : undefined,
        };
        answerKey = this.answerKey(locked.value.lease, req.instanceId, keyid);
        return this.applied(tx, decideFeatures(state, { leaseId, ...req, actor: ACTOR }, now));
      },
      { group: key, ahead: { leaseId } },
    );
    if (!result.ok && POLICY_REFUSALS.has(result.error.code)) this.metrics.policyRefusals.inc({ code: result.error.code });
    return this.signed(result, now, { token: true, answerKey });
  }

  async returnOffline(key: string, leaseId: string): Promise<Result<{ released: true }>> {
    const now = this.clock.now();
    const result = await this.store.transaction(
      async (tx) => {
        const state = await this.leaseState(tx, key, leaseId, now);
        if (!state.ok) return state;
        return this.applied(tx, decideReturnOffline(state.value, { leaseId, actor: ACTOR }, now));
      },
      { group: key, ahead: { leaseId } },
    );
    if (result.ok) this.metrics.released.inc({ reason: RELEASE_REASONS.OFFLINE_RETURNED });
    return result;
  }

  async sync(key: string, req: SyncRequest): Promise<Result<SyncOutcome>> {
    const now = this.clock.now();
    const result = await this.store.transaction(
      async (tx) => {
        const admitted = this.admitted(await this.locked(tx, key, now, { fingerprint: req.fingerprint }));
        if (!admitted.ok) return admitted;
        const license = admitted.value;
        const device = await tx.device(license.id, req.fingerprint);
        const deviceLeases = device ? await tx.leasesOfDevice(device.id) : [];
        return this.applied(tx, decideSync({ license, device, deviceLeases }, { instanceIds: req.instanceIds, actor: ACTOR }, now));
      },
      { group: key, ahead: { fingerprint: req.fingerprint } },
    );
    if (result.ok && result.value.released.length)
      this.metrics.released.inc({ reason: RELEASE_REASONS.SYNCED }, result.value.released.length);
    return result;
  }

  /** What the client may show: the license's state and, with a fingerprint, its own lease. */
  async info(key: string, fingerprint: string | undefined) {
    const admitted = this.admitted(await this.store.getLicenseByKey(key));
    if (!admitted.ok) return admitted;
    const license = admitted.value;
    const lease = fingerprint ? (await this.store.leasesOfFingerprint(license.id, fingerprint))[0] : undefined;
    return ok({ license, lease, serverTime: this.clock.now() });
  }

  // -------------------------------------------------------------------------

  private async grant(
    key: string,
    req: CheckoutCommand,
    decide: (state: CheckoutState, now: number) => Decision<Granted>,
    offer: { x25519: string } | undefined,
  ): Promise<Result<SignedGrant>> {
    this.gate.watchClock?.();
    const now = this.clock.now();
    const refused = this.gate.grantRefusal?.(now);
    if (refused) return { ok: false, error: refused };
    // The session key is agreed only for a grant (a crowd of denials makes no key pairs), in its transaction; a bad
    // offer then rolls the grant back (OfferRefused) and is answered 400.
    let agreed: SessionAgreement | undefined;
    await this.renewals?.settle(now);
    let freed = 0;
    let queue: Effect[] = [];
    // The unlocked denial path costs reads of its own: try it only where the pool was full last time.
    const denied = this.lastSeenFull.get(key) ? await this.deniedWithoutLock(key, req, decide, now) : undefined;
    // Grouped per license (store/groupCommit.ts): the grants, check-ins and denials of one key share commits.
    const result =
      denied ??
      (await this.store
        .transaction(
          async (tx) => {
            freed = 0; // a unit may run again (a turn retried without a unit that failed)
            queue = [];
            agreed = undefined;
            const admitted = this.admitted(await this.locked(tx, key, now, { fingerprint: req.fingerprint }));
            if (!admitted.ok) return admitted;
            const license = admitted.value;
            const device = await tx.device(license.id, req.fingerprint);
            const deviceLeases = device ? await tx.leasesOfDevice(device.id) : [];
            // The seats of the use's share group, where they are not all among the device's own (`groupNamesDevice`).
            const group = shareGroupOf(license, device?.id ?? req.newDeviceId, useMeta(req, req.address ?? null));
            const groupLeases = group !== null && !groupNamesDevice(group) ? await tx.leasesOfShareGroup(license.id, group) : undefined;
            // The license's queues (domain/queue.ts): free seats are the waiters' first.
            const waiters = await tx.waiters(license.id);
            const full = license.seatsUsed >= license.seats || waiters.length > 0;
            // The seats holding the feature pools asked for (a feature's level is counted from them, under the lock).
            const wanted = featureNames(req.features);
            // The access policy's groups and, for maxima and reservations, every seat of the license (under its lock).
            const access =
              isOpen(license.access) && !featuresGuarded(license)
                ? undefined
                : {
                    groups: await loadGroups(this.store, [...groupsNamed(license.access), ...featureGroupsNamed(license)]),
                    // Maxima and reservations count base seats (a seat of features only takes none).
                    leases: countsSeats(license.access) ? (await tx.leasesOfLicense(license.id)).filter((l) => l.base) : undefined,
                  };
            const state: CheckoutState = {
              license,
              device,
              deviceLeases,
              groupLeases,
              access,
              // Right after a start or a clock step, a lease past its stored expiry may be a live holder's: not freed yet.
              deadLeases: full
                ? await tx.deadLeases(
                    license.id,
                    this.gate.reclaimCutoff?.(longestTtlSeconds(license), now) ?? now,
                    DEAD_LEASES_PER_CHECKOUT,
                  )
                : [],
              earliestExpiry: full ? await tx.earliestExpiry(license.id, now) : null,
              featureLeases: wanted.length ? await tx.leasesWithFeatures(license.id, wanted) : undefined,
              reclaimBefore: this.gate.reclaimCutoff?.(longestTtlSeconds(license), now),
              waiters,
            };
            let decision = decide(state, now);
            const after = decision.result.ok ? decision.result.value.license : license;
            this.noteFull(key, after.seatsUsed >= after.seats);
            // The use's session key is written with its row where the decision writes that row (every grant of today's
            // domain does, a re-checkout of a held use too), else on its own after the decision's writes.
            let keep: string | undefined;
            if (decision.result.ok && offer) {
              const agreement = this.sessions.agree(offer.x25519);
              if (!agreement.ok) throw new OfferRefused(agreement.error);
              agreed = agreement.value;
              const { lease, instanceId } = decision.result.value;
              keep = agreed.derive(lease.id).stored;
              const carried = withSessionKey(decision.effects, lease.id, instanceId, keep);
              if (carried) {
                decision = { ...decision, effects: carried };
                keep = undefined;
              }
            }
            const applied = await this.applied(tx, decision);
            if (applied.ok && keep !== undefined) await tx.setSessionKey(applied.value.lease.id, applied.value.instanceId, keep);
            freed = decision.effects.filter((e) => e.type === 'lease.delete').length;
            queue = decision.effects.filter((e) => e.type === 'usage.queue');
            return applied;
          },
          { group: key, ahead: { fingerprint: req.fingerprint } },
        )
        .catch((err: unknown): Result<Granted> => {
          if (err instanceof OfferRefused) return { ok: false, error: err.refusal };
          throw err;
        }));
    // Counted after commit: a rolled-back transaction counts nothing.
    if (freed) this.metrics.released.inc({ reason: RELEASE_REASONS.EXPIRED }, freed);
    for (const e of queue) {
      if (e.type !== 'usage.queue') continue;
      if (e.queued) this.metrics.queueJoins.inc(e.queued);
      if (e.grants) this.metrics.queueWait.observe(e.waitMs / 1000);
    }
    if (result.ok) {
      if (result.value.created) this.metrics.grants.inc();
      if (result.value.created && result.value.lease.overdraft) this.metrics.overdraftGrants.inc();
    } else if (result.error.code === 'NO_SEATS_AVAILABLE') {
      this.metrics.denials.inc();
    } else if (POLICY_REFUSALS.has(result.error.code)) {
      this.metrics.policyRefusals.inc({ code: result.error.code });
    }
    return this.signed(result, now, { token: true, agreed });
  }

  /**
   * A pool at capacity answers a crowd of denials. A denial changes no seat, so
   * when the license looks full, the device holds nothing and no lease is dead,
   * the denial is decided on unlocked reads and only its counters are written —
   * the license lock stays free for the check-ins and grants that change seats.
   * (A denial from a moment-old snapshot cannot over-allocate; at worst a seat
   * freed that very moment is missed, as it would be a millisecond later.)
   * Anything else returns undefined: the locked path decides.
   */
  private async deniedWithoutLock(
    key: string,
    req: CheckoutCommand,
    decide: (state: CheckoutState, now: number) => Decision<Granted>,
    now: number,
  ): Promise<Result<Granted> | undefined> {
    const admitted = this.admitted(await this.store.getLicenseByKey(key));
    if (!admitted.ok) return undefined;
    const license = admitted.value;
    // An access policy may refuse with its own code: decided locked, with its groups.
    if (!isOpen(license.access)) return undefined;
    // Feature pools are counted from their rows under the lock; a waiting checkout takes its place in the queue there.
    if (featureNames(req.features).length || req.wait) return undefined;
    // The stored counter says full; the lease rows decide (a counter set too high by hand, or by a bug, denies no one).
    if (
      license.seatsUsed < license.seats ||
      (!this.store.countersTrusted?.(license.id) && (await this.store.leaseCounts(license.id)).used !== license.seatsUsed)
    ) {
      this.noteFull(key, false);
      return undefined;
    }
    if ((await this.store.leasesOfFingerprint(license.id, req.fingerprint)).length > 0) return undefined;
    // A use that may join another device's seat (its share group does not name its device) is decided locked.
    const group = shareGroupOf(license, req.newDeviceId, useMeta(req, req.address ?? null));
    if (group !== null && !groupNamesDevice(group)) return undefined;
    const { dead, earliestExpiry } = await this.store.expiryStats(license.id, now);
    if (dead > 0) return undefined;
    const decision = decide({ license, device: undefined, deviceLeases: [], deadLeases: [], earliestExpiry }, now);
    if (decision.result.ok || !decision.effects.every((e) => e.type === 'usage' || e.type === 'audit' || e.type === 'audit.aggregate'))
      return undefined;
    // The denial's counters lock the license's usage row, as the grants do: in the key's group.
    await this.store.transaction((tx) => tx.apply(decision.effects), { group: key });
    return decision.result;
  }

  /** Per license key: whether the pool was full at its last checkout here (a hint that picks the path, never a decision). */
  private readonly lastSeenFull = new Map<string, boolean>();

  private noteFull(key: string, full: boolean): void {
    if (full) this.lastSeenFull.set(key, true);
    else this.lastSeenFull.delete(key);
  }

  /**
   * Locks the license and checks its seat counters against the lease rows (see `seatCounters.ts`). `ahead`: what the
   * decision reads next (sent with the lock where reads are round trips: `ReadAhead`).
   */
  private async locked(tx: StoreTx, key: string, now: number, ahead?: ReadAhead): Promise<License | undefined> {
    return countedLicense(tx, await tx.lockLicenseByKey(key, ahead), now, this.metrics);
  }

  /** The locked license, the lease and the device of the use `instanceId` (the lease's device without one, or if the use is not on it). */
  private async leaseState(tx: StoreTx, key: string, leaseId: string, now: number, instanceId?: string): Promise<Result<LeaseState>> {
    const admitted = this.admitted(await this.locked(tx, key, now, { leaseId }));
    if (!admitted.ok) return admitted;
    const license = admitted.value;
    const lease = await tx.lease(leaseId);
    const owned = lease && lease.licenseId === license.id ? lease : undefined;
    const use = owned?.instances.find((i) => i.instanceId === instanceId);
    const device = owned ? await tx.deviceById(use?.deviceId ?? owned.deviceId) : undefined;
    return ok({ license, lease: owned, device });
  }

  /** Writes a decision's effects (a refusal may carry counters too) and hands back its result. */
  private async applied<T>(tx: StoreTx, d: Decision<T>): Promise<Result<T>> {
    await tx.apply(d.effects);
    return d.result;
  }

  /**
   * A grant or renewal as answered: with a new lease token unless the client (asking for RFC 9421 answers) asked for
   * none; with the server's half of an exchange it offered; or with the use's session key to sign the answer with.
   */
  private async signed(
    result: Result<Granted>,
    now: number,
    opts: { token: boolean; agreed?: SessionAgreement | undefined; answerKey?: SessionKey | undefined },
  ): Promise<Result<SignedGrant>> {
    if (!result.ok) return result;
    const granted = result.value;
    const token = opts.token ? await this.keys.sign(leaseClaims(granted, now)) : undefined;
    return ok({
      granted,
      token,
      serverTime: now,
      ...(opts.agreed ? { session: { x25519: opts.agreed.x25519 } } : {}),
      ...(opts.answerKey && !opts.agreed ? { answerKey: opts.answerKey } : {}),
    });
  }
}

/** A grant's session-key offer was not a usable key: the grant's transaction rolls back, the answer is 400. */
class OfferRefused extends Error {
  constructor(readonly refusal: DomainError) {
    super(refusal.message);
  }
}

/** The lease token's claims (`LeaseTokenClaims` in protocol: the claim names are the wire's). */
function leaseClaims(granted: Granted, now: number) {
  const expiry = tokenExpiry(granted.license, granted.lease, now);
  return {
    sub: granted.lease.id,
    lic: granted.license.id,
    prd: granted.license.productId,
    dev: granted.device.id,
    fph: fingerprintHash(granted.device.fingerprint),
    ins: granted.instanceId,
    lse: granted.lease.id,
    iat: Math.floor(now / 1000),
    ...(expiry !== null ? { exp: Math.floor(expiry / 1000) } : {}),
    offline: granted.lease.offline,
    ...(granted.lease.offline && granted.lease.offlineExpiresAt !== null ? { oed: Math.floor(granted.lease.offlineExpiresAt / 1000) } : {}),
    hbi: granted.license.heartbeatIntervalSeconds,
    shg: granted.lease.shareGroup,
    use: granted.lease.instances.length,
    ...(granted.lease.overdraft ? { ovd: true } : {}),
    fts: poolsOf(granted.lease.base, granted.lease.instances.find((i) => i.instanceId === granted.instanceId)?.features ?? []),
  };
}

/** The feature pools named (not the base pool): the ones whose seats a decision must count. */
function featureNames(names: readonly string[] | undefined): string[] {
  return (names ?? []).filter((n) => n !== BASE_POOL);
}

/**
 * The decision's effects with `stored` as the session key of the use (`leaseId`, `instanceId`) in the write of its row
 * (a new lease's instances, or the use's `instance.put`); undefined when the decision does not write that row.
 */
export function withSessionKey(effects: readonly Effect[], leaseId: string, instanceId: string, stored: string): Effect[] | undefined {
  let carried = false;
  const keyed = effects.map((e): Effect => {
    if (e.type === 'lease.insert' && e.lease.id === leaseId && e.lease.instances.some((i) => i.instanceId === instanceId)) {
      carried = true;
      return {
        ...e,
        lease: { ...e.lease, instances: e.lease.instances.map((i) => (i.instanceId === instanceId ? { ...i, sessionKey: stored } : i)) },
      };
    }
    if (e.type === 'instance.put' && e.leaseId === leaseId && e.instance.instanceId === instanceId) {
      carried = true;
      return { ...e, instance: { ...e.instance, sessionKey: stored } };
    }
    return e;
  });
  return carried ? keyed : undefined;
}
