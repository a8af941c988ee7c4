/** Prometheus metrics (prom-client), one registry per server instance so tests can run several. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store, StoreObserver } from '../store/port.js';

export interface Metrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  duration: Histogram<'route'>;
  grants: Counter;
  denials: Counter;
  /** seats granted beyond the license's count (overdraft) */
  overdraftGrants: Counter;
  /** checkouts that joined a queue, and how long the waiters that got a seat waited (`domain/queue.ts`) */
  queueJoins: Counter;
  queueWait: Histogram;
  /** webhook delivery attempts by outcome (delivered, retry, failed) */
  webhookAttempts: Counter<'outcome'>;
  /** checkouts refused by a license's site policy (access, clone and VM policies), by code */
  policyRefusals: Counter<'code'>;
  released: Counter<'reason'>;
  reclaimed: Counter;
  heartbeats: Counter<'write'>;
  /** 1 while the server clock is behind its trusted time (or the stored trusted time failed its check) */
  clockRollback: Gauge;
  trustedTime: Gauge;
  clockRefusals: Counter;
  /** wall-clock steps seen against the monotonic clock (each one starts a reclamation grace of one TTL) */
  clockSteps: Counter;
  /** cluster: this node's clock minus the database's, and 1 while that is past the bound (the node grants nothing) */
  clockOffset: Gauge;
  clockFenced: Gauge;
  /** on-premise: serial and end of the license file in force */
  entitlementSerial: Gauge;
  entitlementNotAfter: Gauge;
  /** seat counters found different from the lease rows (and repaired) */
  seatCounterRepairs: Counter;
  /** Counts a repaired seat counter and tells `onIntegrity` (the server logs it). */
  seatCounterRepaired(repair: import('./seatCounters.js').SeatRepair): void;
  /** on-premise: 1 while the sealed server state is broken (new grants refused with STATE_TAMPERED) */
  stateTampered: Gauge;
  /** Set by the composition root: where integrity findings are logged. */
  onIntegrity: ((message: string, data: Record<string, unknown>) => void) | undefined;
  /** how many heartbeat renewals wait unwritten (set by the composition root when heartbeats are batched) */
  pendingRenewals: (() => number) | undefined;
  /** connections refused or closed by the connection caps and deadlines (http/connections.ts), by reason */
  connectionRefusals: Counter<'reason'>;
  connectionsOpen: Gauge;
  /** per-license group commit (store/groupCommit.ts): seat transactions waiting for their license's turn, the queue a new one joined, its wait, the turns' sizes */
  licenseQueueWaiting: Gauge;
  licenseQueueLength: Histogram;
  licenseQueueWaitSeconds: Histogram;
  licenseTurnSize: Histogram;
  /** database pool: checkouts of a connection that had to wait for one (PostgreSQL) */
  poolWaits: Counter;
}

export function createMetrics(store: Store, opts: { defaultMetrics?: boolean; now?: () => number } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'floatd_' });
  const requests = new Counter({
    name: 'floatd_http_requests_total',
    help: 'HTTP requests answered',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'floatd_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [registry],
  });
  const grants = new Counter({
    name: 'floatd_seat_grants_total',
    help: 'New seats granted (checkout and offline checkout)',
    registers: [registry],
  });
  const denials = new Counter({
    name: 'floatd_seat_denials_total',
    help: 'Checkouts denied with NO_SEATS_AVAILABLE',
    registers: [registry],
  });
  const overdraftGrants = new Counter({
    name: 'floatd_overdraft_grants_total',
    help: "Seats granted beyond a license's count (overdraft)",
    registers: [registry],
  });
  const queueJoins = new Counter({
    name: 'floatd_queue_joins_total',
    help: 'Checkouts that waited for a seat in a queue (one per waiter, however often it asked again)',
    registers: [registry],
  });
  const webhookAttempts = new Counter({
    name: 'floatd_webhook_attempts_total',
    help: 'Webhook delivery attempts by outcome: delivered (a 2xx), retry (to be tried again), failed (a day of retries is over)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const queueWait = new Histogram({
    name: 'floatd_queue_wait_seconds',
    help: 'How long a waiter waited in the queue before it got its seat',
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });
  new Gauge({
    name: 'floatd_queue_waiting',
    help: 'Checkouts waiting in the queues right now, over all licenses',
    registers: [registry],
    async collect() {
      let n = 0;
      for (const v of (await store.waitingCounts((opts.now ?? Date.now)())).values()) n += v;
      this.set(n);
    },
  });
  const policyRefusals = new Counter({
    name: 'floatd_policy_refusals_total',
    help: 'Checkouts refused by a license policy: CHECKOUT_NOT_ALLOWED, SEAT_LIMIT_REACHED, RESERVED_FOR_OTHERS, DEVICE_CLONE_REFUSED, VM_NOT_ALLOWED',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const released = new Counter({
    name: 'floatd_seat_releases_total',
    help: 'Seats returned to the pool, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const reclaimed = new Counter({
    name: 'floatd_seats_reclaimed_total',
    help: 'Dead leases freed by the reclaimer or "reclaim now"',
    registers: [registry],
  });
  const heartbeats = new Counter({
    name: 'floatd_heartbeats_total',
    help: 'Heartbeats renewed, by how the renewal was written: batched (write-behind) or immediate (before the answer)',
    labelNames: ['write'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'floatd_heartbeat_renewals_pending',
    help: 'Heartbeat renewals answered and not written yet on this node (written when due, service/renewals.ts)',
    registers: [registry],
    collect() {
      this.set(metrics.pendingRenewals?.() ?? 0);
    },
  });
  new Gauge({
    name: 'floatd_seats_in_use',
    help: 'Seats held right now, over all licenses',
    labelNames: ['mode'] as const,
    registers: [registry],
    async collect() {
      const t = await store.seatTotals();
      this.set({ mode: 'all' }, t.seatsUsed);
      this.set({ mode: 'offline' }, t.seatsOffline);
    },
  });
  const clockRollback = new Gauge({
    name: 'floatd_server_clock_rollback',
    help: '1 while the server clock is set back behind its latest trusted time: new grants are refused',
    registers: [registry],
  });
  const trustedTime = new Gauge({
    name: 'floatd_server_trusted_time_seconds',
    help: 'The latest time the server trusted (high-water mark of its clock), Unix seconds',
    registers: [registry],
  });
  const clockRefusals = new Counter({
    name: 'floatd_server_clock_rollback_refusals_total',
    help: 'Grants refused with SERVER_CLOCK_ROLLBACK',
    registers: [registry],
  });
  const clockSteps = new Counter({
    name: 'floatd_clock_steps_total',
    help: 'Steps of the wall clock detected against the monotonic clock (leases get one TTL of grace after each)',
    registers: [registry],
  });
  const clockOffset = new Gauge({
    name: 'floatd_clock_offset_seconds',
    help: "Cluster: this node's clock minus the database clock, seconds (last measurement)",
    registers: [registry],
  });
  const clockFenced = new Gauge({
    name: 'floatd_clock_fenced',
    help: "Cluster: 1 while this node's clock offset is past the bound: it grants and renews nothing and /readyz answers 503",
    registers: [registry],
  });
  const entitlementSerial = new Gauge({
    name: 'floatd_entitlements_serial',
    help: 'On-premise: serial of the license file in force (0 = none)',
    registers: [registry],
  });
  const entitlementNotAfter = new Gauge({
    name: 'floatd_entitlements_not_after_seconds',
    help: 'On-premise: end of the license file in force, Unix seconds (0 = none or no end)',
    registers: [registry],
  });
  const connectionRefusals = new Counter({
    name: 'floatd_connections_refused_total',
    help: 'Connections refused or closed by the caps: per-address (too many from one address), total (near the file-descriptor limit), headers-timeout (no complete request in time), idle-unauthenticated',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const connectionsOpen = new Gauge({
    name: 'floatd_connections_open',
    help: 'TCP connections open to the HTTP server',
    registers: [registry],
  });
  const licenseQueueWaiting = new Gauge({
    name: 'floatd_license_queue_waiting',
    help: "Seat operations waiting for their license key's turn (over all keys), holding no database connection",
    registers: [registry],
  });
  const licenseQueueLength = new Histogram({
    name: 'floatd_license_queue_length',
    help: "Length of its license key's queue that a seat operation found when it arrived (0 = ran at once)",
    buckets: [0, 1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
  const licenseQueueWaitSeconds = new Histogram({
    name: 'floatd_license_queue_wait_seconds',
    help: "Time a seat operation waited for its license key's turn",
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  const licenseTurnSize = new Histogram({
    name: 'floatd_license_turn_size',
    help: "Seat transactions of one license key that shared one commit (PostgreSQL's per-license group commit)",
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [registry],
  });
  const poolWaits = new Counter({
    name: 'floatd_db_pool_waits_total',
    help: 'Transactions that found every database connection of the pool busy and waited for one',
    registers: [registry],
  });
  const seatCounterRepairs = new Counter({
    name: 'floatd_seat_counter_repairs_total',
    help: 'Seat counters that disagreed with the lease rows they count and were repaired (edited database, or a bug)',
    registers: [registry],
  });
  const stateTampered = new Gauge({
    name: 'floatd_state_tampered',
    help: 'On-premise: 1 while the sealed server state fails its check (new grants refused with STATE_TAMPERED)',
    registers: [registry],
  });
  const metrics: Metrics = {
    registry,
    requests,
    duration,
    grants,
    denials,
    overdraftGrants,
    queueJoins,
    queueWait,
    webhookAttempts,
    policyRefusals,
    released,
    reclaimed,
    heartbeats,
    clockRollback,
    trustedTime,
    clockRefusals,
    clockSteps,
    clockOffset,
    clockFenced,
    entitlementSerial,
    entitlementNotAfter,
    seatCounterRepairs,
    stateTampered,
    connectionRefusals,
    connectionsOpen,
    licenseQueueWaiting,
    licenseQueueLength,
    licenseQueueWaitSeconds,
    licenseTurnSize,
    poolWaits,
    onIntegrity: undefined,
    pendingRenewals: undefined,
    seatCounterRepaired(repair) {
      seatCounterRepairs.inc();
      metrics.onIntegrity?.('seat counter disagreed with the lease rows and was repaired (edited database?)', { ...repair });
    },
  };
  return metrics;
}

/** The store's waits as metrics (`Store.observer`): pool waits, and the per-license group commit's queues and turns. */
export function transactionMetrics(metrics: Metrics): StoreObserver {
  return {
    poolWait: () => metrics.poolWaits.inc(),
    queued: (ahead) => metrics.licenseQueueLength.observe(ahead),
    waiting: (total) => metrics.licenseQueueWaiting.set(total),
    waited: (ms) => metrics.licenseQueueWaitSeconds.observe(ms / 1000),
    turn: (size) => metrics.licenseTurnSize.observe(size),
  };
}
