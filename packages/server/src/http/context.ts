import type { FastifyInstance } from 'fastify';
import type { ClockFence } from '../service/clockFence.js';
import type { Clock } from '../domain/clock.js';
import type { KeyRing } from '../keys/ring.js';
import type { AdminAuth } from '../service/auth.js';
import type { CatalogueService } from '../service/catalogue.js';
import type { CustomerService } from '../service/customers.js';
import type { WebhookService } from '../service/webhooks.js';
import type { LicensingService } from '../service/licensing.js';
import type { Metrics } from '../service/metrics.js';
import type { ReclaimService } from '../service/reclaim.js';
import type { RenewalBuffer } from '../service/renewals.js';
import type { OverviewService } from '../service/overview.js';
import type { Store } from '../store/port.js';
import type { StorageHealth } from '../store/errors.js';
import type { AdminToken } from '../domain/types.js';
import type { ServerClockGuard } from '../service/serverClock.js';
import type { EntitlementService } from '../onprem/entitlements.js';
import type { ServerIdentity } from '../onprem/identity.js';
import type { VendorService } from '../onprem/vendor.js';

/** What routes may use: services built once by the composition root. */
export interface AppContext {
  store: Store;
  clock: Clock;
  keys: KeyRing;
  auth: AdminAuth;
  licensing: LicensingService;
  catalogue: CatalogueService;
  customers: CustomerService;
  webhooks: WebhookService;
  reclaim: ReclaimService;
  /** heartbeats' renewals not written yet: the admin views show their times (`overlay`) */
  renewals?: RenewalBuffer | undefined;
  /** the dashboard join and usage totals */
  overview: OverviewService;
  metrics: Metrics;
  clockGuard: ServerClockGuard;
  /** on-prem: the license file in force */
  entitlements?: EntitlementService | undefined;
  identity?: ServerIdentity | undefined;
  /** on-premise: the sealed state (tamper evidence of what bounds enforcement) */
  seal?: import('../onprem/sealedState.js').SealedState | undefined;
  /** a vendor server (started with --vendor-private-key): deployments, activation, usage import */
  vendor?: VendorService | undefined;
  mode: 'hosted' | 'on-prem';
  version: string;
  settings: { reclaimIntervalSeconds: number };
  /** whether the last write failed for the storage's sake (disk full, connection lost): /readyz reports it */
  storageHealth: StorageHealth;
  /** cluster only: fenced while this node's clock is too far from the database's */
  clockFence?: ClockFence | undefined;
  /** false until the node can serve everything (its first admin token written): /readyz answers 503 until then */
  started?: (() => boolean) | undefined;
}

export type Routes = (app: FastifyInstance, ctx: AppContext) => void;

declare module 'fastify' {
  interface FastifyRequest {
    /** canonical license key of a client request (set by the client auth hook) */
    licenseKey: string;
    /** the admin token of an admin request (set by the admin auth hook) */
    admin: AdminToken;
    /** a client answer's session key: signed with HMAC-SHA256 under it when the client asked for RFC 9421 answers (http/security.ts) */
    answerKey?: { keyid: string; key: Buffer } | undefined;
  }
}
