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
import * as wire from '@floatd/protocol';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { ErrorReply, unwrap } from '../errors.js';
import { created, handle } from '../route.js';
import { iso } from '../views.js';
import { activationRequest, usageReport } from '../../onprem/reports.js';
import type { EntitlementService } from '../../onprem/entitlements.js';
import type { VendorService } from '../../onprem/vendor.js';
import { activateWithVendor, uploadUsageToVendor } from '../../onprem/vendorClient.js';

export const DOC_BODY_LIMIT = wire.routes.DOC_BODY_LIMIT;
const api = wire.routes.onprem;
const DAY_MS = 86_400_000;

function onPremOnly(ctx: AppContext): { entitlements: EntitlementService; identity: NonNullable<AppContext['identity']> } {
  if (!ctx.entitlements || !ctx.identity)
    throw new ErrorReply('ONPREM_ONLY', 'this route works on an on-premise server only (floatd serve --mode on-prem)');
  return { entitlements: ctx.entitlements, identity: ctx.identity };
}

function vendorOnly(ctx: AppContext): VendorService {
  if (!ctx.vendor)
    throw new ErrorReply('VENDOR_KEY_NOT_CONFIGURED', 'this server has no vendor private key (floatd serve --vendor-private-key FILE)');
  return ctx.vendor;
}

export function onpremAdminRoutes(app: FastifyInstance, ctx: AppContext): void {
  const actor = (req: { admin: { id: string } }) => `admin:${req.admin.id}`;

  handle(app, api.entitlementStatus, async () => {
    const clock = ctx.clockGuard.state();
    return {
      mode: ctx.mode,
      fingerprint: ctx.identity?.fingerprint ?? null,
      serverPublicKey: ctx.identity?.publicKey ?? null,
      licenseFile: ctx.entitlements?.summary() ?? null,
      clock: {
        trustedTime: clock.trustedTime ? iso(clock.trustedTime) : null,
        serverTime: iso(clock.serverTime),
        rolledBack: clock.rolledBack,
        tampered: clock.tampered,
        toleranceNote: 'grants stop when the server clock reads earlier than trustedTime minus --clock-tolerance',
      },
      vendor: Boolean(ctx.vendor),
    };
  });
  handle(app, api.loadEntitlements, async (req) => {
    const { entitlements } = onPremOnly(ctx);
    const loaded = unwrap(await entitlements.load(JSON.stringify(req.body.licenseFile), actor(req), 'api'));
    return { loaded: loaded.summary, unchanged: loaded.unchanged };
  });
  handle(app, api.activationRequest, async () => {
    const { identity } = onPremOnly(ctx);
    return activationRequest(identity, ctx.clock.now(), ctx.version);
  });
  handle(app, api.activate, async (req) => {
    const { entitlements, identity } = onPremOnly(ctx);
    const licenseFile = unwrap(
      await activateWithVendor(req.body.vendorUrl, req.body.activationKey, activationRequest(identity, ctx.clock.now(), ctx.version)),
    );
    const loaded = unwrap(await entitlements.load(JSON.stringify(licenseFile), actor(req), 'activation'));
    return { loaded: loaded.summary, unchanged: loaded.unchanged };
  });

  const range = (query: { from?: string | undefined; to?: string | undefined }) => {
    const to = query.to ? Date.parse(query.to) : ctx.clock.now();
    const from = query.from ? Date.parse(query.from) : to - 30 * DAY_MS;
    if (!(from < to) || to - from > 366 * DAY_MS)
      throw new ErrorReply('VALIDATION_FAILED', 'from must be before to, at most 366 days apart', { field: 'querystring/from' });
    return { from, to };
  };
  const report = async (query: { from?: string | undefined; to?: string | undefined }) => {
    const { entitlements, identity } = onPremOnly(ctx);
    const file = entitlements.payload();
    if (!file) throw new ErrorReply('ENTITLEMENT_MISSING', 'no license file is loaded: there is nothing to report on');
    return { file, doc: await usageReport(ctx.store, file, identity, range(query), ctx.clock.now(), ctx.seal) };
  };
  handle(app, api.usageReport, async (req) => (await report(req.query)).doc);
  handle(app, api.sendUsageReport, async (req) => {
    const { file, doc } = await report(req.body ?? {});
    if (!file.vendorUrl)
      throw new ErrorReply(
        'ACTIVATION_FAILED',
        `the license file names no vendorUrl: export the report (${wire.routeName(api.usageReport)}) and hand it to the vendor`,
      );
    unwrap(await uploadUsageToVendor(file.vendorUrl, doc));
    return { sent: true, vendorUrl: file.vendorUrl };
  });

  // --- vendor: deployments -------------------------------------------------
  handle(app, api.createDeployment, async (req) => created(unwrap(await vendorOnly(ctx).create(req.body.name, req.body.spec, actor(req)))));
  handle(app, api.listDeployments, async () => ({ items: await vendorOnly(ctx).list() }));
  handle(app, api.getDeployment, async (req) => unwrap(await vendorOnly(ctx).get(req.params.deploymentId)));
  handle(app, api.updateDeploymentSpec, async (req) =>
    unwrap(await vendorOnly(ctx).updateSpec(req.params.deploymentId, req.body.spec, actor(req))),
  );
  handle(app, api.issueLicenseFile, async (req) =>
    unwrap(await vendorOnly(ctx).issue(req.params.deploymentId, req.body?.request ?? null, actor(req))),
  );
  handle(app, api.importUsageReport, async (req) =>
    created(unwrap(await vendorOnly(ctx).importUsage(req.body.report, 'file', actor(req)))),
  );
  handle(app, api.deploymentUsageReports, async (req) => ({ items: unwrap(await vendorOnly(ctx).usageReports(req.params.deploymentId)) }));
}

/** Routes on-premise servers call on their vendor's floatd. */
export function vendorPublicRoutes(app: FastifyInstance, ctx: AppContext): void {
  handle(app, api.vendorActivate, async (req) => {
    const vendor = vendorOnly(ctx);
    const match = /^Activation\s+(\S{8,200})$/i.exec(String(req.headers.authorization ?? '').trim());
    if (!match?.[1]) throw new ErrorReply('ACTIVATION_KEY_INVALID', 'send Authorization: Activation <activation key>');
    return { licenseFile: unwrap(await vendor.activate(match[1], req.body.request)) };
  });
  handle(app, api.vendorUsageUpload, async (req) => {
    const imported = unwrap(await vendorOnly(ctx).importUsage(req.body.report, 'online', 'on-prem-server'));
    return { imported: true, deploymentId: imported.deploymentId };
  });
}
