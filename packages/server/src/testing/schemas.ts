/** Helpers for tests that walk the routes of /openapi.json: valid example values generated from the route schemas. */
import { randomInt } from 'node:crypto';

export type Schema = Record<string, any>;

export const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export const random = (alphabet: string, n: number) => Array.from({ length: n }, () => alphabet[randomInt(alphabet.length)]).join('');
/** The prefix of an id schema (`prd`, `lic`, …), if `schema` is one. */
export const idPrefix = (schema: Schema | undefined) => /^\^([a-z]+)_\[0-9A-Za-z\]\{20\}\$$/.exec(String(schema?.pattern ?? ''))?.[1];
/** A well-formed id that points at nothing. */
export const idOf = (prefix: string) => `${prefix}_${random(ALNUM, 20)}`;
/** A well-formed path parameter that names nothing: an id of its kind, or a name (a group's). */
export const pathValue = (schema: Schema | undefined) => {
  const prefix = idPrefix(schema);
  return prefix ? idOf(prefix) : `n${random(ALNUM, 11)}`;
};

/** A value that satisfies `schema` (ids are well formed and point at nothing). */
export function example(schema: Schema): unknown {
  if (schema.anyOf) return example(schema.anyOf[0]);
  if (schema.enum) return schema.enum[0];
  switch (schema.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const name of schema.required ?? []) out[name] = example(schema.properties[name]);
      return out;
    }
    case 'array':
      return Array.from({ length: schema.minItems ?? 0 }, () => example(schema.items));
    case 'integer':
    case 'number':
      return schema.minimum ?? 0;
    case 'boolean':
      return false;
    case 'string': {
      const prefix = idPrefix(schema);
      if (prefix) return idOf(prefix);
      if (schema.format === 'date-time') return '2026-03-02T10:00:00.000Z';
      return 'x'.repeat(Math.max(schema.minLength ?? 1, 8));
    }
    default:
      return null;
  }
}

/**
 * A schema with every type list (`{"type": ["string", "null"], …}`, protocol's Nullable of a scalar) written as the
 * equivalent anyOf (`[{"type": "string", …}, {"type": "null"}]`): the walkers read a schema's `type` as one name.
 */
export function withAnyOf(schema: Schema | undefined): Schema | undefined {
  if (!schema || typeof schema !== 'object') return schema;
  if (Array.isArray(schema)) return schema.map(withAnyOf);
  const out: Schema = {};
  for (const [k, v] of Object.entries(schema))
    out[k] = v && typeof v === 'object' ? (Array.isArray(v) && k === 'type' ? v : withAnyOf(v)) : v;
  if (Array.isArray(out.type)) {
    const { type, description, ...rest } = out;
    return {
      ...(description ? { description } : {}),
      anyOf: (type as string[]).map((t) => (t === 'null' ? { type: 'null' } : { ...rest, type: t })),
    };
  }
  return out;
}

/** One operation of /openapi.json, as the route walkers use it. */
export interface Operation {
  method: string;
  path: string;
  /** which credential the route takes: admin bearer token, license key, or none (ops routes) */
  auth: 'admin' | 'client' | 'none';
  pathParams: { name: string; schema: Schema }[];
  queryParams: { name: string; schema: Schema; required?: boolean }[];
  body: Schema | undefined;
}

/** Every operation of an OpenAPI document (the walkers enumerate routes from the server's own /openapi.json). */
export function openApiOperations(doc: { paths: Record<string, Record<string, any>> }): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const params: { name: string; in: string; schema: Schema; required?: boolean }[] = op.parameters ?? [];
      ops.push({
        method: method.toUpperCase(),
        path,
        auth: path.startsWith('/v1/client/') ? 'client' : path.startsWith('/v1/admin/') ? 'admin' : 'none',
        pathParams: params.filter((p) => p.in === 'path').map((p) => ({ ...p, schema: withAnyOf(p.schema)! })),
        queryParams: params.filter((p) => p.in === 'query').map((p) => ({ ...p, schema: withAnyOf(p.schema)! })),
        body: withAnyOf(op.requestBody?.content?.['application/json']?.schema),
      });
    }
  }
  return ops;
}
