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
import * as W from '@floatd/protocol';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { ApiError, unwrap } from '../errors.js';
import { created, handle } from '../route.js';
import { iso } from '../views.js';
import { activationRequest, usageReport } from '../../onprem/reports.js';
import type { EntitlementService } from '../../onprem/entitlements.js';
import type { VendorService } from '../../onprem/vendor.js';

export const DOC_BODY_LIMIT = W.routes.DOC_BODY_LIMIT;
const R = W.routes.onprem;
const DAY_MS = 86_400_000;

function onPremOnly(ctx: AppContext): { entitlements: EntitlementService; identity: NonNullable<AppContext['identity']> } {
  if (!ctx.entitlements || !ctx.identity) throw new ApiError('ONPREM_ONLY', 'this route works on an on-premise server only (floatd serve --mode on-prem)');
  return { entitlements: ctx.entitlements, identity: ctx.identity };
}

function vendorOnly(ctx: AppContext): VendorService {
  if (!ctx.vendor) throw new ApiError('VENDOR_KEY_NOT_CONFIGURED', 'this server has no vendor private key (floatd serve --vendor-private-key FILE)');
  return ctx.vendor;
}

/** Calls the vendor's floatd; any failure is ACTIVATION_FAILED with the vendor's own code and message when it gave one. */
async function callVendor(url: string, r: W.RouteSpec, init: { headers?: Record<string, string>; body: unknown }): Promise<any> {
  const path = W.pathOf(r);
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
  const actor = (req: { admin: { id: string } }) => `admin:${req.admin.id}`;

  handle(app, R.entitlementStatus, async () => {
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
  });
  handle(app, R.loadEntitlements, async (req) => {
    const { entitlements } = onPremOnly(ctx);
    const r = unwrap(await entitlements.load(JSON.stringify(req.body.licenseFile), actor(req), 'api'));
    return { loaded: r.summary, unchanged: r.unchanged };
  });
  handle(app, R.activationRequest, async () => {
    const { identity } = onPremOnly(ctx);
    return activationRequest(identity, ctx.clock.now(), ctx.version);
  });
  handle(app, R.activate, async (req) => {
    const { entitlements, identity } = onPremOnly(ctx);
    const answer = await callVendor(req.body.vendorUrl, W.routes.onprem.vendorActivate, {
      headers: { authorization: `Activation ${req.body.activationKey}` },
      body: { request: activationRequest(identity, ctx.clock.now(), ctx.version) },
    });
    if (!answer || typeof answer.licenseFile !== 'object') throw new ApiError('ACTIVATION_FAILED', 'the vendor server answered without a license file');
    const r = unwrap(await entitlements.load(JSON.stringify(answer.licenseFile), actor(req), 'activation'));
    return { loaded: r.summary, unchanged: r.unchanged };
  });

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
  handle(app, R.usageReport, async (req) => (await report(req.query)).doc);
  handle(app, R.sendUsageReport, async (req) => {
    const { file, doc } = await report(req.body ?? {});
    if (!file.vendorUrl) throw new ApiError('ACTIVATION_FAILED', `the license file names no vendorUrl: export the report (${W.routeName(R.usageReport)}) and hand it to the vendor`);
    await callVendor(file.vendorUrl, W.routes.onprem.vendorUsageUpload, { body: { report: doc } });
    return { sent: true, vendorUrl: file.vendorUrl };
  });

  // --- vendor: deployments -------------------------------------------------
  handle(app, R.createDeployment, async (req) => created(unwrap(await vendorOnly(ctx).create(req.body.name, req.body.spec, actor(req)))));
  handle(app, R.listDeployments, async () => ({ items: await vendorOnly(ctx).list() }));
  handle(app, R.getDeployment, async (req) => unwrap(await vendorOnly(ctx).get(req.params.deploymentId)));
  handle(app, R.updateDeploymentSpec, async (req) => unwrap(await vendorOnly(ctx).updateSpec(req.params.deploymentId, req.body.spec, actor(req))));
  handle(app, R.issueLicenseFile, async (req) => unwrap(await vendorOnly(ctx).issue(req.params.deploymentId, req.body?.request ?? null, actor(req))));
  handle(app, R.importUsageReport, async (req) => created(unwrap(await vendorOnly(ctx).importUsage(req.body.report, 'file', actor(req)))));
  handle(app, R.deploymentUsageReports, async (req) => ({ items: unwrap(await vendorOnly(ctx).usageReports(req.params.deploymentId)) }));
}

/** Routes on-premise servers call on their vendor's floatd. */
export function vendorPublicRoutes(app: FastifyInstance, ctx: AppContext): void {
  handle(app, R.vendorActivate, async (req) => {
    const vendor = vendorOnly(ctx);
    const m = /^Activation\s+(\S{8,200})$/i.exec(String(req.headers.authorization ?? '').trim());
    if (!m?.[1]) throw new ApiError('ACTIVATION_KEY_INVALID', 'send Authorization: Activation <activation key>');
    return { licenseFile: unwrap(await vendor.activate(m[1], req.body.request)) };
  });
  handle(app, R.vendorUsageUpload, async (req) => {
    const r = unwrap(await vendorOnly(ctx).importUsage(req.body.report, 'online', 'on-prem-server'));
    return { imported: true, deploymentId: r.deploymentId };
  });
}
