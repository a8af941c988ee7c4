/**
 * The fail-over of failover.test.ts with pg_auto_failover doing the promotion (issue #23
 * part 2): a monitor and two nodes run by `pg_autoctl` keepers (testing/autoFailover.ts),
 * synchronous replication (pg_auto_failover's default quorum: the standby is in
 * `synchronous_standby_names` while healthy), floatd under load on the URL from
 * `pg_autoctl show uri --formation default` (both nodes, `target_session_attrs=read-write`).
 * The primary's host is crashed (SIGKILL to its keeper, postmaster and backends at once);
 * nobody but the monitor promotes the standby.
 *
 * Required, as in failover.test.ts: the process stays up; only `503` with Retry-After inside
 * the outage; no lease a device holds is lost and none checked in comes back (read on the new
 * primary); never more leases than seats; serving again within 5 s of the promotion (the time
 * the monitor recorded the new primary's `wait_primary`); the leader lock and the node registry
 * come back on the new primary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { autoFailoverUnavailable, startFormation, type Formation } from '../../testing/autoFailover.js';
import { call, runDevices, startNode } from '../../testing/pgfault.js';

const SEATS = 10;
const unavailable = autoFailoverUnavailable();
if (unavailable && process.env.CI === 'true') throw new Error(`the pg_auto_failover test must run in CI: ${unavailable}`);

test('automatic fail-over (pg_auto_failover): primary host crashed under load, the monitor promotes the standby: serving within 5 s, no lease lost or resurrected, only 503s', {
  skip: unavailable ?? false,
  timeout: 240_000,
}, async (t) => {
  let formation: Formation | undefined;
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-autofailover-node-'));
  let node: Awaited<ReturnType<typeof startNode>> | undefined;
  try {
    formation = await startFormation();
    const f = formation;
    assert.match(f.uri, /target_session_attrs=read-write/);
    t.diagnostic(`floatd --database-url ${f.userUri('postgres')}`);
    node = await startNode(dataDir, f.userUri('postgres'), ['--reclaim-interval', '1']);
    const n = node;
    const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
    const admin = (m: string, p: string, b?: unknown) => call(n.url, `Bearer ${token}`, m, p, b);
    const product = (await admin('POST', '/v1/admin/products', { name: 'autofailover' })).body;
    const lic = (
      await admin('POST', '/v1/admin/licenses', { productId: product.id, seats: SEATS, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 })
    ).body;
    assert.ok(lic.key, JSON.stringify(lic));

    const load = runDevices(() => n.url, lic.key, 30, { beats: 2, pauseMs: 25 });
    await new Promise((r) => setTimeout(r, 3000));
    const okBefore = load.report.ok;
    const old = await f.crashPrimary();
    const crashedAt = Date.now();
    const standby = (await f.states()).find((s) => s.nodeid !== old.nodeid)!;
    const promotedAt = await f.waitPromotion(standby.nodeid, 90_000);
    const okAtPromotion = load.report.ok;
    // Serving again: the first write acknowledged after the promotion (a checkout or a check-in).
    const firstWrite = () => load.report.writesAt.find((at) => at > promotedAt);
    while (firstWrite() === undefined && Date.now() - promotedAt < 15_000) await new Promise((r) => setTimeout(r, 5));
    const servingAfter = (firstWrite() ?? Infinity) - promotedAt;
    await new Promise((r) => setTimeout(r, 1500));
    const report = await load.stop();
    assert.equal(n.exit, undefined, `floatd exited: ${n.output()}`);

    const direct = postgres(`postgres://postgres@127.0.0.1:${standby.nodeport}/floatd`, { max: 1, onnotice: () => undefined });
    try {
      const ids = new Set((await direct`SELECT id FROM leases WHERE license_id = ${lic.id}`).map((r) => String(r.id)));
      const lost = [...report.held.keys()].filter((id) => !ids.has(id));
      const resurrected = [...report.checkedIn].filter((id) => ids.has(id));
      const [l] = await direct`SELECT seats_used FROM licenses WHERE id = ${lic.id}`;
      t.diagnostic(
        `pg_auto_failover: crash → promotion (monitor: wait_primary) ${promotedAt - crashedAt} ms, promotion → first write acknowledged ${servingAfter} ms; ` +
          `${report.requests} requests (${okBefore} 2xx before the crash), ${report.ok} 2xx, ${report.unavailable} 503, ${report.noSeats} 409; ` +
          `leases checked: ${report.held.size} held, ${report.checkedIn.size} checked in; lost ${lost.length}, resurrected ${resurrected.length}; ${ids.size} lease rows for ${SEATS} seats`,
      );
      assert.deepEqual(report.networkErrors, [], 'floatd answered every request');
      assert.deepEqual(report.wrong, [], 'only 2xx, 409 or 503 with Retry-After');
      assert.deepEqual(report.lost, [], 'no heartbeat found its lease gone');
      assert.deepEqual(lost, [], 'acknowledged leases lost in the fail-over');
      assert.deepEqual(resurrected, [], 'checked-in leases back after the fail-over');
      assert.ok(ids.size <= SEATS);
      assert.equal(Number(l!.seats_used), ids.size, 'seats_used counts the lease rows');
      assert.ok(servingAfter <= 5000, `serving again ${servingAfter} ms after the promotion`);
      assert.ok(report.ok > okAtPromotion + 20, 'serving steadily after the fail-over');
      let nodes: postgres.Row[] = [];
      for (let i = 0; i < 60; i++) {
        nodes = [...(await direct`SELECT leader, last_seen_at FROM nodes`)];
        if (nodes.some((x) => x.leader === true && Number(x.last_seen_at) > promotedAt)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(
        nodes.some((x) => x.leader === true && Number(x.last_seen_at) > promotedAt),
        `leader and registry on the new primary: ${JSON.stringify(nodes)}`,
      );
      assert.equal((await call(n.url, '', 'GET', '/readyz')).status, 200);
    } finally {
      await direct.end({ timeout: 2 });
    }
  } catch (e) {
    if (formation) t.diagnostic(formation.output().slice(-4000));
    throw e;
  } finally {
    if (node?.exit) t.diagnostic(node.output().slice(-3000));
    await node?.stop();
    await formation?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
});
