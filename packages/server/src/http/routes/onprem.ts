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
import { activateWithVendor, uploadUsageToVendor } from '../../onprem/vendorClient.js';

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
    const licenseFile = unwrap(await activateWithVendor(req.body.vendorUrl, req.body.activationKey, activationRequest(identity, ctx.clock.now(), ctx.version)));
    const r = unwrap(await entitlements.load(JSON.stringify(licenseFile), actor(req), 'activation'));
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
    unwrap(await uploadUsageToVendor(file.vendorUrl, doc));
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
