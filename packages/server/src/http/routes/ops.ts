/** Operations: health, readiness, metrics, OpenAPI, JWKS. No authentication (nothing secret). */
import { Type } from '@sinclair/typebox';
import * as W from '@floatd/protocol';
import type { Routes } from '../context.js';
import { ApiError } from '../errors.js';
import { describeStorageFailure, storageFailure } from '../../store/errors.js';

export const opsRoutes: Routes = (app, { store, metrics, keys, clock, version, storageHealth, started }) => {
  const tags = ['operations'];
  app.get('/healthz', { schema: { summary: 'Liveness', tags, response: { 200: W.Obj({ status: Type.Literal('ok'), version: Type.String() }) } } }, async () => ({
    status: 'ok' as const,
    version,
  }));
  app.get(
    '/readyz',
    { schema: { summary: 'Readiness: the database answers', tags, response: { 200: W.Obj({ status: Type.Literal('ready'), store: Type.String() }), '5xx': W.ErrorBody } } },
    async () => {
      if (started && !started()) throw new ApiError('SERVICE_UNAVAILABLE', 'starting: not ready to serve everything yet', { retryAfterSeconds: 1 });
      try {
        await store.ping();
      } catch {
        // The pool reconnects on this very query (bounded backoff): ready again as soon as the database answers.
        throw new ApiError('SERVICE_UNAVAILABLE', 'the database does not answer', { retryAfterSeconds: 1 });
      }
      // The last write failed for the storage's sake (disk full, …): ready again only once a test write commits.
      if (storageHealth.current) {
        try {
          await store.probeWrite();
          storageHealth.recovered();
        } catch (err) {
          const f = storageFailure(err) ?? storageHealth.current;
          if (f) {
            storageHealth.failed(f, clock.now());
            throw new ApiError('STORAGE_UNAVAILABLE', describeStorageFailure(f), { retryAfterSeconds: f.retryAfterSeconds });
          }
          throw err;
        }
      }
      return { status: 'ready' as const, store: store.kind };
    },
  );
  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags } }, async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get('/.well-known/jwks.json', { schema: { summary: 'Public keys that verify lease tokens', tags, response: { 200: W.Jwks } } }, async (_req, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return keys.jwks(clock.now());
  });
  app.get('/openapi.json', { schema: { summary: 'This API as OpenAPI 3', tags } }, async () => app.swagger());
};
