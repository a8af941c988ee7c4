import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../testing/harness.js';
import { readEvents } from '../testing/sse.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(() => t.close());

test('admin event stream: committed seat changes, denials and license edits arrive live; none for refused or read-only calls', async () => {
  const lic = await t.license({ seats: 1 });
  const res = await fetch(`${t.url}/v1/admin/events`, { headers: { authorization: `Bearer ${t.adminToken}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const reading = readEvents(res, (ev) => ev.length >= 3);
  await t.client(lic.key, 'GET', '/v1/client/license'); // read-only: no event
  await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'sse-device-1', instanceId: 'a' });
  await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'sse-device-2', instanceId: 'a' }); // denied
  await t.admin('PATCH', `/v1/admin/licenses/${lic.id}`, { seats: 2 });
  const events = await reading;
  assert.deepEqual(
    events.map((e) => `${e.kind}:${e.licenseId === lic.id}`),
    ['seats:true', 'denied:true', 'license:true'],
  );
  assert.ok(events.every((e) => typeof e.at === 'string'));
});

test('the event stream needs an admin token', async () => {
  const res = await fetch(`${t.url}/v1/admin/events`);
  assert.equal(res.status, 401);
  assert.equal(((await res.json()) as any).error.code, 'UNAUTHENTICATED');
});

test('revoking a token closes its open event stream at once; other streams stay open', async () => {
  const created = await t.admin('POST', '/v1/admin/tokens', { name: 'watcher', role: 'viewer' });
  assert.equal(created.status, 201);
  const secret = created.body.token ?? created.body.secret;
  assert.equal(typeof secret, 'string');
  const watcher = await fetch(`${t.url}/v1/admin/events`, { headers: { authorization: `Bearer ${secret}` } });
  const other = await fetch(`${t.url}/v1/admin/events`, { headers: { authorization: `Bearer ${t.adminToken}` } });
  assert.equal(watcher.status, 200);
  const reader = watcher.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const ended = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return true;
      text += decoder.decode(value, { stream: true });
    }
  })();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await t.admin('POST', `/v1/admin/tokens/${created.body.id}/revoke`)).status, 200);
  const closed = await Promise.race([ended, new Promise((r) => setTimeout(() => r(false), 5000))]);
  assert.equal(closed, true, "the revoked token's stream ended");
  assert.match(text, /event: revoked/);
  // the other stream still delivers changes
  const lic = await t.license({ seats: 2 });
  const reading = readEvents(other, (ev) => ev.some((e) => e.licenseId === lic.id && e.kind === 'seats'));
  await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'sse-device-after', instanceId: 'a' });
  const events = await reading;
  assert.ok(
    events.some((e) => e.licenseId === lic.id && e.kind === 'seats'),
    'the other stream is still live',
  );
  assert.ok(!events.some((e) => e.kind === 'token-revoked'), 'revocations are not broadcast to consoles');
});
