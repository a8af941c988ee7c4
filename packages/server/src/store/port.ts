/**
 * The Store port: the one interface between floatd and its database. Two
 * adapters implement it (SQLite embedded, PostgreSQL for clusters) and one
 * contract test suite runs against both.
 *
 * Concurrency guarantee: `transaction(fn)` runs `fn` as one atomic, isolated
 * unit. Every read made through the `StoreTx` after `lockLicense*` sees the
 * license and its leases as no concurrent transaction can change them until
 * this one commits (SQLite: `BEGIN IMMEDIATE`, one writer at a time;
 * PostgreSQL: the license row is locked `FOR UPDATE`). Seat decisions are made
 * on that locked state and their effects written before commit, so two
 * checkouts can never both take the last seat. In addition the `seats` effect
 * is a guarded update that refuses to go above the seat count or below zero
 * (and throws `SeatGuardError`, rolling back) — a second line of defence that
 * does not rely on the decision being right.
 */
import type { Effect, Renewal } from '../domain/effects.js';
import type { GroupObserver } from './groupCommit.js';
import type { AdminToken, AuditEntry, AuditType, Customer, Device, Lease, License, Product } from '../domain/types.js';
import type { Waiter } from '../domain/queue.js';
import type { ClaimedDelivery, DeliveryAttempt, DeliveryState, DeliveryView, WebhookEndpoint } from '../domain/webhooks.js';

export interface PageRequest {
  limit: number;
  cursor?: string | undefined;
}
export interface PageOf<T> {
  items: T[];
  nextCursor: string | null;
}

export interface AuditFilter extends PageRequest {
  licenseId?: string | undefined;
  deviceId?: string | undefined;
  leaseId?: string | undefined;
  type?: AuditType | undefined;
  /** `client`, `reclaimer`, `admin:<token id>`, … (exact) */
  actor?: string | undefined;
  /** only entries about a license of this customer (entries without a license are left out) */
  customerId?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
}

export interface StoredAudit extends AuditEntry {
  id: number;
}

export interface UsageRow {
  /** start of the hour, ms */
  hour: number;
  peakSeats: number;
  seatsAtEnd: number;
  checkouts: number;
  denials: number;
  /** the most seats held beyond the count at once in the hour, and after its last change */
  peakOverdraft: number;
  overdraftAtEnd: number;
  overdraftCheckouts: number;
  /** checkouts that joined a queue in the hour; waiters granted a seat in it, and how long they waited together */
  queued: number;
  queueGrants: number;
  queueWaitMs: number;
  /** per feature pool: the most of its seats held at once, its grants and its denials in the hour (hours without any: absent) */
  features?: Record<string, { peak: number; checkouts: number; denials: number }> | undefined;
}

/** Device with what it holds on its license right now (admin view). */
export interface DeviceView extends Device {
  seatsHeld: number;
  instanceCount: number;
  offlineExpiresAt: number | null;
}

export interface LeaseView extends Lease {
  device: Device;
}

/**
 * A committed change, announced to listeners after COMMIT (never for a rolled-back
 * transaction). PostgreSQL delivers it to every node (NOTIFY inside the transaction).
 */
export type ChangeEvent =
  | { kind: 'seats' | 'denied' | 'license'; licenseId: string }
  /** an admin token was revoked: open event streams of that token close (on every node) */
  | { kind: 'token-revoked'; tokenId: string }
  /** changes may have been missed (the node's change feed reconnected): a viewer reloads what it shows */
  | { kind: 'resync'; licenseId: null };

/** A lease a sweep's scan found dead, or live with a dead use (`Store.sweepScan`). */
export interface SweepFound {
  licenseId: string;
  leaseId: string;
}

/** A named server-state record: small JSON documents the server keeps beside the catalogue. */
export interface KvRecord {
  name: string;
  value: string;
  updatedAt: number;
}

/**
 * What a seat decision will read next, named with its license lock (`StoreTx.lockLicenseByKey`): an adapter whose reads
 * are round trips (PostgreSQL) sends them with the lock, in the same round trip, and answers the later `device` and
 * `leasesOfDevice` (for `fingerprint`) or `lease` and `deviceById` (for `leaseId`) from them until the transaction
 * writes. The answers are what those reads would have given, read in the same transaction under the same lock; an
 * adapter may ignore the hint (SQLite reads in process).
 */
export interface ReadAhead {
  /** the device of this fingerprint on the license, and its leases (a checkout) */
  fingerprint?: string | undefined;
  /** this lease with its instances and devices (a check-in, a renewal, a change of a held use) */
  leaseId?: string | undefined;
}

/*
 * One reader per question. A license is read by:
 * - `StoreTx.lockLicenseByKey` / `StoreTx.lockLicense`: locked, for a decision that may change seats
 *   (by key from a client request, by id from the admin API, the reclaimer and a license file load);
 * - `Store.getLicenseByKey`: unlocked, for a client answer that changes no seat (license info, the
 *   denial of a full pool);
 * - `Store.leaseOfKey`: unlocked, the heartbeat's one round trip (license, lease and device together);
 * - `Store.getLicense` / `Store.listLicenses`: unlocked, the admin views.
 * Key and id are different questions (a client knows only the key, an admin the id), and the
 * heartbeat's read exists because it is the hot path; an unlocked read inside a transaction
 * (formerly `StoreTx.licenseByKey`) is the locked read's question and went.
 */
export interface StoreTx {
  /** Reads and locks a license by its key (see the guarantee above): the client routes' seat decisions. */
  lockLicenseByKey(key: string, ahead?: ReadAhead): Promise<License | undefined>;
  /** Reads and locks a license by id: admin changes, the reclaimer, loading a license file. */
  lockLicense(id: string): Promise<License | undefined>;
  device(licenseId: string, fingerprint: string): Promise<Device | undefined>;
  deviceById(id: string): Promise<Device | undefined>;
  /** The leases the device took and the shared leases its uses are on, with their instances. */
  leasesOfDevice(deviceId: string): Promise<Lease[]>;
  /** The license's leases of one share group (`domain/sharing.ts`), with their instances. */
  leasesOfShareGroup(licenseId: string, shareGroup: string): Promise<Lease[]>;
  lease(id: string): Promise<Lease | undefined>;
  /** Leases of the license whose expiry is at or before `now` (oldest first, at most `limit`). */
  deadLeases(licenseId: string, now: number, limit: number): Promise<Lease[]>;
  /** The earliest expiry after `now` among the license's leases, or null. */
  earliestExpiry(licenseId: string, now: number): Promise<number | null>;
  /**
   * The license's leases among `ids` (a sweep's batch, found by `Store.sweepScan`), read again under the license's
   * lock with their instances; ids that are gone or of another license are left out. Whether each is dead is the
   * domain's question (`decideReclaim`): a lease renewed since the scan is read as it is now.
   */
  leasesToSweep(licenseId: string, ids: readonly string[]): Promise<Lease[]>;
  /**
   * The seats the license's lease rows hold (each lease row is one seat; `offline` of them borrowed).
   * The truth the stored counters cache: seat decisions check the counters against it (`service/seatCounters.ts`).
   */
  leaseCounts(licenseId: string): Promise<{ used: number; offline: number }>;
  /**
   * Optional (a store that owns its data): whether the license's stored counters are known to equal its lease rows
   * without counting them: they were counted equal (`countersVerified`) and nothing but this store has written
   * since. `service/seatCounters.ts` then skips the count. A store that cannot know omits both.
   */
  countersTrusted?(licenseId: string): boolean;
  /** Optional: the license's stored counters were just counted equal to its lease rows in this transaction. */
  countersVerified?(licenseId: string): void;
  /** The license's seats that hold one of these features (`domain/features.ts`), with their instances. */
  leasesWithFeatures(licenseId: string, names: readonly string[]): Promise<Lease[]>;
  /** The license's queues (`domain/queue.ts`), in order of arrival. */
  waiters(licenseId: string): Promise<Waiter[]>;
  /** All leases of a license (for a forced delete). */
  leasesOfLicense(licenseId: string): Promise<Lease[]>;
  licenseCountOfProduct(productId: string): Promise<number>;
  customer(id: string): Promise<Customer | undefined>;
  licenseCountOfCustomer(customerId: string): Promise<number>;
  /** The customer's admin tokens that are not revoked. */
  customerTokens(customerId: string): Promise<AdminToken[]>;
  adminToken(id: string): Promise<AdminToken | undefined>;
  /** Serialises first-start token creation across nodes (SQLite: the transaction already is exclusive). */
  lockAdminTokens(): Promise<void>;
  /** The vendor's tokens with role admin that are not revoked (a customer's admin tokens do not count: they cannot administer the server). */
  activeAdminCount(): Promise<number>;
  product(id: string): Promise<Product | undefined>;
  /**
   * Reads a named server-state record and locks that name until commit (SQLite: the
   * transaction is exclusive; PostgreSQL: an advisory lock on the name), so a
   * read-compare-write of the record (e.g. "the serial only goes up") is atomic across nodes.
   */
  lockKv(name: string): Promise<KvRecord | undefined>;
  /** Writes a decision's effects, in order. Throws `SeatGuardError` if a seat guard refuses. */
  apply(effects: readonly Effect[]): Promise<void>;
  /** Keeps a use's session key (service/sessions.ts: its text at rest) on its row; a use that is gone is left alone. */
  setSessionKey(leaseId: string, instanceId: string, stored: string): Promise<void>;
}

/** How a store's transactions wait: for a pool connection, and for their group's turn (store/groupCommit.ts). */
export interface StoreObserver extends GroupObserver {
  /** a transaction found every connection of the pool busy and waited for one */
  poolWait?(): void;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /**
   * How a sweep cuts what it frees into transactions (service/reclaim.ts). `license`: a transaction frees leases of
   * one license, whose row it locks, so that other licenses' seat changes go on meanwhile (PostgreSQL). `run`: a
   * transaction frees the next run of the sweep's leases in license, then lease id order, whatever their licenses
   * (SQLite: one writer, whatever a transaction locks). A SQLite commit writes every page its deletes touched; most of
   * the indexes a freed lease is in are keyed by its license first, so a license's dead share their pages, and a run
   * holds as many whole licenses as fit: with a tenth of every license dead, 4,000 leases in lease id order touched
   * pages of all the licenses in every commit.
   */
  readonly sweepOrder: 'license' | 'run';
  /**
   * How many background transactions share one commit while nobody else is served (SQLite: `transaction`'s
   * `background`), and so how many runs a sweep in `run` order hands over at once; none: one.
   */
  readonly backgroundPerCommit?: number;
  /**
   * Runs `fn` as one atomic unit; commits when it returns, rolls back when it throws.
   * With `group` (the license key whose row the transaction locks first, if it locks one):
   * transactions of the same group may share one commit,
   * each still alone and in order, on the state the ones before it left, one that throws
   * rolled back alone, and nobody answered before the commit (the guarantee above is
   * unchanged; only the cost of COMMIT is shared). PostgreSQL runs one group's transactions in turns, one
   * turn at a time per node (store/groupCommit.ts), and may refuse one that waited too long
   * for its turn with `LicenseBusyError`; SQLite shares every commit anyway.
   * `ahead` (with `group`): what `fn` will name with its license lock (`ReadAhead`), known before it runs, so that
   * a turn may read it for all its transactions at once (PostgreSQL: store/postgres/turnView.ts).
   * `background` (a sweep's batch): work nobody waits for at a screen. SQLite, whose one writer it would hold, runs
   * it after the transactions waiting then, in a commit of its own while others write (several share one while
   * nobody else does), so that a checkout arriving during a big sweep waits for one batch rather than for the
   * sweep's whole queue; PostgreSQL, where it locks only its licenses, runs it as any other.
   */
  transaction<T>(
    fn: (tx: StoreTx) => Promise<T>,
    opts?: { group?: string | undefined; ahead?: ReadAhead | undefined; background?: boolean | undefined },
  ): Promise<T>;
  /** Where the store reports how its transactions wait (metrics); set once by the server. */
  observer?: StoreObserver | undefined;

  // --- reads outside a seat transaction (admin views, may be a moment stale) ---
  getCustomer(id: string): Promise<Customer | undefined>;
  /**
   * Customers in order of creation; with `id`, that one only; with `search`, those whose name contains it (any case), that own the license with
   * this key, or that own a license one of whose devices has a host or user name containing it (any case).
   */
  listCustomers(page: PageRequest & { search?: string | undefined; id?: string | undefined }): Promise<PageOf<Customer>>;
  getProduct(id: string): Promise<Product | undefined>;
  listProducts(page: PageRequest): Promise<PageOf<Product>>;
  getLicense(id: string): Promise<License | undefined>;
  getLicenseByKey(key: string): Promise<License | undefined>;
  listLicenses(page: PageRequest & { productId?: string | undefined; customerId?: string | undefined }): Promise<PageOf<License>>;
  listLeases(licenseId: string): Promise<LeaseView[]>;
  listDevices(licenseId: string): Promise<DeviceView[]>;
  getLease(id: string): Promise<LeaseView | undefined>;
  /** The leases a device (by fingerprint) holds on a license. */
  leasesOfFingerprint(licenseId: string, fingerprint: string): Promise<Lease[]>;
  listAudit(filter: AuditFilter): Promise<PageOf<StoredAudit>>;
  usage(licenseId: string, from: number, to: number): Promise<UsageRow[]>;
  /** Without locking: the seats the license's lease rows hold (see `StoreTx.leaseCounts`). */
  leaseCounts(licenseId: string): Promise<{ used: number; offline: number }>;
  /** Without locking: see `StoreTx.countersTrusted`. */
  countersTrusted?(licenseId: string): boolean;
  /** Without locking: checkouts waiting now (live at `now`) per license that has any. */
  waitingCounts(now: number): Promise<Map<string, number>>;
  /** Without locking: the seats held now per feature pool (counted from the lease rows). */
  featureSeats(licenseId: string): Promise<Record<string, number>>;
  /** Without locking: how many of the license's leases are dead at `now`, and the earliest future expiry. */
  expiryStats(licenseId: string, now: number): Promise<{ dead: number; earliestExpiry: number | null }>;
  /**
   * Without locking, in one round trip: the license with this key and, if it
   * belongs to that license, the lease with its instances and the device of the
   * use `instanceId` (the lease's device if the use is not on it; undefined when
   * no license has the key). The heartbeat's read.
   */
  leaseOfKey(
    key: string,
    leaseId: string,
    instanceId: string,
    /** with it, the license's `waiting`: checkouts in its queues live at `now` */
    now?: number,
  ): Promise<{ license: License; lease: Lease | undefined; device: Device | undefined } | undefined>;
  /**
   * Applies a batch of renewals (see `Renewal`: monotonic, update-only). Returns the renewals it could not apply
   * now because another transaction holds their lease (to retry later); a renewal of a lease that is gone or
   * offline is dropped. A store may write a large batch in several transactions (SQLite: its transactions run on
   * the event loop); if one fails after others committed, the error carries the renewals not written
   * (`unwrittenRenewals`), and without it none was.
   */
  renew(renewals: readonly Renewal[]): Promise<Renewal[]>;
  /**
   * Without locking, one page of what a sweep frees: the leases whose expiry is at or before `now`, then the live
   * leases with a use whose expiry is, each with its license, in order of expiry, at most `limit`, from `cursor` on
   * (null: the first page; `next`: where the next page starts, null after the last). Range scans of the expiry
   * indexes only, so a page costs what it holds, never the number of leases stored. A row that changes after the
   * scan is read again under the license's lock (`StoreTx.leasesToSweep`); one that the sweep leaves (a valid
   * offline lease) is behind the cursor, so each page is new.
   */
  sweepScan(now: number, cursor: string | null, limit: number): Promise<{ found: SweepFound[]; next: string | null }>;
  /** Seats in use over all licenses, for the metrics gauge (each scrape): from the licenses' counters, one row each. */
  seatTotals(): Promise<{ seatsUsed: number; seatsOffline: number }>;

  // --- admin tokens (hashed at rest) ---
  adminTokenById(id: string): Promise<AdminToken | undefined>;
  listAdminTokens(): Promise<AdminToken[]>;
  countAdminTokens(): Promise<number>;
  /** Records a token's last use (not audited; throttled by the caller). */
  touchAdminToken(id: string, at: number): Promise<void>;
  /** Denials per license since `from` (dashboard "denials today"). */
  denialsSince(from: number): Promise<Map<string, number>>;

  /** Listens to committed changes (live console updates). Returns the unsubscribe function. */
  subscribe(listener: (event: ChangeEvent) => void): () => void;

  // --- server state (named records, written with the `kv.put` effect) ---
  getKv(name: string): Promise<KvRecord | undefined>;
  /** Records whose name starts with `prefix`, by name. */
  listKv(prefix: string): Promise<KvRecord[]>;

  /**
   * The newest time written anywhere in the data (audit entries, hourly usage, server
   * records; with `leases`, lease heartbeats too — a scan, for on-premise sizes): a floor
   * for the trusted time when its own record is gone.
   */
  newestRecordedTime(opts: { leases: boolean }): Promise<number>;
  // --- retention (jobs/retention.ts): each call deletes one small batch, oldest first, in its own short transaction ---
  /** Deletes up to `limit` audit entries whose last event is before `before` (an aggregated entry goes when its last time does). */
  pruneAudit(before: number, limit: number): Promise<number>;
  /** Deletes up to `limit` hourly usage rows whose whole hour ended at or before `before`. */
  pruneUsage(before: number, limit: number): Promise<number>;

  // --- webhooks (service/webhooks.ts): endpoints are written with effects; events and deliveries with `webhook.event` ---
  listWebhooks(): Promise<WebhookEndpoint[]>;
  getWebhook(id: string): Promise<WebhookEndpoint | undefined>;
  /**
   * Claims up to `limit` pending deliveries due at `now` until `until`, with their event and endpoint: no other
   * caller (on any node) claims them before `until` or before `recordAttempt` (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
   */
  claimDeliveries(now: number, until: number, limit: number): Promise<ClaimedDelivery[]>;
  /** Records an attempt of a claimed delivery and its next state (pending again at `nextAttemptAt`, delivered, failed); frees the claim. */
  recordAttempt(deliveryId: string, attempt: DeliveryAttempt, next: { state: DeliveryState; nextAttemptAt: number | null }): Promise<void>;
  /** An endpoint's deliveries, newest first, with their newest attempts. */
  listDeliveries(webhookId: string, page: PageRequest & { state?: DeliveryState | undefined }): Promise<PageOf<DeliveryView>>;
  getDelivery(id: string): Promise<DeliveryView | undefined>;
  /** Makes a delivery pending and due at `now`, unclaimed (its event id unchanged); false when there is none. */
  redeliver(id: string, now: number): Promise<boolean>;
  /** Forgets every claim: SQLite at start (the one process that owns the file is this one, so a claim is a crashed send). */
  releaseDeliveryClaims(): Promise<void>;

  /** Cheap round trip for /readyz. */
  ping(): Promise<void>;
  /**
   * A real write that changes nothing visible (rewrites one bookkeeping row and
   * commits), to tell storage that answers reads but cannot write (disk full) from
   * healthy storage. Throws the driver's error when the write fails.
   */
  probeWrite(): Promise<void>;
  close(): Promise<void>;
}

/** The renewals a failed `Store.renew` did not write: all of them, unless the error says which (written in parts). */
export function unwrittenRenewals(err: unknown, batch: readonly Renewal[]): readonly Renewal[] {
  const rest = (err as { unwritten?: unknown } | null)?.unwritten;
  return Array.isArray(rest) ? (rest as Renewal[]) : batch;
}
