/**
 * Live updates for the console: server-sent events of committed changes
 * (`GET /v1/admin/events`, admin token required — read it with fetch() and a
 * stream reader, since EventSource cannot send an Authorization header).
 */
import * as wire from '@floatd/protocol';
import type { Routes } from '../context.js';
import { handleRaw } from '../route.js';
import { iso } from '../views.js';

const PING_MS = 15_000;

export const eventRoutes: Routes = (app, { store, clock }) => {
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const close of [...open]) close();
  });

  handleRaw(app, wire.routes.admin.events, (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': req.id,
    });
    res.write(': connected\n\n');
    const tokenId = req.admin.id;
    // A customer's own administrator hears only of that customer's licenses (looked up once per license, in order).
    const own = req.admin.customerId;
    const mine = new Map<string, Promise<boolean>>();
    const visible = (licenseId: string | null): Promise<boolean> => {
      if (own === null || licenseId === null) return Promise.resolve(true);
      let known = mine.get(licenseId);
      if (!known) {
        known = store.getLicense(licenseId).then(
          (l) => l?.customerId === own,
          () => false,
        );
        mine.set(licenseId, known);
      }
      return known;
    };
    let order = Promise.resolve();
    const unsubscribe = store.subscribe((e) => {
      if (e.kind === 'token-revoked') {
        // The stream's own token was revoked (on any node): it stops at once, as its next request would be refused.
        if (e.tokenId === tokenId) {
          res.write(`event: revoked\ndata: ${JSON.stringify({ tokenId, at: iso(clock.now()) })}\n\n`);
          close();
        }
        return;
      }
      const at = iso(clock.now());
      // A license moved to another customer is looked up again (its events change hands with it).
      if (own !== null && e.kind === 'license') mine.delete(e.licenseId);
      order = order.then(async () => {
        if (open.has(close) && (await visible(e.licenseId))) res.write(`event: change\ndata: ${JSON.stringify({ ...e, at })}\n\n`);
      });
    });
    const ping = setInterval(() => res.write(': ping\n\n'), PING_MS);
    const close = () => {
      if (!open.delete(close)) return;
      clearInterval(ping);
      unsubscribe();
      res.end();
    };
    open.add(close);
    req.raw.on('close', close);
  });
};
