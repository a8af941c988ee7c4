/**
 * Storage failures: the data directory's file system fills up (SQLite on a real
 * tmpfs of a few MiB), the database is locked by another process past
 * `busy_timeout`, the PostgreSQL connection is lost (a TCP proxy in front of the
 * database that starts refusing). In each case the server answers
 * `503 STORAGE_UNAVAILABLE` with Retry-After (never a 500), keeps every lease it
 * had granted, reports not ready on /readyz, stays alive on /healthz, and
 * recovers on its own when the storage comes back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { startTestServer, TEST_STORE, type HttpAnswer, type TestServer } from '../testing/harness.js';
import { mountSmallDisk } from '../testing/smallDisk.js';
import { createTempDatabase, PG_ADMIN_URL, postgresAvailable, TEST_KEY_ENCRYPTION_KEY } from '../testing/pg.js';
import { cutProxy } from '../testing/pgfault.js';
import { parseConfig } from '../config.js';
import { ManualClock } from '../domain/clock.js';
import { startServer } from '../server.js';

const onSqlite = TEST_STORE === 'sqlite';

/** Every answer is a success or a clean 503 STORAGE_UNAVAILABLE with Retry-After; never a 500. */
function assertOkOrStorage(r: HttpAnswer, what: string, ok: number[]): 'ok' | 'storage' {
  if (ok.includes(r.status)) return 'ok';
  assert.equal(r.status, 503, `${what}: ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(r.body.error.code, 'STORAGE_UNAVAILABLE', what);
  assert.match(r.headers.get('retry-after') ?? '', /^\d+$/, `${what}: Retry-After`);
  assert.equal(r.body.error.retryAfterSeconds, Number(r.headers.get('retry-after')));
  assert.match(r.body.error.requestId, /^req_/);
  return 'storage';
}

async function leaseIds(t: TestServer, licenseId: string): Promise<string[]> {
  return (await t.rows('SELECT id FROM leases WHERE license_id = ? ORDER BY id', licenseId)).map((r) => String(r.id));
}

test('disk full (SQLite on a real tmpfs): 503 STORAGE_UNAVAILABLE, nothing granted is lost, recovery when space returns', {
  skip: !onSqlite && 'SQLite only',
  timeout: 60_000,
}, async (c) => {
  const disk = await mountSmallDisk(8);
  if (!disk) {
    c.skip('mounting a tmpfs was refused here (needs root or CAP_SYS_ADMIN)');
    return;
  }
  let t: TestServer | undefined;
  try {
    t = await startTestServer({ dataDir: disk.dir });
    const lic = await t.license({ seats: 50, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 });
    const held: { fingerprint: string; lease: string }[] = [];
    for (let i = 0; i < 5; i++) {
      const r: HttpAnswer = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: `device-held-${i}`, instanceId: 'app' });
      assert.equal(r.status, 201);
      held.push({ fingerprint: `device-held-${i}`, lease: r.body.lease.id });
    }
    const granted = await leaseIds(t, lic.id);

    const filled = await disk.fill();
    c.diagnostic(`filled the 8 MiB tmpfs with ${filled} bytes`);

    // Writes now fail: new checkouts, heartbeats, check-ins, admin writes. Every answer is a success or a clean 503.
    let storage = 0;
    let granted201 = 0;
    for (let i = 0; i < 40; i++) {
      const r = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: `device-new-${i}`, instanceId: 'app' });
      if (assertOkOrStorage(r, `checkout ${i}`, [201]) === 'storage') storage++;
      else granted201++;
      const hb = await t.client(lic.key, 'POST', `/v1/client/leases/${held[i % held.length]!.lease}/heartbeat`, { instanceId: 'app' });
      if (assertOkOrStorage(hb, `heartbeat ${i}`, [200]) === 'storage') storage++;
    }
    const ci = await t.client(lic.key, 'POST', `/v1/client/leases/${held[0]!.lease}/checkin`, { instanceId: 'app' });
    const checkinFailed = assertOkOrStorage(ci, 'check-in', [200]) === 'storage';
    assertOkOrStorage(await t.admin('POST', '/v1/admin/products', { name: 'while full' }), 'admin write', [201]);
    c.diagnostic(`while full: ${storage} STORAGE_UNAVAILABLE answers, ${granted201} checkouts still fit`);
    assert.ok(storage >= 30, `writes fail once the disk is full (${storage} of 81 refused)`);

    // Not ready, still alive, reads still served.
    const ready = await t.raw('GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.equal(ready.body.error.code, 'STORAGE_UNAVAILABLE');
    assert.match(ready.body.error.message, /full/);
    assert.equal((await t.raw('GET', '/healthz')).status, 200);
    assert.equal((await t.client(lic.key, 'GET', '/v1/client/license')).status, 200);

    // Nothing granted before is gone (the refused check-in included).
    const during = await leaseIds(t, lic.id);
    for (const id of granted)
      if (id !== held[0]!.lease || checkinFailed) assert.ok(during.includes(id), `lease ${id} survived the full disk`);

    // Space returns: ready again (its test write commits), every held lease renews, new checkouts are granted.
    await disk.free();
    assert.deepEqual((await t.raw('GET', '/readyz')).body, { status: 'ready', store: 'sqlite' });
    for (const h of held.slice(1)) {
      const hb: HttpAnswer = await t.client(lic.key, 'POST', `/v1/client/leases/${h.lease}/heartbeat`, { instanceId: 'app' });
      assert.equal(hb.status, 200, JSON.stringify(hb.body));
      assert.equal(hb.body.lease.id, h.lease);
    }
    assert.equal((await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'device-after', instanceId: 'app' })).status, 201);
    const [row] = await t.rows(
      'SELECT seats_used AS used, (SELECT COUNT(*) FROM leases WHERE license_id = ?) AS n FROM licenses WHERE id = ?',
      lic.id,
      lic.id,
    );
    assert.equal(row!.used, row!.n, 'the seat counter equals the lease rows');
    assert.equal((await t.rows('PRAGMA integrity_check'))[0]!.integrity_check, 'ok');
  } finally {
    await t?.close();
    await disk.unmount();
  }
});

test('a write lock held by another process past busy_timeout: 503 STORAGE_UNAVAILABLE, then normal service', {
  skip: !onSqlite && 'SQLite only',
  timeout: 60_000,
}, async () => {
  const t = await startTestServer();
  try {
    const lic = await t.license({ seats: 3 });
    const first = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'device-busy-1', instanceId: 'app' });
    assert.equal(first.status, 201);
    // Another process (a backup script, a second floatd by mistake) takes the write lock and keeps it.
    const other = new Database(join(t.dataDir, 'floatd.db'));
    other.exec('BEGIN IMMEDIATE');
    let r: HttpAnswer | undefined;
    try {
      r = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'device-busy-2', instanceId: 'app' });
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    assert.ok(r);
    assertOkOrStorage(r, 'checkout while locked', []);
    assert.match(r.body.error.message, /locked|busy/);
    assert.equal((await t.raw('GET', '/readyz')).status, 200, 'ready again: the test write commits');
    assert.equal((await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'device-busy-2', instanceId: 'app' })).status, 201);
    const hb = await t.client(lic.key, 'POST', `/v1/client/leases/${first.body.lease.id}/heartbeat`, { instanceId: 'app' });
    assert.equal(hb.status, 200);
  } finally {
    await t.close();
  }
});

const pgUp = !onSqlite && (await postgresAvailable());

test('PostgreSQL connection lost: 503 STORAGE_UNAVAILABLE, the process stays up, leases survive, service resumes', {
  skip: onSqlite ? 'runs in the PostgreSQL pass' : !pgUp && 'PostgreSQL not reachable',
  timeout: 180_000,
}, async (c) => {
  const db = await createTempDatabase();
  const proxy = await cutProxy(Number(new URL(PG_ADMIN_URL).port || 5432), new URL(PG_ADMIN_URL).hostname);
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-pgloss-'));
  const url = new URL(db.url);
  url.host = `127.0.0.1:${proxy.port}`;
  const clock = new ManualClock(Date.parse('2026-03-02T09:00:00Z'));
  const config = parseConfig({
    host: '127.0.0.1',
    port: '0',
    dataDir,
    logLevel: 'silent',
    databaseUrl: url.toString(),
    keyEncryptionKey: TEST_KEY_ENCRYPTION_KEY,
  });
  // The server's warnings and errors are kept, and shown if anything below fails.
  const logs: string[] = [];
  const logSink = { write: (line: string) => void logs.push(line.trim()) };
  const server = await startServer(config, { clock, logger: pino({ level: 'warn' }, logSink), reclaimer: false });
  const failWithLogs = (what: string) => `${what}\nserver log:\n${logs.slice(-30).join('\n')}`;
  try {
    const { readFile } = await import('node:fs/promises');
    const token = (await readFile(server.adminTokenFile, 'utf8')).trim();
    const call = async (auth: string, method: string, path: string, body?: unknown): Promise<HttpAnswer> => {
      const r = await fetch(server.url + path, {
        method,
        headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : null,
        signal: AbortSignal.timeout(20_000),
      });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : undefined, headers: r.headers };
    };
    const admin = (m: string, p: string, b?: unknown) => call(`Bearer ${token}`, m, p, b);
    const prd = (await admin('POST', '/v1/admin/products', { name: 'pg loss' })).body;
    const lic = (await admin('POST', '/v1/admin/licenses', { productId: prd.id, seats: 10, leaseTtlSeconds: 600 })).body;
    const client = (m: string, p: string, b?: unknown) => call(`License ${lic.key}`, m, p, b);
    const leases: string[] = [];
    for (let i = 0; i < 3; i++)
      leases.push((await client('POST', '/v1/client/checkout', { fingerprint: `device-pg-${i}`, instanceId: 'app' })).body.lease.id);

    // The database goes away: open connections cut, new ones refused.
    proxy.refuse(true);
    proxy.cut();
    let storage = 0;
    // (postgres.js backs off between reconnection attempts, so each of these may take a few seconds)
    for (let i = 0; i < 2; i++) {
      if (
        assertOkOrStorage(
          await client('POST', '/v1/client/checkout', { fingerprint: `device-lost-${i}`, instanceId: 'app' }),
          `checkout ${i}`,
          [201],
        ) === 'storage'
      )
        storage++;
      if (
        assertOkOrStorage(
          await client('POST', `/v1/client/leases/${leases[i % 3]}/heartbeat`, { instanceId: 'app' }),
          `heartbeat ${i}`,
          [200],
        ) === 'storage'
      )
        storage++;
      if (assertOkOrStorage(await admin('GET', `/v1/admin/licenses/${lic.id}`), `admin read ${i}`, [200]) === 'storage') storage++;
    }
    c.diagnostic(`${storage} of 6 requests answered STORAGE_UNAVAILABLE while the database was unreachable`);
    assert.equal(storage, 6, 'nothing can be served without the database');
    assert.equal((await call('', 'GET', '/readyz')).status, 503);
    assert.equal((await call('', 'GET', '/healthz')).status, 200, 'the process is alive');

    proxy.refuse(false);
    let back = false;
    for (let i = 0; i < 50 && !back; i++) {
      back = (await call('', 'GET', '/readyz')).status === 200;
      if (!back) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(back, 'ready again once the database is reachable');
    // From here on, as a client would: a 503 with Retry-After is tried once more. A pool connection broken
    // by the outage may answer one request that way after /readyz is back; a second 503 fails the test.
    let retried = 0;
    const settled = async (ask: () => Promise<HttpAnswer>, what: string): Promise<HttpAnswer> => {
      const first = await ask();
      if (first.status !== 503) return first;
      retried++;
      c.diagnostic(`${what}: ${first.status} ${JSON.stringify(first.body)} after ready; retried`);
      await new Promise((r) => setTimeout(r, 500));
      const again = await ask();
      assert.notEqual(again.status, 503, failWithLogs(`${what}: still ${JSON.stringify(again.body)}`));
      return again;
    };
    for (const id of leases) {
      const hb = await settled(() => client('POST', `/v1/client/leases/${id}/heartbeat`, { instanceId: 'app' }), `heartbeat ${id}`);
      assert.equal(hb.status, 200, failWithLogs(JSON.stringify(hb.body)));
    }
    const listed = await settled(() => admin('GET', `/v1/admin/licenses/${lic.id}/leases`), 'lease list');
    const view = listed.body.items.map((l: { id: string }) => l.id).sort();
    assert.deepEqual(view, [...leases].sort(), 'every granted lease is still there, and no refused checkout took a seat');
    const after = await settled(() => admin('GET', `/v1/admin/licenses/${lic.id}`), 'license read');
    assert.equal(after.body?.seatsUsed, 3, failWithLogs(`${after.status} ${JSON.stringify(after.body)}`));
    c.diagnostic(`${retried} of 5 requests after ready needed a second try`);
  } finally {
    await server.close().catch(() => undefined);
    await proxy.close();
    await db.drop();
    await rm(dataDir, { recursive: true, force: true });
  }
});
