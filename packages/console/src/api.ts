/**
 * The console's only way to the server: the public admin API with
 * `Authorization: Bearer <token>`. The token lives in sessionStorage (gone when the tab
 * closes) and never in a URL.
 */
import { visibleText } from '@floatd/protocol/text';
import {
  ApiError,
  call,
  DEFAULT_CUSTOMER_ID,
  routes,
  WEBHOOK_EVENT_TYPES as WEBHOOK_TYPES,
  type CallInput,
  type ReplyOf,
  type RouteSpec,
} from '@floatd/protocol';
import type {
  AdminTokenInfo,
  AuditEvent,
  AuditType,
  Device,
  Lease,
  License,
  Page,
  Product,
  ReclaimReport,
  UsageHour,
} from '@floatd/protocol';

export { ApiError };
export type { AdminTokenInfo, AuditEvent, AuditType, Device, Lease, License, Page, Product, ReclaimReport, UsageHour };
export type Role = AdminTokenInfo['role'];

const A = routes.admin;
const O = routes.onprem;
// The answers the pages show, named after their routes (a field renamed in protocol breaks the console's build).
export type DashboardRow = ReplyOf<typeof A.dashboard>['items'][number];
export type Settings = ReplyOf<typeof A.settings>;
export type CreatedToken = ReplyOf<typeof A.createToken>;
export type Group = ReplyOf<typeof A.getGroup>;
export type Entitlements = ReplyOf<typeof O.entitlementStatus>;
export type LicenseFileSummary = ReplyOf<typeof O.loadEntitlements>['loaded'];
export type Usage = ReplyOf<typeof A.licenseUsage>;
export type AuditQuery = NonNullable<CallInput<typeof A.listAudit>['query']>;
export type CreateLicenseBody = CallInput<typeof A.createLicense>['body'];
export type UpdateLicenseBody = CallInput<typeof A.updateLicense>['body'];
export type Customer = ReplyOf<typeof A.updateCustomer>;
export type CustomerDetail = ReplyOf<typeof A.getCustomer>;
export type CreateCustomerBody = CallInput<typeof A.createCustomer>['body'];
export type Recommendation = ReplyOf<typeof A.licenseRecommendation>;
export type Webhook = ReplyOf<typeof A.updateWebhook>;
export type CreatedWebhook = ReplyOf<typeof A.createWebhook>;
export type WebhookDelivery = ReplyOf<typeof A.redeliverWebhook>;
/** The event types a webhook endpoint can ask for (from the wire schema). */
export const WEBHOOK_EVENT_TYPES: readonly string[] = WEBHOOK_TYPES;
/** The built-in customer: licenses made without one belong to it. */
export const DEFAULT_CUSTOMER = DEFAULT_CUSTOMER_ID;
/** The audit event types the server knows (from the wire schema). */
export const AUDIT_TYPES: AuditType[] = routes.admin.listAudit.query.properties.type.anyOf.map((t) => t.const);

const TOKEN_KEY = 'floatd.adminToken';

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}
export function storeToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** `body/seats` → `seats`, when the server named the field at fault. */
export function fieldOf(e: ApiError): string | null {
  const f = e.details.field;
  return typeof f === 'string' ? f.replace(/^body\/?/, '').split('/')[0] || null : null;
}

/** Called when the server refuses the token (401) so the app can sign out. */
let onUnauthenticated: (() => void) | null = null;
export function setUnauthenticatedHandler(fn: (() => void) | null): void {
  onUnauthenticated = fn;
}

/** The console's one way to the server: a declared route, the stored token (or one being tried), the page's origin. */
export async function request<R extends RouteSpec>(
  route: R,
  input: CallInput<R>,
  opts: { token?: string | undefined; signal?: AbortSignal } = {},
): Promise<ReplyOf<R>> {
  const token = opts.token ?? storedToken();
  try {
    return await call(route, input, {
      ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      requestInit: { cache: 'no-store' },
    });
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (e.status === 0)
      throw new ApiError(
        0,
        'NETWORK_ERROR',
        'The server could not be reached. Check that floatd is running.',
        undefined,
        {},
        undefined,
        null,
        { cause: e.cause },
      );
    if (e.status === 401 && !opts.token) onUnauthenticated?.();
    throw e;
  }
}

/** A list route the console shows whole: a page of items behind a cursor. */
type ListRoute = RouteSpec & { method: 'GET'; query: { properties: { cursor: unknown; limit: unknown } } };

type ItemOf<R extends RouteSpec> = ReplyOf<R> extends { items: (infer T)[] } ? T : never;

/** Follows nextCursor until the end (or maxPages), for the lists the console shows whole; `filters` go in every page's query. */
export async function all<R extends ListRoute>(
  route: R,
  maxPages = 20,
  filters: Record<string, string> = {},
): Promise<{ items: ItemOf<R>[]; truncated: boolean }> {
  const items: ItemOf<R>[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < maxPages; i++) {
    const input = { query: { ...filters, limit: 500, cursor } } as unknown as CallInput<R>;
    const page = (await request(route, input)) as unknown as Page<ItemOf<R>>;
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
    if (!cursor) return { items, truncated: false };
  }
  return { items, truncated: true };
}

/** Leaves out empty filters (a cleared field of a form is no filter). */
function present<T extends Record<string, unknown>>(query: T): Partial<T> {
  return Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== '')) as Partial<T>;
}

/** A customer's token (`whoami.customerId`): the catalogue is not its to read, so the pages get no products rather than a 403. */
let customerScope: string | null = null;
export function setCustomerScope(customerId: string | null): void {
  customerScope = customerId;
}
const noProducts = async (): Promise<{ items: Product[]; truncated: boolean }> => ({ items: [], truncated: false });

/**
 * Product names by id. The vendor reads the catalogue; a customer's token may not (CUSTOMER_SCOPE), so it takes the
 * names its own customer page carries for its licenses.
 */
async function productNames(): Promise<Map<string, string>> {
  if (customerScope) {
    const own = await request(A.getCustomer, { params: { customerId: customerScope } });
    return new Map(own.licenses.map((l) => [l.productId, l.productName ?? l.productId]));
  }
  return new Map((await all(A.listProducts)).items.map((p) => [p.id, p.name]));
}

export const api = {
  whoami: (token?: string) => request(A.whoami, {}, { token }),
  settings: () => request(A.settings, {}),
  dashboard: () => all(A.dashboard),
  products: () => (customerScope ? noProducts() : all(A.listProducts)),
  product: (productId: string) =>
    customerScope ? Promise.reject(new Error('not for a customer token')) : request(A.getProduct, { params: { productId } }),
  createProduct: (name: string) => request(A.createProduct, { body: { name } }),
  renameProduct: (productId: string, name: string) => request(A.updateProduct, { params: { productId }, body: { name } }),
  deleteProduct: (productId: string) => request(A.deleteProduct, { params: { productId } }),
  licenses: () => all(A.listLicenses),
  license: (licenseId: string) => request(A.getLicense, { params: { licenseId } }),
  createLicense: (body: CreateLicenseBody) => request(A.createLicense, { body }),
  updateLicense: (licenseId: string, body: UpdateLicenseBody) => request(A.updateLicense, { params: { licenseId }, body }),
  suspend: (licenseId: string) => request(A.suspendLicense, { params: { licenseId }, body: {} }),
  resume: (licenseId: string) => request(A.resumeLicense, { params: { licenseId }, body: {} }),
  leases: (licenseId: string) => request(A.listLeases, { params: { licenseId } }),
  devices: (licenseId: string) => request(A.listDevices, { params: { licenseId } }),
  release: (leaseId: string, force: boolean) => request(A.releaseLease, { params: { leaseId }, body: force ? { force: true } : {} }),
  reclaim: () => request(A.reclaimNow, { body: {} }),
  usage: (licenseId: string, from: string, to: string) => request(A.licenseUsage, { params: { licenseId }, query: { from, to } }),
  audit: (query: AuditQuery) => request(A.listAudit, { query: present({ limit: 50, ...query }) }),
  deleteLicense: (licenseId: string, force: boolean) =>
    request(A.deleteLicense, { params: { licenseId }, query: force ? { force: true } : {} }),
  tokens: () => request(A.listTokens, {}),
  createToken: (name: string, role: Role, customerId?: string) =>
    request(A.createToken, { body: customerId ? { name, role, customerId } : { name, role } }),
  productNames,
  /** Every customer (a customer's token: its own), or those a search finds (name, license key, device host or user). */
  customers: (q?: string) => all(A.listCustomers, 20, q ? { q } : {}),
  /** Customer names by id, for the pages that name a license's customer. */
  customerNames: async () => new Map((await all(A.listCustomers)).items.map((c) => [c.id, c.name])),
  customer: (customerId: string) => request(A.getCustomer, { params: { customerId } }),
  createCustomer: (body: CreateCustomerBody) => request(A.createCustomer, { body }),
  updateCustomer: (customerId: string, body: CallInput<typeof A.updateCustomer>['body']) =>
    request(A.updateCustomer, { params: { customerId }, body }),
  deleteCustomer: (customerId: string) => request(A.deleteCustomer, { params: { customerId } }),
  recommendation: (licenseId: string, days = 30) => request(A.licenseRecommendation, { params: { licenseId }, query: { days } }),
  webhooks: () => request(A.listWebhooks, {}),
  createWebhook: (body: CallInput<typeof A.createWebhook>['body']) => request(A.createWebhook, { body }),
  updateWebhook: (webhookId: string, body: CallInput<typeof A.updateWebhook>['body']) =>
    request(A.updateWebhook, { params: { webhookId }, body }),
  deleteWebhook: (webhookId: string) => request(A.deleteWebhook, { params: { webhookId } }),
  pingWebhook: (webhookId: string) => request(A.pingWebhook, { params: { webhookId }, body: {} }),
  deliveries: (webhookId: string) => request(A.listWebhookDeliveries, { params: { webhookId }, query: { limit: 100 } }),
  redeliver: (deliveryId: string) => request(A.redeliverWebhook, { params: { deliveryId }, body: {} }),
  revokeToken: (tokenId: string) => request(A.revokeToken, { params: { tokenId }, body: {} }),
  groups: () => request(A.listGroups, {}),
  putGroup: (name: string, users: string[], hosts: string[]) => request(A.putGroup, { params: { name }, body: { users, hosts } }),
  deleteGroup: (name: string) => request(A.deleteGroup, { params: { name } }),
  entitlements: () => request(O.entitlementStatus, {}),
  loadLicenseFile: (licenseFile: Record<string, unknown>) => request(O.loadEntitlements, { body: { licenseFile } }),
};

/** The default period of usage reports, the same as the server's and the CLI's (`floatd usage`): the last 24 hours. */
export const DEFAULT_USAGE_RANGE = '24h';

/**
 * The name to show for a license's customer: its customer record's; for the built-in customer (licenses made without one),
 * the customer its metadata names if any (how licenses named their customer before customers were records).
 */
export function licenseCustomer(l: Pick<License, 'customerId' | 'metadata'>, names: Map<string, string>): string {
  if (l.customerId === DEFAULT_CUSTOMER_ID) return customerOf(l.metadata) ?? names.get(l.customerId) ?? 'Unassigned';
  return names.get(l.customerId) ?? l.customerId;
}

/** As licenseCustomer, but null for a license of the built-in customer whose metadata names none (nothing worth a line). */
export function namedCustomer(l: Pick<License, 'customerId' | 'metadata'>, names: Map<string, string>): string | null {
  if (l.customerId === DEFAULT_CUSTOMER_ID && !customerOf(l.metadata)) return null;
  return licenseCustomer(l, names);
}

/** The customer a license's metadata names, made visible (metadata is free text: control characters are shown escaped). */
export function customerOf(metadata: Record<string, unknown> | undefined): string | null {
  if (!metadata) return null;
  for (const k of ['customer', 'customerName', 'label', 'name', 'company']) {
    const v = metadata[k];
    if (typeof v === 'string' && v.trim()) return visibleText(v.trim());
    if (v && typeof v === 'object' && typeof (v as { name?: unknown }).name === 'string') return visibleText((v as { name: string }).name);
  }
  return null;
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
/** Whether a role may do what `needed` may (mirrors the server's check; the server still decides). */
export const can = (role: Role, needed: Role): boolean => RANK[role] >= RANK[needed];
