import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from '../testing/harness.js';

test('the background reclaimer frees dead leases on its own, recorded with reason "expired" and actor "reclaimer"', async () => {
  const t = await startTestServer({ reclaimer: true, reclaimIntervalSeconds: 1 });
  try {
    const lic = await t.license({ seats: 3, leaseTtlSeconds: 30, heartbeatIntervalSeconds: 10 });
    const g = await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'bg-reclaim-1', instanceId: 'a' });
    await t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint: 'bg-reclaim-2', instanceId: 'a' });
    t.clock.advance(31_000); // both leases are now dead; the next tick (real timer, 1 s) must free them
    let used = 2;
    for (let i = 0; i < 40 && used > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      used = (await t.admin('GET', `/v1/admin/licenses/${lic.id}`)).body.seatsUsed;
    }
    assert.equal(used, 0);
    const audit = await t.admin('GET', `/v1/admin/audit?leaseId=${g.body.lease.id}&type=release`);
    assert.equal(audit.body.items[0].reason, 'expired');
    assert.equal(audit.body.items[0].actor, 'reclaimer');
    const metrics = (await t.raw('GET', '/metrics')).body as string;
    assert.match(metrics, /floatd_seats_reclaimed_total 2/);
  } finally {
    await t.close();
  }
});
