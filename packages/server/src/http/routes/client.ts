/** Client API (`Authorization: License <key>`): what the SDK calls. */
import { Type } from '@sinclair/typebox';
import * as W from '@floatd/protocol';
import type { Routes } from '../context.js';
import { unwrap } from '../errors.js';
import { clientLeaseView, grantView, summaryView, iso } from '../views.js';

const errors = { '4xx': W.ErrorBody, '5xx': W.ErrorBody };
const security = [{ licenseKey: [] }];
const tags = ['client'];
const LeaseParams = W.Obj({ leaseId: W.LeaseId });

export const clientRoutes: Routes = (app, { licensing, clock }) => {
  app.addHook('onRequest', async (req) => {
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^License\s+(.+)$/i.exec(header.trim()) : null;
    // A missing or malformed key goes the way of an unknown one (looked up, not found, the same
    // INVALID_LICENSE_KEY after the same validation), so no answer tells them apart.
    req.licenseKey = (m?.[1] ? W.normalizeKey(m[1]) : undefined) ?? '';
  });

  app.post<{ Body: W.CheckoutRequest }>(
    '/v1/client/checkout',
    {
      schema: {
        summary: 'Check out a seat (or join the device\'s seat with another instance)',
        tags,
        security,
        body: W.CheckoutRequest,
        response: { 200: W.Grant, 201: W.Grant, ...errors },
      },
    },
    async (req, reply) => {
      const g = unwrap(await licensing.checkout(req.licenseKey, req.body));
      return reply.code(g.granted.created ? 201 : 200).send(grantView(g));
    },
  );

  app.post<{ Body: W.OfflineCheckoutRequest }>(
    '/v1/client/offline-checkout',
    {
      schema: {
        summary: 'Borrow a seat until an Offline Expiry Date (no heartbeats needed until then)',
        tags,
        security,
        body: W.OfflineCheckoutRequest,
        response: { 200: W.Grant, 201: W.Grant, ...errors },
      },
    },
    async (req, reply) => {
      const g = unwrap(await licensing.offlineCheckout(req.licenseKey, req.body));
      return reply.code(g.granted.created ? 201 : 200).send(grantView(g));
    },
  );

  app.post<{ Params: { leaseId: string }; Body: { instanceId: string } }>(
    '/v1/client/leases/:leaseId/heartbeat',
    {
      schema: { summary: 'Renew an instance\'s lease; returns a fresh lease token', tags, security, params: LeaseParams, body: W.InstanceRequest, response: { 200: W.Grant, ...errors } },
    },
    async (req) => grantView(unwrap(await licensing.heartbeat(req.licenseKey, req.params.leaseId, req.body.instanceId))),
  );

  app.post<{ Params: { leaseId: string }; Body: { instanceId: string } }>(
    '/v1/client/leases/:leaseId/checkin',
    {
      schema: { summary: 'An instance leaves; at zero instances the seat returns to the pool', tags, security, params: LeaseParams, body: W.InstanceRequest, response: { 200: W.CheckinResult, ...errors } },
    },
    async (req) => {
      const r = unwrap(await licensing.checkin(req.licenseKey, req.params.leaseId, req.body.instanceId));
      return { released: r.released, instances: r.instances };
    },
  );

  app.post<{ Params: { leaseId: string } }>(
    '/v1/client/leases/:leaseId/return',
    {
      schema: {
        summary: 'Return an offline lease before its Offline Expiry Date',
        tags,
        security,
        params: LeaseParams,
        body: Type.Optional(W.Obj({})),
        response: { 200: W.Obj({ released: Type.Boolean() }), ...errors },
      },
    },
    async (req) => unwrap(await licensing.returnOffline(req.licenseKey, req.params.leaseId)),
  );

  app.post<{ Body: W.SyncRequest }>(
    '/v1/client/devices/sync',
    {
      schema: { summary: 'Report the instances really running on a device; the others are dropped', tags, security, body: W.SyncRequest, response: { 200: W.SyncResult, ...errors } },
    },
    async (req) => unwrap(await licensing.sync(req.licenseKey, req.body)),
  );

  app.get<{ Querystring: { fingerprint?: string } }>(
    '/v1/client/license',
    {
      schema: {
        summary: 'License state, and the device\'s own lease when a fingerprint is given',
        tags,
        security,
        querystring: W.Obj({ fingerprint: Type.Optional(W.Fingerprint) }),
        response: { 200: W.LicenseInfo, ...errors },
      },
    },
    async (req) => {
      const info = unwrap(await licensing.info(req.licenseKey, req.query.fingerprint));
      return {
        license: summaryView(info.license, clock.now()),
        lease: info.lease ? clientLeaseView(info.lease, info.lease.instances[0]?.instanceId ?? '') : null,
        serverTime: iso(info.serverTime),
      };
    },
  );
};
