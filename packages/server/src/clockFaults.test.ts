/**
 * Stepped and skewed clocks from outside (issue #23 part 3): real `floatd serve`
 * processes whose wall clock is moved by libfaketime (Debian's `faketime`) while
 * their monotonic clock is left alone (FAKETIME_DONT_FAKE_MONOTONIC=1), as NTP
 * stepping a drifted clock or a resumed VM would.
 *
 * - One node on SQLite, two devices holding both seats (TTL 120 s): the clock steps
 *   forward 300 s, then 3 h, then back 10 min, then the process restarts 10 min
 *   "later". After every move: a third device is refused, reclaim now frees nothing,
 *   both holders' heartbeats renew, seatsUsed never passes 2. The step is logged and counted.
 * - Two nodes on one PostgreSQL database, node B 300 s ahead: B is fenced (readyz 503,
 *   NODE_CLOCK_SKEWED on checkout and heartbeat, the metric, `floatd doctor` fails and
 *   says so); A's holders keep their seats; once B's clock is corrected B serves again.
 *
 * Before the fix, the 300 s step granted the third device at once by reclaiming both
 * holders, and on PostgreSQL B reclaimed both of A's leases.
 * Skipped with a message where libfaketime (or PostgreSQL, for the second test) is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { libfaketime, SERVER_CLI, startFloatdProcess, type FloatdProcess } from './testing/process.js';
import { createTempDatabase, PG_ADMIN_URL, TEST_KEY_ENCRYPTION_KEY } from './testing/pg.js';

const lib = libfaketime();
const noFaketime = lib ? undefined : 'libfaketime is not installed (apt-get install faketime)';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function faketimeEnv(file: string): Record<string, string> {
  return { LD_PRELOAD: lib!, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}

async function seats(s: FloatdProcess, licenseId: string) {
  const l = (await s.admin('GET', `/v1/admin/licenses/${licenseId}`)).body;
  const leases = (await s.admin('GET', `/v1/admin/licenses/${licenseId}/leases`)).body;
  return { used: l.seatsUsed as number, leases: leases.items.length as number };
}

test('one node (SQLite): clock steps forward 300 s and 3 h, back 10 min, and a restart 10 min later take no live seat', {
  skip: noFaketime,
  timeout: 90_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-faketime-'));
  const offsetFile = join(dir, 'faketime');
  let s: FloatdProcess | undefined;
  try {
    await writeFile(offsetFile, '+0\n');
    const dataDir = join(dir, 'data');
    const start = () => startFloatdProcess({ dataDir, env: faketimeEnv(offsetFile), adminToken: s?.adminToken ?? true });
    s = await start();
    const product = (await s.admin('POST', '/v1/admin/products', { name: 'Clock CAD' })).body;
    const lic = (
      await s.admin('POST', '/v1/admin/licenses', { productId: product.id, seats: 2, leaseTtlSeconds: 120, heartbeatIntervalSeconds: 30 })
    ).body;
    const co = (fp: string) => s!.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: fp, instanceId: 'app' });
    const a = await co('faketime-holder-a');
    const b = await co('faketime-holder-b');
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);

    const check = async (what: string) => {
      const third = await co('faketime-third-c');
      assert.equal(third.status, 409, `${what}: the third device got ${third.status} ${JSON.stringify(third.body)}`);
      const swept = await s!.admin('POST', '/v1/admin/reclaim');
      assert.equal(swept.body.freed.length, 0, `${what}: reclaim now freed ${JSON.stringify(swept.body.freed)}`);
      for (const l of [a, b]) {
        const hb = await s!.client(lic.key, 'POST', `/v1/client/leases/${l.body.lease.id}/heartbeat`, { instanceId: 'app' });
        assert.equal(hb.status, 200, `${what}: holder heartbeat ${hb.status} ${JSON.stringify(hb.body)}`);
      }
      const n = await seats(s!, lic.id);
      assert.equal(n.used, 2, `${what}: seatsUsed`);
      assert.equal(n.leases, 2, `${what}: lease rows`);
    };

    for (const [offset, what] of [
      ['+300', 'forward 300 s'],
      ['+10800', 'forward 3 h'],
      ['+10200', 'back 10 min'],
    ] as const) {
      await writeFile(offsetFile, `${offset}\n`);
      await check(`clock stepped ${what}`);
    }
    const metrics = await (await fetch(s.url + '/metrics')).text();
    const steps = Number(/^floatd_clock_steps_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    assert.ok(steps >= 3, `floatd_clock_steps_total ${steps}`);
    assert.match(s.output(), /the wall clock stepped/);

    // Down for what its clock will call 10 minutes (longer than the TTL): after the restart the leases look expired.
    await s.stop();
    await writeFile(offsetFile, '+10800\n');
    s = await start();
    await check('restart 10 min later');
  } finally {
    await s?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

const pgUp = await (async () => {
  const sql = postgres(PG_ADMIN_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  const up = await sql`SELECT 1`.then(
    () => true,
    () => false,
  );
  await sql.end({ timeout: 1 }).catch(() => {});
  return up;
})();

test('two nodes (PostgreSQL), node B 300 s ahead: B is fenced and says why, A keeps its holders, B serves again once corrected; 1.2 s ahead (within the bound) B decides on the database time', {
  skip: noFaketime ?? (pgUp ? undefined : 'PostgreSQL is not reachable'),
  timeout: 90_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-skew-'));
  const offsetFile = join(dir, 'faketime');
  const db = await createTempDatabase();
  const nodes: FloatdProcess[] = [];
  try {
    await writeFile(offsetFile, '+300\n');
    const env = { FLOATD_DATABASE_URL: db.url, FLOATD_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY, FLOATD_DATABASE_POOL_SIZE: '3' };
    const A = await startFloatdProcess({ dataDir: join(dir, 'a'), env });
    nodes.push(A);
    const B = await startFloatdProcess({ dataDir: join(dir, 'b'), env: { ...env, ...faketimeEnv(offsetFile) }, adminToken: A.adminToken });
    nodes.push(B);

    const product = (await A.admin('POST', '/v1/admin/products', { name: 'Skew CAD' })).body;
    const lic = (
      await A.admin('POST', '/v1/admin/licenses', { productId: product.id, seats: 2, leaseTtlSeconds: 120, heartbeatIntervalSeconds: 30 })
    ).body;
    const co = (n: FloatdProcess, fp: string) => n.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: fp, instanceId: 'app' });
    const a = await co(A, 'skew-holder-a');
    const b = await co(A, 'skew-holder-b');
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);

    // B measured its offset before it started listening: fenced from its first request.
    const ready = await fetch(B.url + '/readyz');
    const readyBody = (await ready.json()) as any;
    assert.equal(ready.status, 503);
    assert.equal(readyBody.error.code, 'NODE_CLOCK_SKEWED');
    assert.match(readyBody.error.message, /ms off the database clock/);
    const third = await co(B, 'skew-third-c');
    assert.equal(third.status, 503, `B's checkout: ${third.status} ${JSON.stringify(third.body)}`);
    assert.equal(third.body.error.code, 'NODE_CLOCK_SKEWED');
    const hbB = await B.client(lic.key, 'POST', `/v1/client/leases/${a.body.lease.id}/heartbeat`, { instanceId: 'app' });
    assert.equal(hbB.body.error?.code, 'NODE_CLOCK_SKEWED', 'B renews nothing: its token expiries would be wrong');
    assert.match(await (await fetch(B.url + '/metrics')).text(), /^floatd_clock_fenced 1/m);
    assert.match(B.output(), /clock offset from the database past the bound/);
    for (const l of [a, b]) {
      const hb = await A.client(lic.key, 'POST', `/v1/client/leases/${l.body.lease.id}/heartbeat`, { instanceId: 'app' });
      assert.equal(hb.status, 200, `holder on A: ${hb.status} ${JSON.stringify(hb.body)}`);
    }
    assert.equal((await seats(A, lic.id)).used, 2);

    const doctor = spawnSync(process.execPath, [SERVER_CLI, 'doctor', '--json'], { env: { ...process.env, ...env }, encoding: 'utf8' });
    assert.equal(doctor.status, 1, 'doctor fails on a skewed node');
    const fencedNode = (JSON.parse(doctor.stdout) as { name: string; status: string; detail: string }[]).find((c) =>
      /fenced/.test(c.detail),
    );
    assert.ok(fencedNode && fencedNode.status === 'fail', `doctor: ${doctor.stdout}`);

    // NTP corrects B: within one measurement (5 s) it is ready again and decides like A.
    await writeFile(offsetFile, '+0\n');
    let status = 0;
    for (let i = 0; i < 60 && status !== 200; i++) {
      await sleep(250);
      status = (await fetch(B.url + '/readyz')).status;
    }
    assert.equal(status, 200, 'B ready again after its clock was corrected');
    const again = await co(B, 'skew-third-c');
    assert.equal(again.status, 409, `third device on the corrected B: ${again.status}`);
    const n = await seats(A, lic.id);
    assert.equal(n.used, 2);
    assert.equal(n.leases, 2);

    // Within the bound B is not fenced, and it decides on the database's time, not its own: 1.2 s ahead, B
    // reads the same time as A (its measured offset applied), so it frees nothing A counts as live.
    await writeFile(offsetFile, '+1.2\n');
    let offset = 0;
    for (let i = 0; i < 60 && offset < 1; i++) {
      await sleep(250);
      offset = Number(/^floatd_clock_offset_seconds (\S+)/m.exec(await (await fetch(B.url + '/metrics')).text())?.[1] ?? 0);
    }
    assert.ok(offset >= 1 && offset < 2, `B measured its 1.2 s offset (${offset} s)`);
    assert.equal((await fetch(B.url + '/readyz')).status, 200, 'within the bound: not fenced');
    await sleep(2_500); // one more measurement: the correction follows the offset
    const timeOf = async (node: FloatdProcess) => Date.parse((await node.admin('GET', '/v1/admin/settings')).body.serverTime);
    const diffs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = await timeOf(A);
      const onB = await timeOf(B);
      const after = await timeOf(A);
      diffs.push(onB < before ? onB - before : onB > after ? onB - after : 0);
    }
    assert.ok(
      diffs.every((d) => Math.abs(d) <= 300),
      `B's decision time is the database's, within the noise (off A by ${diffs.join(', ')} ms; raw 1200 ms)`,
    );
    const hb = await B.client(lic.key, 'POST', `/v1/client/leases/${a.body.lease.id}/heartbeat`, { instanceId: 'app' });
    assert.equal(hb.status, 200, `a holder renews on B: ${hb.status} ${JSON.stringify(hb.body)}`);
    assert.equal((await seats(A, lic.id)).used, 2);
  } finally {
    for (const n of nodes.reverse()) await n.stop();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
});
