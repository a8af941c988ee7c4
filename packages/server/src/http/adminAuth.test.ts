/**
 * Authentication on every protected route, enumerated from /openapi.json (not a
 * hand-made list, so a new route is covered the day it is added): every admin
 * route refuses a missing, wrong, near-miss or wrong-scheme credential with
 * 401 UNAUTHENTICATED; every client route refuses a missing, malformed or
 * unknown license key with the same 401 INVALID_LICENSE_KEY; and none of these
 * refusals changes the database.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ERRORS, KEY_ALPHABET, formatKey } from '@floatd/protocol';
import { startTestServer, type HttpAnswer, type TestServer } from '../testing/harness.js';
import { example, pathValue, random, type Schema } from '../testing/schemas.js';

interface Operation {
  method: string;
  /** OpenAPI path, with `{param}` templates */
  path: string;
  security: string[];
  params: { name: string; in: string; schema: Schema }[];
  body: Schema | undefined;
}

let t: TestServer;
let ops: Operation[];
let dbBefore: Snapshot;
let realKey: string;

/** A well-formed key (valid check symbol) that no license has. */
const unknownKey = () => formatKey(random(KEY_ALPHABET, 24));

/** The operation's path with every path parameter replaced by a well-formed id of the right kind (or a name). */
function concretePath(op: Operation): string {
  return op.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const p = op.params.find((x) => x.in === 'path' && x.name === name);
    assert.ok(p?.schema?.pattern, `path parameter ${name} of ${op.method} ${op.path} has a pattern`);
    return pathValue(p.schema);
  });
}

/** Sends the operation with the given Authorization header (none when undefined) and a valid body when it takes one. */
function call(op: Operation, authorization: string | undefined, path = concretePath(op)): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  if (authorization !== undefined) headers.authorization = authorization;
  if (!op.body) return t.raw(op.method, path, { headers });
  headers['content-type'] = 'application/json';
  return t.raw(op.method, path, { headers, body: JSON.stringify(example(op.body)) });
}

function assertEnvelope(res: HttpAnswer, code: keyof typeof ERRORS, what: string) {
  assert.equal(res.status, ERRORS[code].status, `${what}: status (${JSON.stringify(res.body)})`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${what}: content-type`);
  assert.deepEqual(Object.keys(res.body ?? {}), ['error'], `${what}: only the envelope`);
  const e = res.body.error;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'requestId'], `${what}: envelope fields`);
  assert.equal(e.code, code, `${what}: code`);
  assert.ok(typeof e.message === 'string' && e.message.length > 0, `${what}: message`);
  assert.match(e.requestId, /^req_[0-9A-Za-z]{20}$/, `${what}: requestId`);
  assert.equal(res.headers.get('x-request-id'), e.requestId, `${what}: x-request-id header is the envelope's requestId`);
}

type Snapshot = Record<string, string[]>;
const snapshot = (): Promise<Snapshot> => t.snapshot();

before(async () => {
  t = await startTestServer();
  // Some data worth protecting: a product, a license, a held seat (and the admin token's lastUsedAt, written on first use).
  const lic = await t.license({ seats: 2 });
  realKey = lic.key;
  assert.equal((await t.client(realKey, 'POST', '/v1/client/checkout', { fingerprint: 'fp-admin-auth-1', instanceId: 'app' })).status, 201);
  const doc = (await t.raw('GET', '/openapi.json')).body;
  ops = [];
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      ops.push({
        method: method.toUpperCase(),
        path,
        security: (op.security ?? []).flatMap((s: Record<string, unknown>) => Object.keys(s)),
        params: op.parameters ?? [],
        body: op.requestBody?.content?.['application/json']?.schema,
      });
    }
  }
  dbBefore = await snapshot();
});
after(() => t.close());

const adminOps = () => ops.filter((o) => o.security.includes('adminToken'));
const clientOps = () => ops.filter((o) => o.path.startsWith('/v1/client/'));

test('the OpenAPI document declares adminToken on every /v1/admin/ route and licenseKey on every /v1/client/ route, and on no other', () => {
  assert.ok(adminOps().length >= 15, `at least 15 admin routes are enumerated (got ${adminOps().length})`);
  assert.ok(clientOps().length >= 5, `at least 5 client routes are enumerated (got ${clientOps().length})`);
  for (const op of ops) {
    const where = `${op.method} ${op.path}`;
    if (op.path.startsWith('/v1/admin/')) assert.deepEqual(op.security, ['adminToken'], `${where} declares adminToken security`);
    else if (op.path.startsWith('/v1/client/')) assert.deepEqual(op.security, ['licenseKey'], `${where} declares licenseKey security`);
    else assert.deepEqual(op.security, [], `${where} (outside /v1/admin and /v1/client) declares no security`);
  }
});

test('every admin route refuses a missing, wrong, near-miss or wrong-scheme credential with 401 UNAUTHENTICATED and WWW-Authenticate', async (c) => {
  const token = t.adminToken;
  assert.match(token, /^fdt_[0-9A-Za-z]{20}_[A-Za-z0-9_-]{43}$/, 'the admin token has the documented shape');
  const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  const credentials: [string, string | undefined][] = [
    ['no Authorization header', undefined],
    ['empty Authorization header', ''],
    ['Bearer with no token', 'Bearer '],
    ['Bearer wrong-token-value', 'Bearer wrong-token-value'],
    ['a license key', `License ${realKey}`],
    ['the admin token with the License scheme', `License ${token}`],
    ['the admin token with no scheme', token],
    ['the admin token with the Basic scheme', `Basic ${Buffer.from(`admin:${token}`).toString('base64')}`],
    ['the admin token, last secret character changed', `Bearer ${flip(token, token.length - 1)}`],
    ['the admin token, first secret character changed', `Bearer ${flip(token, 25)}`],
    ['the admin token, a token-id character changed', `Bearer ${flip(token, 4)}`],
    ['the admin token, one character cut', `Bearer ${token.slice(0, -1)}`],
    ['the admin token, one character added', `Bearer ${token}A`],
    ['the admin token twice', `Bearer ${token} ${token}`],
  ];
  let sent = 0;
  for (const op of adminOps()) {
    for (const [what, authorization] of credentials) {
      const res = await call(op, authorization);
      sent++;
      const where = `${op.method} ${op.path} with ${what}`;
      assertEnvelope(res, 'UNAUTHENTICATED', where);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer\b/, `${where}: www-authenticate`);
    }
    if (op.method === 'GET') {
      // fastify answers HEAD on every GET route: it must be as closed as the GET.
      const res = await t.raw('HEAD', concretePath(op));
      sent++;
      assert.equal(res.status, 401, `HEAD ${op.path} without a token`);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer\b/, `HEAD ${op.path}: www-authenticate`);
    }
  }
  c.diagnostic(`${adminOps().length} admin routes × ${credentials.length} credentials (+ HEAD): ${sent} requests`);
});

test('every client route refuses a missing, malformed or unknown license key with the very same 401 INVALID_LICENSE_KEY', async (c) => {
  const body = realKey.replace(/-/g, '').slice(0, 24);
  const check = realKey.slice(-1);
  const otherCheck = KEY_ALPHABET[(KEY_ALPHABET.indexOf(check) + 1) % KEY_ALPHABET.length]!;
  const headers: [string, string | undefined][] = [
    ['no Authorization header', undefined],
    ['empty Authorization header', ''],
    ['License with no key', 'License '],
    ['License garbage', 'License not-a-license-key'],
    ['the real key with a wrong check symbol', `License ${formatKey(body).slice(0, -1)}${otherCheck}`],
    ['the real key one symbol short', `License ${realKey.slice(0, -1)}`],
    ['the real key with a symbol outside the alphabet', `License ${realKey.slice(0, -2)}U${check}`],
    ['the real key with the Bearer scheme', `Bearer ${realKey}`],
    ['the admin token as a key', `License ${t.adminToken}`],
    ['a 65-character key', `License ${realKey}${'-'.repeat(65 - realKey.length)}`],
    ['a well-formed unknown key', `License ${unknownKey()}`],
    ['another well-formed unknown key, lower case without dashes', `License ${unknownKey().replace(/-/g, '').toLowerCase()}`],
  ];
  let sent = 0;
  for (const op of clientOps()) {
    const path = concretePath(op);
    let reference: { code: string; message: string } | undefined;
    for (const [what, authorization] of headers) {
      const res = await call(op, authorization, path);
      sent++;
      const where = `${op.method} ${op.path} with ${what}`;
      assertEnvelope(res, 'INVALID_LICENSE_KEY', where);
      const { code, message } = res.body.error;
      reference ??= { code, message };
      assert.deepEqual({ code, message }, reference, `${where}: the same answer as for a missing key`);
    }
  }
  c.diagnostic(`${clientOps().length} client routes × ${headers.length} keys: ${sent} requests`);
});

test('a refused credential changes nothing in the database', async () => {
  // The last test: every refusal above has been sent by now (node:test runs a file's tests in order).
  assert.deepEqual(await snapshot(), dbBefore);
  // And the real credentials still work, so the refusals were not a server that refuses everything.
  assert.equal((await t.admin('GET', '/v1/admin/products')).status, 200);
  assert.equal((await t.client(realKey, 'GET', '/v1/client/license')).status, 200);
});
