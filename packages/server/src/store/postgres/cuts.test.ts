/**
 * Cut database connections (issue #23 part 0): a TCP proxy between a `floatd serve`
 * process and PostgreSQL cuts every open connection at random moments while 40
 * devices check out, heartbeat and check in, and the database stays reachable
 * (new connections are accepted: a network blip, a firewall's idle cut, a moved
 * virtual IP). Every kind of connection floatd holds goes through the proxy: the
 * pool (requests, batched heartbeats, transactions), the LISTEN connections
 * (changes, key reloads), the leader lock and the node registry.
 *
 * Required: the process stays up and answers; a request in flight gets at worst
 * `503` with Retry-After; no lease a device holds is lost, none checked in comes
 * back; the seat counter equals the lease rows and never passes the seats; the
 * node is ready again by itself. Before floatd patched postgres.js
 * (packages/server/scripts/patch-postgres.mjs), the process ended at the first
 * cuts with `TypeError: Cannot read properties of null (reading 'write')`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { createTempDatabase, PG_ADMIN_URL, postgresAvailable } from '../../testing/pg.js';
import { call, cutProxy, runDevices, startNode } from '../../testing/pgfault.js';

const pgUp = await postgresAvailable();
if (!pgUp && process.env.CI === 'true') throw new Error('PostgreSQL is not reachable: the cut-connection test must run in CI');

const CUTS = Number(process.env.FLOATD_PG_CUTS ?? 25);
const SEATS = 12;
const DEVICES = 40;

test(`${CUTS} cuts of every open database connection under load: the process stays up, only 503s, no lease lost or resurrected, recovers by itself`, { skip: !pgUp && 'PostgreSQL not reachable', timeout: 120_000 }, async (t) => {
  const db = await createTempDatabase();
  const direct = postgres(db.url, { max: 2, onnotice: () => undefined });
  const proxy = await cutProxy(Number(new URL(PG_ADMIN_URL).port || 5432), new URL(PG_ADMIN_URL).hostname);
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-cuts-'));
  const viaProxy = new URL(db.url);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  const node = await startNode(dataDir, viaProxy.toString(), ['--reclaim-interval', '1']);
  try {
    const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    const admin = (m: string, p: string, b?: unknown) => call(node.url, `Bearer ${token}`, m, p, b);
    const product = (await admin('POST', '/v1/admin/products', { name: 'cuts' })).body;
    const lic = (await admin('POST', '/v1/admin/licenses', { productId: product.id, seats: SEATS, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 })).body;
    assert.ok(lic.key, JSON.stringify(lic));

    const load = runDevices(() => node.url, lic.key, DEVICES, { beats: 3, pauseMs: 30 });
    await new Promise((r) => setTimeout(r, 1000));
    let cutConnections = 0;
    const kinds = new Set<string>();
    for (let i = 0; i < CUTS; i++) {
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 450));
      assert.equal(node.exit, undefined, `floatd exited after ${i} cuts: ${node.output()}`);
      const how = (process.env.FLOATD_CUT_HOW as 'end' | 'reset' | undefined) ?? (i % 4 === 3 ? 'end' : 'reset');
      cutConnections += proxy.cut(how);
      kinds.add(how);
      // Sometimes a second cut right after, while the pool reconnects.
      if (i % 5 === 2) {
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 30));
        cutConnections += proxy.cut();
      }
    }
    const lastCut = Date.now();
    // Back to normal: wait for the first answers, then a little load without cuts.
    await new Promise((r) => setTimeout(r, 2500));
    const report = await load.stop();
    assert.equal(node.exit, undefined, `floatd exited: ${node.output()}`);

    const ready = await call(node.url, '', 'GET', '/readyz');
    assert.equal(ready.status, 200, `ready again by itself: ${JSON.stringify(ready.body)}`);
    const firstOkAfter = report.recoveries.filter((r) => r.at >= lastCut).map((r) => r.at - Math.max(r.from, lastCut));
    t.diagnostic(
      `${CUTS} cut rounds (${[...kinds].join('+')}), ${cutConnections} connections cut; ${report.requests} requests: ${report.ok} 2xx, ${report.unavailable} 503, ` +
        `${report.noSeats} 409; ${report.held.size} leases held at the end, ${report.checkedIn.size} checked in; ` +
        `slowest recovery after the last cut ${firstOkAfter.length ? Math.max(...firstOkAfter) : 0} ms`,
    );
    if (report.networkErrors.length) {
      const act = await direct`SELECT pid, state, wait_event_type, wait_event, left(query, 80) AS q, now() - state_change AS since FROM pg_stat_activity WHERE datname = ${db.name} AND pid <> pg_backend_pid()`;
      t.diagnostic(`backends: ${JSON.stringify(act)}`);
    }
    assert.deepEqual(report.networkErrors, [], 'floatd answered every request (never gone, never wedged past 15 s)');
    assert.deepEqual(report.wrong, [], 'only 2xx, 409 NO_SEATS_AVAILABLE or 503 with Retry-After');
    assert.deepEqual(report.lost, [], 'no heartbeat found its lease gone');
    assert.ok(report.ok > 80, `the load went on between the cuts (${report.ok} successes)`);
    assert.ok(cutConnections >= CUTS, `the cuts hit open connections (${cutConnections})`);

    // The database, read directly: every held lease is there, no checked-in lease is, the counter matches the rows.
    const rows = await direct`SELECT id FROM leases WHERE license_id = ${lic.id}`;
    const ids = new Set(rows.map((r) => String(r.id)));
    const lost = [...report.held.keys()].filter((id) => !ids.has(id));
    const resurrected = [...report.checkedIn].filter((id) => ids.has(id));
    assert.deepEqual(lost, [], 'acknowledged leases lost');
    assert.deepEqual(resurrected, [], 'checked-in leases back');
    const [l] = await direct`SELECT seats_used, seats FROM licenses WHERE id = ${lic.id}`;
    assert.equal(Number(l!.seats_used), ids.size, 'seats_used counts the lease rows');
    assert.ok(ids.size <= SEATS, `${ids.size} leases for ${SEATS} seats`);
    // Leases granted on a 503 that committed anyway (the answer was lost with the connection) hold a seat
    // until their TTL; the holder's own retry gets the same lease back, so they are few.
    t.diagnostic(`${ids.size - report.held.size} lease rows no device knows of (a grant whose answer was cut)`);

    // Every kind of connection came back: the node registry reports, the leader runs the reclaimer, LISTEN hears changes.
    await new Promise((r) => setTimeout(r, 1500));
    const nodes = await direct`SELECT leader, last_seen_at FROM nodes`;
    assert.equal(nodes.length, 1);
    assert.ok(Date.now() - Number(nodes[0]!.last_seen_at) < 8000, 'the node registry is written again');
    assert.equal(nodes[0]!.leader, true, 'the node holds the leader lock again');
  } finally {
    if (node.exit) t.diagnostic(`floatd output: ${node.output().slice(-3000)}`);
    await node.stop();
    await proxy.close();
    await direct.end({ timeout: 2 });
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('ready again at most 1 s after the database is: outages of 1-2 s under load, /readyz polled', { skip: !pgUp && 'PostgreSQL not reachable', timeout: 90_000 }, async (t) => {
  const db = await createTempDatabase();
  const proxy = await cutProxy(Number(new URL(PG_ADMIN_URL).port || 5432), new URL(PG_ADMIN_URL).hostname);
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-ready-'));
  const viaProxy = new URL(db.url);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  const node = await startNode(dataDir, viaProxy.toString(), ['--reclaim-interval', '1']);
  try {
    const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    assert.equal((await call(node.url, '', 'GET', '/readyz')).status, 200, 'ready once started');
    const admin = (m: string, p: string, b?: unknown) => call(node.url, `Bearer ${token}`, m, p, b);
    const product = (await admin('POST', '/v1/admin/products', { name: 'ready' })).body;
    const lic = (await admin('POST', '/v1/admin/licenses', { productId: product.id, seats: 5, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 })).body;
    const load = runDevices(() => node.url, lic.key, 10, { beats: 2, pauseMs: 50 });
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 500));
      proxy.refuse(true);
      proxy.cut();
      const downFor = 1000 + (i % 2) * 1000;
      const until = Date.now() + downFor;
      while (Date.now() < until) {
        assert.notEqual((await call(node.url, '', 'GET', '/readyz')).status, 200, 'not ready while the database is down');
        await new Promise((r) => setTimeout(r, 100));
      }
      proxy.refuse(false);
      const back = Date.now();
      let ready = false;
      while (!ready && Date.now() - back < 10_000) {
        ready = (await call(node.url, '', 'GET', '/readyz')).status === 200;
        if (!ready) await new Promise((r) => setTimeout(r, 10));
      }
      times.push(Date.now() - back);
    }
    const report = await load.stop();
    t.diagnostic(`ready after the database: ${times.join(', ')} ms; load: ${report.ok} 2xx, ${report.unavailable} 503`);
    assert.equal(node.exit, undefined);
    assert.deepEqual(report.wrong, []);
    assert.deepEqual(report.networkErrors, []);
    for (const ms of times) assert.ok(ms <= 1000, `ready ${ms} ms after the database`);
  } finally {
    await node.stop();
    await proxy.close();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('/readyz answers 200 only once the node can serve everything (its first admin token written), polled from the first moment it listens', { skip: !pgUp && 'PostgreSQL not reachable', timeout: 60_000 }, async (t) => {
  const db = await createTempDatabase();
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-firststart-'));
  const { createServer } = await import('node:net');
  const { existsSync } = await import('node:fs');
  const port = await new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => r(typeof a === 'object' && a ? a.port : 0));
    });
  });
  const base = `http://127.0.0.1:${port}`;
  let polling = true;
  const early: string[] = [];
  let answers = 0;
  const poller = (async () => {
    while (polling) {
      try {
        const r = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2000) });
        await r.text();
        answers++;
        if (r.status === 200 && !existsSync(join(dataDir, 'admin-token'))) early.push(`200 before the admin token file existed`);
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const node = await startNode(dataDir, db.url, ['--port', String(port)]);
  try {
    await new Promise((r) => setTimeout(r, 300));
    polling = false;
    await poller;
    t.diagnostic(`${answers} /readyz answers during the first start`);
    assert.ok(answers > 0);
    assert.deepEqual(early, []);
    assert.equal((await call(node.url, '', 'GET', '/readyz')).status, 200);
  } finally {
    polling = false;
    await node.stop();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
});
