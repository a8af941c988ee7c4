/**
 * One declaration per endpoint: method, path, schemas, authentication, role and
 * the error codes it answers. The server registers its handlers against these
 * (validation, OpenAPI, authentication and the role check come from them); the
 * SDK, the CLI and the console call them with `call` (`./call.ts`). A path, a field or
 * a role is written here and nowhere else.
 *
 * ```ts
 * export const checkout = route({
 *   method: 'POST', path: '/v1/client/checkout', auth: 'license', summary: 'Check out a seat',
 *   body: CheckoutRequest, responses: { 200: Grant, 201: Grant }, errors: ['NO_SEATS_AVAILABLE'],
 * });
 * ```
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { ERRORS, type ErrorCode } from './errors.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
/**
 * Who may call: `none` (operations), `license` (`Authorization: License <key>`),
 * `admin` (`Authorization: Bearer <admin token>` with `role`), `activation`
 * (`Authorization: Activation <key>`, vendor), `document` (the body's own signature, vendor).
 */
export type Auth = 'none' | 'license' | 'admin' | 'activation' | 'document';
export type AdminRole = 'viewer' | 'operator' | 'admin';
/**
 * What a customer-scoped admin token (one customer's own administrator) may reach through an admin route:
 * - `vendor`: nothing (the catalogue, tokens, groups, server keys, other customers): `403 CUSTOMER_SCOPE`;
 * - `license` / `lease` / `customer`: the route's `:licenseId` / `:leaseId` / `:customerId` must be the
 *   customer's own; another customer's answers exactly what an id that does not exist answers (404);
 * - `own`: the route itself narrows what it reads or changes to the token's customer (lists, the dashboard,
 *   audit, reclamation, events);
 * - `any`: nothing customer-specific (who am I, server settings).
 * A route without a scope is `vendor`: a new route is closed to customers until its declaration opens it.
 */
export type CustomerScope = 'vendor' | 'license' | 'lease' | 'customer' | 'own' | 'any';

export interface RouteSpec {
  method: Method;
  /** fastify style: `/v1/admin/licenses/:licenseId` */
  path: string;
  summary: string;
  tags: readonly string[];
  auth: Auth;
  /** admin routes: the least role that may call */
  role?: AdminRole;
  /** admin routes: what a customer-scoped token may reach (see `CustomerScope`; default `vendor`) */
  scope?: CustomerScope;
  params?: TSchema;
  query?: TSchema;
  body?: TSchema;
  /** the body may be left out (an action without arguments) */
  optionalBody?: boolean;
  /** the success answers by status; `raw` routes answer something else than JSON */
  responses: { 200?: TSchema; 201?: TSchema };
  /** the error codes this route answers besides the common ones of its `auth` (see `errorsOf`) */
  errors: readonly ErrorCode[];
  /** a larger body limit than the server's default (signed documents) */
  bodyLimit?: number;
  /** not JSON (metrics, OpenAPI, an event stream): no typed answer */
  raw?: boolean;
  /** a `raw` route's 200 as OpenAPI shows it: its media type, what it is, and the schema of what it carries */
  rawResponse?: { contentType: string; description: string; schema: TSchema };
  /** OpenAPI operationId: the declaration's exported name (set by `routes/index.ts`) */
  operationId?: string;
}

/** Declares a route; keeps its literal types so handlers and calls are checked against it. */
export function route<const S extends RouteSpec>(spec: S): S {
  for (const code of spec.errors) if (!(code in ERRORS)) throw new Error(`${spec.method} ${spec.path}: unknown error code ${code}`);
  return spec;
}

type StaticOr<T, Else> = T extends TSchema ? Static<T> : Else;
export type ParamsOf<R extends RouteSpec> = StaticOr<R['params'], Record<string, never>>;
export type QueryOf<R extends RouteSpec> = StaticOr<R['query'], Record<string, never>>;
export type BodyOf<R extends RouteSpec> = R['body'] extends TSchema
  ? R['optionalBody'] extends true
    ? Static<R['body']> | undefined
    : Static<R['body']>
  : undefined;
export type ReplyOf<R extends RouteSpec> = { [K in keyof R['responses']]: StaticOr<R['responses'][K], never> }[keyof R['responses']];

/** What every route of an authentication kind may answer, whatever it does. */
const COMMON: Record<Auth, readonly ErrorCode[]> = {
  none: ['SERVICE_UNAVAILABLE', 'STORAGE_UNAVAILABLE', 'INTERNAL_ERROR'],
  license: [
    'VALIDATION_FAILED',
    'MALFORMED_JSON',
    'UNSUPPORTED_MEDIA_TYPE',
    'PAYLOAD_TOO_LARGE',
    'INVALID_LICENSE_KEY',
    'RATE_LIMITED',
    'STORAGE_UNAVAILABLE',
    'SERVICE_UNAVAILABLE',
    'INTERNAL_ERROR',
  ],
  admin: [
    'VALIDATION_FAILED',
    'MALFORMED_JSON',
    'UNSUPPORTED_MEDIA_TYPE',
    'PAYLOAD_TOO_LARGE',
    'UNAUTHENTICATED',
    'INSUFFICIENT_ROLE',
    'CUSTOMER_SCOPE',
    'RATE_LIMITED',
    'STORAGE_UNAVAILABLE',
    'SERVICE_UNAVAILABLE',
    'INTERNAL_ERROR',
  ],
  activation: [
    'VALIDATION_FAILED',
    'MALFORMED_JSON',
    'UNSUPPORTED_MEDIA_TYPE',
    'PAYLOAD_TOO_LARGE',
    'ACTIVATION_KEY_INVALID',
    'STORAGE_UNAVAILABLE',
    'SERVICE_UNAVAILABLE',
    'INTERNAL_ERROR',
  ],
  document: [
    'VALIDATION_FAILED',
    'MALFORMED_JSON',
    'UNSUPPORTED_MEDIA_TYPE',
    'PAYLOAD_TOO_LARGE',
    'STORAGE_UNAVAILABLE',
    'SERVICE_UNAVAILABLE',
    'INTERNAL_ERROR',
  ],
};

/** Every error code a route may answer: its own and the common ones of its authentication. */
export function errorsOf(r: RouteSpec): ReadonlySet<ErrorCode> {
  return new Set([...COMMON[r.auth], ...r.errors]);
}

/** The concrete path: `:name` segments replaced by the (encoded) params. */
export function pathOf(r: RouteSpec, params: Record<string, unknown> = {}): string {
  return r.path.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined || v === null || v === '') throw new Error(`${r.method} ${r.path}: missing path parameter ${name}`);
    return encodeURIComponent(String(v));
  });
}

/** `path?query`: undefined values are left out; booleans and numbers as text. */
export function urlOf(r: RouteSpec, params?: Record<string, unknown>, query?: Record<string, unknown>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null) q.set(k, String(v));
  const s = q.toString();
  return pathOf(r, params) + (s ? `?${s}` : '');
}

/** The OpenAPI (fastify) name of a route, `METHOD /path/{param}`, as it appears in /openapi.json. */
export function routeName(r: RouteSpec): string {
  return `${r.method} ${r.path.replace(/:([A-Za-z]+)/g, '{$1}')}`;
}
