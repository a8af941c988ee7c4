/**
 * A denial flood over HTTP (issue #24, part 2; the 100,000-denial run is store/denialFlood.test.ts): 1,000
 * denied checkouts with fresh fingerprints against a real server are each answered 409 NO_SEATS_AVAILABLE and
 * counted exactly (usage, metric), audited in aggregate (at most 51 entries a license-hour, counts adding up),
 * and create no device row. Runs on SQLite and, in the PostgreSQL pass, on PostgreSQL.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../testing/harness.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t.close();
});

test('1,000 denied checkouts with fresh fingerprints: each answered and counted, audited in at most 51 entries, no device row', async () => {
  const lic = await t.license({ seats: 1 });
  const held = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'holder-device', instanceId: 'a' });
  assert.equal(held.status, 201);
  const N = 1000;
  const statuses: number[] = [];
  for (let i = 0; i < N; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: 50 }, (_, j) =>
        t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: `fresh-fp-${i + j}`, instanceId: 'x', hostname: 'h' }),
      ),
    );
    for (const r of batch) {
      statuses.push(r.status);
      if (r.status === 409) assert.equal(r.body.error.code, 'NO_SEATS_AVAILABLE');
    }
  }
  assert.deepEqual([...new Set(statuses)], [409], 'every denial answered on its own');

  const audit = await t.admin('GET', `/v1/admin/audit?licenseId=${lic.id}&type=denied&limit=500`);
  assert.equal(audit.status, 200);
  const entries = audit.body.items as { data: { count: number; firstAt: string; lastAt: string; fingerprint: string | null } }[];
  assert.ok(entries.length <= 51, `${entries.length} denial entries`);
  assert.equal(
    entries.reduce((n, e) => n + e.data.count, 0),
    N,
    'the counts add up to every denial',
  );
  for (const e of entries) assert.ok(e.data.firstAt <= e.data.lastAt);

  const usage = await t.admin('GET', `/v1/admin/licenses/${lic.id}/usage?from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z`);
  assert.equal(usage.body.denials, N);
  const metrics = await t.raw('GET', '/metrics');
  assert.match(String(metrics.body), new RegExp(`^floatd_seat_denials_total ${N}$`, 'm'));

  const devices = await t.rows('SELECT fingerprint FROM devices WHERE license_id = ?', lic.id);
  assert.deepEqual(
    devices.map((d) => d.fingerprint),
    ['holder-device'],
    'a denial stores no device',
  );
  const rows = await t.rows("SELECT COUNT(*) AS n FROM audit WHERE license_id = ? AND type = 'denied'", lic.id);
  assert.equal(Number(rows[0]!.n), entries.length);
});
