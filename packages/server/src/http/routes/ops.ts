/** Operations: health, readiness, metrics, OpenAPI, JWKS. No authentication (nothing secret). */
import * as wire from '@floatd/protocol';
import type { Routes } from '../context.js';
import { ErrorReply } from '../errors.js';
import { handle, handleRaw } from '../route.js';
import { describeStorageFailure, storageFailure } from '../../store/errors.js';

export const opsRoutes: Routes = (app, { store, metrics, keys, clock, version, storageHealth, clockFence, started }) => {
  const api = wire.routes.ops;
  handle(app, api.healthz, async () => ({ status: 'ok' as const, version }));
  handle(app, api.readyz, async () => {
    if (started && !started())
      throw new ErrorReply('SERVICE_UNAVAILABLE', 'starting: not ready to serve everything yet', { retryAfterSeconds: 1 });
    try {
      await store.ping();
    } catch {
      // Ready again as soon as the database answers (PostgreSQL: on readiness's own connection, store.ping).
      throw new ErrorReply('SERVICE_UNAVAILABLE', 'the database does not answer', { retryAfterSeconds: 1 });
    }
    // A lost connection is over once the database answered: nothing more to prove by a test write.
    if (storageHealth.current?.kind === 'connection') storageHealth.recovered();
    // A node whose clock is too far from the database's must not take traffic (it refuses it anyway).
    const skewed = clockFence?.refusal();
    if (skewed) throw new ErrorReply(skewed.code, skewed.message, skewed.details);
    // The last write failed for the storage's sake (disk full, …): ready again only once a test write commits.
    if (storageHealth.current) {
      try {
        await store.probeWrite();
        storageHealth.recovered();
      } catch (err) {
        const f = storageFailure(err) ?? storageHealth.current;
        if (f) {
          storageHealth.failed(f, clock.now());
          throw new ErrorReply('STORAGE_UNAVAILABLE', describeStorageFailure(f), { retryAfterSeconds: f.retryAfterSeconds });
        }
        throw err;
      }
    }
    return { status: 'ready' as const, store: store.kind };
  });
  handleRaw(app, api.metrics, async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  handle(app, api.jwks, async (_req, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return keys.jwks(clock.now());
  });
  handleRaw(app, api.openapi, async () => app.swagger());
};
