// The one caller against a real HTTP server (node:http): what it sends for a declared route, and
// every way an answer can come back (floatd's envelope, a proxy's page, nothing, too late).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError, call, send, type RawAnswer } from './call.js';
import * as routes from './routes/index.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
let server: Server;
let baseUrl = '';
let handler: Handler = (_req, _body, res) => res.end();

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((done) => server.close(() => done())));

/** The ApiError a call rejects with (a call that resolves fails the test). */
async function failure(pending: Promise<unknown>): Promise<ApiError> {
  const outcome = await pending.then(
    () => new Error('the call resolved'),
    (e: unknown) => e,
  );
  if (!(outcome instanceof ApiError)) throw outcome;
  return outcome;
}

const json = (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(value));
};

test('a declared route: method, path params encoded, query without undefined, JSON body, headers; the answer typed and parsed', async () => {
  let seen: { method?: string; url?: string; body?: string; auth?: string; type?: string; accept?: string } = {};
  handler = (req, body, res) => {
    seen = {
      method: req.method,
      url: req.url,
      body,
      auth: req.headers.authorization,
      type: req.headers['content-type'],
      accept: req.headers.accept,
    };
    json(res, 200, { released: true, leaseId: 'lse_x', offlineOverridden: false });
  };
  const answer = await send(
    routes.admin.releaseLease,
    { params: { leaseId: 'lse_a/b' }, body: { force: true } },
    { baseUrl, headers: { authorization: 'Bearer t' } },
  );
  assert.deepEqual(seen, {
    method: 'POST',
    url: '/v1/admin/leases/lse_a%2Fb/release',
    body: '{"force":true}',
    auth: 'Bearer t',
    type: 'application/json',
    accept: 'application/json',
  });
  assert.equal(answer.status, 200);
  assert.equal(answer.body.leaseId, 'lse_x');

  // An optional body left out is sent as {}; a GET has none; undefined query values are left out.
  await call(routes.admin.reclaimNow, {}, { baseUrl });
  assert.equal(seen.body, '{}');
  await call(routes.admin.listAudit, { query: { limit: 5, actor: undefined, type: 'checkout' } }, { baseUrl });
  assert.deepEqual([seen.method, seen.url, seen.body, seen.type], ['GET', '/v1/admin/audit?limit=5&type=checkout', '', undefined]);
});

test("floatd's error envelope is one ApiError: status, code, message, requestId, the other fields as details, Retry-After in ms", async () => {
  handler = (_req, _body, res) =>
    json(
      res,
      429,
      { error: { code: 'RATE_LIMITED', message: 'slow down', requestId: 'req_1', retryAfterSeconds: 7, limit: 10 } },
      { 'retry-after': '3' },
    );
  const err = await failure(call(routes.admin.whoami, {}, { baseUrl }));
  assert.deepEqual(
    {
      status: err.status,
      code: err.code,
      message: err.message,
      requestId: err.requestId,
      details: err.details,
      retryAfterMs: err.retryAfterMs,
      fromServer: err.fromServer,
    },
    {
      status: 429,
      code: 'RATE_LIMITED',
      message: 'slow down',
      requestId: 'req_1',
      details: { retryAfterSeconds: 7, limit: 10 },
      retryAfterMs: 3000,
      fromServer: true,
    },
  );
  assert.deepEqual(err.body, {
    error: { code: 'RATE_LIMITED', message: 'slow down', requestId: 'req_1', retryAfterSeconds: 7, limit: 10 },
  });

  // Without the header, the envelope's retryAfterSeconds; the request id from x-request-id when the envelope has none.
  handler = (_req, _body, res) =>
    json(res, 503, { error: { code: 'STORAGE_UNAVAILABLE', message: 'later', retryAfterSeconds: 2 } }, { 'x-request-id': 'req_2' });
  const later = await failure(call(routes.admin.whoami, {}, { baseUrl }));
  assert.deepEqual([later.code, later.retryAfterMs, later.requestId], ['STORAGE_UNAVAILABLE', 2000, 'req_2']);
});

test("an answer that is not floatd's: HTTP_<status> for an error page, BAD_RESPONSE for a success that is not JSON, accepted statuses as data", async () => {
  handler = (_req, _body, res) => {
    res.writeHead(502, { 'content-type': 'text/html' });
    res.end('<h1>Bad gateway</h1>');
  };
  const proxy = await failure(call(routes.ops.healthz, {}, { baseUrl }));
  assert.deepEqual([proxy.status, proxy.code, proxy.fromServer, proxy.body], [502, 'HTTP_502', false, null]);

  handler = (_req, _body, res) => res.end('<html>captive portal</html>');
  const portal = await failure(call(routes.ops.healthz, {}, { baseUrl }));
  assert.deepEqual([portal.status, portal.code], [200, 'BAD_RESPONSE']);

  handler = (_req, _body, res) => json(res, 503, { error: { code: 'SERVICE_UNAVAILABLE', message: 'not ready' } });
  const notReady = await send(routes.ops.readyz, {}, { baseUrl, accept: [503] });
  assert.equal(notReady.status, 503);
});

test('nothing answers, or too late: NETWORK_ERROR with status 0 and the cause; the caller’s own abort is rethrown as is', async () => {
  const closed = await failure(call(routes.ops.healthz, {}, { baseUrl: 'http://127.0.0.1:1' }));
  assert.deepEqual([closed.status, closed.code], [0, 'NETWORK_ERROR']);
  assert.ok(closed.cause instanceof Error);

  handler = () => undefined; // never answers
  const slow = await failure(call(routes.ops.healthz, {}, { baseUrl, timeoutMs: 200 }));
  assert.deepEqual([slow.code, slow.message], ['NETWORK_ERROR', `cannot reach ${baseUrl}: no answer in time`]);

  const ctl = new AbortController();
  const pending = call(routes.ops.healthz, {}, { baseUrl, signal: ctl.signal, timeoutMs: 10_000 });
  ctl.abort(new Error('user cancelled'));
  await assert.rejects(pending, (e: unknown) => !(e instanceof ApiError));
});

test('inspect sees the raw answer before it is parsed, and what it throws is what the call throws', async () => {
  handler = (_req, _body, res) => json(res, 200, { status: 'ok', version: '1.0.0' }, { 'x-signature': 'sig' });
  let raw: RawAnswer | undefined;
  const body = await call(routes.ops.healthz, {}, { baseUrl, inspect: (a) => void (raw = a) });
  assert.equal(body.status, 'ok');
  assert.deepEqual(
    [raw?.method, raw?.path, raw?.status, raw?.headers.get('x-signature'), new TextDecoder().decode(raw?.bytes)],
    ['GET', '/healthz', 200, 'sig', '{"status":"ok","version":"1.0.0"}'],
  );
  const refused = new Error('not signed');
  await assert.rejects(call(routes.ops.healthz, {}, { baseUrl, inspect: () => Promise.reject(refused) }), (e: unknown) => e === refused);
});
