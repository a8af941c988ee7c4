/**
 * Webhooks (issue #16) with a real HTTP receiver on the loopback address: every event type a change
 * produces arrives once, signed (Standard Webhooks: HMAC-SHA256 over id.timestamp.body); a receiver that
 * fails or hangs gets retries with backoff on the server's clock, for a day, then the delivery is failed
 * and can be redelivered; two PostgreSQL nodes deliver each event exactly once. (A server killed
 * mid-delivery: `webhooks.process.test.ts`.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { clusterOf, startTestServer, type TestServer } from '../testing/harness.js';
import { WebhookSender } from '../service/webhooks.js';
import { BACKOFF_MS } from '../domain/webhooks.js';
import { ManualClock } from '../domain/clock.js';
import { startOnPremServer, testVendor } from '../testing/onprem.js';
import { rm } from 'node:fs/promises';

interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  json: { id: string; type: string; licenseId: string | null; data: Record<string, unknown> };
}

/** A receiver on 127.0.0.1: records each request; `answer` says what to do with the next one (a status, or hang). */
async function receiver(answer: (n: number, r: Received) => number | 'hang' = () => 204) {
  const got: Received[] = [];
  const hanging: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const r: Received = {
        id: String(req.headers['webhook-id']),
        timestamp: String(req.headers['webhook-timestamp']),
        signature: String(req.headers['webhook-signature']),
        body,
        json: JSON.parse(body),
      };
      got.push(r);
      const a = answer(got.length, r);
      if (a === 'hang') hanging.push(req);
      else res.writeHead(a).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    got,
    close: () =>
      new Promise<void>((r) => {
        for (const h of hanging) h.socket.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Verifies a delivery as a receiver would (Standard Webhooks). */
function verifies(secret: string, r: Received): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${r.id}.${r.timestamp}.${r.body}`).digest('base64');
  return r.signature.split(' ').some((s) => s === `v1,${expected}`);
}

let t: TestServer;
let sender: WebhookSender;
before(async () => {
  t = await startTestServer({ reclaimer: false });
  sender = new WebhookSender(t.server.store, t.clock, { expiringDays: 14, userAgent: 'floatd-test', attemptTimeoutMs: 1000 });
});
after(() => t.close());

/** Sends until nothing is due now (each round claims a batch). */
async function drain(s = sender, rounds = 20) {
  for (let i = 0; i < rounds; i++) await s.tick();
}

test('every event type a change produces arrives once, signed, with its event id; the delivery log says delivered', async () => {
  const rx = await receiver();
  try {
    const made = await t.admin('POST', '/v1/admin/webhooks', { url: rx.url, events: ['*'], description: 'ops' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.match(made.body.secret, /^whsec_[A-Za-z0-9+/=]{44}$/);
    const secret = made.body.secret as string;
    assert.equal((await t.admin('GET', '/v1/admin/webhooks')).body.items[0].secret, undefined, 'never listed');

    const end = new Date(t.clock.now() + 5 * 86_400_000).toISOString();
    const lic = await t.license({ seats: 1, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20, maxOfflineSeconds: 86_400 });
    const sub = await t.license({ seats: 1, model: 'subscription', expiresAt: end, maxOfflineSeconds: 86_400 });
    const co = (fp: string) => t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: fp, instanceId: 'i' });
    assert.equal((await co('fp-hook-0001')).status, 201); // seats.full
    assert.equal((await co('fp-hook-0002')).status, 409); // checkout.denied
    assert.equal((await co('fp-hook-0003')).status, 409); // the same hour: no second denied event
    const off = await t.client(sub.key, 'POST', '/v1/client/offline-checkout', {
      fingerprint: 'fp-hook-0004',
      instanceId: 'i',
      durationSeconds: 3600,
    });
    assert.equal(off.status, 201, JSON.stringify(off.body)); // offline.borrowed (and seats.full of sub)
    assert.equal((await t.client(sub.key, 'POST', `/v1/client/leases/${off.body.lease.id}/return`, {})).status, 200); // offline.returned
    t.clock.advance(61_000);
    assert.equal((await t.admin('POST', '/v1/admin/reclaim')).body.freed.length, 1); // lease.reclaimed
    assert.equal((await t.admin('POST', `/v1/admin/licenses/${lic.id}/suspend`)).status, 200); // license.suspended
    await drain(); // the first round scans expiries: license.expiring for sub (5 days left)
    t.clock.advance(5 * 86_400_000); // sub ended a minute ago
    await drain(); // license.expired
    const types = rx.got.map((r) => r.json.type).sort();
    assert.deepEqual(types, [
      'checkout.denied',
      'lease.reclaimed',
      'license.expired',
      'license.expiring',
      'license.suspended',
      'offline.borrowed',
      'offline.returned',
      'seats.full',
      'seats.full',
    ]);
    for (const r of rx.got) {
      assert.ok(verifies(secret, r), `${r.json.type}: the signature verifies`);
      assert.equal(r.id, r.json.id);
      assert.match(r.id, /^evt_[0-9A-Za-z]{20}$/);
      assert.ok(!verifies(`whsec_${Buffer.alloc(32).toString('base64')}`, r), 'not with another secret');
    }
    const tampered = { ...rx.got[0]!, body: rx.got[0]!.body.replace('"type"', '"typ"') };
    assert.ok(!verifies(secret, tampered), 'an altered body does not verify');
    assert.equal(new Set(rx.got.map((r) => r.id)).size, rx.got.length, 'each event once');
    const log = await t.admin('GET', `/v1/admin/webhooks/${made.body.id}/deliveries`);
    assert.equal(log.body.items.length, rx.got.length);
    for (const d of log.body.items) {
      assert.equal(d.state, 'delivered');
      assert.equal(d.attempts, 1);
      assert.equal(d.lastAttempts[0].status, 204);
    }
    assert.equal((await t.admin('DELETE', `/v1/admin/webhooks/${made.body.id}`)).status, 200);
  } finally {
    await rx.close();
  }
});

test('a receiver that fails, then hangs: retried with backoff on the server clock, then delivered; after a day of failures: failed, and redelivered by hand', async () => {
  let mode: number | 'hang' = 500;
  const rx = await receiver(() => mode);
  try {
    const made = (await t.admin('POST', '/v1/admin/webhooks', { url: rx.url, events: ['ping'] })).body;
    const ping = await t.admin('POST', `/v1/admin/webhooks/${made.id}/ping`);
    assert.equal(ping.status, 200);
    assert.equal(ping.body.state, 'pending');
    await drain();
    assert.equal(rx.got.length, 1, 'the first attempt');
    await drain();
    assert.equal(rx.got.length, 1, 'nothing before the backoff');
    t.clock.advance(BACKOFF_MS[0]);
    mode = 'hang';
    await drain(); // the second attempt times out (1 s here)
    assert.equal(rx.got.length, 2);
    t.clock.advance(BACKOFF_MS[1]);
    mode = 204;
    await drain();
    assert.equal(rx.got.length, 3);
    assert.equal(new Set(rx.got.map((r) => r.id)).size, 1, 'the same event id on every attempt');
    const d = (await t.admin('GET', `/v1/admin/webhooks/${made.id}/deliveries`)).body.items[0];
    assert.equal(d.state, 'delivered');
    assert.equal(d.attempts, 3);
    assert.deepEqual(
      d.lastAttempts.map((a: { status: number | null }) => a.status),
      [204, null, 500],
    );
    assert.match(d.lastAttempts[1].error, /no answer within 1 s/);

    // A day of failures: failed; redelivered by hand, it goes.
    mode = 503;
    const second = (await t.admin('POST', `/v1/admin/webhooks/${made.id}/ping`)).body;
    for (let i = 0; i < 40; i++) {
      await drain(undefined, 2);
      t.clock.advance(3_600_000);
    }
    const failed = (await t.admin('GET', `/v1/admin/webhooks/${made.id}/deliveries?state=failed`)).body.items;
    assert.deepEqual(
      failed.map((x: { id: string }) => x.id),
      [second.id],
    );
    const attempts = failed[0].attempts as number;
    assert.ok(attempts >= 8 && attempts <= 14, `${attempts} attempts in a day`);
    mode = 204;
    const again = await t.admin('POST', `/v1/admin/webhook-deliveries/${second.id}/redeliver`);
    assert.equal(again.body.state, 'pending');
    await drain();
    const done = (await t.admin('GET', `/v1/admin/webhooks/${made.id}/deliveries`)).body.items.find(
      (x: { id: string }) => x.id === second.id,
    );
    assert.equal(done.state, 'delivered');
    assert.equal(done.attempts, attempts + 1);

    // Refusals: unknown ids, a bad URL or event type; nothing written.
    const snap = await t.snapshot();
    for (const [m, p, b, code] of [
      ['POST', '/v1/admin/webhooks', { url: 'ftp://x.example/h', events: ['*'] }, 'VALIDATION_FAILED'],
      ['POST', '/v1/admin/webhooks', { url: rx.url, events: ['seats.fullish'] }, 'VALIDATION_FAILED'],
      ['POST', '/v1/admin/webhooks', { url: rx.url, events: [] }, 'VALIDATION_FAILED'],
      ['PATCH', `/v1/admin/webhooks/whk_${'z'.repeat(20)}`, { enabled: false }, 'WEBHOOK_NOT_FOUND'],
      ['POST', `/v1/admin/webhooks/whk_${'z'.repeat(20)}/ping`, undefined, 'WEBHOOK_NOT_FOUND'],
      ['POST', `/v1/admin/webhook-deliveries/dlv_${'z'.repeat(20)}/redeliver`, undefined, 'WEBHOOK_DELIVERY_NOT_FOUND'],
    ] as const) {
      const r = await t.admin(m, p, b);
      assert.equal(r.body.error?.code, code, `${m} ${p}`);
    }
    assert.deepEqual(await t.snapshot(), snap);
    // Disabled: events are not queued for it.
    assert.equal((await t.admin('PATCH', `/v1/admin/webhooks/${made.id}`, { events: ['*'], enabled: false })).body.enabled, false);
    const lic = await t.license({ seats: 1 });
    await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-hook-off-01', instanceId: 'i' });
    const before = rx.got.length;
    await drain();
    assert.equal(rx.got.length, before);
    await t.admin('DELETE', `/v1/admin/webhooks/${made.id}`);
  } finally {
    await rx.close();
  }
});

test('two PostgreSQL nodes sending at once deliver each event exactly once', async (ctx) => {
  if (t.store !== 'postgres') return ctx.skip('PostgreSQL only');
  const rx = await receiver();
  const cluster = await clusterOf(t);
  const other = cluster.nodes[1]!;
  try {
    const made = (await t.admin('POST', '/v1/admin/webhooks', { url: rx.url, events: ['ping'] })).body;
    const EVENTS = 200;
    await Promise.all(Array.from({ length: EVENTS }, (_, i) => (i % 2 ? t : other).admin('POST', `/v1/admin/webhooks/${made.id}/ping`)));
    const a = new WebhookSender(t.server.store, t.clock, { expiringDays: 14, userAgent: 'node-a' });
    const b = new WebhookSender(other.server.store, t.clock, { expiringDays: 14, userAgent: 'node-b' });
    for (let i = 0; i < 40 && rx.got.length < EVENTS; i++) await Promise.all([a.tick(), b.tick()]);
    const ids = rx.got.map((r) => r.id);
    const dupes = ids.length - new Set(ids).size;
    const log = (await t.admin('GET', `/v1/admin/webhooks/${made.id}/deliveries?limit=500`)).body.items;
    const delivered = log.filter((d: { state: string }) => d.state === 'delivered').length;
    ctx.diagnostic(
      `${EVENTS} events produced on two nodes, ${rx.got.length} requests received, ${delivered} delivered, ${dupes} duplicated, 0 lost`,
    );
    assert.equal(dupes, 0);
    assert.equal(new Set(ids).size, EVENTS);
    assert.equal(delivered, EVENTS);
  } finally {
    await cluster.close();
    await rx.close();
  }
});

test('on-premise: loading a license file is an event (entitlements.loaded), and so is the site suspending a license', async () => {
  const v = await testVendor();
  const op = await startOnPremServer(v, { clock: new ManualClock(Date.parse('2026-03-02T09:00:00Z')) });
  const rx = await receiver();
  try {
    const made = (await op.admin('POST', '/v1/admin/webhooks', { url: rx.url, events: ['entitlements.loaded', 'license.suspended'] })).body;
    const spec = v.spec([{ seats: 2 }]);
    assert.equal(
      (await op.admin('POST', '/v1/admin/entitlements', { licenseFile: v.issue(spec, { serial: 1, now: op.clock.now() }) })).status,
      200,
    );
    assert.equal((await op.admin('POST', `/v1/admin/licenses/${spec.licenses[0]!.id}/suspend`)).status, 200);
    const s = new WebhookSender(op.server.store, op.clock, { expiringDays: 14, userAgent: 'floatd-test' });
    await drain(s, 3);
    assert.deepEqual(rx.got.map((r) => r.json.type).sort(), ['entitlements.loaded', 'license.suspended']);
    assert.ok(rx.got.every((r) => verifies(made.secret, r)));
  } finally {
    await rx.close();
    await op.close();
    await rm(v.dir, { recursive: true, force: true });
  }
});
