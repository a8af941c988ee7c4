/**
 * `floatd backup` / `floatd restore` (embedded SQLite; issue #23 part 4).
 *
 * 1. What a restore does to seats, on a real server and store with a manual clock:
 *    a lease granted after the backup is refused at its next heartbeat
 *    (LEASE_NOT_FOUND) and its device checks out again once a seat is free; a lease
 *    checked in after the backup is held again and freed by the reclaimer at its TTL;
 *    the leases from before keep heartbeating with their old tokens (the signing keys
 *    came back too); never more leases than seats.
 * 2. The commands, as processes: a backup taken while the server serves checkouts is
 *    consistent; restore refuses while the server runs and refuses a file that is not a
 *    floatd backup (changing nothing); after a stop it restores, and the server starts on it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { parseConfig } from '../config.js';
import { ManualClock } from '../domain/clock.js';
import { startTestServer, type TestServer } from '../testing/harness.js';
import { SERVER_CLI, startFloatdProcess } from '../testing/process.js';
import { backup, checkBackup, restore } from './backup.js';

const T0 = Date.parse('2026-03-02T09:00:00Z');

async function seatsOk(t: TestServer, licenseId: string, seats: number, what: string) {
  const [r] = await t.rows(
    'SELECT seats_used AS used, (SELECT COUNT(*) FROM leases WHERE license_id = ?) AS leases FROM licenses WHERE id = ?',
    licenseId,
    licenseId,
  );
  assert.ok(Number(r!.leases) <= seats, `${what}: ${r!.leases} leases > ${seats} seats`);
  assert.equal(Number(r!.used), Number(r!.leases), `${what}: seatsUsed equals the lease rows`);
  return Number(r!.leases);
}

test('restore: later grants are refused at their next heartbeat and check out again, later check-ins are freed at TTL, never more than the seats', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-restore-'));
  const dataDir = join(dir, 'data');
  const file = join(dir, 'backup.floatd');
  const config = parseConfig({ dataDir });
  const clock = new ManualClock(T0);
  let t = await startTestServer({ clock, dataDir, store: 'sqlite' });
  try {
    clock.advance(600_000); // past the start grace
    const lic = await t.license({ seats: 2, leaseTtlSeconds: 120, heartbeatIntervalSeconds: 30 });
    const co = (fingerprint: string) => t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint, instanceId: 'app' });
    const hb = (id: string) => t.client(lic.key, 'POST', `/v1/client/leases/${id}/heartbeat`, { instanceId: 'app' });
    const a = await co('restore-device-a');
    const b = await co('restore-device-b');
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);

    // Online: the backup runs while other checkouts commit.
    const other = await t.license({ seats: 50, leaseTtlSeconds: 120, heartbeatIntervalSeconds: 30 });
    const [taken] = await Promise.all([
      backup(config, file),
      Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          t.client(other.key, 'POST', '/v1/client/checkout', { fingerprint: `busy-device-${i}`, instanceId: 'app' }),
        ),
      ),
    ]);
    assert.ok(taken.files.includes('signing-keys.json') && taken.files.includes('admin-token'), `files: ${taken.files.join(', ')}`);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const checked = checkBackup(file);
    assert.ok(checked.leases >= 2);

    // After the backup: B checks in, C takes the seat.
    assert.equal((await t.client(lic.key, 'POST', `/v1/client/leases/${b.body.lease.id}/checkin`, { instanceId: 'app' })).status, 200);
    const c = await co('restore-device-c');
    assert.equal(c.status, 201);
    await t.close();

    await restore(config, file);
    t = await startTestServer({ clock, dataDir, store: 'sqlite' });
    await seatsOk(t, lic.id, 2, 'right after the restore');

    // A's lease is from before the backup: it renews, and its old token still verifies (the signing keys were restored).
    const jwks = (await t.raw('GET', '/.well-known/jwks.json')).body as { keys: { kid: string }[] };
    assert.ok(
      jwks.keys.some((k) => k.kid === decodeProtectedHeader(a.body.token).kid),
      "the old token's key is published again",
    );
    assert.equal((await hb(a.body.lease.id)).status, 200);
    // C's lease was granted after the backup: unknown now.
    const lost = await hb(c.body.lease.id);
    assert.equal(lost.status, 404);
    assert.equal(lost.body.error.code, 'LEASE_NOT_FOUND');
    // C checks out again: B's seat is held again (its check-in came after the backup) until its TTL passes.
    assert.equal((await co('restore-device-c')).status, 409);
    await seatsOk(t, lic.id, 2, 'C refused while B is held');
    for (let s = 0; s < 4; s++) {
      clock.advance(30_000);
      assert.equal((await hb(a.body.lease.id)).status, 200);
    }
    const swept = await t.admin('POST', '/v1/admin/reclaim');
    const freed = swept.body.freed.map((f: { leaseId: string }) => f.leaseId);
    assert.ok(freed.includes(b.body.lease.id), 'the reclaimer frees B at its TTL');
    assert.ok(!freed.includes(a.body.lease.id), 'A, heartbeating, keeps its seat');
    const again = await co('restore-device-c');
    assert.equal(again.status, 201);
    assert.equal(await seatsOk(t, lic.id, 2, 'C back'), 2);
  } finally {
    await t.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
});

function cli(args: string[]) {
  return spawnSync(process.execPath, [SERVER_CLI, ...args], { encoding: 'utf8', env: { ...process.env, FLOATD_DATABASE_URL: '' } });
}

test('floatd backup while serving, floatd restore refused while running and for a bad file, then restored and served', {
  timeout: 90_000,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-backup-cli-'));
  const dataDir = join(dir, 'data');
  const file = join(dir, 'b1.floatd');
  let s = await startFloatdProcess({ dataDir });
  try {
    const product = (await s.admin('POST', '/v1/admin/products', { name: 'Backup CAD' })).body;
    const lic = (
      await s.admin('POST', '/v1/admin/licenses', { productId: product.id, seats: 100, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 })
    ).body;
    // Checkouts keep committing while the backup runs.
    let stop = false;
    let granted = 0;
    const load = (async () => {
      for (let i = 0; !stop && i < 90; i++) {
        const r = await s.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: `cli-device-${i}`, instanceId: 'app' });
        if (r.status === 201) granted++;
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    const b = cli(['backup', file, '--data-dir', dataDir]);
    stop = true;
    await load;
    assert.equal(b.status, 0, b.stderr);
    assert.match(b.stdout, /backed up the database \(\d+ leases\) and admin-token, signing-keys.json/);
    const inBackup = checkBackup(file).leases;
    assert.ok(inBackup <= granted, `${inBackup} leases in the backup, ${granted} granted`);

    assert.equal(cli(['backup', file, '--data-dir', dataDir]).status, 1, 'an existing file is never overwritten');
    const running = cli(['restore', file, '--data-dir', dataDir]);
    assert.equal(running.status, 1);
    assert.match(running.stderr, /a server is running on .*stop it first/);
    await s.stop();

    const before = await readFile(join(dataDir, 'floatd.db'));
    const junk = join(dir, 'junk.floatd');
    await writeFile(junk, 'not a database at all, just some text long enough to look like a header.......'.repeat(20));
    const bad = cli(['restore', junk, '--data-dir', dataDir]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /not a floatd backup|cannot be opened|not a SQLite database|file is not a database/i);
    assert.deepEqual(await readFile(join(dataDir, 'floatd.db')), before, 'a refused restore changes nothing');

    const ok = cli(['restore', file, '--data-dir', dataDir]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`restored 1 licenses and ${inBackup} leases`));
    s = await startFloatdProcess({ dataDir });
    const leases = (await s.admin('GET', `/v1/admin/licenses/${lic.id}/leases`)).body.items.length;
    assert.equal(leases, inBackup, 'the server serves the restored state');
    const l = (await s.admin('GET', `/v1/admin/licenses/${lic.id}`)).body;
    assert.equal(l.seatsUsed, inBackup);
  } finally {
    await s.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('floatd backup on PostgreSQL says what to use instead', () => {
  const r = spawnSync(process.execPath, [SERVER_CLI, 'backup', join(tmpdir(), 'never.floatd')], {
    encoding: 'utf8',
    env: {
      ...process.env,
      FLOATD_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
      FLOATD_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
    },
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /pg_dump/);
});
