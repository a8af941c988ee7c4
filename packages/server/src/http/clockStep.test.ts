/**
 * A stepped wall clock must not steal live seats (issue #23 part 3), through the real
 * HTTP server and store with a manual clock (no sleeping). Two devices hold both seats
 * of a license with a 120 s TTL; the wall clock steps (forward from seconds to hours, or
 * back) while no time passes. Then: a third device is not granted a seat, both holders'
 * heartbeats renew, "reclaim now" frees nothing; and a holder that really stays silent
 * for one TTL after the step loses its seat to the third device — never more leases
 * than seats. Before the fix, a 300 s forward step granted the third device at once by
 * reclaiming both holders, whose heartbeats then got LEASE_NOT_FOUND.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../domain/clock.js';
import { startTestServer, type TestServer } from '../testing/harness.js';

const T0 = Date.parse('2026-03-02T09:00:00Z');
const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

let shared: { t: TestServer; clock: ManualClock } | undefined;
async function server() {
  if (!shared) {
    const clock = new ManualClock(T0);
    const t = await startTestServer({ clock });
    closers.push(() => t.close());
    // The process-start grace (one TTL) is over before the tests begin.
    clock.advance(10 * 60_000);
    shared = { t, clock };
  }
  return shared;
}

async function seatsCheck(t: TestServer, licenseId: string, seats: number) {
  const [row] = await t.rows(
    'SELECT seats_used AS used, (SELECT COUNT(*) FROM leases WHERE license_id = ?) AS leases FROM licenses WHERE id = ?',
    licenseId,
    licenseId,
  );
  assert.ok(Number(row!.used) <= seats, `seatsUsed ${row!.used} > ${seats}`);
  assert.equal(Number(row!.used), Number(row!.leases), 'seatsUsed equals the lease rows');
}

for (const stepSeconds of [3, 30, 300, 3 * 3600, -30, -300, -3 * 3600]) {
  test(`wall clock stepped ${stepSeconds > 0 ? 'forward' : 'back'} ${Math.abs(stepSeconds)} s: no live holder loses its seat, a silent one does after one real TTL`, async () => {
    const { t, clock } = await server();
    const lic = await t.license({ seats: 2, leaseTtlSeconds: 120, heartbeatIntervalSeconds: 30 });
    const co = (fingerprint: string) => t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint, instanceId: 'app' });
    const hb = (lease: string) => t.client(lic.key, 'POST', `/v1/client/leases/${lease}/heartbeat`, { instanceId: 'app' });
    const a = await co(`step-a-${stepSeconds}`);
    const b = await co(`step-b-${stepSeconds}`);
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);
    clock.advance(20_000);

    clock.step(stepSeconds * 1000);
    const third = await co(`step-c-${stepSeconds}`);
    assert.equal(third.status, 409, `third device after the step: ${third.status} ${JSON.stringify(third.body)}`);
    assert.equal(third.body.error.code, 'NO_SEATS_AVAILABLE');
    const swept = await t.admin('POST', '/v1/admin/reclaim');
    assert.equal(swept.status, 200);
    // (Leases of the earlier tests' licenses that died before the step, under the server's watch, may go.)
    assert.equal(
      swept.body.freed.filter((f: { licenseId: string }) => f.licenseId === lic.id).length,
      0,
      'reclaim now frees none of the holders right after the step',
    );
    for (const l of [a, b]) {
      const r = await hb(l.body.lease.id);
      assert.equal(r.status, 200, `holder heartbeat after the step: ${r.status} ${JSON.stringify(r.body)}`);
    }
    await seatsCheck(t, lic.id, 2);

    // A keeps heartbeating; B really goes silent. Over one TTL after the step (and past B's expiry) B's seat is free.
    // After a backward step B's stored expiry is still the one from before the step (renewals never move an expiry
    // back), so B keeps its seat |step| longer: later, never sooner.
    const rounds = 5 + (stepSeconds < 0 ? Math.ceil(-stepSeconds / 30) : 0);
    for (let s = 0; s < rounds; s++) {
      clock.advance(30_000);
      assert.equal((await hb(a.body.lease.id)).status, 200);
      const early = await co(`step-c-${stepSeconds}`);
      // B renewed at the step, so it expires 120 s later: before that, no seat for C.
      if (s < 3) assert.equal(early.status, 409, `C granted ${30 * (s + 1)} s after B's last heartbeat`);
      await seatsCheck(t, lic.id, 2);
    }
    const c = await co(`step-c-${stepSeconds}`);
    assert.ok(c.status === 201 || c.status === 200, `C after B was silent for its TTL: ${c.status} ${JSON.stringify(c.body)}`);
    assert.equal((await hb(b.body.lease.id)).body.error?.code, 'LEASE_NOT_FOUND', 'the silent holder lost its seat');
    assert.equal((await hb(a.body.lease.id)).status, 200, 'the live holder kept its seat');
    await seatsCheck(t, lic.id, 2);
  });
}

test('a holder that went silent before a forward step keeps its seat for one TTL after it (the cost of the grace), then loses it', async () => {
  const { t, clock } = await server();
  const lic = await t.license({ seats: 1, leaseTtlSeconds: 120, heartbeatIntervalSeconds: 30 });
  const co = (fingerprint: string) => t.client(lic.key, 'POST', '/v1/client/checkout', { fingerprint, instanceId: 'app' });
  assert.equal((await co('grace-device-a')).status, 201);
  clock.advance(100_000); // A's last sign of life was 100 s ago
  clock.step(3600_000);
  assert.equal((await co('grace-device-b')).status, 409, 'in the grace');
  clock.advance(119_000);
  assert.equal((await co('grace-device-b')).status, 409, 'still in the grace');
  clock.advance(1_000);
  assert.equal((await co('grace-device-b')).status, 201, 'one TTL after the step');
  await seatsCheck(t, lic.id, 1);
});
