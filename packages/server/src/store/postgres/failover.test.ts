/**
 * A PostgreSQL fail-over followed by floatd itself (issue #23 part 2): a real primary and
 * a real streaming standby (synchronous replication), floatd under load (devices checking
 * out, heartbeating, checking in), the primary crashed (`pg_ctl stop -m immediate`) and the
 * standby promoted. Once with a multi-host URL (`target_session_attrs=read-write`), once
 * behind one address that moves to the new primary and drops every open connection (a
 * virtual IP, HAProxy in front of Patroni).
 *
 * Required (testing/pgfault.ts failOverLicense, failOverUnderLoad, shared with autoFailover.test.ts): the process stays up; only `503` with Retry-After inside the outage; no lease a
 * device holds is lost and none checked in comes back (read on the new primary); never more
 * leases than seats; serving again within 5 s of the promotion; the leader lock and the node
 * registry come back on the new primary. A third time with the old primary fenced instead of
 * crashed (read-only, its connections kept: writes fail with SQLSTATE 25006): floatd must leave it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pairUnavailable, startPair } from '../../testing/pgpair.js';
import { cutProxy, failOverLicense, failOverUnderLoad, startNode, type CutProxy } from '../../testing/pgfault.js';
import { connect } from './store.js';

const SEATS = 10;
const unavailable = pairUnavailable();
if (unavailable && process.env.CI === 'true') throw new Error(`the fail-over test must run in CI: ${unavailable}`);

for (const mode of ['multi-host URL', 'moving address', 'fenced primary'] as const) {
  test(`fail-over (${mode}): primary ${mode === 'fenced primary' ? 'made read-only (25006)' : 'crashed'} under load, standby promoted: serving within 5 s, no lease lost or resurrected, only 503s`, {
    skip: unavailable ?? false,
    timeout: 90_000,
  }, async (t) => {
    const pair = await startPair();
    let proxy: CutProxy | undefined;
    const dataDir = await mkdtemp(join(tmpdir(), 'floatd-failover-'));
    let node: Awaited<ReturnType<typeof startNode>> | undefined;
    try {
      let url: string;
      if (mode !== 'moving address') {
        url = `postgres://postgres@127.0.0.1:${pair.primaryPort},127.0.0.1:${pair.standbyPort}/floatd?target_session_attrs=read-write`;
      } else {
        proxy = await cutProxy(pair.primaryPort);
        url = `postgres://postgres@127.0.0.1:${proxy.port}/floatd`;
      }
      node = await startNode(dataDir, url, { args: ['--reclaim-interval', '1'] });
      const n = node;
      const lic = await failOverLicense(n, 'failover', SEATS);

      await failOverUnderLoad({
        node: n,
        license: lic,
        seats: SEATS,
        label: mode,
        log: (line) => t.diagnostic(line),
        async failOver() {
          if (mode === 'fenced primary') await pair.fencePrimary();
          else await pair.crashPrimary();
          const crashedAt = Date.now();
          await pair.promoteStandby();
          const promotedAt = Date.now();
          if (proxy) {
            // The address moves to the new primary and drops what was open.
            proxy.moveTo(pair.standbyPort);
            proxy.cut();
          }
          return { crashedAt, promotedAt, newPrimaryUrl: `postgres://postgres@127.0.0.1:${pair.standbyPort}/floatd` };
        },
      });
    } finally {
      if (node?.exit) t.diagnostic(node.output().slice(-3000));
      await node?.stop();
      await proxy?.close();
      await pair.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
}

// libpq's rule for target_session_attrs=read-write: the server must not be in hot standby and
// default_transaction_read_only must be off. postgres.js looked only at the second (off on a standby),
// so a multi-host URL kept a standby's connections during a fail-over (floatd's driver patch 3).
test('a multi-host URL naming the hot standby first: every pool connection is on the primary; the standby alone is refused', {
  skip: unavailable ?? false,
  timeout: 60_000,
}, async () => {
  const pair = await startPair();
  const both = connect(`postgres://postgres@127.0.0.1:${pair.standbyPort},127.0.0.1:${pair.primaryPort}/postgres`, 6);
  const standbyOnly = connect(`postgres://postgres@127.0.0.1:${pair.standbyPort}/postgres`, 1);
  try {
    // Six connections at once (each tries the standby first), twice over.
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => both`SELECT pg_is_in_recovery() AS standby, pg_sleep(0.05)`.then((r) => r[0]!.standby)),
    );
    assert.deepEqual(answers, Array(12).fill(false), 'a read-write pool connection landed on the standby');
    await assert.rejects(standbyOnly`SELECT 1`, 'the standby alone is not a read-write server');
  } finally {
    await both.end({ timeout: 2 });
    await standbyOnly.end({ timeout: 1 }).catch(() => undefined);
    await pair.stop();
  }
});
