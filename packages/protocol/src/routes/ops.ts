/** Operations: health, readiness, metrics, OpenAPI, JWKS. No authentication (nothing secret). */
import { Type } from '@sinclair/typebox';
import { route } from '../route.js';
import * as schemas from '../schemas.js';

const tags = ['operations'] as const;

export const healthz = route({
  method: 'GET',
  path: '/healthz',
  summary: 'Liveness',
  tags,
  auth: 'none',
  responses: { 200: schemas.Obj({ status: Type.Literal('ok'), version: Type.String() }) },
  errors: [],
});

export const readyz = route({
  method: 'GET',
  path: '/readyz',
  summary: 'Readiness: the database answers',
  tags,
  auth: 'none',
  responses: { 200: schemas.Obj({ status: Type.Literal('ready'), store: Type.String() }) },
  errors: ['NODE_CLOCK_SKEWED'],
});

export const metrics = route({
  method: 'GET',
  path: '/metrics',
  summary: 'Prometheus metrics',
  tags,
  auth: 'none',
  responses: {},
  raw: true,
  errors: [],
});

export const jwks = route({
  method: 'GET',
  path: '/.well-known/jwks.json',
  summary: 'Public keys that verify lease tokens',
  tags,
  auth: 'none',
  responses: { 200: schemas.Jwks },
  errors: [],
});

export const openapi = route({
  method: 'GET',
  path: '/openapi.json',
  summary: 'This API as OpenAPI 3',
  tags,
  auth: 'none',
  responses: {},
  raw: true,
  errors: [],
});

export const opsRoutes = [healthz, readyz, metrics, jwks, openapi] as const;
