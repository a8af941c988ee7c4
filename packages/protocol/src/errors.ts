/**
 * Every error code floatd answers with, its HTTP status and its meaning.
 *
 * This table is the single source: the server maps codes to statuses from it,
 * the client recognises codes from it, and a test checks that `docs/errors.md`
 * lists every entry with the same status. Codes are stable: never rename one,
 * only add.
 */
export const ERRORS = {
  // --- request shape -------------------------------------------------------
  VALIDATION_FAILED: {
    status: 400,
    meaning: 'The request body, query or path does not match the schema (wrong type, unknown field, missing field, out of range).',
  },
  MALFORMED_JSON: { status: 400, meaning: 'The body is not valid JSON.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'The body is not `application/json`.' },
  PAYLOAD_TOO_LARGE: { status: 413, meaning: 'The body exceeds the server limit (64 KiB).' },
  HEADERS_TOO_LARGE: { status: 431, meaning: 'The request line and headers together exceed the server limit (16 KiB).' },
  REQUEST_TIMEOUT: { status: 408, meaning: 'The request was not received completely in time.' },
  MALFORMED_REQUEST: {
    status: 400,
    meaning:
      'The bytes received are not a valid HTTP/1.1 request (unknown method, invalid characters in the path or a header, bad framing).',
  },
  ROUTE_NOT_FOUND: { status: 404, meaning: 'No route has this method and path.' },
  INVALID_POLICY: {
    status: 422,
    meaning:
      'The license fields are individually valid but contradict each other (e.g. a subscription without an expiry, a heartbeat interval not shorter than the lease TTL).',
  },

  // --- authentication ------------------------------------------------------
  UNAUTHENTICATED: { status: 401, meaning: 'Admin route called without a valid `Authorization: Bearer <admin token>`.' },
  INSUFFICIENT_ROLE: {
    status: 403,
    meaning:
      'The admin token is valid but its role may not do this (viewer: read only; operator: read, leases and reclamation; admin: everything).',
  },
  CUSTOMER_SCOPE: {
    status: 403,
    meaning:
      "The admin token belongs to one customer: it reaches that customer's licenses, leases, usage and audit, never the catalogue, tokens, groups or another customer.",
  },
  ADMIN_TOKEN_NOT_FOUND: { status: 404, meaning: 'No admin token has this id.' },
  LAST_ADMIN_TOKEN: { status: 409, meaning: 'Revoking the last active token with role admin would lock every administrator out.' },
  RATE_LIMITED: {
    status: 429,
    meaning:
      'Too many requests from this address or for this license key, or too many failed authentications from this address; wait the `Retry-After` seconds (also in `retryAfterSeconds`).',
  },
  CORS_ORIGIN_NOT_ALLOWED: {
    status: 403,
    meaning:
      'A browser preflight from an origin that is not in `FLOATD_CORS_ORIGINS`: the admin API is not usable cross-origin unless allowed.',
  },
  INVALID_LICENSE_KEY: {
    status: 401,
    meaning:
      'Client route called without `Authorization: License <key>`, or the key is malformed or unknown (deliberately the same answer for all three).',
  },

  // --- catalogue -----------------------------------------------------------
  PRODUCT_NOT_FOUND: { status: 404, meaning: 'No product has this id.' },
  PRODUCT_HAS_LICENSES: { status: 409, meaning: 'A product that still owns license keys cannot be deleted.' },
  LICENSE_NOT_FOUND: { status: 404, meaning: 'No license key has this id (admin API).' },
  WEBHOOK_NOT_FOUND: { status: 404, meaning: 'No webhook endpoint has this id.' },
  WEBHOOK_DELIVERY_NOT_FOUND: { status: 404, meaning: 'No webhook delivery has this id.' },
  CUSTOMER_NOT_FOUND: { status: 404, meaning: "No customer has this id (or it is not the admin token's own customer)." },
  CUSTOMER_HAS_LICENSES: { status: 409, meaning: 'A customer that still owns license keys cannot be deleted; move or delete them first.' },
  DEFAULT_CUSTOMER: { status: 409, meaning: 'The built-in customer (licenses created without one) cannot be deleted.' },
  SEATS_HELD: { status: 409, meaning: 'The license still has seats held; delete with `force=true` to release them.' },

  // --- seats and leases ----------------------------------------------------
  NO_SEATS_AVAILABLE: {
    status: 409,
    meaning: 'Every seat is held by another device; the answer carries seats total/used and when the earliest lease expires.',
  },
  INSTANCE_LIMIT_REACHED: { status: 409, meaning: 'The device already runs the maximum number of instances allowed per device.' },
  DEVICE_CLONE_REFUSED: {
    status: 409,
    meaning:
      "Another machine (other host name, boot id or address) already uses this device fingerprint, and the license's clone policy is `refuse`.",
  },
  CHECKOUT_NOT_ALLOWED: {
    status: 403,
    meaning: "The license's access policy does not let this user or host check out (not on its allow list, or on its deny list).",
  },
  SEAT_LIMIT_REACHED: {
    status: 409,
    meaning: 'The user, host or group already holds the most seats the license lets it hold at once (detail `principal`, `max`).',
  },
  RESERVED_FOR_OTHERS: {
    status: 409,
    meaning: 'Every seat still free is reserved for other users, hosts or groups (FlexNet LM_RESVFOROTHERS; detail `seatsReserved`).',
  },
  GROUP_NOT_FOUND: { status: 404, meaning: 'No group has this name.' },
  UNKNOWN_FEATURE: {
    status: 400,
    meaning:
      'The checkout names a feature the license does not have (detail `feature`, `features`: the ones it has; `base` is the base pool).',
  },
  NO_FEATURE_SEATS_AVAILABLE: {
    status: 409,
    meaning:
      'Every seat of a feature the checkout needs is held (detail `feature`, `seatsTotal`, `seatsUsed`); a grant of several features is all or nothing, so nothing was taken.',
  },
  BASE_POOL_FIXED: {
    status: 409,
    meaning: 'A held seat cannot gain or lose the base pool (only its other features change): check out again with the features wanted.',
  },
  VM_NOT_ALLOWED: {
    status: 403,
    meaning: "The client says it runs in a virtual machine or a container, and the license's VM policy is `deny`.",
  },
  LEASE_NOT_FOUND: {
    status: 404,
    meaning: 'The lease does not exist for this license (checked in, reclaimed, force-released, or never existed): check out again.',
  },
  LICENSE_SUSPENDED: { status: 403, meaning: 'The license key is suspended by an administrator.' },
  LICENSE_EXPIRED: { status: 403, meaning: 'The subscription has passed its expiry date.' },
  TRIAL_EXPIRED: { status: 403, meaning: 'The trial period (counted from the first checkout) is over.' },

  // --- offline -------------------------------------------------------------
  OFFLINE_NOT_ALLOWED: { status: 403, meaning: 'The license forbids offline checkout (maximum offline duration 0).' },
  OFFLINE_DURATION_EXCEEDED: { status: 422, meaning: 'The requested offline duration is longer than the license allows.' },
  OFFLINE_SEAT_LIMIT_REACHED: { status: 409, meaning: 'The cap on seats held offline at once is reached.' },
  OFFLINE_LEASE_ACTIVE: {
    status: 409,
    meaning: 'The lease is checked out offline until its Offline Expiry Date; release it with `force: true` (audited).',
  },
  LEASE_NOT_OFFLINE: { status: 409, meaning: 'Returning an offline lease that is not offline.' },

  // --- on-premise mode and server clock ------------------------------------
  ENTITLEMENT_MANAGED: {
    status: 403,
    meaning:
      'On an on-premise server, products, keys, seats, models, expiry and offline limits come from the vendor-signed license file: load a new file to change them.',
  },
  ENTITLEMENT_INVALID: {
    status: 422,
    meaning:
      'The license file does not verify: bad signature, wrong vendor key, unknown format, bound to another server, or outside its validity window.',
  },
  ENTITLEMENT_ROLLBACK: {
    status: 409,
    meaning:
      'The license file has a lower serial than the one already loaded (or the same serial with different content): files never go back.',
  },
  ENTITLEMENT_MISSING: {
    status: 403,
    meaning: 'On-premise server without a valid license file: nothing can be granted until an administrator loads one.',
  },
  ENTITLEMENT_EXPIRED: {
    status: 403,
    meaning: 'The on-premise license file is past its validity window (or not yet valid): the vendor must issue a renewal.',
  },
  SERVER_CLOCK_ROLLBACK: {
    status: 503,
    meaning:
      'The server clock is behind the latest time it trusted (set back beyond the tolerance): new seats are refused until the clock is corrected; held leases keep working.',
  },
  STATE_TAMPERED: {
    status: 503,
    meaning:
      'On-premise: the sealed server state (highest serial, trusted time, usage, report sequence) failed its check (an edited, deleted or restored database or data directory): new seats are refused until the vendor issues a newer license file; held leases keep working.',
  },
  ACTIVATION_KEY_INVALID: { status: 401, meaning: 'Vendor server: the activation key is missing, unknown or revoked.' },
  ACTIVATION_FAILED: {
    status: 502,
    meaning: 'On-premise online activation: the vendor server could not be reached or refused the request (its answer is in the message).',
  },
  DEPLOYMENT_NOT_FOUND: { status: 404, meaning: 'Vendor server: no on-premise deployment has this id.' },
  FINGERPRINT_MISMATCH: {
    status: 409,
    meaning: 'Vendor server: the deployment is already bound to another on-premise server fingerprint.',
  },
  USAGE_REPORT_INVALID: {
    status: 422,
    meaning: "The usage report does not verify against the deployment's server key, or is not a usage report.",
  },
  ONPREM_ONLY: { status: 409, meaning: 'This route works on an on-premise server only (`--mode on-prem`).' },
  VENDOR_KEY_NOT_CONFIGURED: {
    status: 409,
    meaning: 'This server has no vendor private key (`--vendor-private-key`), so it cannot issue license files.',
  },

  // --- server --------------------------------------------------------------
  NODE_CLOCK_SKEWED: {
    status: 503,
    meaning:
      "Cluster: this node's clock is further from the database clock than the bound (2 s): it grants and renews nothing until its clock is corrected; retry on another node.",
  },
  SERVICE_UNAVAILABLE: { status: 503, meaning: 'The server is shutting down or not ready; retry on another node or later.' },
  STORAGE_UNAVAILABLE: {
    status: 503,
    meaning:
      'The database cannot write or answer right now (disk full, I/O error, lock timeout, connection lost); nothing was changed. Retry after `Retry-After` seconds; leases already granted are kept.',
  },
  INTERNAL_ERROR: { status: 500, meaning: 'A bug: the server failed unexpectedly. The request id identifies it in the logs.' },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ErrorCode = keyof typeof ERRORS;

export function statusOf(code: ErrorCode): number {
  return ERRORS[code].status;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, value);
}

/** The one error envelope: `{"error": {"code", "message", "requestId", ...details}}`. */
export interface ErrorEnvelope {
  error: {
    code: ErrorCode;
    message: string;
    requestId?: string;
    [detail: string]: unknown;
  };
}
