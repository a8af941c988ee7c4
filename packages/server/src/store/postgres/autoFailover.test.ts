/**
 * The fail-over of failover.test.ts with pg_auto_failover doing the promotion (issue #23
 * part 2): a monitor and two nodes run by `pg_autoctl` keepers (testing/autoFailover.ts),
 * synchronous replication (pg_auto_failover's default quorum: the standby is in
 * `synchronous_standby_names` while healthy), floatd under load on the URL from
 * `pg_autoctl show uri --formation default` (both nodes, `target_session_attrs=read-write`).
 * The primary's host is crashed (SIGKILL to its keeper, postmaster and backends at once);
 * nobody but the monitor promotes the standby.
 *
 * Required, as in failover.test.ts (the same checker, testing/pgfault.ts failOverUnderLoad): the process stays up; only `503` with Retry-After inside
 * the outage; no lease a device holds is lost and none checked in comes back (read on the new
 * primary); never more leases than seats; serving again within 5 s of the promotion (the time
 * the monitor recorded the new primary's `wait_primary`); the leader lock and the node registry
 * come back on the new primary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { autoFailoverUnavailable, startFormation, type Formation } from '../../testing/autoFailover.js';
import { failOverLicense, failOverUnderLoad, startNode } from '../../testing/pgfault.js';

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
    node = await startNode(dataDir, f.userUri('postgres'), { args: ['--reclaim-interval', '1'] });
    const n = node;
    const lic = await failOverLicense(n, 'autofailover', SEATS);

    await failOverUnderLoad({
      node: n,
      license: lic,
      seats: SEATS,
      label: 'pg_auto_failover (promotion: the monitor records wait_primary)',
      log: (line) => t.diagnostic(line),
      async failOver() {
        const old = await f.crashPrimary();
        const crashedAt = Date.now();
        const standby = (await f.states()).find((s) => s.nodeid !== old.nodeid)!;
        const promotedAt = await f.waitPromotion(standby.nodeid, 90_000);
        return { crashedAt, promotedAt, newPrimaryUrl: `postgres://postgres@127.0.0.1:${standby.nodeport}/floatd` };
      },
    });
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
