/**
 * A bad-input walker: every route of /openapi.json that takes a body, a query
 * string or path parameters gets malformed, mistyped, out-of-range, oversized,
 * deeply nested and otherwise hostile input, correctly authenticated (so the
 * input itself is what gets judged). Every answer must be a 4xx in the one error
 * envelope, with a known code whose status is the status sent, and the database
 * must be byte-for-byte what it was before the walk: a refused request changes nothing.
 *
 * Cases are derived from the published schemas (required, type, maxLength,
 * minimum/maximum, pattern, ...), so a new route or field is walked the day it is added.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, Agent } from 'node:http';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import * as wire from '@floatd/protocol';
import { ERRORS, KEY_ALPHABET, formatKey, isErrorCode } from '@floatd/protocol';
import { startTestServer, type TestServer } from '../testing/harness.js';
import { ALNUM, example, idOf, idPrefix, openApiOperations, pathValue, random, type Operation, type Schema } from '../testing/schemas.js';
import { BODY_LIMIT, MAX_JSON_DEPTH } from './app.js';

interface Case {
  what: string;
  method: string;
  /** sent as is: no URL normalisation, so `..` and broken percent-encoding reach the server */
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** the code the answer must carry, when the case determines it */
  expect?: string;
  /** the route's declaration in @floatd/protocol: the answer's code must be one it declares */
  route?: wire.RouteSpec | undefined;
}
interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

let t: TestServer;
let ops: Operation[];
let licenseKey: string;
/** per route, how many query candidates were valid input and so not sent */
const skippedValid: string[] = [];
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

const JSON_TYPE = { 'content-type': 'application/json' };

/** The JSON types a schema admits (`nullable` and anyOf included). */
function typesOf(schema: Schema): string[] {
  if (schema.anyOf) return [...new Set<string>((schema.anyOf as Schema[]).flatMap(typesOf))];
  const types: string[] = [schema.type ?? (schema.enum ? typeof schema.enum[0] : 'any')];
  if (schema.nullable) types.push('null');
  return types;
}
/** Whether a string schema admits `value` by its content (pattern, format, enumeration), length aside. */
const admits = (s: Schema, value: string) => !s.format && !s.enum && !s.anyOf && (!s.pattern || new RegExp(s.pattern, 'u').test(value));
/** Free text: a string whose content is (nearly) free: names, hostnames, versions. */
const isFreeText = (s: Schema) => s.type === 'string' && admits(s, 'Free text: ✓ 😀 “quoted”');

/** Values of the wrong JSON type for a schema. */
function wrongTypes(schema: Schema): [string, unknown][] {
  const types = typesOf(schema);
  if (types.includes('any')) return [];
  const out: [string, unknown][] = [];
  const add = (what: string, v: unknown) => {
    const actual = v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v;
    const admitted = types.includes(actual) || (actual === 'integer' && types.includes('number'));
    if (!admitted) out.push([what, v]);
  };
  if (types.includes('string')) add('number for a string', 123);
  if (types.includes('integer') || types.includes('number')) add('string for a number', 'x');
  if (types.includes('integer')) add('fraction for an integer', 1.5);
  if (types.includes('boolean')) {
    add('"yes" for a boolean', 'yes');
    add('1 for a boolean', 1);
  }
  if (types.includes('object')) add('array for an object', []);
  if (types.includes('array')) add('object for an array', {});
  add('number', 7);
  add('object', { nested: true });
  add('array', [1]);
  add('boolean', true);
  add('null', null);
  return out;
}

const deep = (levels: number, open: string, leaf: string, close: string) => open.repeat(levels) + leaf + close.repeat(levels);
const HOSTILE_STRINGS: [string, string][] = [
  ['NUL', 'a\u0000b'],
  ['control characters', '\u0001\u0007\u001b[2J\r\n'],
  ['a lone surrogate', 'x\ud800y'],
  ['emoji and a right-to-left override', '😀\u202egnp.exe'],
  ['a byte-order mark and zero-width space', '\ufeff\u200b'],
  ['a quote, a backslash and SQL', `'"\\; DROP TABLE licenses; --`],
];

/** The operation's path, each parameter a well-formed id of its kind (pointing at nothing) unless given in `ids`. */
function concretePath(op: Operation, ids: Record<string, string> = {}): string {
  return op.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    if (ids[name] !== undefined) return ids[name]!;
    const schema = op.pathParams.find((p) => p.name === name)?.schema;
    if (!schema?.pattern) assert.ok(!op.path.startsWith('/v1/'), `path parameter ${name} of ${op.method} ${op.path} has a pattern`);
    return schema?.pattern ? pathValue(schema) : 'x';
  });
}

// Query strings are text that the server coerces (Ajv, coerceTypes), so whether a hostile value is really invalid is
// decided the way the server decides it: candidates the published schema would accept are not bad input, and are dropped.
const queryAjv = new Ajv({ coerceTypes: true, useDefaults: true, strict: false });
(addFormats as unknown as (a: Ajv) => Ajv)(queryAjv);
function queryIsValid(op: Operation, query: string): boolean {
  const schema = {
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries(op.queryParams.map((p) => [p.name, p.schema])),
    required: op.queryParams.filter((p) => p.required).map((p) => p.name),
  };
  const parsed: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(query)) parsed[k] = k in parsed ? ([] as string[]).concat(parsed[k]!, v) : v;
  return queryAjv.validate(schema, parsed);
}

/** Every bad-input case for one operation. */
function casesFor(op: Operation): Case[] {
  const auth = op.auth !== 'client' ? `Bearer ${t.adminToken}` : `License ${licenseKey}`;
  const fill = (ids: Record<string, string> = {}) => concretePath(op, ids);
  const cases: Case[] = [];
  /** Routes that take signed documents (license files, usage reports) have a larger limit. */
  const route = wire.routes.ALL_ROUTES.find((r) => wire.routeName(r) === `${op.method} ${op.path}`);
  const bodyLimit = route?.bodyLimit ?? BODY_LIMIT;
  const add = (what: string, c: Partial<Case>) =>
    cases.push({ what, method: op.method, path: fill(), route, ...c, headers: { authorization: auth, ...(c.headers ?? {}) } });
  const json = (what: string, value: unknown, expect = 'VALIDATION_FAILED') =>
    add(what, { headers: JSON_TYPE, body: JSON.stringify(value), expect });
  /** `base` with `key` set to raw JSON text (too deep to build as a value: JSON.stringify would overflow the stack) */
  const raw = (what: string, base: Record<string, unknown>, key: string, text: string, expect = 'VALIDATION_FAILED') =>
    add(what, { headers: JSON_TYPE, body: JSON.stringify({ ...base, [key]: '\u0000RAW' }).replace('"\\u0000RAW"', text), expect });
  const MALFORMED = 'MALFORMED_JSON';
  const MEDIA = 'UNSUPPORTED_MEDIA_TYPE';
  const validBody = op.body ? (example(op.body) as Record<string, unknown>) : undefined;
  const withBody = (extra: Partial<Case>) => (validBody ? { headers: JSON_TYPE, body: JSON.stringify(validBody), ...extra } : extra);

  // --- body -------------------------------------------------------------------------------------------
  if (op.body) {
    const schema = op.body;
    const props: Record<string, Schema> = schema.properties ?? {};
    for (const text of ['{', '{"a":}', "{'a':1}", '{"a":1,}', '{"a":1}}', '"unterminated', 'nul', '{"a":01}', '{"a":NaN}', '\u0000{}']) {
      add(`malformed JSON ${JSON.stringify(text)}`, { headers: JSON_TYPE, body: text, expect: MALFORMED });
    }
    add('a __proto__ key', { headers: JSON_TYPE, body: '{"__proto__":{"admin":true}}', expect: MALFORMED });
    add('a constructor.prototype key', { headers: JSON_TYPE, body: '{"constructor":{"prototype":{"admin":true}}}', expect: MALFORMED });
    for (const [what, v] of [
      ['an array', []],
      ['an array of the body', [validBody]],
      ['a string', 'body'],
      ['a number', 42],
      ['true', true],
      ['null', null],
    ] as const) {
      json(`${what} instead of an object`, v);
    }
    for (const name of schema.required ?? []) {
      const { [name]: _dropped, ...rest } = validBody!;
      json(`required ${name} missing`, rest);
    }
    if ((schema.minProperties ?? 0) > 0 || (schema.required ?? []).length > 0) {
      // (a body-less POST validates as {}; only where {} is itself invalid, or the walk would run /reclaim and friends)
      json('no field at all', {});
      add('an empty body', { headers: JSON_TYPE, body: '', expect: 'VALIDATION_FAILED' });
      add('a whitespace body', { headers: JSON_TYPE, body: ' \r\n\t ', expect: 'VALIDATION_FAILED' });
    }
    json('an unknown extra field', { ...validBody, unknownField: 1 });
    json('an unknown extra field with a null value', { ...validBody, 'x-other': null });
    raw('deep nesting in an unknown field (5000 levels)', validBody!, 'nested', deep(5000, '{"a":', '1', '}'));
    add('deep nesting as the body (5000 levels)', { headers: JSON_TYPE, body: deep(5000, '{"a":', '1', '}'), expect: 'VALIDATION_FAILED' });
    add('deep array nesting as the body (30000 levels)', {
      headers: JSON_TYPE,
      body: deep(30000, '[', '', ']'),
      expect: 'VALIDATION_FAILED',
    });
    add(`a body over ${bodyLimit / 1024} KiB`, {
      headers: JSON_TYPE,
      body: JSON.stringify({ ...validBody, padding: 'x'.repeat(bodyLimit + 6 * 1024) }),
      expect: 'PAYLOAD_TOO_LARGE',
    });
    add('a body over 64 KiB as text/plain', { headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(70 * 1024) });
    add('a JSON body as text/plain', { headers: { 'content-type': 'text/plain' }, body: JSON.stringify(validBody), expect: MEDIA });
    add('a JSON body as form data', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1', expect: MEDIA });
    add('a JSON body as multipart', { headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--', expect: MEDIA });
    add('a JSON body with a made-up JSON-ish type', {
      headers: { 'content-type': 'application/jsonx' },
      body: JSON.stringify(validBody),
      expect: MEDIA,
    });
    add('a JSON body with no content-type', { body: JSON.stringify(validBody), expect: MEDIA });
    add('bytes that are not UTF-8', {
      headers: JSON_TYPE,
      body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
      expect: 'VALIDATION_FAILED',
    });

    for (const [name, p] of Object.entries(props)) {
      const at = (v: unknown) => ({ ...validBody, [name]: v });
      for (const [what, v] of wrongTypes(p)) json(`${name}: ${what}`, at(v));
      if (p.type === 'string') {
        const fitting = p.pattern ? 'a'.repeat(4) : 'x';
        if (p.maxLength !== undefined)
          json(`${name}: longer than maxLength ${p.maxLength}`, at(fitting.repeat(Math.ceil((p.maxLength + 1) / fitting.length))));
        if (p.maxLength !== undefined)
          json(`${name}: a string over the body limit`, at('x'.repeat(Math.max(1_000_000, bodyLimit + 1024))), 'PAYLOAD_TOO_LARGE');
        if ((p.minLength ?? 0) > 0) json(`${name}: empty string`, at(''));
        for (const [what, v] of [
          ['does not match its pattern/format', '!! not valid !!'],
          ['valid value with a trailing newline', `${String(example(p))}\n`],
        ] as const) {
          if (!admits(p, v)) json(`${name}: ${what}`, at(v));
        }
        if (idPrefix(p)) json(`${name}: id with the wrong prefix`, at(idOf('xyz')));
        if (p.enum || p.anyOf) json(`${name}: not one of the allowed values`, at('not-an-allowed-value'));
        for (const [what, s] of HOSTILE_STRINGS) {
          if (!admits(p, s)) json(`${name}: ${what}`, at(s));
          // Free text may legitimately hold these; sent past maxLength, the request must still be refused cleanly.
          // (maxLength counts code points, not UTF-16 units)
          else if (p.maxLength !== undefined)
            json(`${name}: ${what} beyond maxLength`, at(s.repeat(Math.ceil((p.maxLength + 1) / [...s].length))));
        }
      }
      if (p.type === 'integer' || p.type === 'number' || typesOf(p).includes('integer')) {
        const num = p.anyOf?.find((s: Schema) => s.type === 'integer') ?? p;
        if (num.maximum !== undefined) json(`${name}: maximum + 1`, at(num.maximum + 1));
        if (num.minimum !== undefined) json(`${name}: minimum - 1`, at(num.minimum - 1));
        json(`${name}: 1e308`, at(1e308));
        json(`${name}: -1e308`, at(-1e308));
        json(`${name}: negative`, at(-1));
        json(`${name}: 2^53 + 1`, at(2 ** 53 + 1));
        raw(`${name}: 1e400 (Infinity once parsed)`, validBody!, name, '1e400');
      }
      if (p.type === 'object') {
        raw(`${name}: nested 5000 levels`, validBody!, name, deep(5000, '{"a":', '1', '}'));
        raw(`${name}: an array nested 5000 levels`, validBody!, name, `{"k":${deep(5000, '[', '', ']')}}`);
        // one level past the limit, counting the body itself
        raw(`${name}: nested ${MAX_JSON_DEPTH} levels inside the body`, validBody!, name, deep(MAX_JSON_DEPTH, '{"a":', '1', '}'));
        if (p.maxProperties !== undefined)
          json(
            `${name}: more than ${p.maxProperties} keys`,
            at(Object.fromEntries(Array.from({ length: p.maxProperties + 1 }, (_, i) => [`k${i}`, i]))),
          );
        if (p.propertyNames?.minLength) json(`${name}: an empty key`, at({ '': 1 }));
        if (p.propertyNames?.maxLength !== undefined)
          json(`${name}: a key over ${p.propertyNames.maxLength} characters`, at({ ['k'.repeat(p.propertyNames.maxLength + 1)]: 1 }));
        raw(`${name}: a __proto__ key inside`, validBody!, name, '{"__proto__":{"x":1}}', MALFORMED);
      }
      if (p.type === 'array') {
        json(`${name}: an item of the wrong type`, at([123]));
        json(`${name}: an item that is an object`, at([{}]));
        if (p.maxItems !== undefined)
          json(`${name}: more than ${p.maxItems} items`, at(Array.from({ length: p.maxItems + 1 }, (_, i) => `i${i}`)));
        if (p.uniqueItems) json(`${name}: duplicate items`, at(['dup-1', 'dup-1']));
        if (p.items?.type === 'string') for (const [what, s] of HOSTILE_STRINGS.slice(0, 3)) json(`${name}: an item with ${what}`, at([s]));
      }
    }
  }

  // --- path parameters --------------------------------------------------------------------------------
  for (const { name, schema } of op.pathParams) {
    if (!idPrefix(schema)) {
      // a name (a group's): what no name may be
      const names: [string, string][] = [
        ['..', '..'],
        ['../ encoded', '..%2F..%2Fetc%2Fpasswd'],
        ['a NUL', 'name%00'],
        ['a space', 'a%20name'],
        ['an emoji', 'name%F0%9F%98%80'],
        ['broken percent-encoding', 'name%ZZ'],
        ['SQL', encodeURIComponent("x' OR 1=1 --")],
        ['65 characters', random(ALNUM, 65)],
      ];
      for (const [what, value] of names)
        add(`path ${name}: ${what}`, { path: fill({ [name]: value }), ...withBody({}), expect: 'VALIDATION_FAILED' });
      continue;
    }
    const prefix = idPrefix(schema)!;
    const other = prefix === 'lic' ? 'prd' : 'lic';
    const bad: [string, string][] = [
      ['the wrong prefix', idOf(other)],
      ['no prefix', random(ALNUM, 20)],
      ['too short', `${prefix}_${random(ALNUM, 5)}`],
      ['too long', `${prefix}_${random(ALNUM, 21)}`],
      ['upper-case prefix', `${prefix.toUpperCase()}_${random(ALNUM, 20)}`],
      ['a dash in the random part', `${prefix}_${random(ALNUM, 19)}-`],
      ['..', '..'],
      ['../ encoded', '..%2F..%2Fetc%2Fpasswd'],
      ['a NUL', `${idOf(prefix).slice(0, -1)}%00`],
      ['a space', `${prefix}_%20${random(ALNUM, 19)}`],
      ['an emoji', `${prefix}_${random(ALNUM, 18)}%F0%9F%98%80`],
      ['broken percent-encoding', `${prefix}_%ZZ`],
      ['a truncated UTF-8 sequence', `${prefix}_%E0%A4%A`],
      ['an overlong UTF-8 slash', `${prefix}_%C0%AF${random(ALNUM, 18)}`],
      ['SQL', encodeURIComponent(`${prefix}_' OR 1=1 --`)],
      ['300 characters', `${prefix}_${random(ALNUM, 296)}`],
    ];
    for (const [what, value] of bad)
      add(`path ${name}: ${what}`, { path: fill({ [name]: value }), ...withBody({}), expect: 'VALIDATION_FAILED' });
  }

  // --- query string -----------------------------------------------------------------------------------
  if (op.queryParams.length) {
    let dropped = 0;
    const q = (what: string, query: string) => {
      if (queryIsValid(op, query)) dropped++;
      else add(`query ${what}`, { path: `${fill()}?${query}`, ...withBody({}), expect: 'VALIDATION_FAILED' });
    };
    q('an unknown parameter', 'unknownParam=1');
    q('an unknown parameter named __proto__', '__proto__=1');
    q('an unknown parameter with broken percent-encoding', '%ZZ=1');
    for (const { name, schema } of op.queryParams) {
      const values = [
        '%ZZ',
        '%00',
        encodeURIComponent('x'.repeat(5000)),
        '',
        'abc',
        '0',
        '-1',
        '1.5',
        '1e308',
        '0x10',
        '100000',
        '99999999999999999999',
        'maybe',
        'yes',
        '[]',
        '{}',
        encodeURIComponent('../../etc/passwd'),
        encodeURIComponent("' OR 1=1 --"),
        encodeURIComponent('😀\u0000'),
        'yesterday',
        '2026-13-45T99:99:99Z',
        '2026-03-02',
        idOf('xyz'),
      ];
      if (schema.minimum !== undefined) values.push(String(schema.minimum - 1));
      if (schema.maximum !== undefined) values.push(String(schema.maximum + 1));
      for (const v of values) q(`${name}=${v.slice(0, 40)}`, `${name}=${v}`);
      q(`${name} twice`, `${name}=${encodeURIComponent(String(example(schema)))}&${name}=${encodeURIComponent(String(example(schema)))}`);
    }
    // Not a failure: say how many candidates were valid input for this route.
    if (dropped) skippedValid.push(`${op.method} ${op.path}: ${dropped}`);
  }
  return cases;
}

/** Requests that match no route, or a route with a method it does not have. */
function unknownRoutes(): Case[] {
  const admin = `Bearer ${t.adminToken}`;
  const cases: Case[] = [];
  const paths = [
    '/',
    '/v1',
    '/v1/admin',
    '/v1/admin/',
    '/v1/admin/nope',
    '/v1/client/nope',
    '/v2/admin/products',
    '/V1/ADMIN/PRODUCTS',
    '/v1/admin//products',
    `/v1/admin/products/${idOf('prd')}/extra`,
    '/v1/admin/products%2F',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/../../etc/passwd',
    `/${'x'.repeat(5000)}`,
    '/v1/admin/products;jsessionid=1',
    '/v1/%00',
    '/v1/client/checkout/',
    '/.env',
  ];
  const routeNotFound = 'ROUTE_NOT_FOUND';
  for (const path of paths) {
    // (GET / is a route: it redirects to the console)
    if (path !== '/')
      cases.push({
        what: `unknown route ${path.slice(0, 60)}`,
        method: 'GET',
        path,
        headers: { authorization: admin },
        expect: routeNotFound,
      });
    cases.push({
      what: `unknown route ${path.slice(0, 60)} without credentials`,
      method: 'POST',
      path,
      headers: JSON_TYPE,
      body: '{}',
      expect: routeNotFound,
    });
  }
  // Not unknown, but refused before routing: a path that is not valid percent-encoding; an empty id.
  cases.push({ what: 'a path that is not valid percent-encoding', method: 'GET', path: '/%ZZ', headers: {}, expect: 'VALIDATION_FAILED' });
  cases.push({
    what: 'an empty product id',
    method: 'GET',
    path: '/v1/admin/products/',
    headers: { authorization: admin },
    expect: 'VALIDATION_FAILED',
  });
  const declared = new Map<string, { methods: Set<string>; op: Operation }>();
  for (const op of ops) {
    const entry = declared.get(op.path) ?? { methods: new Set<string>(), op };
    declared.set(op.path, entry);
    entry.methods.add(op.method);
  }
  for (const [path, { methods, op }] of declared) {
    const concrete = concretePath(op);
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE']) {
      if (methods.has(method)) continue;
      const auth = path.startsWith('/v1/client/') ? `License ${licenseKey}` : admin;
      const body = method === 'TRACE' ? {} : { headers: { authorization: auth, ...JSON_TYPE }, body: '{}' };
      cases.push({
        what: `${method} on ${path}`,
        method,
        path: concrete,
        headers: { authorization: auth },
        ...body,
        expect: routeNotFound,
      });
    }
  }
  return cases;
}

function send(c: Case): Promise<Answer> {
  const { port } = new URL(t.url);
  const headers: Record<string, string> = { ...c.headers };
  if (c.body !== undefined) headers['content-length'] = String(Buffer.byteLength(c.body));
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: c.method, path: c.path, headers, agent, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within 10 s: ${c.what}`)));
    req.on('error', reject);
    req.end(c.body);
  });
}

/** Sends one case; a server that answers early (413) may reset the connection while the body is still going out: retry once on a fresh socket. */
async function sendWithRetry(c: Case): Promise<Answer> {
  try {
    return await send(c);
  } catch (err) {
    if (!/ECONNRESET|EPIPE|socket hang up/.test(String((err as Error).message) + String((err as NodeJS.ErrnoException).code))) throw err;
    return send(c);
  }
}

function assertRefused(c: Case, res: Answer) {
  const where = `${c.what} (${c.method} ${c.path.slice(0, 120)})`;
  assert.ok(res.status >= 400 && res.status < 500, `${where}: a 4xx, got ${res.status} ${res.text.slice(0, 300)}`);
  assert.match(String(res.headers['content-type'] ?? ''), /^application\/json/, `${where}: JSON answer`);
  let body: any;
  try {
    body = JSON.parse(res.text);
  } catch {
    assert.fail(`${where}: the answer is not JSON: ${res.text.slice(0, 300)}`);
  }
  assert.deepEqual(Object.keys(body), ['error'], `${where}: only the envelope, got ${res.text.slice(0, 300)}`);
  const e = body.error;
  assert.ok(isErrorCode(e.code), `${where}: ${e.code} is a code of ERRORS`);
  if (c.expect) assert.equal(e.code, c.expect, `${where}: ${e.message}`);
  // Refusals made before a route is chosen (the request line, headers, an unknown path) belong to no route.
  if (c.route && !PRE_ROUTING.has(e.code))
    assert.ok(wire.errorsOf(c.route).has(e.code), `${where}: ${e.code} is declared by ${wire.routeName(c.route)} in @floatd/protocol`);
  assert.equal(ERRORS[e.code as keyof typeof ERRORS].status, res.status, `${where}: status ${res.status} is the status of ${e.code}`);
  assert.ok(typeof e.message === 'string' && e.message.trim().length > 0, `${where}: a message`);
  assert.match(e.requestId, /^req_[0-9A-Za-z]{20}$/, `${where}: a request id`);
  assert.equal(res.headers['x-request-id'], e.requestId, `${where}: x-request-id is the envelope's requestId`);
}

const PRE_ROUTING = new Set(['MALFORMED_REQUEST', 'HEADERS_TOO_LARGE', 'REQUEST_TIMEOUT', 'ROUTE_NOT_FOUND']);

type Snapshot = Record<string, string[]>;
const snapshot = (): Promise<Snapshot> => t.snapshot();

before(async () => {
  t = await startTestServer();
  // Real data for the refusals to leave alone: a product, a license with one seat held, an audit trail.
  const lic = await t.license({ seats: 3, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60, maxOfflineSeconds: 86_400 });
  licenseKey = lic.key;
  assert.equal(
    (await t.client(licenseKey, 'POST', '/v1/client/checkout', { fingerprint: 'fp-bad-input-1', instanceId: 'app' })).status,
    201,
  );
  const doc = (await t.raw('GET', '/openapi.json')).body;
  ops = openApiOperations(doc);
});
after(async () => {
  agent.destroy();
  await t.close();
});

test('bad input to every route is refused with a 4xx error envelope, and changes nothing', async (c) => {
  // The API (/v1/...). Outside it only /console/* takes input, and it answers any path with the console's page by design.
  const walked = ops.filter((o) => o.path.startsWith('/v1/') && (o.body || o.pathParams.length || o.queryParams.length));
  assert.ok(walked.length >= 20, `at least 20 routes take input (got ${walked.length})`);
  assert.ok(walked.some((o) => o.auth === 'client') && walked.some((o) => o.auth === 'admin'), 'client and admin routes are walked');
  const cases = [...walked.flatMap(casesFor), ...unknownRoutes()];

  const dbBefore = await snapshot();
  const failures: string[] = [];
  const codes = new Map<string, number>();
  // A few at a time: quick, and concurrent refusals must not disturb each other either.
  for (let i = 0; i < cases.length; i += 16) {
    const batch = cases.slice(i, i + 16);
    const answers = await Promise.all(batch.map((k) => sendWithRetry(k).catch((err: Error) => err)));
    batch.forEach((k, j) => {
      const res = answers[j]!;
      if (res instanceof Error) return failures.push(`${k.what}: ${res.message}`);
      try {
        assertRefused(k, res);
        const code = JSON.parse(res.text).error.code as string;
        codes.set(code, (codes.get(code) ?? 0) + 1);
      } catch (err) {
        failures.push((err as Error).message.split('\n')[0]!);
      }
    });
  }
  c.diagnostic(`${walked.length} routes walked (${ops.length} in /openapi.json), ${cases.length} requests`);
  c.diagnostic(`answers: ${[...codes].map(([code, n]) => `${code} ${n}`).join(', ')}`);
  if (skippedValid.length) c.diagnostic(`query candidates that are valid input, not sent: ${skippedValid.join('; ')}`);
  assert.deepEqual(failures, [], `${failures.length} of ${cases.length} bad requests were not refused cleanly`);
  assert.ok(cases.length >= 500, `the walk sends several hundred requests (got ${cases.length})`);
  for (const code of ['VALIDATION_FAILED', 'MALFORMED_JSON', 'UNSUPPORTED_MEDIA_TYPE', 'PAYLOAD_TOO_LARGE', 'ROUTE_NOT_FOUND']) {
    assert.ok(codes.has(code), `the walk met ${code}`);
  }

  assert.deepEqual(await snapshot(), dbBefore, 'the database is unchanged by the refused requests');
  // The server is still healthy and still serves the real data.
  assert.equal((await t.raw('GET', '/readyz')).status, 200);
  assert.equal((await t.client(licenseKey, 'GET', '/v1/client/license')).status, 200);
});

test('hostile strings in free-text fields: NUL is refused by the schema, the rest reach the handler intact (the target does not exist)', async (c) => {
  // Free text may hold almost any character, so these requests are valid until the handler finds no target:
  // the ids (path) or the license key (client routes) point at nothing. NUL is the exception: PostgreSQL cannot
  // store it in TEXT (it was a 500 there), so every free-text field must refuse it at validation.
  const unknownKey = formatKey(random(KEY_ALPHABET, 24));
  const dbBefore = await snapshot();
  let sent = 0;
  for (const op of ops) {
    const props: Record<string, Schema> = op.body?.properties ?? {};
    const free = Object.entries(props).filter(([, p]) => isFreeText(p));
    if (!free.length || (op.auth !== 'client' && !op.pathParams.length)) continue;
    const auth = op.auth !== 'client' ? `Bearer ${t.adminToken}` : `License ${unknownKey}`;
    const path = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => pathValue(op.pathParams.find((p) => p.name === name)?.schema));
    for (const [name, p] of free) {
      assert.ok(!admits(p, 'a\u0000b'), `${op.method} ${op.path} ${name}: the schema refuses NUL`);
      for (const [what, s] of HOSTILE_STRINGS) {
        const k: Case = {
          what: `${op.method} ${op.path} ${name}: ${what}`,
          method: op.method,
          path,
          headers: { authorization: auth, ...JSON_TYPE },
          body: JSON.stringify({ ...(example(op.body!) as object), [name]: s }),
        };
        const res = await send(k);
        sent++;
        assertRefused(k, res);
        const code = JSON.parse(res.text).error.code as string;
        if (!admits(p, s)) assert.equal(code, 'VALIDATION_FAILED', `${k.what}: refused by the schema`);
        else
          assert.ok(
            /_NOT_FOUND$|^INVALID_LICENSE_KEY$/.test(code),
            `${k.what}: refused for the missing target, not the text (got ${code})`,
          );
      }
    }
  }
  c.diagnostic(`${sent} requests`);
  assert.ok(sent > 0, 'some free-text field was exercised');
  assert.deepEqual(await snapshot(), dbBefore, 'the database is unchanged');
});

test('NUL (U+0000) anywhere is refused with VALIDATION_FAILED before any store sees it: every query parameter, every path parameter, a metadata key or value', async (c) => {
  // PostgreSQL text cannot hold U+0000: a query filter carrying %00 once reached the store and was a 500 there.
  const dbBefore = await snapshot();
  const cases: Case[] = [];
  for (const op of ops) {
    const auth = op.auth === 'client' ? `License ${licenseKey}` : `Bearer ${t.adminToken}`;
    const headers = { authorization: auth };
    for (const q of op.queryParams) {
      if (!typesOf(q.schema).includes('string')) continue;
      cases.push({
        what: `${op.method} ${op.path}?${q.name}=%00`,
        method: op.method,
        path: `${concretePath(op)}?${q.name}=a%00b`,
        headers,
        expect: 'VALIDATION_FAILED',
      });
    }
    for (const p of op.pathParams) {
      cases.push({
        what: `${op.method} ${op.path} {${p.name}} with %00`,
        method: op.method,
        path: concretePath(op, { [p.name]: `${pathValue(p.schema)}%00` }),
        headers,
        expect: 'VALIDATION_FAILED',
      });
    }
    const props: Record<string, Schema> = op.body?.properties ?? {};
    for (const [name, p] of Object.entries(props)) {
      if (p.type !== 'object') continue;
      for (const [what, v] of [
        ['value', { note: 'a\u0000b' }],
        ['key', { 'a\u0000b': 1 }],
        ['nested value', { deep: ['x', { y: '\u0000' }] }],
      ] as const) {
        const body = JSON.stringify({ ...(example(op.body!) as object), [name]: v });
        cases.push({
          what: `${op.method} ${op.path} ${name} ${what} with NUL`,
          method: op.method,
          path: concretePath(op),
          headers: { ...headers, ...JSON_TYPE },
          body,
          expect: 'VALIDATION_FAILED',
        });
      }
    }
  }
  assert.ok(
    cases.some((k) => k.path.startsWith('/v1/admin/audit?actor=')),
    'the audit actor filter is among the cases',
  );
  assert.ok(
    cases.some((k) => / metadata /.test(k.what)),
    'a metadata object is among the cases',
  );
  for (const k of cases) {
    const res = await sendWithRetry(k);
    assertRefused(k, res);
  }
  c.diagnostic(`${cases.length} requests`);
  assert.deepEqual(await snapshot(), dbBefore, 'the database is unchanged');
});
