/** Every endpoint of floatd, declared once (see `../route.ts`). */
import type { RouteSpec } from '../route.js';
import * as client from './client.js';
import * as admin from './admin.js';
import * as onprem from './onprem.js';
import * as ops from './ops.js';

export { client, admin, onprem, ops };
export { DOC_BODY_LIMIT, Doc, EntitlementStatus, UsageRange } from './onprem.js';

/** All of them, for walkers (OpenAPI checks, role tests, the bad-input fuzzer). */
export const ALL_ROUTES: readonly RouteSpec[] = [...ops.opsRoutes, ...client.clientRoutes, ...admin.adminRoutes, ...onprem.onpremRoutes, ...onprem.vendorAdminRoutes, ...onprem.vendorRoutes] as const;
