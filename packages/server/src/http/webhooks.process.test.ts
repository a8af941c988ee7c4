/**
 * Webhooks against a real `floatd serve` process (issue #16): killed with SIGKILL while a delivery is in
 * flight (the receiver has the request and has not answered), restarted on the same data: the delivery is
 * sent again with the same event id and recorded delivered. At least once: the receiver saw the event twice
 * and deduplicates by `webhook-id`; nothing is lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFloatdProcess } from '../testing/process.js';

const until = async (what: string, ok: () => boolean, ms = 15_000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

test('a server killed mid-delivery sends the event again after its restart: same event id, delivered, none lost', async (ctx) => {
  const ids: string[] = [];
  const hanging: IncomingMessage[] = [];
  const rx = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      ids.push(String(req.headers['webhook-id']));
      if (ids.length === 1)
        hanging.push(req); // the first send: no answer, ever
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(rx.address() as { port: number }).port}/hooks`;
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-webhook-kill-'));
  let node = await startFloatdProcess({ dataDir });
  try {
    const made = await node.admin('POST', '/v1/admin/webhooks', { url, events: ['ping'] });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const ping = await node.admin('POST', `/v1/admin/webhooks/${made.body.id}/ping`);
    assert.equal(ping.status, 200);
    await until('the first send', () => ids.length === 1);
    await node.kill9();
    const token = node.adminToken;
    node = await startFloatdProcess({ dataDir, adminToken: token });
    await until('the send after the restart', () => ids.length === 2);
    assert.equal(ids[1], ids[0], 'the same event id: the receiver can deduplicate');
    assert.equal(ids[0], ping.body.eventId);
    let d: { state: string; attempts: number } | undefined;
    for (let i = 0; i < 50 && d?.state !== 'delivered'; i++) {
      d = (await node.admin('GET', `/v1/admin/webhooks/${made.body.id}/deliveries`)).body.items[0];
      if (d?.state !== 'delivered') await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(d?.state, 'delivered');
    assert.equal(d?.attempts, 1, 'the killed attempt left no record; the one after the restart is the one');
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    assert.match(metrics, /floatd_webhook_attempts_total\{outcome="delivered"\} 1/);
    ctx.diagnostic(`1 event, 2 sends (one cut by SIGKILL), 1 delivered, 0 lost`);
  } finally {
    for (const h of hanging) h.socket.destroy();
    await node.stop();
    rx.closeAllConnections();
    await new Promise<void>((r) => rx.close(() => r()));
    await rm(dataDir, { recursive: true, force: true });
  }
});
