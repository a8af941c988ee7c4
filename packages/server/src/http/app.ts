/**
 * Builds the fastify application over services made by the composition root.
 * Routes are thin: validate (TypeBox schemas, also published as /openapi.json),
 * call a service, map the result.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import sjson from 'secure-json-parse';
import type { Logger } from 'pino';
import type { AppContext } from './context.js';
import { ErrorReply, clientErrorHandler, frameworkErrors, installErrorHandling } from './errors.js';
import { newRequestId } from '../ids.js';
import { clientRoutes } from './routes/client.js';
import { adminRoutes } from './routes/admin/index.js';
import { opsRoutes } from './routes/ops.js';
import { eventRoutes } from './routes/events.js';
import { consoleRoutes } from './routes/console.js';
import { adminSecurity, clientSecurity, consoleSecurity, corsPreflight, Guards, NO_LIMITS, type SecuritySettings } from './security.js';
import { onpremAdminRoutes, vendorPublicRoutes } from './routes/onprem.js';
import { authenticates, isAuthenticated, keepAliveHint, markAuthenticated } from './connections.js';

export const BODY_LIMIT = 64 * 1024;
/** Bodies nested deeper are refused: nothing floatd takes needs it, and storing or answering one would overflow the stack. */
export const MAX_JSON_DEPTH = 64;

/** Whether `value` has objects or arrays nested more than `max` deep (iterative: the input may be very deep). */
/**
 * Why a parsed body is refused before validation, or undefined: it nests deeper than `max`, or a string in it
 * (key or value) holds U+0000, which PostgreSQL text cannot store (so the rule holds on every store alike).
 */
function refusedShape(value: unknown, max: number): string | undefined {
  const stack: [unknown, number][] = [[value, 1]];
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [v, depth] = top;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return NUL_REFUSED;
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return `the body nests deeper than ${max} levels`;
    for (const [k, child] of Object.entries(v)) {
      if (k.includes('\u0000')) return NUL_REFUSED;
      stack.push([child, depth + 1]);
    }
  }
  return undefined;
}
const NUL_REFUSED = 'text may not hold the NUL character (U+0000)';

// ajv-formats is CommonJS with a default export.
type AddFormats = (ajv: Ajv) => Ajv;
const addFormats: AddFormats =
  (addFormatsModule as unknown as { default?: AddFormats }).default ?? (addFormatsModule as unknown as AddFormats);

function validators() {
  // Bodies are JSON: no coercion (a string where a number belongs is an error), unknown fields rejected, nothing removed.
  const body = new Ajv({ coerceTypes: false, useDefaults: false, removeAdditional: false, allErrors: false, strict: false });
  // Query strings and path parameters arrive as text: coerce "10" to 10 and "true" to true.
  const text = new Ajv({ coerceTypes: true, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  addFormats(body);
  addFormats(text);
  return { body, text };
}

export interface AppOptions {
  logger: Logger | false;
  /** log every request (off by default: the hot paths are measured per request) */
  logRequests?: boolean;
  /** rate limits and CORS origins (default: no limit, no cross-origin admin use) */
  security?: SecuritySettings;
  /** fastify's trustProxy: which X-Forwarded-For to believe for the client address (default none) */
  trustProxy?: boolean | number | string[];
  /** the idle deadline of connections that have not authenticated (connections.ts); answers on them carry the Keep-Alive hint */
  unauthenticatedIdleMs?: number;
}

export async function buildApp(ctx: AppContext, opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger || undefined,
    logController: new LogController({ disableRequestLogging: !opts.logRequests }),
    bodyLimit: BODY_LIMIT,
    genReqId: newRequestId,
    requestIdHeader: false,
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
    frameworkErrors,
    // a hop count is what fastify's trustProxy takes as a number; its types only list the other forms
    trustProxy: (opts.trustProxy ?? false) as boolean,
    clientErrorHandler,
  }) as unknown as FastifyInstance;

  const ajv = validators();
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? ajv.body : ajv.text).compile(schema));
  installErrorHandling(app, ctx.storageHealth, ctx.clock);
  // JSON only: any other media type is refused with 415. An empty body is "no body" (body-less POSTs such as /return),
  // and __proto__ / constructor.prototype keys are refused (prototype poisoning).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      const value: unknown = sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
      const refused = refusedShape(value, MAX_JSON_DEPTH);
      if (refused) return done(Object.assign(new Error(refused), { statusCode: 400 }), undefined);
      done(null, value);
    } catch (err) {
      const e = err as Error & { statusCode?: number };
      e.statusCode = 400;
      done(e, undefined);
    }
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      servers: [{ url: '/', description: 'this floatd server' }],
      info: {
        title: 'floatd',
        version: ctx.version,
        description: 'Floating-license server: seats, leases, offline checkout, reclamation.',
      },
      components: {
        securitySchemes: {
          adminToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'Admin token (printed once on first start, kept in data/admin-token)',
          },
          licenseKey: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'License <key>' },
        },
      },
    },
  });

  // A POST without a body validates as an empty object, so "missing field" is reported instead of "body must be object".
  app.addHook('preValidation', async (req) => {
    // %00 decodes to U+0000 in a path parameter or a query value of a declared route: refused as in a body (PostgreSQL
    // text cannot hold it). An unknown path stays ROUTE_NOT_FOUND.
    if (req.routeOptions.config.spec && req.url.includes('%00')) throw new ErrorReply('VALIDATION_FAILED', NUL_REFUSED);
    if (req.body === undefined && req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'DELETE') req.body = {};
  });
  // While closing, requests that arrive on kept-alive connections get the envelope (in-flight ones finish normally).
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    if (closing) {
      reply.header('connection', 'close');
      throw new ErrorReply('SERVICE_UNAVAILABLE', 'the server is shutting down; retry');
    }
  });
  // A connection that authenticated may idle as long as keep-alive allows; one that has not is closed after a short
  // idle time (connections.ts), and its answers say so, so that clients do not race the close.
  const idleMs = opts.unauthenticatedIdleMs;
  app.addHook('onSend', async (req, reply) => {
    if (authenticates(req.routeOptions.url ?? '', reply.statusCode)) markAuthenticated(req.raw);
    else if (idleMs !== undefined && !isAuthenticated(req.raw)) reply.header('keep-alive', keepAliveHint(idleMs));
  });
  app.addHook('onResponse', async (req, reply) => {
    // A change that committed proves the storage writes again.
    if (ctx.storageHealth.current && req.method !== 'GET' && req.method !== 'HEAD' && reply.statusCode < 300) ctx.storageHealth.recovered();
    const route = req.routeOptions.url ?? 'unmatched';
    ctx.metrics.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    ctx.metrics.duration.observe({ route }, reply.elapsedTime / 1000);
  });

  const guards = new Guards(ctx, opts.security ?? NO_LIMITS);
  opsRoutes(app, ctx);
  corsPreflight(app, guards);
  // The security hooks go first in each scope: they run before the routes' own authentication hooks.
  await app.register(async (scope) => {
    clientSecurity(scope, ctx, guards);
    clientRoutes(scope, ctx);
  });
  await app.register(async (scope) => {
    adminSecurity(scope, guards);
    adminRoutes(scope, ctx);
    eventRoutes(scope, ctx);
    onpremAdminRoutes(scope, ctx);
  });
  // Vendor routes called by on-premise servers: the failed-authentication limit guards the activation keys.
  await app.register(async (scope) => {
    adminSecurity(scope, guards);
    vendorPublicRoutes(scope, ctx);
  });
  await app.register(async (scope) => {
    consoleSecurity(scope);
    await consoleRoutes(scope);
  });
  return app;
}
