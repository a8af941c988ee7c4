/**
 * Registers a handler against a route declared in `@floatd/protocol`: the path,
 * schemas (validation and /openapi.json), security scheme, body limit and role
 * all come from the declaration. The handler's request is typed by the route's
 * params, query and body, and its answer by the route's responses: a handler that
 * does not match its route does not compile.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as wire from '@floatd/protocol';
import type { BodyOf, ParamsOf, QueryOf, ReplyOf, RouteSpec } from '@floatd/protocol';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the protocol declaration of the route (admin scopes read its role) */
    spec?: RouteSpec;
  }
}

const SECURITY: Record<RouteSpec['auth'], { [k: string]: string[] }[] | undefined> = {
  none: undefined,
  license: [{ licenseKey: [] }],
  admin: [{ adminToken: [] }],
  activation: undefined,
  document: undefined,
};

/** A `201 Created` answer (for routes that declare one). */
export class Created<T> {
  constructor(readonly body: T) {}
}
export const created = <T>(body: T) => new Created(body);

export type RouteRequest<R extends RouteSpec> = FastifyRequest<{ Params: ParamsOf<R>; Querystring: QueryOf<R>; Body: BodyOf<R> }>;
type Answer<R extends RouteSpec> = R['responses'] extends { 201: unknown } ? ReplyOf<R> | Created<ReplyOf<R>> : ReplyOf<R>;

/** Registers `handler` for the declared route `r` on `app` (a scope with its authentication hooks). */
export function handle<R extends RouteSpec>(
  app: FastifyInstance,
  r: R,
  handler: (req: RouteRequest<R>, reply: FastifyReply) => Promise<Answer<R>>,
): void {
  app.route({
    method: r.method,
    url: r.path,
    ...(r.bodyLimit ? { bodyLimit: r.bodyLimit } : {}),
    config: { spec: r },
    schema: schemaOf(r),
    handler: async (req, reply) => {
      const answer = await handler(req as unknown as RouteRequest<R>, reply);
      if (answer instanceof Created) return reply.code(201).send(answer.body);
      return answer;
    },
  });
}

/** Registers a route whose answer is not JSON (metrics, OpenAPI, an event stream): the handler owns the reply. */
export function handleRaw<R extends RouteSpec & { raw: true }>(
  app: FastifyInstance,
  r: R,
  handler: (req: RouteRequest<R>, reply: FastifyReply) => unknown,
): void {
  app.route({ method: r.method, url: r.path, config: { spec: r }, schema: schemaOf(r), handler: handler as never });
}

function schemaOf(r: RouteSpec) {
  const errors = r.auth === 'none' ? { '5xx': wire.ErrorBody } : { '4xx': wire.ErrorBody, '5xx': wire.ErrorBody };
  return {
    summary: r.summary,
    ...(r.operationId ? { operationId: r.operationId } : {}),
    tags: [...r.tags],
    // Routes without a scheme say so (an empty list), rather than leave it to the reader.
    security: SECURITY[r.auth] ?? [],
    ...(r.params ? { params: r.params } : {}),
    ...(r.query ? { querystring: r.query } : {}),
    ...(r.body ? { body: r.optionalBody ? Type.Optional(r.body) : r.body } : {}),
    ...(r.raw ? rawResponses(r) : { response: { ...r.responses, ...errors } }),
  };
}

/** A raw route's answers for OpenAPI: its declared 200 (media type and schema), and its 4xx when it authenticates. */
function rawResponses(r: RouteSpec) {
  const ok = r.rawResponse
    ? { 200: { description: r.rawResponse.description, content: { [r.rawResponse.contentType]: { schema: r.rawResponse.schema } } } }
    : {};
  const response = { ...ok, ...(r.auth === 'none' ? {} : { '4xx': wire.ErrorBody }) };
  return Object.keys(response).length ? { response } : {};
}

/** What a customer's own administrator may reach through an admin route (from its declaration; none declared: `vendor`). */
export function scopeOf(req: FastifyRequest): NonNullable<RouteSpec['scope']> {
  return req.routeOptions.config.spec?.scope ?? 'vendor';
}

/** The role an admin route needs (from its declaration). */
export function roleOf(req: FastifyRequest): RouteSpec['role'] {
  return req.routeOptions.config.spec?.role;
}
