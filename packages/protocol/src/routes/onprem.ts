/**
 * On-premise and vendor routes. Admin scope (same tokens and roles): the license file
 * in force and the server clock, loading a file, the activation request, online
 * activation, the usage report (export and send); vendor admin: deployments, issuing
 * files, importing usage reports. Vendor public (`/v1/vendor/*`): activation with an
 * activation key, usage upload (authenticated by the report's own signature).
 */
import { Type, type Static } from '@sinclair/typebox';
import { route } from '../route.js';
import * as schemas from '../schemas.js';

/** Signed documents are JSON objects of their own shape (checked by their signature and schema, not here). */
export const Doc = Type.Object({}, { additionalProperties: true, description: 'A signed floatd document: {format, payload, signature}' });
const DocOrNull = Type.Union([Doc, Type.Null()]);
export const DeploymentId = schemas.IdOf('dpl');
const DeploymentParams = schemas.Obj({ deploymentId: DeploymentId });
const Spec = Type.Object({}, { additionalProperties: true, description: 'A license spec (docs/on-prem.md): customer, products, licenses' });
/** License files and reports can be larger than the 64 KiB other routes take (a year of daily usage of a few keys is more). */
export const DOC_BODY_LIMIT = 4 * 1024 * 1024;

export const ClockState = schemas.Obj({
  trustedTime: Type.Union([schemas.Timestamp, Type.Null()]),
  serverTime: schemas.Timestamp,
  rolledBack: Type.Boolean(),
  tampered: Type.Boolean(),
  toleranceNote: Type.String(),
});
/** What a license file grants, as the on-prem server shows it (status, load, activate). */
export const LicenseFileSummary = schemas.Obj({
  serial: Type.Integer(),
  issuedAt: schemas.Timestamp,
  notBefore: schemas.Timestamp,
  notAfter: Type.Union([schemas.Timestamp, Type.Null()]),
  customer: schemas.Obj({ name: Type.String(), id: Type.Optional(Type.String()) }),
  deploymentId: Type.Union([Type.String(), Type.Null()]),
  vendorUrl: Type.Union([Type.String(), Type.Null()]),
  /** the server fingerprint the file is bound to; null: any server */
  boundTo: Type.Union([Type.String(), Type.Null()]),
  licenses: Type.Array(
    schemas.Obj({
      id: schemas.LicenseId,
      productId: schemas.ProductId,
      key: Type.String(),
      seats: Type.Integer(),
      model: Type.String(),
      expiresAt: Type.Union([schemas.Timestamp, Type.Null()]),
      maxOfflineSeconds: Type.Integer(),
    }),
  ),
});
export type LicenseFileSummary = Static<typeof LicenseFileSummary>;
const Summary = LicenseFileSummary;
export const EntitlementStatus = schemas.Obj({
  mode: Type.String(),
  fingerprint: Type.Union([Type.String(), Type.Null()]),
  serverPublicKey: Type.Union([Type.String(), Type.Null()]),
  licenseFile: Type.Union([Summary, Type.Null()]),
  clock: ClockState,
  vendor: Type.Boolean(),
});
const Loaded = schemas.Obj({ loaded: Summary, unchanged: Type.Boolean() });
export const UsageRange = schemas.Obj({ from: Type.Optional(schemas.Timestamp), to: Type.Optional(schemas.Timestamp) });
/** A vendor's on-premise deployment (its spec is the license spec of docs/on-prem.md; times in ms since the epoch). */
export const Deployment = Type.Object(
  {
    id: DeploymentId,
    name: Type.String(),
    spec: Spec,
    fingerprint: Type.Union([Type.String(), Type.Null()]),
    publicKey: Type.Union([Type.String(), Type.Null()]),
    serial: Type.Integer({ description: 'the last serial issued (0: none yet)' }),
    createdAt: Type.Integer(),
    activatedAt: Type.Union([Type.Integer(), Type.Null()]),
  },
  { additionalProperties: true },
);
export type Deployment = Static<typeof Deployment>;
const ReportCounts = Type.Object(
  { key: Type.String(), seats: Type.Integer(), peakSeats: Type.Integer(), denials: Type.Integer() },
  { additionalProperties: true },
);
/** A usage report the vendor imported (the report is the signed payload of docs/on-prem.md; `continuity`: how it follows the reports before it). */
export const StoredReport = Type.Object(
  {
    deploymentId: Type.String(),
    importedAt: Type.Integer(),
    via: Type.Union([Type.Literal('online'), Type.Literal('file')]),
    report: Type.Object(
      { from: schemas.Timestamp, to: schemas.Timestamp, licenses: Type.Array(ReportCounts) },
      { additionalProperties: true },
    ),
    continuity: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
export type StoredReport = Static<typeof StoredReport>;
const tags = ['on-premise'] as const;
const vtags = ['vendor'] as const;
const FILE_ERRORS = ['ONPREM_ONLY', 'ENTITLEMENT_INVALID', 'ENTITLEMENT_ROLLBACK', 'ENTITLEMENT_EXPIRED'] as const;

export const entitlementStatus = route({
  method: 'GET',
  path: '/v1/admin/entitlements',
  summary: 'Role of this server, the license file in force (on-prem) and the server clock check',
  tags,
  auth: 'admin',
  role: 'viewer',
  responses: { 200: EntitlementStatus },
  errors: [],
});
export const loadEntitlements = route({
  method: 'POST',
  path: '/v1/admin/entitlements',
  summary: 'Load a license file (renewal, more seats) without a restart; a lower serial is refused',
  tags,
  auth: 'admin',
  role: 'admin',
  body: schemas.Obj({ licenseFile: Doc }),
  bodyLimit: DOC_BODY_LIMIT,
  responses: { 200: Loaded },
  errors: [...FILE_ERRORS],
});
export const activationRequest = route({
  method: 'GET',
  path: '/v1/admin/entitlements/request',
  summary: 'The activation request of this on-prem server (fingerprint and public key, signed): give it to the vendor',
  tags,
  auth: 'admin',
  role: 'viewer',
  responses: { 200: Doc },
  errors: ['ONPREM_ONLY'],
});
export const activate = route({
  method: 'POST',
  path: '/v1/admin/entitlements/activate',
  summary: "Online activation: fetch this server's license file from the vendor's floatd with an activation key, and load it",
  tags,
  auth: 'admin',
  role: 'admin',
  body: schemas.Obj({
    vendorUrl: Type.String({ minLength: 8, maxLength: 500 }),
    activationKey: Type.String({ minLength: 8, maxLength: 200 }),
  }),
  responses: { 200: Loaded },
  errors: [...FILE_ERRORS, 'ACTIVATION_FAILED'],
});
export const usageReport = route({
  method: 'GET',
  path: '/v1/admin/usage-report',
  summary: 'Signed usage report of every key in the license file (peak seats, checkouts, denials per day; default: the last 30 days)',
  tags,
  auth: 'admin',
  role: 'viewer',
  query: UsageRange,
  responses: { 200: Doc },
  errors: ['ONPREM_ONLY', 'ENTITLEMENT_MISSING'],
});
export const sendUsageReport = route({
  method: 'POST',
  path: '/v1/admin/usage-report/send',
  summary: "Send the signed usage report to the vendor's floatd named in the license file (online true-up)",
  tags,
  auth: 'admin',
  role: 'admin',
  body: UsageRange,
  optionalBody: true,
  responses: { 200: schemas.Obj({ sent: Type.Boolean(), vendorUrl: Type.String() }) },
  errors: ['ONPREM_ONLY', 'ENTITLEMENT_MISSING', 'ACTIVATION_FAILED'],
});

// --- vendor: deployments ------------------------------------------------------
const VENDOR = ['VENDOR_KEY_NOT_CONFIGURED'] as const;
export const createDeployment = route({
  method: 'POST',
  path: '/v1/admin/deployments',
  summary: 'Vendor: create an on-premise deployment from a license spec; the activation key is in this answer only',
  tags: vtags,
  auth: 'admin',
  role: 'admin',
  body: schemas.Obj({ name: Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000]*$' }), spec: Spec }),
  bodyLimit: DOC_BODY_LIMIT,
  responses: { 201: schemas.Obj({ deployment: Deployment, activationKey: Type.String() }) },
  errors: [...VENDOR, 'INVALID_POLICY'],
});
export const listDeployments = route({
  method: 'GET',
  path: '/v1/admin/deployments',
  summary: 'Vendor: on-premise deployments',
  tags: vtags,
  auth: 'admin',
  role: 'viewer',
  responses: { 200: schemas.Obj({ items: Type.Array(Deployment) }) },
  errors: [...VENDOR],
});
export const getDeployment = route({
  method: 'GET',
  path: '/v1/admin/deployments/:deploymentId',
  summary: 'Vendor: one deployment',
  tags: vtags,
  auth: 'admin',
  role: 'viewer',
  params: DeploymentParams,
  responses: { 200: Deployment },
  errors: [...VENDOR, 'DEPLOYMENT_NOT_FOUND'],
});
export const updateDeploymentSpec = route({
  method: 'PUT',
  path: '/v1/admin/deployments/:deploymentId/spec',
  summary: "Vendor: replace a deployment's spec (renewal); the next file issued carries it with a higher serial",
  tags: vtags,
  auth: 'admin',
  role: 'admin',
  params: DeploymentParams,
  body: schemas.Obj({ spec: Spec }),
  bodyLimit: DOC_BODY_LIMIT,
  responses: { 200: Deployment },
  errors: [...VENDOR, 'DEPLOYMENT_NOT_FOUND', 'INVALID_POLICY'],
});
export const issueLicenseFile = route({
  method: 'POST',
  path: '/v1/admin/deployments/:deploymentId/issue',
  summary: 'Vendor: issue the next license file of a deployment, bound to the server of an activation request (offline activation)',
  tags: vtags,
  auth: 'admin',
  role: 'admin',
  params: DeploymentParams,
  body: schemas.Obj({ request: Type.Optional(DocOrNull) }),
  optionalBody: true,
  responses: { 200: Doc },
  errors: [...VENDOR, 'DEPLOYMENT_NOT_FOUND', 'FINGERPRINT_MISMATCH'],
});
export const importUsageReport = route({
  method: 'POST',
  path: '/v1/admin/usage-reports',
  summary: "Vendor: import a usage report file from an on-premise server (verified against its deployment's server key)",
  tags: vtags,
  auth: 'admin',
  role: 'admin',
  body: schemas.Obj({ report: Doc }),
  bodyLimit: DOC_BODY_LIMIT,
  responses: { 201: StoredReport },
  errors: [...VENDOR, 'USAGE_REPORT_INVALID'],
});
export const deploymentUsageReports = route({
  method: 'GET',
  path: '/v1/admin/deployments/:deploymentId/usage-reports',
  summary: 'Vendor: usage reports imported for a deployment',
  tags: vtags,
  auth: 'admin',
  role: 'viewer',
  params: DeploymentParams,
  responses: { 200: schemas.Obj({ items: Type.Array(StoredReport) }) },
  errors: [...VENDOR, 'DEPLOYMENT_NOT_FOUND'],
});

// --- vendor: public -----------------------------------------------------------------
export const vendorActivate = route({
  method: 'POST',
  path: '/v1/vendor/activate',
  summary:
    'Online activation: an on-premise server sends `Authorization: Activation <key>` and its signed request, and gets its license file',
  tags: vtags,
  auth: 'activation',
  body: schemas.Obj({ request: Doc }),
  responses: { 200: schemas.Obj({ licenseFile: Doc }) },
  errors: [...VENDOR, 'FINGERPRINT_MISMATCH', 'DEPLOYMENT_NOT_FOUND'],
});
export const vendorUsageUpload = route({
  method: 'POST',
  path: '/v1/vendor/usage-reports',
  summary: "Online usage upload from an on-premise server (authenticated by the report's signature)",
  tags: vtags,
  auth: 'document',
  body: schemas.Obj({ report: Doc }),
  bodyLimit: DOC_BODY_LIMIT,
  responses: { 200: schemas.Obj({ imported: Type.Boolean(), deploymentId: Type.String() }) },
  errors: [...VENDOR, 'USAGE_REPORT_INVALID'],
});

export const onpremRoutes = [entitlementStatus, loadEntitlements, activationRequest, activate, usageReport, sendUsageReport] as const;
export const vendorAdminRoutes = [
  createDeployment,
  listDeployments,
  getDeployment,
  updateDeploymentSpec,
  issueLicenseFile,
  importUsageReport,
  deploymentUsageReports,
] as const;
export const vendorRoutes = [vendorActivate, vendorUsageUpload] as const;
