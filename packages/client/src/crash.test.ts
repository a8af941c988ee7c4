/**
 * Crash safety: a real `floatd serve` process under a steady load of checkouts,
 * heartbeats and check-ins (plain HTTP clients, and SDK clients) is killed with
 * SIGKILL and restarted on the same data several times. Afterwards:
 *
 * - every lease a client was granted (a 2xx) and did not release itself is still
 *   there, and no heartbeat of a held lease was ever answered LEASE_NOT_FOUND;
 * - no seat was double-granted: replaying what the clients observed, at no
 *   instant were more seats certainly held than the key has (the checker of
 *   cluster.test.ts: a hold runs from the grant's answer to the check-in's
 *   sending, or to the last renewal of a holder that crashed);
 * - the seat counter equals the lease rows;
 * - the SDK clients kept their leases without a violation event.
 *
 * SQLite in the default pass (WAL, synchronous FULL by default; a process kill loses no
 * committed transaction); a temporary PostgreSQL database in the PostgreSQL pass.
 * FLOATD_CRASH_KILLS sets the number of kills (default 5).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTempDatabase, TEST_KEY_ENCRYPTION_KEY, TEST_STORE } from '@floatd/server/testing';
import { FloatingLicense } from './index.js';
import { Cleanup, freePort, processLicense, record, serverProcess, tempDir, type ServerProcess } from './testsupport.js';

const KILLS = Number(process.env.FLOATD_CRASH_KILLS ?? 5);
const SEATS = 10;
const HTTP_CLIENTS = 30;
const SDK_CLIENTS = 3;
const MAX_CRASHED_HOLDERS = 4;
const LEASE_TTL_S = 60;
const UP_MS = 1_500;

interface Hold {
  lease: string;
  client: number;
  from: number;
  until: number;
  /** the client sent a check-in (answered or not): it released the lease itself */
  released: boolean;
  /** the client died holding it */
  abandoned: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(`kill -9 of the server ${KILLS} times under load (${TEST_STORE}): no granted lease lost, no seat double-granted, SDK clients unaffected`, {
  timeout: 180_000,
}, async (t) => {
  const cleanup = new Cleanup();
  try {
    // 30 clients on one address and one key: the per-node rate limits (tested elsewhere) would answer them 429
    const env: Record<string, string> = { FLOATD_RATE_LIMIT: 'off' };
    if (TEST_STORE === 'postgres') {
      const db = await createTempDatabase();
      cleanup.add(() => db.drop());
      Object.assign(env, { FLOATD_DATABASE_URL: db.url, FLOATD_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY });
    }
    const dataDir = await tempDir(cleanup, 'floatd-crash-');
    const port = await freePort();
    let srv: ServerProcess = await serverProcess(cleanup, dataDir, port, env);
    const url = srv.url;
    const lic = await processLicense(srv, { seats: SEATS, leaseTtlSeconds: LEASE_TTL_S, heartbeatIntervalSeconds: 2 });
    const adminToken = srv.adminToken;
    const admin = async (path: string) =>
      (await fetch(url + path, { headers: { authorization: `Bearer ${adminToken}` } })).json() as Promise<any>;

    const holds: Hold[] = [];
    const stats = {
      grants: 0,
      denials: 0,
      heartbeats: 0,
      checkins: 0,
      networkErrors: 0,
      serverErrors: [] as string[],
      lost: [] as string[],
      other: [] as string[],
    };
    let stopping = false;
    let crashed = 0;
    /**
     * Whether the lease is still the client's: not released by it, and not a crashed holder's past its TTL
     * (the reclaimer frees those, as it should; on a loaded machine the run lasts longer than the TTL).
     * The server renewed at most when the client saw the answer: its expiry is no later than until + TTL.
     */
    const stillHeld = (h: Hold) => !h.released && !(h.abandoned && Date.now() >= h.until + LEASE_TTL_S * 1000 - 1000);

    /** One POST; undefined when the server could not be reached (it is being killed or restarted). */
    const post = async (path: string, body: unknown): Promise<{ status: number; body: any } | undefined> => {
      try {
        const r = await fetch(url + path, {
          method: 'POST',
          headers: { authorization: `License ${lic.key}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
        const answer = { status: r.status, body: (await r.json()) as any };
        if (r.status >= 500) stats.serverErrors.push(`${path} → ${r.status} ${JSON.stringify(answer.body).slice(0, 200)}`);
        return answer;
      } catch {
        stats.networkErrors++;
        return undefined;
      }
    };

    const httpClient = async (i: number) => {
      let generation = 0;
      while (!stopping) {
        const fingerprint = `crash-device-${i}-${generation}`;
        const g = await post('/v1/client/checkout', { fingerprint, instanceId: 'app' });
        if (!g) {
          await sleep(100);
          continue;
        }
        if (g.status === 409) {
          stats.denials++;
          await sleep(150 + Math.random() * 350);
          continue;
        }
        if (g.status !== 201 && g.status !== 200) {
          stats.other.push(`checkout → ${g.status} ${JSON.stringify(g.body).slice(0, 200)}`);
          await sleep(200);
          continue;
        }
        stats.grants++;
        const hold: Hold = { lease: g.body.lease.id, client: i, from: Date.now(), until: Date.now(), released: false, abandoned: false };
        holds.push(hold);
        const beats = 2 + Math.floor(Math.random() * 8);
        for (let b = 0; b < beats && !stopping; b++) {
          await sleep(100 + Math.random() * 300);
          const hb = await post(`/v1/client/leases/${hold.lease}/heartbeat`, { instanceId: 'app' });
          if (hb?.status === 200) {
            stats.heartbeats++;
            hold.until = Date.now();
          } else if (hb?.status === 404) {
            stats.lost.push(`${hold.lease}: heartbeat answered ${hb.body.error.code} (granted ${Date.now() - hold.from} ms ago)`);
            break;
          }
          // no answer: the server is down; the lease is still ours, keep going
        }
        if (stopping) break;
        if (crashed < MAX_CRASHED_HOLDERS && Math.random() < 0.04) {
          crashed++;
          hold.abandoned = true; // dies holding the seat; only its TTL frees it
          generation++;
          continue;
        }
        hold.until = Date.now();
        hold.released = true;
        for (let attempt = 0; attempt < 20 && !stopping; attempt++) {
          const ci = await post(`/v1/client/leases/${hold.lease}/checkin`, { instanceId: 'app' });
          if (ci?.status === 200) stats.checkins++;
          if (ci) break;
          await sleep(100);
        }
      }
    };

    // SDK clients: one checkout each, then heartbeats on their own through every kill.
    const sdk: { lic: FloatingLicense; log: ReturnType<typeof record>; leaseId: string }[] = [];
    for (let i = 0; i < SDK_CLIENTS; i++) {
      const l = new FloatingLicense({
        serverUrl: url,
        licenseKey: lic.key,
        stateDir: await tempDir(cleanup),
        fingerprint: `crash-sdk-device-${i}`,
        retry: { initialDelayMs: 100, maxDelayMs: 1_000, maxAttempts: 20 },
        requestTimeoutMs: 5_000,
      });
      cleanup.add(() => l.close({ checkin: false }));
      const log = record(l);
      const r = await l.checkout();
      assert.ok(r.ok);
      sdk.push({ lic: l, log, leaseId: r.status.leaseId! });
    }

    const load = Promise.all(Array.from({ length: HTTP_CLIENTS }, (_, i) => httpClient(i)));
    let survived = 0;
    const afterRestart: string[] = [];
    for (let k = 0; k < KILLS; k++) {
      await sleep(UP_MS * (0.6 + Math.random() * 0.8));
      await srv.kill9();
      srv = await serverProcess(cleanup, dataDir, port, env);
      survived++;
      // Right after the restart every lease held (granted before the look, not released by its client until after it) is there.
      const granted = holds.slice();
      const present = new Set(((await admin(`/v1/admin/licenses/${lic.id}/leases`)).items as { id: string }[]).map((l) => l.id));
      for (const h of granted) if (stillHeld(h) && !present.has(h.lease)) afterRestart.push(`after kill ${k + 1}: ${h.lease} missing`);
      for (const s of sdk) if (!present.has(s.leaseId)) afterRestart.push(`after kill ${k + 1}: SDK lease ${s.leaseId} missing`);
    }
    await sleep(UP_MS);
    stopping = true;
    await load;

    // Replay: at every instant, certain holds must not exceed the seats (SDK holds span the whole run).
    const end = Date.now();
    const events = [
      ...holds.flatMap((h) => [
        { at: h.from, d: +1 },
        { at: h.abandoned ? h.until : h.released ? h.until : end, d: -1 },
      ]),
      ...sdk.flatMap(() => [
        { at: 0, d: +1 },
        { at: end, d: -1 },
      ]),
    ].sort((a, b) => a.at - b.at || a.d - b.d);
    let held = 0;
    let peak = 0;
    for (const e of events) {
      held += e.d;
      peak = Math.max(peak, held);
    }

    // Every lease granted and not released by its client is still there at the end; the counter equals the rows.
    const leases = (await admin(`/v1/admin/licenses/${lic.id}/leases`)).items as { id: string }[];
    const present = new Set(leases.map((l) => l.id));
    const missing = holds.filter((h) => stillHeld(h) && !present.has(h.lease)).map((h) => h.lease);
    const license = await admin(`/v1/admin/licenses/${lic.id}`);

    t.diagnostic(
      `${survived} kills survived; ${stats.grants} grants, ${stats.denials} denials, ${stats.heartbeats} heartbeats, ${stats.checkins} check-ins, ` +
        `${crashed} holders crashed, ${stats.networkErrors} requests met a dead server; peak certain holds ${peak}/${SEATS}; ` +
        `leases lost: ${missing.length + stats.lost.length + afterRestart.length}`,
    );
    assert.equal(survived, KILLS);
    assert.deepEqual(stats.lost, [], 'no heartbeat of a held lease was answered LEASE_NOT_FOUND');
    assert.deepEqual(afterRestart, [], 'every held lease was there after every restart');
    assert.deepEqual(missing, [], 'every granted lease not released by its client is still there');
    assert.ok(peak <= SEATS, `at one instant ${peak} seats were certainly held on a ${SEATS}-seat key`);
    assert.equal(license.seatsUsed, leases.length, 'the seat counter equals the lease rows');
    assert.ok(license.seatsUsed <= SEATS);
    assert.deepEqual(stats.serverErrors, [], 'no 5xx');
    assert.deepEqual(stats.other, [], 'no unexpected answer');
    assert.ok(stats.grants > SEATS && stats.networkErrors > 0, 'the load was real and met the kills');

    for (const s of sdk) {
      assert.equal(s.log.violations.length, 0, `SDK client: no violation (${s.log.events.join()})`);
      assert.equal(s.log.reacquired, 0, 'SDK client: its seat was never lost');
      assert.equal(s.lic.status().leaseId, s.leaseId, 'SDK client: same lease');
      assert.equal(s.lic.status().valid, true);
    }
    // The SDK clients renew again on the last server and check in cleanly.
    for (const s of sdk) assert.equal((await s.lic.checkin()).released, true);
  } finally {
    await cleanup.run();
  }
});
