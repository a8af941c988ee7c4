/**
 * HTTP fuzzing: tens of thousands of generated hostile requests, sent as raw
 * bytes over TCP (so nothing is normalised on the way: invalid methods,
 * duplicate or oversized headers, lone surrogates, NUL, `..` and `%2e%2e`,
 * encoded slashes, very long URLs, broken percent-encoding all reach the server
 * as written) to every route of /openapi.json on a real server.
 *
 * Two phases, both seeded (fast-check) and reproducible: the seed is printed;
 * rerun with FLOATD_FUZZ_SEED=<seed>.
 *
 * 1. Defective requests. Each carries at least one defect the server must refuse
 *    (no or wrong credentials, unknown route or method, a malformed id, malformed
 *    JSON, a wrong media type, a field of the wrong type or an unknown field, an
 *    unknown query parameter, oversized headers), plus hostile noise elsewhere.
 *    Every answer must be a 4xx in the one error envelope (also for bytes that
 *    Node's HTTP parser refuses before any route runs), and the database must be
 *    exactly as before.
 * 2. Hostile but possibly valid requests: real credentials and real ids, bodies
 *    whose fields hold hostile values (huge and NaN-like numbers, long strings,
 *    unicode, deep JSON). These may succeed. No answer may be a 5xx, and the seat
 *    counters must still equal the lease rows afterwards.
 *
 * After both, the server still answers /healthz and /readyz.
 *
 * FLOATD_FUZZ_REQUESTS sets the total (default 20,000, 3,000 in the PostgreSQL pass; a fifth of
 * it in phase 2), e.g. FLOATD_FUZZ_REQUESTS=100000 node --test packages/server/dist/http/fuzz.test.js
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import fc from 'fast-check';
import { ERRORS, isErrorCode } from '@floatd/protocol';
import { startTestServer, type TestServer } from '../testing/harness.js';
import { example, idOf, idPrefix, openApiOperations, pathValue, type Operation, type Schema } from '../testing/schemas.js';

// The full 20,000 take ~50 s on the 2-core machine, so the default (SQLite) run sends them all; the PostgreSQL pass
// repeats a 3,000-request sample (its snapshots and requests are slower). FLOATD_FUZZ_REQUESTS=N for a longer campaign.
const TOTAL = Number(process.env.FLOATD_FUZZ_REQUESTS ?? (process.env.FLOATD_TEST_STORE === 'postgres' ? 3_000 : 20_000));
const SEED = Number(process.env.FLOATD_FUZZ_SEED ?? Date.now() % 2_147_483_647);
const CONCURRENCY = 24;

/** A request as bytes: nothing is escaped or checked on the way. */
interface Raw {
  what: string;
  method: string;
  target: string;
  headers: [string, string][];
  body?: Buffer;
  /** phase 1: the defect that must get it refused */
  defect?: string;
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  reset?: boolean;
}

let t: TestServer;
let ops: Operation[];
let port = 0;
const real = { licenseKey: '', licenseId: '', productId: '', leaseId: '', offlineLeaseId: '', deviceFingerprint: 'fuzz-device-0001' };

// ---------------------------------------------------------------------------------------------------------------
// hostile values

const HOSTILE_TEXT = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udfffy',
  '\udc00\ud800',
  '\u202egnp.exe',
  '\u200f\u200e\u2066',
  '\ufeff\u200b',
  '😀',
  'ｆｕｌｌ',
  'e\u0301',
  '../../etc/passwd',
  '..\\..\\windows',
  '%2e%2e%2f',
  '%00',
  "' OR 1=1 --",
  '"; DROP TABLE leases; --',
  '<script>alert(1)</script>',
  '${jndi:ldap://x/a}',
  '{{7*7}}',
  'NaN',
  'Infinity',
  '-Infinity',
  '1e400',
  '-0',
  '0x1F',
  '1_000',
  'null',
  'true',
  'undefined',
  '__proto__',
  'constructor',
  'prototype',
  '\r\nX-Injected: 1',
  '\t',
  '\\u0000',
  'lic_' + 'A'.repeat(20),
  'lse_00000000000000000000',
];
const text: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE_TEXT) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(200, 300, 1_000, 5_000, 70_000).map((n) => 'x'.repeat(n)) },
);
/** JSON number literals, written as text: some are not representable (1e400) or not integers. */
const numberLiteral: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '1e400',
    '-1e400',
    '1e308',
    '-1e308',
    '5e-324',
    '-0',
    '0',
    '1',
    '-1',
    '0.5',
    '9007199254740993',
    '-9007199254740993',
    '2147483648',
    '4294967296',
    '123456789012345678901234567890',
    '1.0',
    '1E2',
    '0.0000001',
    '86400',
    '86401',
    '10001',
  ),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
);
/** A JSON value as text (so raw number literals and deep nesting survive). */
const jsonValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: text.map((s) => JSON.stringify(s)) },
  { weight: 4, arbitrary: numberLiteral },
  {
    weight: 1,
    arbitrary: fc.constantFrom('true', 'false', 'null', '[]', '{}', '[null]', '{"":null}', '{"__proto__":{"x":1}}', '[[[[[[[[1]]]]]]]]'),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.constantFrom(65, 100, 3_000, 20_000).map((n) => '['.repeat(n) + ']'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom(65, 1_000).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)) },
);
const garbageBody: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '{',
    '}',
    '{"a":}',
    "{'a':1}",
    '{"a":1,}',
    '{"a" 1}',
    '[',
    'nul',
    'NaN',
    '{"a":NaN}',
    '{"a":Infinity}',
    '{"a":01}',
    '\u0000{}',
    '{}{}',
    '{"a":"\\ud800"',
    '{"a":"\\x00"}',
    '\ufeff{}x',
    '{"a":1}garbage',
    ']',
  ),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 200 }).filter((s) => {
    // Blank text is "no body" by design (body-less POSTs), not broken JSON: an optional-body route accepts it.
    if (s.trim() === '') return false;
    try {
      JSON.parse(s);
      return false;
    } catch {
      return true;
    }
  }),
);
const junkHeaders: fc.Arbitrary<[string, string][]> = fc.array(
  fc.oneof(
    fc.constantFrom<[string, string]>(
      ['x-forwarded-for', '1.2.3.4, ::1, not-an-ip'],
      ['x-request-id', 'req_forged'],
      ['accept', '*/*;q=NaN'],
      ['accept-encoding', 'gzip, br, zstd, x'.repeat(10)],
      ['cookie', 'a=' + 'b'.repeat(1000)],
      ['expect', '100-continue'],
      ['range', 'bytes=0-1'],
      ['if-none-match', '*'],
      ['origin', 'null'],
      ['x-http-method-override', 'DELETE'],
      ['content-encoding', 'gzip'],
      ['transfer-encoding', 'identity'],
      ['user-agent', '\u00ff\u00fe'],
      ['accept-language', 'x'.repeat(4000)],
      ['host', 'evil.example'],
      ['forwarded', 'for=unknown;proto=javascript'],
    ),
    fc.tuple(
      fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
      fc.string({ unit: 'binary-ascii', maxLength: 50 }).map((s) => s.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, '')),
    ),
  ),
  { maxLength: 4 },
);

// ---------------------------------------------------------------------------------------------------------------
// building requests

/** Percent-encodes the UTF-8 bytes of `s` (a lone surrogate becomes U+FFFD, where encodeURIComponent would throw). */
const enc = (s: string) =>
  [...Buffer.from(s, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');
function auth(op: Operation): string {
  return op.auth === 'admin' ? `Bearer ${t.adminToken}` : `License ${real.licenseKey}`;
}
/** The op's path with its parameters filled: a real id when `realIds`, else a well-formed id that points at nothing. */
function fillPath(op: Operation, realIds: boolean, override: Record<string, string> = {}): string {
  return op.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    if (override[name] !== undefined) return override[name]!;
    const schema = op.pathParams.find((p) => p.name === name)?.schema;
    if (!idPrefix(schema)) return pathValue(schema);
    const prefix = idPrefix(schema)!;
    if (realIds) {
      if (prefix === 'lic') return real.licenseId;
      if (prefix === 'prd') return real.productId;
      if (prefix === 'lse') return op.path.includes('/return') ? real.offlineLeaseId : real.leaseId;
    }
    return idOf(prefix);
  });
}
/** Whether a raw path segment decodes to a value the parameter's schema accepts (pattern and length). */
function validParam(schema: Schema | undefined, raw: string): boolean {
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    return false;
  }
  if (!schema || schema.type !== 'string') return false;
  if (schema.minLength !== undefined && value.length < schema.minLength) return false;
  if (schema.maxLength !== undefined && value.length > schema.maxLength) return false;
  return schema.pattern === undefined || new RegExp(schema.pattern, 'u').test(value);
}
/** A body: the route's valid example with some fields set to `values` (raw JSON texts), unknown extras optional. */
function bodyText(op: Operation, values: Record<string, string>): string {
  const base = example(op.body!) as Record<string, unknown>;
  const entries = Object.entries(base).map(([k, v]) => [k, JSON.stringify(v)] as [string, string]);
  for (const [k, v] of Object.entries(values)) {
    const at = entries.findIndex(([name]) => name === k);
    if (at >= 0) entries[at] = [k, v];
    else entries.push([k, v]);
  }
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}
function fieldNames(op: Operation): string[] {
  return Object.keys(op.body?.properties ?? {});
}

const DEFECTS = ['auth', 'method', 'path', 'param', 'media', 'json', 'field', 'unknown-field', 'query', 'header-size'] as const;
type Defect = (typeof DEFECTS)[number];

function applicable(op: Operation, d: Defect): boolean {
  switch (d) {
    case 'auth':
      return op.auth !== 'none';
    case 'param':
      return op.pathParams.length > 0;
    case 'media':
    case 'json':
    case 'field':
    case 'unknown-field':
      return op.body !== undefined;
    case 'query':
      return op.queryParams.length > 0;
    default:
      return true;
  }
}

/** A value of the wrong JSON type for a field of `schema` (raw JSON text). */
function wrongType(schema: Schema, pick: number): string | undefined {
  const types = new Set<string>(schema.anyOf ? (schema.anyOf as Schema[]).map((s) => s.type as string) : [schema.type as string]);
  if (schema.nullable) types.add('null');
  if (types.has(undefined as never)) return undefined;
  const candidates: [string, string][] = [
    ['string', '"7"'],
    ['number', '7.5'],
    ['integer', '7'],
    ['boolean', 'true'],
    ['null', 'null'],
    ['array', '[1]'],
    ['object', '{"k":1}'],
  ];
  const wrong = candidates.filter(([ty]) => !types.has(ty) && !(ty === 'integer' && types.has('number')) && !(ty === 'number' && false));
  // 7.5 is a number but not an integer: wrong for integer fields too
  if (types.has('integer') && !types.has('number')) wrong.push(['number', '7.5']);
  if (!wrong.length) return undefined;
  return wrong[pick % wrong.length]![1];
}

const caseArb = (phase: 1 | 2): fc.Arbitrary<Raw> =>
  fc
    .record({
      op: fc.nat(),
      defect: fc.nat(),
      pick: fc.nat(),
      values: fc.array(fc.tuple(fc.nat(), jsonValue), { maxLength: 3 }),
      hostile: text,
      garbage: garbageBody,
      junk: junkHeaders,
      realIds: fc.boolean(),
      authVariant: fc.nat(7),
      pathTrick: fc.nat(11),
      methodVariant: fc.nat(9),
      mediaVariant: fc.nat(6),
      dupAuth: fc.boolean(),
    })
    .map((g) => {
      const op = ops[g.op % ops.length]!;
      const headers: [string, string][] = [...g.junk.filter(([k]) => k !== 'host')];
      const values: Record<string, string> = {};
      const names = fieldNames(op);
      for (const [i, v] of g.values) if (names.length) values[names[i % names.length]!] = v;
      let method = op.method;
      let target = fillPath(op, phase === 2 && g.realIds);
      let body = op.body ? bodyText(op, values) : undefined;
      let contentType: string | undefined = 'application/json';
      let authHeader: string | undefined = op.auth === 'none' ? undefined : auth(op);
      let what = `${op.method} ${op.path}`;
      let defect: Defect | undefined;
      if (phase === 1) {
        const usable = DEFECTS.filter((d) => applicable(op, d));
        defect = usable[g.defect % usable.length]!;
        what += ` [${defect}]`;
        switch (defect) {
          case 'auth': {
            const other = op.auth === 'admin' ? `License ${real.licenseKey}` : `Bearer ${t.adminToken}`;
            authHeader = [
              undefined,
              '',
              'Bearer',
              'License',
              other,
              `Basic ${Buffer.from('a:b').toString('base64')}`,
              `Bearer ${g.hostile.replace(/[\r\n\u0000]/g, '')}`.slice(0, 4000),
              `License ${'A'.repeat(5000)}`,
            ][g.authVariant];
            // (the last two may carry non-latin1 text: header bytes are sent as UTF-8, which is still not a valid credential)
            break;
          }
          case 'method': {
            const declared = new Set(ops.filter((o) => o.path === op.path).map((o) => o.method));
            const others = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND', 'CONNECTX', 'get'].filter(
              (m) => !declared.has(m) && !(m === 'HEAD' && declared.has('GET')),
            );
            method = others[g.methodVariant % others.length]!;
            break;
          }
          case 'path': {
            const p = target;
            const tricks = [
              `${p}/..`,
              p.replace('/v1/', '/v1/../v1/x/'),
              p.replace('/v1/', '/v1//'),
              p.replace('/v1/', '/%2e%2e/'),
              `${p}%2F`,
              p.replace(/\/([^/]*)$/, '%2F$1'),
              `${p}/${'a'.repeat(9000)}`,
              p.replace('/v1/', '/V1/'),
              `${p};x=1`,
              `${p}/`,
              p.replace('/v1', '/v2'),
              `${p}/${enc(g.hostile).slice(0, 3000) || 'x'}`,
            ];
            target = tricks[g.pathTrick % tricks.length]!;
            // a trailing slash on a path that ends in a parameter is still refused (empty or malformed id), like every other trick
            break;
          }
          case 'param': {
            const name = op.pathParams[g.pick % op.pathParams.length]!.name;
            const bad = [
              enc(g.hostile) || '%20',
              '..',
              '%2e%2e',
              '..%2F..%2Fetc',
              'lic_%00',
              '%ZZ',
              '%E0%A4%A',
              '%C0%AF',
              '%ED%A0%80',
              'x'.repeat(250),
              '%C3%A9',
              `lic_${'%FF'.repeat(20)}`,
            ];
            // a hostile text can still be a valid value of a free-form parameter (a group named "Infinity"): only invalid ones are defects
            const schema = op.pathParams.find((p) => p.name === name)?.schema;
            const invalid = bad.filter((v) => !validParam(schema, v));
            target = fillPath(op, false, { [name]: invalid[g.pick % invalid.length]! });
            break;
          }
          case 'media':
            contentType = [
              undefined,
              'text/plain',
              'application/x-www-form-urlencoded',
              'multipart/form-data; boundary=x',
              'application/jsonx',
              'application/xml',
              'text/json',
            ][g.mediaVariant];
            break;
          case 'json':
            body = g.garbage;
            break;
          case 'field': {
            const props: Record<string, Schema> = op.body!.properties ?? {};
            const typed = Object.entries(props).filter(([, s]) => wrongType(s, g.pick) !== undefined);
            if (typed.length) {
              const [name, s] = typed[g.pick % typed.length]!;
              body = bodyText(op, { ...values, [name]: wrongType(s, g.pick)! });
            } else {
              body = bodyText(op, { ...values, ['x-unknown-' + (g.pick % 100)]: '1' });
            }
            break;
          }
          case 'unknown-field':
            body = bodyText(op, { ...values, [`${g.hostile.slice(0, 100)}\u0001unknown`]: '1' });
            break;
          case 'query': {
            const names2 = op.queryParams.map((q) => q.name);
            target += `?${enc(g.hostile).slice(0, 100) || 'x'}-unknown=1&${names2[g.pick % names2.length]}=${enc(g.hostile).slice(0, 2000)}`;
            break;
          }
          case 'header-size':
            headers.push(['x-padding', 'p'.repeat(17_000 + (g.pick % 50_000))]);
            break;
        }
      } else {
        // phase 2: valid credentials and shape, hostile content; sometimes a hostile query string or a garbage body too
        if (op.queryParams.length && g.pick % 3 === 0)
          target += `?${op.queryParams[g.pick % op.queryParams.length]!.name}=${enc(g.hostile).slice(0, 2000)}`;
        if (op.body && g.pick % 11 === 0) body = g.garbage;
      }
      if (authHeader !== undefined) {
        headers.push(['authorization', authHeader]);
        if (g.dupAuth && defect !== 'auth') headers.push(['authorization', 'Bearer forged-second-header']);
      }
      if (body !== undefined && contentType !== undefined) headers.push(['content-type', contentType]);
      if (body === undefined && g.pick % 5 === 0) {
        // a body on a body-less route, sometimes with a declared type
        body = g.garbage;
        if (g.pick % 2 === 0) headers.push(['content-type', 'application/json']);
      }
      return {
        what,
        method,
        target,
        headers,
        ...(body !== undefined ? { body: Buffer.from(body, 'utf8') } : {}),
        ...(defect ? { defect } : {}),
      };
    });

// ---------------------------------------------------------------------------------------------------------------
// sending raw HTTP/1.1

function send(r: Raw): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const head = [`${r.method} ${r.target} HTTP/1.1`, 'host: 127.0.0.1', 'connection: close'];
    for (const [k, v] of r.headers) head.push(`${k}: ${v}`);
    if (r.body) head.push(`content-length: ${r.body.length}`);
    const bytes = Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n', 'utf8'), r.body ?? Buffer.alloc(0)]);
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1');
    let done = false;
    const finish = (reset: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const all = withoutInterim(Buffer.concat(chunks).toString('utf8'));
      const m = /^HTTP\/1\.1 (\d{3})/.exec(all);
      if (!m) {
        if (reset) return resolve({ status: 0, headers: {}, body: '', reset: true });
        return reject(new Error(`not an HTTP answer: ${JSON.stringify(all.slice(0, 200))}`));
      }
      const split = all.indexOf('\r\n\r\n');
      const headers: Record<string, string> = {};
      for (const line of all.slice(0, split).split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      let body = split >= 0 ? all.slice(split + 4) : '';
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      // Only the first answer counts: after an early answer, bytes of the same request that were still arriving
      // (a body the route never read, with framing junk) may be parsed and refused as a next request.
      else if (headers['content-length']) body = Buffer.from(body, 'utf8').subarray(0, Number(headers['content-length'])).toString('utf8');
      resolve({ status: Number(m[1]), headers, body, ...(reset ? { reset } : {}) });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      if (!done) {
        done = true;
        reject(new Error(`no answer within 15 s`));
      }
    }, 15_000);
    socket.on('data', (b: Buffer) => {
      chunks.push(b);
      // the event stream never ends by itself: its headers are the answer
      if (/content-type: text\/event-stream/i.test(withoutInterim(Buffer.concat(chunks).toString('latin1')).split('\r\n\r\n')[0] ?? '')) {
        socket.destroy();
        finish(false);
      }
    });
    socket.on('end', () => finish(false));
    socket.on('close', () => finish(true));
    socket.on('error', () => undefined); // a reset after an early answer (413, 431): the answer read so far counts
    // not end(): a half-closed request is one the client gave up on, and Node aborts it (allowHalfOpen is off)
    socket.write(bytes);
  });
}

/** Drops interim answers (`100 Continue` to an `expect` header): the final answer is what counts. */
const withoutInterim = (s: string) => s.replace(/^(HTTP\/1\.1 1\d\d [^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, '');

function dechunk(s: string): string {
  let out = '';
  let rest = s;
  for (;;) {
    const i = rest.indexOf('\r\n');
    if (i < 0) return out;
    const n = parseInt(rest.slice(0, i), 16);
    if (!n) return out;
    out += rest.slice(i + 2, i + 2 + n);
    rest = rest.slice(i + 2 + n + 2);
  }
}

/** What is wrong with an answer, or undefined. `refuse`: it must be a 4xx. */
function judge(r: Raw, a: Answer, refuse: boolean): string | undefined {
  const where = `${r.what}: ${r.method} ${r.target.slice(0, 150)}`;
  if (a.reset && a.status === 0) return refuse ? undefined : undefined; // the server closed without an answer (Node refusing bytes that are not HTTP)
  if (a.status >= 500) return `${where} → ${a.status} ${a.body.slice(0, 300)}`;
  if (refuse && (a.status < 400 || a.status >= 500))
    return `${where} → ${a.status}, expected a 4xx (defect ${r.defect}) ${a.body.slice(0, 200)}`;
  if (a.status >= 400 && /application\/json/.test(a.headers['content-type'] ?? '')) {
    let e: any;
    try {
      e = JSON.parse(a.body).error;
    } catch {
      return `${where} → ${a.status} with a body that is not JSON: ${a.body.slice(0, 200)}`;
    }
    if (!e || !isErrorCode(e.code)) return `${where} → ${a.status} not the error envelope: ${a.body.slice(0, 200)}`;
    if (ERRORS[e.code as keyof typeof ERRORS].status !== a.status)
      return `${where} → ${a.status} but ${e.code} is ${ERRORS[e.code as keyof typeof ERRORS].status}`;
  } else if (a.status >= 400) {
    return `${where} → ${a.status} without the error envelope: ${a.body.slice(0, 200)}`;
  }
  return undefined;
}

async function run(cases: Raw[], refuse: boolean, stats: Map<string, number>): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      const c = cases[i]!;
      let a: Answer;
      try {
        a = await send(c);
      } catch (err) {
        failures.push(`#${i} ${c.what}: ${(err as Error).message}`);
        if (process.env.FLOATD_FUZZ_VERBOSE)
          console.error(
            JSON.stringify({
              i,
              method: c.method,
              target: c.target.slice(0, 300),
              headers: c.headers.map(([k, v]) => [k, v.slice(0, 200)]),
              body: c.body?.toString('utf8').slice(0, 300),
            }),
          );
        continue;
      }
      const key = a.status === 0 ? 'reset' : String(a.status);
      stats.set(key, (stats.get(key) ?? 0) + 1);
      const bad = judge(c, a, refuse);
      if (bad) failures.push(`#${i} ${bad}`);
      if (bad && process.env.FLOATD_FUZZ_VERBOSE)
        console.error(
          JSON.stringify({
            i,
            method: c.method,
            target: c.target.slice(0, 300),
            headers: c.headers.map(([k, v]) => [k, v.slice(0, 200)]),
            body: c.body?.toString('utf8').slice(0, 300),
          }),
        );
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return failures;
}

async function counters(): Promise<string[]> {
  const rows = await t.rows(
    `SELECT l.id, l.seats, l.seats_used AS used, l.seats_offline AS offline,
      (SELECT COUNT(*) FROM leases x WHERE x.license_id = l.id) AS n,
      (SELECT COUNT(*) FROM leases x WHERE x.license_id = l.id AND x.offline = ?) AS noff
    FROM licenses l`,
    t.store === 'postgres' ? true : 1,
  );
  return rows
    .filter((r) => Number(r.used) !== Number(r.n) || Number(r.offline) !== Number(r.noff) || Number(r.used) > Number(r.seats))
    .map((r) => JSON.stringify(r));
}

before(async () => {
  t = await startTestServer();
  port = Number(new URL(t.url).port);
  const lic = await t.license({ seats: 4, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60, maxOfflineSeconds: 86_400 });
  Object.assign(real, { licenseKey: lic.key, licenseId: lic.id, productId: lic.productId });
  const g = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: real.deviceFingerprint, instanceId: 'app' });
  assert.equal(g.status, 201);
  real.leaseId = g.body.lease.id;
  const off = await t.client(lic.key, 'POST', '/v1/client/offline-checkout', {
    fingerprint: 'fuzz-device-0002',
    instanceId: 'app',
    durationSeconds: 3600,
  });
  assert.equal(off.status, 201, JSON.stringify(off.body));
  real.offlineLeaseId = off.body.lease.id;
  const doc = (await t.raw('GET', '/openapi.json')).body;
  ops = openApiOperations(doc);
  // The console answers any path under /console/ with its page by design; revoking tokens and deleting
  // would only shrink what later requests can reach, so phase 2 leaves them to phase 1 and the walker.
});
after(() => t.close());

test(`HTTP fuzzing: ${TOTAL} generated hostile requests to every route, zero 5xx, refusals change nothing`, {
  timeout: 600_000,
}, async (c) => {
  c.diagnostic(`seed ${SEED} (rerun with FLOATD_FUZZ_SEED=${SEED}), ${ops.length} operations in /openapi.json`);
  const started = Date.now();
  const phase2Count = Math.floor(TOTAL / 5);
  // Phase 1 is the API: outside it, /console/* answers any path with the console's page by design.
  const all = ops;
  const api = ops.filter((o) => o.path.startsWith('/v1/'));
  ops = api;
  const phase1 = fc.sample(caseArb(1), { seed: SEED, numRuns: TOTAL - phase2Count });
  ops = all;
  assert.ok(new Set(phase1.map((r) => r.what.split(' [')[0])).size >= api.length, 'every API route is fuzzed');

  const dbBefore = await t.snapshot();
  const stats1 = new Map<string, number>();
  const failures1 = await run(phase1, true, stats1);
  const phase1Ms = Date.now() - started;
  c.diagnostic(
    `phase 1: ${phase1.length} defective requests in ${phase1Ms} ms; answers ${[...stats1]
      .sort()
      .map(([k, v]) => `${k}×${v}`)
      .join(' ')}`,
  );
  assert.deepEqual(failures1.slice(0, 20), [], `${failures1.length} defective requests were not refused cleanly (seed ${SEED})`);
  assert.deepEqual(await t.snapshot(), dbBefore, `the database is unchanged by ${phase1.length} refused requests (seed ${SEED})`);

  // phase 2 leaves out what would end the run's own access (revoking tokens, deleting the license)
  ops = all.filter((o) => o.method !== 'DELETE' && !o.path.includes('/revoke'));
  const phase2 = fc.sample(caseArb(2), { seed: SEED + 1, numRuns: phase2Count });
  ops = all;
  const stats2 = new Map<string, number>();
  const failures2 = await run(phase2, false, stats2);
  c.diagnostic(
    `phase 2: ${phase2.length} hostile requests with real credentials and ids; answers ${[...stats2]
      .sort()
      .map(([k, v]) => `${k}×${v}`)
      .join(' ')}`,
  );
  assert.deepEqual(failures2.slice(0, 20), [], `${failures2.length} hostile requests got a 5xx or a malformed answer (seed ${SEED})`);
  assert.deepEqual(await counters(), [], 'every license: seats used = lease rows, seats offline = offline lease rows, used <= seats');

  assert.equal((await t.raw('GET', '/healthz')).status, 200, 'still alive');
  assert.equal((await t.raw('GET', '/readyz')).status, 200, 'still ready');
  c.diagnostic(`${phase1.length + phase2.length} requests in ${Date.now() - started} ms`);
});

test('concurrent signing-key rotations (found by the fuzzer): every one succeeds and every new key is published', async () => {
  const answers = await Promise.all(Array.from({ length: 8 }, () => t.admin('POST', '/v1/admin/signing-keys/rotate')));
  assert.deepEqual(
    answers.map((a) => a.status),
    Array(8).fill(200),
    JSON.stringify(answers.map((a) => a.body)),
  );
  const published = new Set(((await t.raw('GET', '/.well-known/jwks.json')).body.keys as { kid: string }[]).map((k) => k.kid));
  for (const a of answers) assert.ok(published.has(a.body.kid), `key ${a.body.kid} is in the JWKS`);
});
