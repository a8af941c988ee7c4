/** Every endpoint of floatd, declared once (see `../route.ts`). */
import type { RouteSpec } from '../route.js';
import * as client from './client.js';
import * as admin from './admin.js';
import * as onprem from './onprem.js';
import * as ops from './ops.js';

export { client, admin, onprem, ops };
export { DOC_BODY_LIMIT, Doc, EntitlementStatus, UsageRange } from './onprem.js';

// Each declaration's operationId is its exported name (generated clients get method names like `checkout`).
for (const mod of [client, admin, onprem, ops] as Record<string, unknown>[]) {
  for (const [name, value] of Object.entries(mod)) {
    if (value && typeof value === 'object' && 'method' in value && 'path' in value && 'auth' in value)
      (value as RouteSpec).operationId = name;
  }
}

/** All of them, for walkers (OpenAPI checks, role tests, the bad-input fuzzer). */
export const ALL_ROUTES: readonly RouteSpec[] = [
  ...ops.opsRoutes,
  ...client.clientRoutes,
  ...admin.adminRoutes,
  ...onprem.onpremRoutes,
  ...onprem.vendorAdminRoutes,
  ...onprem.vendorRoutes,
] as const;
