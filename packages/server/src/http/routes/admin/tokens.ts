/** Admin: the signing key, admin tokens, who am I, and the server's settings. */
import * as wire from '@floatd/protocol';
import type { Routes } from '../../context.js';
import { unwrap } from '../../errors.js';
import { created, handle } from '../../route.js';
import { iso, tokenView } from '../../views.js';
import { actor } from './common.js';

const api = wire.routes.admin;

export const tokenRoutes: Routes = (app, { auth, catalogue, store, clock, settings, version }) => {
  handle(app, api.rotateSigningKey, async (req) => ({ kid: await catalogue.rotateSigningKey(actor(req)) }));
  handle(app, api.listTokens, async () => ({ items: (await store.listAdminTokens()).map(tokenView) }));
  handle(app, api.createToken, async (req) => {
    const { token, secret } = unwrap(await auth.create(req.body.name, req.body.role, actor(req), req.body.customerId ?? null));
    return created({ ...tokenView(token), token: secret });
  });
  handle(app, api.revokeToken, async (req) => tokenView(unwrap(await auth.revoke(req.params.tokenId, actor(req)))));
  handle(app, api.whoami, async (req) => tokenView(req.admin));
  handle(app, api.settings, async () => ({
    version,
    store: store.kind,
    reclaimIntervalSeconds: settings.reclaimIntervalSeconds,
    serverTime: iso(clock.now()),
  }));
};
