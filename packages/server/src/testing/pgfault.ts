/**
 * Tools for the PostgreSQL fault tests: a TCP proxy that cuts every open connection at
 * once (the database stays reachable) and can move to another address (a virtual IP or
 * HAProxy after a fail-over), a `floatd serve` child process, and devices that check
 * out, heartbeat and check in while recording what the server acknowledged, so a
 * checker can tell a lost or a resurrected lease; and the one fail-over checker
 * (failOverUnderLoad) that both fail-over tests run.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import postgres from 'postgres';
import { TEST_KEY_ENCRYPTION_KEY } from './pg.js';
import { startFloatdProcess, type FloatdProcess } from './process.js';

export interface CutProxy {
  port: number;
  /** connections open through the proxy right now */
  readonly open: number;
  /** how many connections it has cut */
  readonly cutCount: number;
  /** Resets every open connection (both sides), or ends them gracefully (FIN) with `how: 'end'`; new connections are accepted. */
  cut(how?: 'reset' | 'end'): number;
  /**
   * Makes every open connection half-open, as a firewall that dropped its state does: from now on nothing
   * passes either way on them and neither end is told (no FIN, no RST); new connections work normally.
   * After `databaseNoticesAfterMs` the database's end is closed (its keepalives found the client gone:
   * the session ends and its locks go), while floatd's end stays open and silent until floatd gives up.
   * Returns how many connections went silent.
   */
  silence(opts?: { databaseNoticesAfterMs?: number }): number;
  /** Forwards new connections to this port from now on (the address moved). */
  moveTo(port: number): void;
  /** Refuses new connections (the database is down) or accepts them again. */
  refuse(on: boolean): void;
  close(): Promise<void>;
}

export async function cutProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<CutProxy> {
  const pairs = new Set<[Socket, Socket]>();
  /** floatd's ends of half-open connections (see silence) */
  const silenced = new Set<Socket>();
  let target = targetPort;
  let cuts = 0;
  let refusing = false;
  // No Nagle on either side, as a router, a firewall or HAProxy forwards: with it, the proxy's second small write
  // waited for the first one's delayed ACK (about 40 ms), several times per transaction, and the test measured that.
  const server = createServer({ noDelay: true }, (client) => {
    if (refusing) return void client.resetAndDestroy();
    const upstream = connect({ port: target, host: targetHost, noDelay: true });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    get open() {
      return pairs.size;
    },
    get cutCount() {
      return cuts;
    },
    cut(how = 'reset') {
      const n = pairs.size;
      for (const pair of [...pairs]) {
        for (const s of pair) how === 'reset' ? s.resetAndDestroy() : s.end();
        if (how === 'end') setTimeout(() => pair.forEach((s) => s.destroy()), 50).unref();
        pairs.delete(pair);
      }
      cuts += n;
      return n;
    },
    silence({ databaseNoticesAfterMs = 5000 } = {}) {
      const n = pairs.size;
      for (const pair of [...pairs]) {
        const [client, upstream] = pair;
        // Neither end learns what happens to the other from now on.
        for (const socket of pair)
          socket
            .removeAllListeners('close')
            .removeAllListeners('error')
            .on('error', () => undefined);
        client.unpipe(upstream);
        upstream.unpipe(client);
        // Bytes sent from now on are lost: read and dropped.
        client.on('data', () => undefined).resume();
        upstream.on('data', () => undefined).resume();
        pairs.delete(pair);
        silenced.add(client);
        client.once('close', () => silenced.delete(client));
        setTimeout(() => upstream.destroy(), databaseNoticesAfterMs).unref();
      }
      return n;
    },
    moveTo(port) {
      target = port;
    },
    refuse(on) {
      refusing = on;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const pair of pairs) pair.forEach((s) => s.destroy());
        for (const socket of silenced) socket.destroy();
        server.close(() => r());
      }),
  };
}

/**
 * `floatd serve` on PostgreSQL `databaseUrl`, in its own process (the one spawn helper, testing/process.ts),
 * with the test key-encryption key; rate limits off unless `env` says otherwise (a 429 is not what these
 * tests look at). `port` 0 (default): the banner says which.
 */
export function startNode(
  dataDir: string,
  databaseUrl: string,
  opts: { args?: string[]; env?: Record<string, string | undefined>; port?: number } = {},
): Promise<FloatdProcess> {
  return startFloatdProcess({
    dataDir,
    args: opts.args,
    port: opts.port,
    env: { FLOATD_DATABASE_URL: databaseUrl, FLOATD_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY, ...opts.env },
    timeoutMs: 60_000,
  });
}

export interface Answer {
  status: number;
  body: any;
  retryAfter: string | null;
}

export async function call(url: string, auth: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const r = await fetch(url + path, {
    method,
    headers: { ...(auth ? { authorization: auth } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : null,
    // floatd's longest answer: a wait for the license's queue (5 s) then the database deadline (10 s).
    signal: AbortSignal.timeout(16_000),
  });
  const text = await r.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: r.status, body: parsed, retryAfter: r.headers.get('retry-after') };
}

/** What the devices saw, for the checker. */
export interface LoadReport {
  requests: number;
  ok: number;
  /** 503 STORAGE_UNAVAILABLE / SERVICE_UNAVAILABLE answers, all with Retry-After */
  unavailable: number;
  /** 409 NO_SEATS_AVAILABLE */
  noSeats: number;
  /** answers no honest outage explains (5xx other than a 503 with Retry-After, a bad body, …) */
  wrong: string[];
  /** network failures talking to floatd itself (the process gone or wedged) */
  networkErrors: string[];
  /** lease ids whose holder's last acknowledged answer was a grant or renewal and that sent no check-in since */
  held: Map<string, string>;
  /** lease ids whose check-in floatd acknowledged */
  checkedIn: Set<string>;
  /** heartbeats answered 404 LEASE_NOT_FOUND for a lease its holder still held */
  lost: string[];
  /** time of the last 503 */
  lastUnavailableAt: number;
  /** when each committed write was acknowledged (a checkout's 201, a check-in's 2xx): a batched heartbeat's 200 proves no write */
  writesAt: number[];
  /** per outage of a device (its first 503 after an answer): when it began, and when the device was served again (a 2xx or a 409) */
  recoveries: { from: number; at: number }[];
  /** other answers (a 404 of a check-in retried after its 503 had committed, …), by status and code */
  other: Record<string, number>;
}

/**
 * `devices` devices on license `key` at `url()` (asked before every request, so a test can move them):
 * each checks out, heartbeats `beats` times, checks in, again, until `stop()`. A 503 is retried after a
 * short pause (the device keeps what it had). Seats are fewer than devices, so 409s happen too.
 */
export function runDevices(url: () => string, key: string, devices: number, opts: { beats?: number; pauseMs?: number } = {}) {
  const report: LoadReport = {
    requests: 0,
    ok: 0,
    unavailable: 0,
    noSeats: 0,
    wrong: [],
    networkErrors: [],
    held: new Map(),
    checkedIn: new Set(),
    lost: [],
    lastUnavailableAt: 0,
    writesAt: [],
    recoveries: [],
    other: {},
  };
  let stopping = false;
  let inOutage: number | undefined;
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const send = async (path: string, body: unknown): Promise<Answer | undefined> => {
    report.requests++;
    let a: Answer;
    try {
      a = await call(url(), `License ${key}`, 'POST', path, body);
    } catch (e) {
      report.networkErrors.push(`${path}: ${(e as Error).message}`);
      return undefined;
    }
    const granted = a.status >= 200 && a.status < 300;
    // Served again: a decision, granted or refused (409 is the server working, not an outage).
    if ((granted || a.status === 409) && inOutage !== undefined) {
      report.recoveries.push({ from: inOutage, at: Date.now() });
      inOutage = undefined;
    }
    if (granted) {
      report.ok++;
    } else if (a.status === 503) {
      const code = a.body?.error?.code;
      if ((code === 'STORAGE_UNAVAILABLE' || code === 'SERVICE_UNAVAILABLE') && /^\d+$/.test(a.retryAfter ?? '')) report.unavailable++;
      else report.wrong.push(`${path} → 503 ${JSON.stringify(a.body)} retry-after=${a.retryAfter}`);
      report.lastUnavailableAt = Date.now();
      inOutage ??= Date.now();
    } else if (a.status === 409 && a.body?.error?.code === 'NO_SEATS_AVAILABLE') report.noSeats++;
    else if (a.status >= 500) report.wrong.push(`${path} → ${a.status} ${JSON.stringify(a.body)}`);
    else {
      const k = `${a.status} ${a.body?.error?.code ?? ''}`;
      report.other[k] = (report.other[k] ?? 0) + 1;
    }
    return a;
  };
  const device = async (i: number) => {
    const fingerprint = `fault-device-${i}`;
    const beats = opts.beats ?? 3;
    const pauseMs = opts.pauseMs ?? 40;
    while (!stopping) {
      const out = await send('/v1/client/checkout', { fingerprint, instanceId: 'app' });
      if (!out || out.status !== 201) {
        await pause(out?.status === 409 ? pauseMs * 3 : pauseMs);
        continue;
      }
      const lease = String(out.body.lease.id);
      report.held.set(lease, fingerprint);
      report.writesAt.push(Date.now());
      let beat = 0;
      while (!stopping && beat < beats) {
        await pause(pauseMs);
        const hb = await send(`/v1/client/leases/${lease}/heartbeat`, { instanceId: 'app' });
        if (hb?.status === 200) beat++;
        else if (hb?.status === 404) {
          report.lost.push(`${lease}: heartbeat → 404 ${JSON.stringify(hb.body)}`);
          report.held.delete(lease);
          break;
        } else if (hb && hb.status !== 503) report.wrong.push(`heartbeat → ${hb.status} ${JSON.stringify(hb.body)}`);
      }
      if (!report.held.has(lease)) continue;
      if (stopping) break; // keeps its lease: the checker looks for it
      // Check in until acknowledged (a 503 may or may not have committed: a retry then finds it gone, 404).
      report.held.delete(lease);
      for (;;) {
        const ci = await send(`/v1/client/leases/${lease}/checkin`, { instanceId: 'app' });
        if (ci && (ci.status === 200 || ci.status === 204)) {
          report.checkedIn.add(lease);
          report.writesAt.push(Date.now());
          break;
        }
        if (ci?.status === 404) break; // an earlier check-in answered 503 had committed after all
        if (stopping && !ci) break;
        await pause(pauseMs);
      }
    }
  };
  const running = Promise.all(Array.from({ length: devices }, (_, i) => device(i)));
  return {
    report,
    async stop() {
      stopping = true;
      await running;
      return report;
    },
  };
}

/** What a fail-over under load measured (see failOverUnderLoad). */
export interface FailoverOutcome {
  report: LoadReport;
  /** from the crash (or fencing) to the promotion */
  promotionMs: number;
  /** from the promotion to the first write acknowledged after it (Infinity: none within 15 s) */
  servingAfterMs: number;
  /** lease ids a device held that the new primary does not have */
  lost: string[];
  /** lease ids checked in that the new primary has again */
  resurrected: string[];
  /** lease rows of the license on the new primary */
  leaseRows: number;
}

/** A product and a license of `seats` seats with a long TTL on `node`, for a fail-over run. */
export async function failOverLicense(node: FloatdProcess, name: string, seats: number): Promise<{ id: string; key: string }> {
  const product = (await node.admin('POST', '/v1/admin/products', { name })).body;
  const license = (
    await node.admin('POST', '/v1/admin/licenses', { productId: product.id, seats, leaseTtlSeconds: 600, heartbeatIntervalSeconds: 60 })
  ).body;
  assert.ok(license.key, JSON.stringify(license));
  return license;
}

/**
 * The fail-over check that failover.test.ts and autoFailover.test.ts share. `devices` devices (30) check out,
 * heartbeat and check in on `license` (`seats` seats) through `node`; after 3 s of that, `failOver()` crashes
 * or fences the primary and returns once a standby is promoted (when, and that new primary's URL). Then the
 * load runs 1.5 s past the first write acknowledged after the promotion, and this asserts, reading the new
 * primary: the process stayed up and answered every request; only 2xx, 409 or 503 with Retry-After; no lease
 * a device held is lost and none checked in comes back; never more leases than seats, and `seats_used`
 * counts them; serving again within 5 s of the promotion, and steadily after it; the leader lock and the
 * node registry back on the new primary; `/readyz` 200. `log` gets one line of figures (before the asserts).
 */
export async function failOverUnderLoad(opts: {
  node: FloatdProcess;
  license: { id: string; key: string };
  seats: number;
  devices?: number;
  /** names the run in the figures line */
  label: string;
  failOver(): Promise<{ crashedAt: number; promotedAt: number; newPrimaryUrl: string }>;
  log(line: string): void;
}): Promise<FailoverOutcome> {
  const { node, license, seats } = opts;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const load = runDevices(() => node.url, license.key, opts.devices ?? 30, { beats: 2, pauseMs: 25 });
  await sleep(3000);
  const okBeforeCrash = load.report.ok;
  const { crashedAt, promotedAt, newPrimaryUrl } = await opts.failOver();
  // Serving again: the first write acknowledged after the promotion (a checkout or a check-in: a batched heartbeat's 200 writes nothing).
  const okAtPromotion = load.report.ok;
  const firstWrite = () => load.report.writesAt.find((at) => at > promotedAt);
  while (firstWrite() === undefined && Date.now() - promotedAt < 15_000) await sleep(5);
  const servingAfterMs = (firstWrite() ?? Infinity) - promotedAt;
  await sleep(1500);
  const report = await load.stop();
  assert.equal(node.exit, undefined, `floatd exited: ${node.output()}`);

  const direct = postgres(newPrimaryUrl, { max: 1, onnotice: () => undefined });
  try {
    const ids = new Set((await direct`SELECT id FROM leases WHERE license_id = ${license.id}`).map((r) => String(r.id)));
    const lost = [...report.held.keys()].filter((id) => !ids.has(id));
    const resurrected = [...report.checkedIn].filter((id) => ids.has(id));
    const [row] = await direct`SELECT seats_used FROM licenses WHERE id = ${license.id}`;
    opts.log(
      `${opts.label}: crash → promotion ${promotedAt - crashedAt} ms, promotion → first write acknowledged ${servingAfterMs} ms; ` +
        `${report.requests} requests (${okBeforeCrash} 2xx before the crash), ${report.ok} 2xx, ${report.unavailable} 503, ${report.noSeats} 409; ` +
        `leases checked: ${report.held.size} held, ${report.checkedIn.size} checked in; lost ${lost.length}, resurrected ${resurrected.length}; ` +
        `${ids.size} lease rows for ${seats} seats`,
    );
    assert.deepEqual(report.networkErrors, [], 'floatd answered every request');
    assert.deepEqual(report.wrong, [], 'only 2xx, 409 or 503 with Retry-After');
    assert.deepEqual(report.lost, [], 'no heartbeat found its lease gone');
    assert.deepEqual(lost, [], 'acknowledged leases lost in the fail-over');
    assert.deepEqual(resurrected, [], 'checked-in leases back after the fail-over');
    assert.ok(ids.size <= seats, `${ids.size} lease rows for ${seats} seats`);
    assert.equal(Number(row!.seats_used), ids.size, 'seats_used counts the lease rows');
    assert.ok(servingAfterMs <= 5000, `serving again ${servingAfterMs} ms after the promotion`);
    // Steadily: the load goes on being served (behind the moving address, a proxy on the loaded 2-core machine, the
    // rate is low: 18 answers after the promotion in one full run, 24 in another).
    assert.ok(report.ok > okAtPromotion + 10, `serving steadily after the fail-over (${report.ok - okAtPromotion} 2xx after it)`);
    // The node registry and the leader lock came back on the new primary.
    const leaderBack = (rows: postgres.Row[]) => rows.some((x) => x.leader === true && Number(x.last_seen_at) > promotedAt);
    let nodes: postgres.Row[] = [];
    for (let i = 0; i < 60; i++) {
      nodes = [...(await direct`SELECT leader, last_seen_at FROM nodes`)];
      if (leaderBack(nodes)) break;
      await sleep(100);
    }
    assert.ok(leaderBack(nodes), `leader and registry on the new primary: ${JSON.stringify(nodes)}`);
    assert.equal((await call(node.url, '', 'GET', '/readyz')).status, 200);
    return { report, promotionMs: promotedAt - crashedAt, servingAfterMs, lost, resurrected, leaseRows: ids.size };
  } finally {
    await direct.end({ timeout: 2 });
  }
}
