/**
 * On-premise and vendor routes.
 *
 * Admin (on the admin scope, same auth and roles): the license file in force and
 * the server clock (`GET /v1/admin/entitlements`), loading a file, the
 * activation request, online activation, the usage report (export and send).
 * Vendor admin: deployments, issuing files, importing usage reports.
 * Vendor public (`/v1/vendor/*`): activation with an activation key, usage upload
 * (authenticated by the report's signature).
 */
import { Type } from '@sinclair/typebox';
import * as W from '@floatd/protocol';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { ApiError, unwrap } from '../errors.js';
import { iso } from '../views.js';
import { activationRequest, usageReport } from '../../onprem/reports.js';
import type { EntitlementService } from '../../onprem/entitlements.js';
import type { VendorService } from '../../onprem/vendor.js';

const errors = { '4xx': W.ErrorBody, '5xx': W.ErrorBody };
const security = [{ adminToken: [] }];
/** Signed documents are JSON objects of their own shape (checked by their signature and schema, not here). */
const Doc = Type.Object({}, { additionalProperties: true, description: 'A signed floatd document: {format, payload, signature}' });
const DocOrNull = Type.Union([Doc, Type.Null()]);
const DeploymentId = W.IdOf('dpl');
const DeploymentParams = W.Obj({ deploymentId: DeploymentId });
const Spec = Type.Object({}, { additionalProperties: true, description: 'A license spec (docs/on-prem.md): customer, products, licenses' });
/** License files and reports can be larger than the 64 KiB other routes take (a year of daily usage of a few keys is more). */
export const DOC_BODY_LIMIT = 4 * 1024 * 1024;
/** The routes that take DOC_BODY_LIMIT (the bad-input walker sends them bodies over it). */
export const DOC_BODY_ROUTES: ReadonlySet<string> = new Set([
  'POST /v1/admin/entitlements',
  'POST /v1/admin/deployments',
  'PUT /v1/admin/deployments/{deploymentId}/spec',
  'POST /v1/admin/usage-reports',
  'POST /v1/vendor/usage-reports',
]);
const DAY_MS = 86_400_000;

const ClockState = W.Obj({
  trustedTime: Type.Union([W.Timestamp, Type.Null()]),
  serverTime: W.Timestamp,
  rolledBack: Type.Boolean(),
  tampered: Type.Boolean(),
  toleranceNote: Type.String(),
});
const Summary = Type.Object({}, { additionalProperties: true });
const Status = W.Obj({
  mode: Type.String(),
  fingerprint: Type.Union([Type.String(), Type.Null()]),
  serverPublicKey: Type.Union([Type.String(), Type.Null()]),
  licenseFile: Type.Union([Summary, Type.Null()]),
  clock: ClockState,
  vendor: Type.Boolean(),
});

function onPremOnly(ctx: AppContext): { entitlements: EntitlementService; identity: NonNullable<AppContext['identity']> } {
  if (!ctx.entitlements || !ctx.identity) throw new ApiError('ONPREM_ONLY', 'this route works on an on-premise server only (floatd serve --mode on-prem)');
  return { entitlements: ctx.entitlements, identity: ctx.identity };
}

function vendorOnly(ctx: AppContext): VendorService {
  if (!ctx.vendor) throw new ApiError('VENDOR_KEY_NOT_CONFIGURED', 'this server has no vendor private key (floatd serve --vendor-private-key FILE)');
  return ctx.vendor;
}

/** Calls the vendor's floatd; any failure is ACTIVATION_FAILED with the vendor's own code and message when it gave one. */
async function callVendor(url: string, path: string, init: { headers?: Record<string, string>; body: unknown }): Promise<any> {
  let base: URL;
  try {
    base = new URL(url);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new ApiError('VALIDATION_FAILED', `vendorUrl "${url}" is not an http(s) URL`, { field: 'body/vendorUrl' });
  }
  let res: Response;
  try {
    res = await fetch(new URL(path, base), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...init.headers },
      body: JSON.stringify(init.body),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new ApiError('ACTIVATION_FAILED', `the vendor server at ${base.origin} could not be reached: ${(err as Error).message}`);
  }
  const body = (await res.json().catch(() => undefined)) as any;
  if (!res.ok) {
    const e = body?.error;
    throw new ApiError('ACTIVATION_FAILED', `the vendor server refused: ${e?.code ?? res.status} ${e?.message ?? ''}`.trim(), { vendorCode: e?.code ?? null });
  }
  return body;
}

export function onpremAdminRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['on-premise'];
  const actor = (req: { admin: { id: string } }) => `admin:${req.admin.id}`;

  app.get(
    '/v1/admin/entitlements',
    { schema: { summary: 'Role of this server, the license file in force (on-prem) and the server clock check', tags, security, response: { 200: Status, ...errors } } },
    async () => {
      const c = ctx.clockGuard.state();
      return {
        mode: ctx.mode,
        fingerprint: ctx.identity?.fingerprint ?? null,
        serverPublicKey: ctx.identity?.publicKey ?? null,
        licenseFile: ctx.entitlements?.summary() ?? null,
        clock: {
          trustedTime: c.trustedTime ? iso(c.trustedTime) : null,
          serverTime: iso(c.serverTime),
          rolledBack: c.rolledBack,
          tampered: c.tampered,
          toleranceNote: 'grants stop when the server clock reads earlier than trustedTime minus --clock-tolerance',
        },
        vendor: Boolean(ctx.vendor),
      };
    },
  );

  app.post<{ Body: { licenseFile: unknown } }>(
    '/v1/admin/entitlements',
    {
      bodyLimit: DOC_BODY_LIMIT,
      schema: {
        summary: 'Load a license file (renewal, more seats) without a restart; a lower serial is refused',
        tags,
        security,
        body: W.Obj({ licenseFile: Doc }),
        response: { 200: W.Obj({ loaded: Summary, unchanged: Type.Boolean() }), ...errors },
      },
    },
    async (req) => {
      const { entitlements } = onPremOnly(ctx);
      const r = unwrap(await entitlements.load(JSON.stringify(req.body.licenseFile), actor(req), 'api'));
      return { loaded: r.summary, unchanged: r.unchanged };
    },
  );

  app.get(
    '/v1/admin/entitlements/request',
    { schema: { summary: 'The activation request of this on-prem server (fingerprint and public key, signed): give it to the vendor', tags, security, response: { 200: Doc, ...errors } } },
    async () => {
      const { identity } = onPremOnly(ctx);
      return activationRequest(identity, ctx.clock.now(), ctx.version);
    },
  );

  app.post<{ Body: { vendorUrl: string; activationKey: string } }>(
    '/v1/admin/entitlements/activate',
    {
      schema: {
        summary: 'Online activation: fetch this server\'s license file from the vendor\'s floatd with an activation key, and load it',
        tags,
        security,
        body: W.Obj({ vendorUrl: Type.String({ minLength: 8, maxLength: 500 }), activationKey: Type.String({ minLength: 8, maxLength: 200 }) }),
        response: { 200: W.Obj({ loaded: Summary, unchanged: Type.Boolean() }), ...errors },
      },
    },
    async (req) => {
      const { entitlements, identity } = onPremOnly(ctx);
      const answer = await callVendor(req.body.vendorUrl, '/v1/vendor/activate', {
        headers: { authorization: `Activation ${req.body.activationKey}` },
        body: { request: activationRequest(identity, ctx.clock.now(), ctx.version) },
      });
      if (!answer || typeof answer.licenseFile !== 'object') throw new ApiError('ACTIVATION_FAILED', 'the vendor server answered without a license file');
      const r = unwrap(await entitlements.load(JSON.stringify(answer.licenseFile), actor(req), 'activation'));
      return { loaded: r.summary, unchanged: r.unchanged };
    },
  );

  const Range = W.Obj({ from: Type.Optional(W.Timestamp), to: Type.Optional(W.Timestamp) });
  const range = (q: { from?: string | undefined; to?: string | undefined }) => {
    const to = q.to ? Date.parse(q.to) : ctx.clock.now();
    const from = q.from ? Date.parse(q.from) : to - 30 * DAY_MS;
    if (!(from < to) || to - from > 366 * DAY_MS) throw new ApiError('VALIDATION_FAILED', 'from must be before to, at most 366 days apart', { field: 'querystring/from' });
    return { from, to };
  };
  const report = async (q: { from?: string | undefined; to?: string | undefined }) => {
    const { entitlements, identity } = onPremOnly(ctx);
    const file = entitlements.payload();
    if (!file) throw new ApiError('ENTITLEMENT_MISSING', 'no license file is loaded: there is nothing to report on');
    return { file, doc: await usageReport(ctx.store, file, identity, range(q), ctx.clock.now(), ctx.seal) };
  };
  app.get<{ Querystring: { from?: string; to?: string } }>(
    '/v1/admin/usage-report',
    {
      schema: {
        summary: 'Signed usage report of every key in the license file (peak seats, checkouts, denials per day; default: the last 30 days)',
        tags,
        security,
        querystring: Range,
        response: { 200: Doc, ...errors },
      },
    },
    async (req) => (await report(req.query)).doc,
  );
  app.post<{ Body: { from?: string; to?: string } | undefined }>(
    '/v1/admin/usage-report/send',
    {
      schema: {
        summary: 'Send the signed usage report to the vendor\'s floatd named in the license file (online true-up)',
        tags,
        security,
        body: Type.Optional(Range),
        response: { 200: W.Obj({ sent: Type.Boolean(), vendorUrl: Type.String() }), ...errors },
      },
    },
    async (req) => {
      const { file, doc } = await report(req.body ?? {});
      if (!file.vendorUrl) throw new ApiError('ACTIVATION_FAILED', 'the license file names no vendorUrl: export the report (GET /v1/admin/usage-report) and hand it to the vendor');
      await callVendor(file.vendorUrl, '/v1/vendor/usage-reports', { body: { report: doc } });
      return { sent: true, vendorUrl: file.vendorUrl };
    },
  );

  // --- vendor: deployments -------------------------------------------------
  const vtags = ['vendor'];
  const Deployment = Type.Object({}, { additionalProperties: true });
  app.post<{ Body: { name: string; spec: unknown } }>(
    '/v1/admin/deployments',
    {
      bodyLimit: DOC_BODY_LIMIT,
      schema: {
        summary: 'Vendor: create an on-premise deployment from a license spec; the activation key is in this answer only',
        tags: vtags,
        security,
        body: W.Obj({ name: Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000]*$' }), spec: Spec }),
        response: { 201: W.Obj({ deployment: Deployment, activationKey: Type.String() }), ...errors },
      },
    },
    async (req, reply) => reply.code(201).send(unwrap(await vendorOnly(ctx).create(req.body.name, req.body.spec, actor(req)))),
  );
  app.get(
    '/v1/admin/deployments',
    { schema: { summary: 'Vendor: on-premise deployments', tags: vtags, security, response: { 200: W.Obj({ items: Type.Array(Deployment) }), ...errors } } },
    async () => ({ items: await vendorOnly(ctx).list() }),
  );
  app.get<{ Params: { deploymentId: string } }>(
    '/v1/admin/deployments/:deploymentId',
    { schema: { summary: 'Vendor: one deployment', tags: vtags, security, params: DeploymentParams, response: { 200: Deployment, ...errors } } },
    async (req) => unwrap(await vendorOnly(ctx).get(req.params.deploymentId)),
  );
  app.put<{ Params: { deploymentId: string }; Body: { spec: unknown } }>(
    '/v1/admin/deployments/:deploymentId/spec',
    {
      bodyLimit: DOC_BODY_LIMIT,
      schema: {
        summary: 'Vendor: replace a deployment\'s spec (renewal); the next file issued carries it with a higher serial',
        tags: vtags,
        security,
        params: DeploymentParams,
        body: W.Obj({ spec: Spec }),
        response: { 200: Deployment, ...errors },
      },
    },
    async (req) => unwrap(await vendorOnly(ctx).updateSpec(req.params.deploymentId, req.body.spec, actor(req))),
  );
  app.post<{ Params: { deploymentId: string }; Body: { request?: unknown } | undefined }>(
    '/v1/admin/deployments/:deploymentId/issue',
    {
      schema: {
        summary: 'Vendor: issue the next license file of a deployment, bound to the server of an activation request (offline activation)',
        tags: vtags,
        security,
        params: DeploymentParams,
        body: Type.Optional(W.Obj({ request: Type.Optional(DocOrNull) })),
        response: { 200: Doc, ...errors },
      },
    },
    async (req) => unwrap(await vendorOnly(ctx).issue(req.params.deploymentId, req.body?.request ?? null, actor(req))),
  );
  const StoredReport = Type.Object({}, { additionalProperties: true });
  app.post<{ Body: { report: unknown } }>(
    '/v1/admin/usage-reports',
    {
      bodyLimit: DOC_BODY_LIMIT,
      schema: {
        summary: 'Vendor: import a usage report file from an on-premise server (verified against its deployment\'s server key)',
        tags: vtags,
        security,
        body: W.Obj({ report: Doc }),
        response: { 201: StoredReport, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send(unwrap(await vendorOnly(ctx).importUsage(req.body.report, 'file', actor(req)))),
  );
  app.get<{ Params: { deploymentId: string } }>(
    '/v1/admin/deployments/:deploymentId/usage-reports',
    {
      schema: { summary: 'Vendor: usage reports imported for a deployment', tags: vtags, security, params: DeploymentParams, response: { 200: W.Obj({ items: Type.Array(StoredReport) }), ...errors } },
    },
    async (req) => ({ items: unwrap(await vendorOnly(ctx).usageReports(req.params.deploymentId)) }),
  );
}

/** Routes on-premise servers call on their vendor's floatd. */
export function vendorPublicRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tags = ['vendor'];
  app.post<{ Body: { request: unknown } }>(
    '/v1/vendor/activate',
    {
      schema: {
        summary: 'Online activation: an on-premise server sends `Authorization: Activation <key>` and its signed request, and gets its license file',
        tags,
        body: W.Obj({ request: Doc }),
        response: { 200: W.Obj({ licenseFile: Doc }), ...errors },
      },
    },
    async (req) => {
      const vendor = vendorOnly(ctx);
      const m = /^Activation\s+(\S{8,200})$/i.exec(String(req.headers.authorization ?? '').trim());
      if (!m?.[1]) throw new ApiError('ACTIVATION_KEY_INVALID', 'send Authorization: Activation <activation key>');
      return { licenseFile: unwrap(await vendor.activate(m[1], req.body.request)) };
    },
  );
  app.post<{ Body: { report: unknown } }>(
    '/v1/vendor/usage-reports',
    {
      bodyLimit: DOC_BODY_LIMIT,
      schema: {
        summary: 'Online usage upload from an on-premise server (authenticated by the report\'s signature)',
        tags,
        body: W.Obj({ report: Doc }),
        response: { 200: W.Obj({ imported: Type.Boolean(), deploymentId: Type.String() }), ...errors },
      },
    },
    async (req) => {
      const r = unwrap(await vendorOnly(ctx).importUsage(req.body.report, 'online', 'on-prem-server'));
      return { imported: true, deploymentId: r.deploymentId };
    },
  );
}
