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
import { freePort } from '../../testing/process.js';

const pgUp = await postgresAvailable();
if (!pgUp && process.env.CI === 'true') throw new Error('PostgreSQL is not reachable: the cut-connection test must run in CI');

const CUTS = Number(process.env.FLOATD_PG_CUTS ?? 25);
const SEATS = 12;
const DEVICES = 40;

/** A temporary database, a cutting proxy in front of it, a `floatd serve` process through the proxy, and a license of SEATS seats. */
async function proxiedNode(name: string) {
  const db = await createTempDatabase();
  const direct = postgres(db.url, { max: 2, onnotice: () => undefined });
  const proxy = await cutProxy(Number(new URL(PG_ADMIN_URL).port || 5432), new URL(PG_ADMIN_URL).hostname);
  const dataDir = await mkdtemp(join(tmpdir(), `floatd-${name}-`));
  const viaProxy = new URL(db.url);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  // Rate limits off (startNode's default): 40 devices on one key pass the per-key limit once floatd recovers, and a 429 is not what is tested.
  const node = await startNode(dataDir, viaProxy.toString(), { args: ['--reclaim-interval', '1'] });
  const close = async () => {
    await node.stop();
    await proxy.close();
    await direct.end({ timeout: 2 });
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    const admin = (m: string, p: string, b?: unknown) => call(node.url, `Bearer ${token}`, m, p, b);
    const product = (await admin('POST', '/v1/admin/products', { name })).body;
    const lic = (
      await admin('POST', '/v1/admin/licenses', { productId: product.id, seats: SEATS, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 })
    ).body;
    assert.ok(lic.key, JSON.stringify(lic));
    return { db, direct, proxy, node, token, lic, close };
  } catch (e) {
    await close();
    throw e;
  }
}

test(`${CUTS} cuts of every open database connection under load: the process stays up, only 503s, no lease lost or resurrected, recovers by itself`, {
  skip: !pgUp && 'PostgreSQL not reachable',
  timeout: 120_000,
}, async (t) => {
  const { db, direct, proxy, node, lic, close } = await proxiedNode('cuts');
  try {
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
    const servedAfter = report.recoveries.filter((r) => r.at >= lastCut).map((r) => r.at - Math.max(r.from, lastCut));
    t.diagnostic(
      `${CUTS} cut rounds (${[...kinds].join('+')}), ${cutConnections} connections cut; ${report.requests} requests: ${report.ok} 2xx, ${report.unavailable} 503, ` +
        `${report.noSeats} 409; ${report.held.size} leases held at the end, ${report.checkedIn.size} checked in; ` +
        `slowest recovery after the last cut ${servedAfter.length ? Math.max(...servedAfter) : 0} ms; other answers ${JSON.stringify(report.other)}`,
    );
    if (report.networkErrors.length) {
      const act =
        await direct`SELECT pid, state, wait_event_type, wait_event, left(query, 80) AS q, now() - state_change AS since FROM pg_stat_activity WHERE datname = ${db.name} AND pid <> pg_backend_pid()`;
      t.diagnostic(`backends: ${JSON.stringify(act)}`);
    }
    assert.deepEqual(report.networkErrors, [], 'floatd answered every request (never gone, never wedged past 15 s)');
    if (report.wrong.length) {
      // The server's own account of an unexpected answer (an unhandled error is logged with its stack).
      const errors = node
        .output()
        .split('\n')
        .filter((l) => /"level":(50|60)/.test(l) && !/storage unavailable/.test(l));
      t.diagnostic(`server errors: ${errors.slice(-5).join('\n')}`);
    }
    assert.deepEqual(report.wrong, [], 'only 2xx, 409 NO_SEATS_AVAILABLE or 503 with Retry-After');
    assert.deepEqual(report.lost, [], 'no heartbeat found its lease gone');
    // How much gets through between cuts depends on the machine: the test needs the load to have gone on, not a
    // rate. Until the proxy forwarded without Nagle's algorithm, each of its small writes waited ~40 ms for a
    // delayed ACK, a seat transaction took over a second, and as few as 10 of 296 requests succeeded (a CI failure).
    // Since, and with the driver's patch 4 (no answer handed to the wrong query after a cut): 1,900-2,200 of
    // 3,600-4,200 alone on this 2-core machine, 430-875 in full CI runs.
    assert.ok(report.ok > 10, `the load went on between the cuts (${report.ok} successes)`);
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
    // (polled: the leader lock is tried again every 2 s and the registry row written on its own timer, so on a loaded
    // machine the row can say "not leader" for a few seconds after the last cut; a fixed 1.5 s wait failed once in CI)
    let nodes: readonly Record<string, unknown>[] = [];
    for (const until = Date.now() + 20_000; Date.now() < until; ) {
      nodes = await direct`SELECT leader, last_seen_at FROM nodes`;
      if (nodes.length === 1 && nodes[0]!.leader === true && Date.now() - Number(nodes[0]!.last_seen_at) < 8000) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(nodes.length, 1);
    assert.ok(Date.now() - Number(nodes[0]!.last_seen_at) < 8000, 'the node registry is written again');
    assert.equal(nodes[0]!.leader, true, 'the node holds the leader lock again (within 20 s of the last cut)');
  } finally {
    if (node.exit) t.diagnostic(`floatd output: ${node.output().slice(-3000)}`);
    await close();
  }
});

test('ready again at most 1 s after the database answers again: outages of 1-2 s under load, /readyz polled', {
  skip: !pgUp && 'PostgreSQL not reachable',
  timeout: 90_000,
}, async (t) => {
  const db = await createTempDatabase();
  const proxy = await cutProxy(Number(new URL(PG_ADMIN_URL).port || 5432), new URL(PG_ADMIN_URL).hostname);
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-ready-'));
  const viaProxy = new URL(db.url);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  const node = await startNode(dataDir, viaProxy.toString(), { args: ['--reclaim-interval', '1'] });
  try {
    const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    assert.equal((await call(node.url, '', 'GET', '/readyz')).status, 200, 'ready once started');
    const admin = (m: string, p: string, b?: unknown) => call(node.url, `Bearer ${token}`, m, p, b);
    const product = (await admin('POST', '/v1/admin/products', { name: 'ready' })).body;
    const lic = (
      await admin('POST', '/v1/admin/licenses', { productId: product.id, seats: 5, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 })
    ).body;
    const load = runDevices(() => node.url, lic.key, 10, { beats: 2, pauseMs: 50 });
    const times: number[] = [];
    /** when a new connection of the test's own first answered, each time */
    const databaseTimes: number[] = [];
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
      // When the database is back for any client: a new connection through the proxy, made beside floatd's, first
      // answers. On a quiet machine that takes a few ms; on a loaded one (CI runs two test files at once) the
      // database's new backend and this process wait for the CPU too, and floatd's bound starts from there.
      const answered = (async () => {
        const fresh = postgres(viaProxy.toString(), { max: 1, onnotice: () => undefined, connect_timeout: 10 });
        try {
          await fresh`SELECT 1`;
          return Date.now() - back;
        } finally {
          await fresh.end({ timeout: 1 });
        }
      })();
      let ready = false;
      while (!ready && Date.now() - back < 10_000) {
        ready = (await call(node.url, '', 'GET', '/readyz')).status === 200;
        if (!ready) await new Promise((r) => setTimeout(r, 10));
      }
      times.push(Date.now() - back);
      databaseTimes.push(await answered);
    }
    const report = await load.stop();
    t.diagnostic(
      `ready after the database: ${times.join(', ')} ms; a new connection answered after ${databaseTimes.join(', ')} ms; load: ${report.ok} 2xx, ${report.unavailable} 503`,
    );
    assert.equal(node.exit, undefined);
    assert.deepEqual(report.wrong, []);
    assert.deepEqual(report.networkErrors, []);
    times.forEach((ms, i) =>
      assert.ok(ms - databaseTimes[i]! <= 1000, `ready ${ms} ms after the database came back, ${databaseTimes[i]} ms after it answered`),
    );
  } finally {
    await node.stop();
    await proxy.close();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('/readyz answers 200 only once the node can serve everything (its first admin token written), polled from the first moment it listens', {
  skip: !pgUp && 'PostgreSQL not reachable',
  timeout: 60_000,
}, async (t) => {
  const db = await createTempDatabase();
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-firststart-'));
  const { existsSync } = await import('node:fs');
  const port = await freePort();
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
  let node: Awaited<ReturnType<typeof startNode>> | undefined;
  try {
    node = await startNode(dataDir, db.url, { port });
    await new Promise((r) => setTimeout(r, 300));
    polling = false;
    await poller;
    t.diagnostic(`${answers} /readyz answers during the first start`);
    assert.ok(answers > 0);
    assert.deepEqual(early, []);
    assert.equal((await call(node.url, '', 'GET', '/readyz')).status, 200);
  } finally {
    // Also when the node did not start: the poller would keep the file from ever ending.
    polling = false;
    await poller;
    await node?.stop();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('half-open connections under load (a firewall drops its state: every open connection goes silent, no FIN, no RST): the process stays up, only 503s, no lease lost, the pool, the leader lock and LISTEN come back by themselves', {
  skip: !pgUp && 'PostgreSQL not reachable',
  timeout: 120_000,
}, async (t) => {
  const { db, direct, proxy, node, token, lic, close } = await proxiedNode('half-open');
  const events = new AbortController();
  try {
    // The console's event stream (fed by the node's LISTEN connection), read for the whole test.
    const seen: string[] = [];
    const stream = await fetch(`${node.url}/v1/admin/events`, { headers: { authorization: `Bearer ${token}` }, signal: events.signal });
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream.body as unknown as AsyncIterable<Uint8Array>) {
        for (const m of decoder.decode(chunk).matchAll(/"kind":"(\w+)"/g)) seen.push(`${m[1]}@${Date.now()}`);
      }
    })().catch(() => undefined);

    const load = runDevices(() => node.url, lic.key, DEVICES, { beats: 3, pauseMs: 30 });
    await new Promise((r) => setTimeout(r, 1500));
    // /readyz's own connection is open too, and goes silent with the others (it is not used again until the end).
    assert.equal((await call(node.url, '', 'GET', '/readyz')).status, 200);
    const silencedAt = Date.now();
    const silenced = proxy.silence({ databaseNoticesAfterMs: 5000 });
    assert.ok(silenced >= 3, `the pool, LISTEN and the leader lock went silent (${silenced} connections)`);
    // Long enough for floatd to give up on every silent connection (12 s from its first query after the silence).
    await new Promise((r) => setTimeout(r, 24_000));
    const report = await load.stop();
    assert.equal(node.exit, undefined, `floatd exited: ${node.output()}`);
    const servedAfter = report.recoveries.filter((r) => r.from >= silencedAt).map((r) => r.at - silencedAt);
    t.diagnostic(
      `${silenced} connections half-open; ${report.requests} requests: ${report.ok} 2xx, ${report.unavailable} 503, ${report.noSeats} 409; ` +
        `first served after the silence: ${servedAfter.length ? Math.min(...servedAfter) : 'none needed'} ms, last 503 ${report.lastUnavailableAt ? report.lastUnavailableAt - silencedAt : '-'} ms after it`,
    );
    assert.deepEqual(report.networkErrors, [], 'floatd answered every request (within its 15 s bound: queue wait + database deadline)');
    if (report.wrong.length) {
      // The server's own account of an unexpected answer (an unhandled error is logged with its stack).
      const errors = node
        .output()
        .split('\n')
        .filter((l) => /"level":(50|60)/.test(l) && !/storage unavailable/.test(l));
      t.diagnostic(`server errors: ${errors.slice(-5).join('\n')}`);
    }
    assert.deepEqual(report.wrong, [], 'only 2xx, 409 NO_SEATS_AVAILABLE or 503 with Retry-After');
    assert.deepEqual(report.lost, [], 'no heartbeat found its lease gone');
    // Bound: a silent connection is given up 12 s after its first query since the silence; when every pool
    // connection was open (and went silent), no fresh one can be opened before that, and a request may then still
    // wait up to 5 s for its license's turn. Measured 5-10 s with 5 silent connections; 15.2 s once in CI with 12
    // (the pool full, both passes sharing 2 cores).
    assert.ok(
      servedAfter.length === 0 || Math.min(...servedAfter) <= 17_000,
      `serving again once the silent connections are given up (12 s, plus the turn's wait): ${Math.min(...servedAfter)} ms`,
    );
    // Fully recovered: a fresh round of load gets no 503 at all. (Until then, a pool connection that was idle when
    // the path went silent traps the queries sent on it for 12 s from its first use: 503s can come up to that
    // long plus a request deadline after the silence.)
    const after = runDevices(() => node.url, lic.key, DEVICES, { beats: 2, pauseMs: 30 });
    await new Promise((r) => setTimeout(r, 3000));
    const fresh = await after.stop();
    t.diagnostic(`afterwards: ${fresh.requests} requests, ${fresh.ok} 2xx, ${fresh.unavailable} 503, ${fresh.noSeats} 409`);
    assert.equal(
      fresh.unavailable + fresh.wrong.length + fresh.networkErrors.length,
      0,
      `recovered: ${JSON.stringify(fresh.wrong.concat(fresh.networkErrors).slice(0, 3))}`,
    );
    assert.ok(fresh.ok > 20);
    for (const [id, fp] of fresh.held) report.held.set(id, fp);
    for (const id of fresh.checkedIn) report.checkedIn.add(id);
    // The readiness connection heard nothing since the silence: its first ping fails within PING_DEADLINE_MS (2 s)
    // and takes the connection with it, so the next one asks over a new connection.
    const askedAt = Date.now();
    let ready = await call(node.url, '', 'GET', '/readyz');
    const answers = [ready.status];
    for (let i = 0; i < 2 && ready.status !== 200; i++) answers.push((ready = await call(node.url, '', 'GET', '/readyz')).status);
    t.diagnostic(`/readyz since the silence: ${answers.join(', ')}, ready ${Date.now() - askedAt} ms after the first was asked`);
    assert.equal(ready.status, 200, `ready: ${JSON.stringify(ready.body)}`);

    const rows = await direct`SELECT id FROM leases WHERE license_id = ${lic.id}`;
    const ids = new Set(rows.map((r) => String(r.id)));
    assert.deepEqual(
      [...report.held.keys()].filter((id) => !ids.has(id)),
      [],
      'acknowledged leases lost',
    );
    assert.deepEqual(
      [...report.checkedIn].filter((id) => ids.has(id)),
      [],
      'checked-in leases back',
    );
    const [l] = await direct`SELECT seats_used FROM licenses WHERE id = ${lic.id}`;
    assert.equal(Number(l!.seats_used), ids.size, 'seats_used counts the lease rows');
    assert.ok(ids.size <= SEATS);

    // The leader lock and the node registry are back; LISTEN resubscribed (the stream got a resync) and hears changes.
    const nodes = await direct`SELECT leader, last_seen_at FROM nodes`;
    assert.ok(Date.now() - Number(nodes[0]!.last_seen_at) < 8000, 'the node registry is written again');
    // The leader lock is held again: by a live session of this node (the lock of the session that went silent
    // went with it when the database noticed).
    let locks: number[] = [];
    // (Up to 40 s more: on a loaded machine the leadership's retry after its connection was given up takes longer;
    // 29-39 s after the silence in most runs, past 49 s once in a full run.)
    for (let i = 0; i < 160 && locks.length === 0; i++) {
      locks = (
        await direct`SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND a.datname = ${db.name}`
      ).map((r) => Number(r.pid));
      if (locks.length === 0) await new Promise((r) => setTimeout(r, 250));
    }
    t.diagnostic(`leader lock held again ${Date.now() - silencedAt} ms after the silence (or earlier)`);
    assert.equal(locks.length, 1, 'the node holds the leader lock again');
    assert.ok(
      seen.some((e) => e.startsWith('resync@') && Number(e.split('@')[1]) > silencedAt),
      `the event stream was told to reload after LISTEN came back (${seen.slice(-5).join(' ')})`,
    );
    const before = seen.length;
    const co = await call(node.url, `License ${lic.key}`, 'POST', '/v1/client/checkout', {
      fingerprint: 'after-half-open',
      instanceId: 'app',
    });
    assert.ok(co.status === 201 || co.status === 409, `checkout: ${co.status}`);
    for (let i = 0; i < 40 && seen.length === before; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(seen.length > before, 'a change after the silence reaches the event stream (LISTEN works again)');
  } finally {
    events.abort();
    if (node.exit) t.diagnostic(`floatd output: ${node.output().slice(-3000)}`);
    await close();
  }
});
