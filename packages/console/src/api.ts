/**
 * The console's only way to the server: the public admin API with
 * `Authorization: Bearer <token>`. The token lives in sessionStorage (gone when the tab
 * closes) and never in a URL.
 */
import { visibleText } from '@floatd/protocol/text';
import type {
  AdminTokenInfo,
  AuditEvent,
  AuditType,
  Device,
  Lease,
  License,
  Product,
  ReclaimReport,
  UsageHour,
} from '@floatd/protocol';

export type { AdminTokenInfo, AuditEvent, AuditType, Device, Lease, License, Product, ReclaimReport, UsageHour };
export type Role = AdminTokenInfo['role'];
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
export interface DashboardRow {
  license: License;
  productName: string | null;
  denialsToday: number;
}
export interface Settings {
  version: string;
  store: string;
  reclaimIntervalSeconds: number;
  serverTime: string;
}
export interface CreatedToken extends AdminTokenInfo {
  token: string;
}
/** One key of the license file in force (on-prem). */
export interface FileLicense {
  id: string;
  productId: string;
  key: string;
  seats: number;
  model: string;
  expiresAt: string | null;
  maxOfflineSeconds: number;
}
export interface LicenseFileSummary {
  serial: number;
  issuedAt: string;
  notBefore: string;
  notAfter: string | null;
  customer: { name?: string; id?: string } | null;
  deploymentId: string | null;
  vendorUrl: string | null;
  boundTo: string | null;
  licenses: FileLicense[];
}
export interface Entitlements {
  mode: string;
  fingerprint: string | null;
  serverPublicKey: string | null;
  licenseFile: LicenseFileSummary | null;
  clock: { trustedTime: string | null; serverTime: string; rolledBack: boolean; tampered: boolean };
  vendor: boolean;
}
export interface Usage {
  items: UsageHour[];
  peakSeats: number;
  denials: number;
  checkouts: number;
}

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

/** An error answer from the server (the envelope), or a network failure (code NETWORK_ERROR). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
  /** `body/seats` → `seats`, when the server named the field at fault. */
  get field(): string | null {
    const f = this.details.field;
    return typeof f === 'string' ? f.replace(/^body\/?/, '').split('/')[0] || null : null;
  }
}

/** Called when the server refuses the token (401) so the app can sign out. */
let onUnauthenticated: (() => void) | null = null;
export function setUnauthenticatedHandler(fn: (() => void) | null): void {
  onUnauthenticated = fn;
}

type Query = Record<string, string | number | boolean | undefined | null>;

function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export async function request<T>(
  method: string,
  path: string,
  opts: { body?: unknown; query?: Query; token?: string; signal?: AbortSignal } = {},
): Promise<T> {
  const token = opts.token ?? storedToken();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(withQuery(path, opts.query), {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: opts.signal,
      cache: 'no-store',
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'NETWORK_ERROR', 'The server could not be reached. Check that floatd is running.', null);
  }
  const text = await res.text();
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!res.ok) {
    const env = (body as { error?: Record<string, unknown> } | null)?.error;
    const { code, message, requestId, ...details } = env ?? {};
    const err = new ApiError(
      res.status,
      typeof code === 'string' ? code : `HTTP_${res.status}`,
      typeof message === 'string' ? message : res.statusText || 'request failed',
      typeof requestId === 'string' ? requestId : res.headers.get('x-request-id'),
      details,
    );
    if (res.status === 401 && !opts.token) onUnauthenticated?.();
    throw err;
  }
  return body as T;
}

/** Follows nextCursor until the end (or maxPages), for the lists the console shows whole. */
export async function all<T>(path: string, query: Query = {}, maxPages = 20): Promise<{ items: T[]; truncated: boolean }> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < maxPages; i++) {
    const page: Page<T> = await request<Page<T>>('GET', path, { query: { ...query, limit: 500, cursor } });
    items.push(...page.items);
    cursor = page.nextCursor;
    if (!cursor) return { items, truncated: false };
  }
  return { items, truncated: true };
}

export const api = {
  whoami: (token?: string) => request<AdminTokenInfo>('GET', '/v1/admin/whoami', { token }),
  settings: () => request<Settings>('GET', '/v1/admin/settings'),
  dashboard: () => all<DashboardRow>('/v1/admin/dashboard'),
  products: () => all<Product>('/v1/admin/products'),
  product: (id: string) => request<Product>('GET', `/v1/admin/products/${id}`),
  createProduct: (name: string) => request<Product>('POST', '/v1/admin/products', { body: { name } }),
  renameProduct: (id: string, name: string) => request<Product>('PATCH', `/v1/admin/products/${id}`, { body: { name } }),
  deleteProduct: (id: string) => request<{ deleted: true }>('DELETE', `/v1/admin/products/${id}`),
  licenses: () => all<License>('/v1/admin/licenses'),
  license: (id: string) => request<License>('GET', `/v1/admin/licenses/${id}`),
  createLicense: (body: Record<string, unknown>) => request<License>('POST', '/v1/admin/licenses', { body }),
  updateLicense: (id: string, body: Record<string, unknown>) => request<License>('PATCH', `/v1/admin/licenses/${id}`, { body }),
  suspend: (id: string) => request<License>('POST', `/v1/admin/licenses/${id}/suspend`, { body: {} }),
  resume: (id: string) => request<License>('POST', `/v1/admin/licenses/${id}/resume`, { body: {} }),
  leases: (id: string) => request<{ items: Lease[] }>('GET', `/v1/admin/licenses/${id}/leases`),
  devices: (id: string) => request<{ items: Device[] }>('GET', `/v1/admin/licenses/${id}/devices`),
  release: (leaseId: string, force: boolean) =>
    request<{ released: true; leaseId: string; offlineOverridden: boolean }>('POST', `/v1/admin/leases/${leaseId}/release`, {
      body: force ? { force: true } : {},
    }),
  reclaim: () => request<ReclaimReport>('POST', '/v1/admin/reclaim', { body: {} }),
  usage: (id: string, from: string, to: string) => request<Usage>('GET', `/v1/admin/licenses/${id}/usage`, { query: { from, to } }),
  audit: (query: Query) => request<Page<AuditEvent>>('GET', '/v1/admin/audit', { query: { limit: 50, ...query } }),
  deleteLicense: (id: string, force: boolean) =>
    request<{ deleted: boolean; released: number }>('DELETE', `/v1/admin/licenses/${id}`, { query: { force: force ? 'true' : undefined } }),
  tokens: () => request<{ items: AdminTokenInfo[] }>('GET', '/v1/admin/tokens'),
  createToken: (name: string, role: Role) => request<CreatedToken>('POST', '/v1/admin/tokens', { body: { name, role } }),
  revokeToken: (id: string) => request<AdminTokenInfo>('POST', `/v1/admin/tokens/${id}/revoke`, { body: {} }),
  entitlements: () => request<Entitlements>('GET', '/v1/admin/entitlements'),
  loadLicenseFile: (licenseFile: unknown) =>
    request<{ loaded: LicenseFileSummary; unchanged: boolean }>('POST', '/v1/admin/entitlements', { body: { licenseFile } }),
};

/** The default period of usage reports, the same as the server's and the CLI's (`floatd usage`): the last 24 hours. */
export const DEFAULT_USAGE_RANGE = '24h';

/** The customer or label a vendor put in a key's metadata (until customers are records of their own). */
/** The customer a key's metadata names, made visible (metadata is free text: control characters are shown escaped). */
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
