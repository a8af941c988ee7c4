/**
 * The fair queue (issue #15) through the real HTTP server, on the store of the run (SQLite, then PostgreSQL with a
 * second node): waiters get seats in arrival order and newcomers never overtake them; a freed seat waits for the
 * head of the queue until it asks again or its claim window ends; a waiter that dies loses nothing for the others;
 * a waiter's own timeout; feature queues; holders see how many wait; usage and metrics count the queue.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { clusterOf, startTestServer, type TestServer } from '../testing/harness.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t.close();
});

const S = 1000;
const WAIT = { timeoutSeconds: 600 };
const checkout = (key: string, fingerprint: string, extra: Record<string, unknown> = {}, server = t) =>
  server.client(key, 'POST', '/v1/client/checkout', { fingerprint, instanceId: 'app', ...extra });
const wait = (key: string, fingerprint: string, extra: Record<string, unknown> = {}, server = t) =>
  checkout(key, fingerprint, { wait: WAIT, ...extra }, server);
const checkin = (key: string, leaseId: string) => t.client(key, 'POST', `/v1/client/leases/${leaseId}/checkin`, { instanceId: 'app' });
const license = async (id: string) => (await t.admin('GET', `/v1/admin/licenses/${id}`)).body;

test('waiters get the seat in arrival order; a newcomer never overtakes them; holders and admins see how many wait', async () => {
  const lic = await t.license({ seats: 1 });
  const holder = await checkout(lic.key, 'fp-queue-q-holder');
  assert.equal(holder.status, 201);
  const places = [];
  for (const w of ['fp-queue-q-w1', 'fp-queue-q-w2', 'fp-queue-q-w3']) {
    const r = await wait(lic.key, w);
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, 'NO_SEATS_AVAILABLE');
    places.push(r.body.error.queue);
  }
  assert.deepEqual(
    places.map((p) => [p.pool, p.position, p.length]),
    [
      ['base', 1, 1],
      ['base', 2, 2],
      ['base', 3, 3],
    ],
  );
  assert.equal(places[0].pollWithinSeconds, 15);
  assert.match((await wait(lic.key, 'fp-queue-q-w2')).body.error.message, /number 2 of 3 waiting/);
  assert.equal((await license(lic.id)).waiting, 3);
  // The holder's heartbeat says three wait (an application may ask its idle user to give the seat back).
  const hb = await t.client(lic.key, 'POST', `/v1/client/leases/${holder.body.lease.id}/heartbeat`, { instanceId: 'app' });
  assert.equal(hb.body.license.waiting, 3);

  // The seat frees: a newcomer (waiting or not) finds it held for the queue; the second waiter too; the head gets it.
  assert.equal((await checkin(lic.key, holder.body.lease.id)).body.released, true);
  const newcomer = await checkout(lic.key, 'fp-queue-q-newcomer');
  assert.equal(newcomer.body.error.code, 'NO_SEATS_AVAILABLE');
  assert.match(newcomer.body.error.message, /held for the 3 checkout\(s\) waiting before you/);
  assert.equal((await wait(lic.key, 'fp-queue-q-w2')).body.error.queue.position, 2);
  const late = await wait(lic.key, 'fp-queue-q-late');
  assert.equal(late.body.error.queue.position, 4);
  const first = await wait(lic.key, 'fp-queue-q-w1');
  assert.equal(first.status, 201, JSON.stringify(first.body));
  assert.equal(first.body.license.waiting, 3, 'the three others still wait');
  // Then the second, the third, the late one: in order.
  t.clock.advance(5 * S);
  await checkin(lic.key, first.body.lease.id);
  assert.equal((await wait(lic.key, 'fp-queue-q-w3')).body.error.queue.position, 2);
  assert.equal((await wait(lic.key, 'fp-queue-q-late')).body.error.queue.position, 3);
  assert.equal((await wait(lic.key, 'fp-queue-q-w2')).status, 201);
  assert.equal((await license(lic.id)).waiting, 2);
});

test("a freed seat waits for the head only within its claim window; a waiter that stops asking drops out and the next gets it; a waiter's own timeout", async () => {
  const lic = await t.license({ seats: 1 });
  const holder = await checkout(lic.key, 'fp-queue-qc-holder');
  assert.equal((await wait(lic.key, 'fp-queue-qc-dies')).body.error.queue.position, 1);
  assert.equal((await wait(lic.key, 'fp-queue-qc-next')).body.error.queue.position, 2);
  await checkin(lic.key, holder.body.lease.id);
  // Within the window the seat is the head's: the next waiter, asking, is refused.
  t.clock.advance(10 * S);
  assert.equal((await wait(lic.key, 'fp-queue-qc-next')).body.error.queue.position, 2);
  // The head never asks again: past the window it is out of the queue, and the next waiter gets the seat.
  t.clock.advance(6 * S);
  const next = await wait(lic.key, 'fp-queue-qc-next');
  assert.equal(next.status, 201, JSON.stringify(next.body));
  // The one that died asks again later: a new arrival, at the end of the queue.
  const back = await wait(lic.key, 'fp-queue-qc-dies');
  assert.deepEqual([back.body.error.queue.position, back.body.error.queue.length], [1, 1]);

  // A waiter's own timeout ends its wait even while it asks in time.
  const short = await t.license({ seats: 1 });
  await checkout(short.key, 'fp-queue-qt-holder');
  assert.equal((await wait(short.key, 'fp-queue-qt-a', { wait: { timeoutSeconds: 20 } })).body.error.queue.position, 1);
  assert.equal((await wait(short.key, 'fp-queue-qt-b')).body.error.queue.position, 2);
  for (let i = 0; i < 2; i++) {
    t.clock.advance(10 * S);
    await wait(short.key, 'fp-queue-qt-b');
    await wait(short.key, 'fp-queue-qt-a', { wait: { timeoutSeconds: 20 } });
  }
  // qt-a's 20 s are over: it asked again as a new arrival, behind qt-b.
  assert.equal((await wait(short.key, 'fp-queue-qt-b')).body.error.queue.position, 1);
});

test('a full feature pool has its own queue; the base pool is not held for it', async () => {
  const lic = await t.license({ seats: 3, features: [{ name: 'render', seats: 1 }] });
  const r1 = await checkout(lic.key, 'fp-queue-qf-1', { features: ['render'] });
  assert.equal(r1.status, 201);
  const w = await wait(lic.key, 'fp-queue-qf-2', { features: ['base', 'render'] });
  assert.equal(w.body.error.code, 'NO_FEATURE_SEATS_AVAILABLE');
  assert.deepEqual([w.body.error.queue.pool, w.body.error.queue.position], ['render', 1]);
  // Base seats stay free for others; render is held for the waiter once it frees.
  assert.equal((await checkout(lic.key, 'fp-queue-qf-3')).status, 201);
  await checkin(lic.key, r1.body.lease.id);
  assert.equal((await checkout(lic.key, 'fp-queue-qf-4', { features: ['render'] })).body.error.code, 'NO_FEATURE_SEATS_AVAILABLE');
  const got = await wait(lic.key, 'fp-queue-qf-2', { features: ['base', 'render'] });
  assert.equal(got.status, 201);
  assert.deepEqual(got.body.lease.features, ['base', 'render']);
});

test('exactness and order: 30 waiters on a full pool of 3 (two nodes on PostgreSQL) get the seats in arrival order, 3 at a time; usage and metrics count the queue', async (c) => {
  const cluster = await clusterOf(t);
  const nodes = cluster.nodes;
  try {
    const lic = await t.license({ seats: 3 });
    const holders = await Promise.all([0, 1, 2].map((i) => checkout(lic.key, `qp-holder-${i}`)));
    assert.ok(holders.every((h) => h.status === 201));
    const N = 30;
    const fp = (i: number) => `qp-waiter-${i}`;
    const joined = await Promise.all(Array.from({ length: N }, (_, i) => wait(lic.key, fp(i), {}, nodes[i % nodes.length])));
    const position = new Map<number, number>();
    joined.forEach((r, i) => {
      assert.equal(r.body.error?.code, 'NO_SEATS_AVAILABLE', JSON.stringify(r.body));
      position.set(i, r.body.error.queue.position);
    });
    assert.deepEqual(
      [...position.values()].sort((a, b) => a - b),
      Array.from({ length: N }, (_, i) => i + 1),
      'each waiter has its own place',
    );
    const byArrival = [...position.entries()].sort((a, b) => a[1] - b[1]).map(([i]) => i);
    // Free the 3 seats; then, round after round, every waiter asks again in parallel (on both nodes) along with 10
    // fresh checkouts: exactly the 3 at the head get seats, the newcomers none, and the seats go back.
    await Promise.all(holders.map((h) => checkin(lic.key, h.body.lease.id)));
    const order: number[] = [];
    let waiting = new Set(byArrival);
    for (let round = 0; waiting.size > 0; round++) {
      const asks = [...waiting].map((i) => wait(lic.key, fp(i), {}, nodes[(i + round) % nodes.length]).then((r) => ({ i, r })));
      const fresh = Array.from({ length: 10 }, (_, k) => checkout(lic.key, `qp-fresh-${round}-${k}`, {}, nodes[k % nodes.length]));
      const [answers, newcomers] = await Promise.all([Promise.all(asks), Promise.all(fresh)]);
      assert.ok(
        newcomers.every((r) => r.body.error?.code === 'NO_SEATS_AVAILABLE'),
        'no newcomer overtakes a waiter',
      );
      const granted = answers.filter(({ r }) => r.status === 201).map(({ i }) => i);
      assert.deepEqual(
        granted.sort((a, b) => byArrival.indexOf(a) - byArrival.indexOf(b)),
        byArrival.slice(order.length, order.length + 3),
        `round ${round}: the head of the queue gets the seats`,
      );
      assert.ok((await license(lic.id)).seatsUsed <= 3);
      order.push(...granted);
      for (const i of granted) waiting.delete(i);
      waiting = new Set(waiting);
      const leases = answers.filter(({ r }) => r.status === 201).map(({ r }) => r.body.lease.id as string);
      await Promise.all(leases.map((id) => checkin(lic.key, id)));
      t.clock.advance(2 * S);
    }
    assert.deepEqual(order, byArrival);
    c.diagnostic(`${N} waiters on ${nodes.length} node(s): seats handed out in arrival order, 3 a round, no newcomer served`);

    const from = new Date(t.clock.now() - 2 * 3600 * S).toISOString();
    const usage = (await t.admin('GET', `/v1/admin/licenses/${lic.id}/usage?from=${from}`)).body.items;
    const sum = (k: string) => usage.reduce((n: number, h: Record<string, number>) => n + (h[k] ?? 0), 0);
    assert.equal(sum('queued'), N);
    assert.equal(sum('queueGrants'), N);
    assert.ok(sum('queueWaitSeconds') > 0);
    const metrics = await (await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${t.adminToken}` } })).text();
    assert.match(metrics, /floatd_queue_joins_total \d+/);
    assert.match(metrics, /floatd_queue_wait_seconds_count \d+/);
    assert.match(metrics, /floatd_queue_waiting 0/);
  } finally {
    await cluster.close();
  }
});
