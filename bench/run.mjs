#!/usr/bin/env node
/**
 * Benchmark harness: starts real floatd server processes on a fresh data
 * directory (or a fresh PostgreSQL database) and drives them over HTTP with
 * autocannon from this (separate) process. In the same run, a bare node:http
 * server answering a fixed small JSON body is driven with the same connections:
 * every scenario is reported as requests/s, p50/p99 and its ratio to that
 * baseline (the figure to steer by, since absolute numbers drift between machines).
 * Also in the same run, checkout-checkin, heartbeat and mixed are driven by the
 * same scenario code against bench/reference.mjs, a node:http server doing only
 * each request's necessary work (parse, look up, sign or tag, answer; nothing
 * durable): floatd's ratio to it says how far floatd is from that limit.
 *
 *   npm run bench                         # table (SQLite, every scenario, the references)
 *   npm run bench -- --json               # one JSON object on the last line
 *   npm run bench -- --duration 3         # seconds per scenario (default 10)
 *   npm run bench -- --only heartbeat     # one scenario (plus the baseline and its reference); --store picks the store
 *   npm run bench -- --no-reference       # skip the reference servers
 *   npm run bench -- --store postgres --nodes 2   # PostgreSQL (a fresh database), load spread over N nodes
 *   npm run bench -- --store postgres --db-latency 1  # the database 1 ms away each way (bench/latency-proxy.mjs; prints the round trip)
 *   npm run bench -- --slow-sync 10       # every fsync/fdatasync of floatd 10 ms slower (bench/slowsync.c: a slow disk)
 *   npm run bench -- --scale              # 1M leases: RSS, 100k-lease sweep, checkout p99 at 1M vs 1k
 *   npm run bench -- --scale --scale-spread   # the same with the dead a share of every license, not whole licenses
 *   npm run bench -- --scale --scale-during 8 # checkouts beside the sweep for its first 8 s: what a mass expiry costs others
 *   npm run bench -- --scale --scale-during 8 --scale-during-heartbeats # heartbeats instead, and as long before it
 *   npm run bench -- --write              # SQLite + PostgreSQL 1 and 2 nodes + scale + noisy neighbour, written to BENCHMARKS.md
 *   npm run bench -- --before DIR         # also an older build (bench/before.mjs <rev> makes DIR), each scenario on this
 *                                         # build then on it, same run; --write adds a before/after table and scale column
 *   npm run bench -- --rounds 3           # each scenario 3 times on the same setup, the median reported (3 with --before)
 *   npm run bench -- --neighbours         # noisy neighbour: quiet key B's heartbeats alone and while 40 loops churn
 *                                         # key A, both stores, per-license group commit on and off (--store, --queue default|off)
 *
 * Scenarios: checkout-checkin (each checkout a new device, then its check-in),
 * heartbeat (renewals over --leases live leases), mixed (80% heartbeat, 15%
 * checkout/check-in, 5% license info), contended (devices fighting for 10 seats:
 * mostly denials, every grant checked in at once).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { acceptSignature } from '../packages/protocol/dist/index.js';
import { sessionKeyId, sessionKeyOf, sharedSecret, x25519Pair } from '../packages/protocol/dist/sessionKeys.js';
// One way to start a floatd process and wait for it (tests, bench, soak): the compiled test helper (npm run bench builds first).
import { spawnListening, startFloatdProcess } from '../packages/server/dist/testing/process.js';
import { fillLeases } from './populate.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const asJson = args.includes('--json');
const duration = Number(flag('duration', '10'));
const connections = Number(flag('connections', '50'));
const only = flag('only', undefined);
const LIVE_LEASES = Number(flag('leases', '10000'));
const SCALE_LEASES = Number(flag('scale-leases', '1000000'));
const SCALE_EXPIRED = Number(flag('scale-expired', '100000'));
/** `--scale-spread`: the scale run's dead are a share of every license (bench/populate.mjs `spread`), not whole licenses. */
const SCALE_SPREAD = args.includes('--scale-spread');
/**
 * `--scale-during N`: the scale run's sweep runs with 10 connections of checkout + check-in on a live license beside it
 * for its first N seconds (what a mass expiry costs the other users; the sweep's own time is then under that load).
 */
const SCALE_DURING = Number(flag('scale-during', '0'));
/**
 * `--scale-during-heartbeats`: what runs beside the sweep is 10 connections of heartbeats over 1,000 live leases of a
 * license of their own (answered from memory, renewals written in batches), measured as long before the sweep too.
 */
const SCALE_DURING_HEARTBEATS = args.includes('--scale-during-heartbeats');
const PG_ADMIN = process.env.FLOATD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SCENARIOS = ['checkout-checkin', 'heartbeat', 'mixed', 'contended'];
/** The scenarios bench/reference.mjs is measured on (contended has no target). */
const REFERENCE_SCENARIOS = ['checkout-checkin', 'heartbeat', 'mixed'];
const withReference = !args.includes('--no-reference');
/** `--db-latency MS`: floatd reaches PostgreSQL through bench/latency-proxy.mjs, which delays each way by MS (or a bit more). */
const DB_LATENCY_MS = Number(flag('db-latency', '0'));
/** `--slow-sync MS`: every fsync/fdatasync of the floatd processes takes MS longer (bench/slowsync.c, preloaded). */
const SLOW_SYNC_MS = Number(flag('slow-sync', '0'));
// `--before DIR`: an older floatd, built (bench/before.mjs makes one from a git revision), measured in the same run
// as this build: each scenario on this build, then on it, on servers started side by side; the scale run too.
const BEFORE = flag('before', undefined);
const BEFORE_LABEL = BEFORE ? beforeLabel(BEFORE) : undefined;
// `--rounds N`: each scenario driven N times on the same setup (with `--before`, alternating: this build, the older one,
// this build, …), reported by the round of median req/s; 3 by default with `--before`, where the machine's drift between
// two minutes can be larger than the difference measured (one run gave mixed 3,619 against 2,751, the next 1,965
// against 4,220).
const ROUNDS = Math.max(1, Number(flag('rounds', BEFORE ? '3' : '1')));
function beforeLabel(dir) {
  try {
    return execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return dir;
  }
}

/** The preload that slows the floatd processes' syncs (`--slow-sync`), built once with the system's C compiler. */
let slowSyncLibrary;
function slowSyncEnv() {
  if (!(SLOW_SYNC_MS > 0)) return {};
  if (!slowSyncLibrary) {
    slowSyncLibrary = join(tmpdir(), `floatd-bench-slowsync-${process.pid}.so`);
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-o', slowSyncLibrary, join(root, 'bench/slowsync.c'), '-ldl']);
  }
  return { LD_PRELOAD: slowSyncLibrary, SLOW_SYNC_US: String(Math.round(SLOW_SYNC_MS * 1000)) };
}

function log(...a) {
  if (!asJson) console.log(...a);
  else console.error(...a);
}

async function stopProcess(p) {
  if (p.child.exitCode !== null) return;
  p.child.kill('SIGTERM');
  await p.exited;
}

function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : null;
}

// CPU time per request, measured around each load run (the setup of a scenario is left out): the server processes
// being measured (`cpuWatch.pids`), PostgreSQL's processes, and this process, the load generator. On a 2-core machine
// the three share the cores, so req/s alone does not say what a request costs the server.
const USER_HZ = 100; // /proc/<pid>/stat counts CPU time in clock ticks of 1/100 s on Linux
/** The processes whose CPU time is the server's in the next load runs. */
const cpuWatch = { pids: [] };
function cpuUs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * (1e6 / USER_HZ); // utime + stime
  } catch {
    return 0; // gone
  }
}
function postgresCpu() {
  const byPid = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'postgres') byPid.set(d, cpuUs(d));
    } catch {
      /* gone */
    }
  }
  return byPid;
}
function cpuSnapshot() {
  const self = process.cpuUsage();
  return { server: cpuWatch.pids.reduce((n, pid) => n + cpuUs(pid), 0), db: postgresCpu(), loadgen: self.user + self.system };
}
/** µs of CPU per request between two snapshots: the servers', PostgreSQL's (its backends that ran), the load generator's. */
function cpuPerRequest(a, b, requests) {
  let db = 0;
  for (const [pid, us] of b.db) db += us - (a.db.get(pid) ?? 0);
  const per = (us) => (requests > 0 ? Math.round(us / requests) : null);
  return { server: per(b.server - a.server), db: per(db), loadgen: per(b.loadgen - a.loadgen) };
}

function runOne(opts, onFirstAnswer) {
  return new Promise((res, rej) => {
    const inst = autocannon({ duration, ...opts }, (err, r) => (err ? rej(err) : res(r)));
    if (onFirstAnswer) inst.once('response', onFirstAnswer);
    autocannon.track(inst, {
      renderProgressBar: false,
      renderResultsTable: false,
      renderLatencyTable: false,
      outputStream: { write() {} },
    });
  });
}

/** Drives every URL with its share of the connections at once (a load balancer's round robin) and adds the results up. */
async function run(urls, opts) {
  // From the first answer: autocannon builds each connection's requests before it sends any (the load generator's CPU
  // for the mixed scenario's prebuilt license infos), which is not a request's cost.
  let before;
  const r = await runParts(urls, opts, () => {
    before ??= cpuSnapshot();
  });
  r.cpu = before ? cpuPerRequest(before, cpuSnapshot(), r.requests.total) : undefined;
  return r;
}

async function runParts(urls, opts, onFirstAnswer) {
  const parts = await Promise.all(
    urls.map((url) =>
      runOne({ ...opts, url, connections: Math.max(1, Math.round((opts.connections ?? connections) / urls.length)) }, onFirstAnswer),
    ),
  );
  if (parts.length === 1) return parts[0];
  const sum = (f) => parts.reduce((n, p) => n + f(p), 0);
  return {
    requests: { average: sum((p) => p.requests.average), total: sum((p) => p.requests.total) },
    latency: { p50: Math.max(...parts.map((p) => p.latency.p50)), p99: Math.max(...parts.map((p) => p.latency.p99)) },
    non2xx: sum((p) => p.non2xx),
    errors: sum((p) => p.errors),
    statusCodeStats: parts.reduce((all, p) => {
      for (const [code, v] of Object.entries(p.statusCodeStats ?? {})) all[code] = { count: (all[code]?.count ?? 0) + v.count };
      return all;
    }, {}),
  };
}

/** Rounds of one scenario: the round of median req/s (its latencies and CPU), every round's req/s, and the refusals
 * and errors of all of them (a 5xx in any round shows). */
function medianRound(runs) {
  if (runs.length === 1) return runs[0];
  const mid = [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)];
  const sum = (k) => runs.reduce((n, r) => n + r[k], 0);
  return { ...mid, rounds_rps: runs.map((r) => r.rps), non2xx: sum('non2xx'), errors: sum('errors'), server_errors: sum('server_errors') };
}

const summary = (r) => ({
  rps: Math.round(r.requests.average),
  p50_ms: r.latency.p50,
  p99_ms: r.latency.p99,
  non2xx: r.non2xx,
  errors: r.errors,
  // A 5xx is a failure in every scenario; 409 denials are the point of `contended`.
  server_errors: Object.entries(r.statusCodeStats ?? {})
    .filter(([c]) => c >= '500')
    .reduce((n, [, v]) => n + v.count, 0),
  // µs of CPU per request: the server processes, PostgreSQL, the load generator
  cpu_us: r.cpu,
});

async function api(url, method, path, auth, body) {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (res.status >= 500) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** A fresh PostgreSQL database for one run; `drop()` removes it. */
/** The mean time of a `SELECT 1` on one connection to `url` (the database's round trip, as `--db-latency` makes it). */
async function roundTripMs(url) {
  const { default: postgres } = await import('postgres');
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  await sql`SELECT 1`;
  const start = performance.now();
  for (let i = 0; i < 200; i++) await sql`SELECT 1`;
  const ms = (performance.now() - start) / 200;
  await sql.end();
  return ms;
}
/** Measured once, for the report, when the database is behind the latency proxy. */
let dbRoundTrip;

async function pgDatabase() {
  const { default: postgres } = await import('postgres');
  const name = `floatd_bench_${process.pid}_${Date.now()}`;
  const a = postgres(PG_ADMIN, { max: 1, onnotice: () => {} });
  await a.unsafe(`CREATE DATABASE ${name}`);
  await a.end();
  const u = new URL(PG_ADMIN);
  u.pathname = '/' + name;
  return {
    url: u.toString(),
    async drop() {
      const b = postgres(PG_ADMIN, { max: 1, onnotice: () => {} });
      await b.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await b.end();
    },
  };
}

/**
 * Starts `nodes` floatd processes on one store (each node its own data directory; PostgreSQL shared). `build`: the root
 * of another floatd checkout whose server runs instead of this one (`--before`).
 */
async function startFloatd({ store, nodes, dataDir, env: extraEnv = {}, dbLatencyMs = DB_LATENCY_MS, build }) {
  // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof" profiles the server processes.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // One key from one address at full speed is the point of a benchmark: rate limits off (FLOATD_RATE_LIMIT).
  const env = { FLOATD_RATE_LIMIT: 'off', ...slowSyncEnv(), ...extraEnv };
  let pg;
  let proxy;
  if (store === 'postgres') {
    pg = await pgDatabase();
    env.FLOATD_DATABASE_URL = pg.url;
    if (dbLatencyMs > 0) {
      const u = new URL(pg.url);
      proxy = await spawnListening(['node', join(root, 'bench/latency-proxy.mjs'), '0', u.hostname, u.port || '5432', String(dbLatencyMs)]);
      u.port = new URL(proxy.url).port;
      env.FLOATD_DATABASE_URL = u.toString();
      dbRoundTrip ??= { direct: await roundTripMs(pg.url), proxied: await roundTripMs(u.toString()) };
    }
    env.FLOATD_KEY_ENCRYPTION_KEY = Buffer.alloc(32, 9).toString('base64');
  }
  const command = build ? [process.execPath, ...nodeArgs, join(build, 'packages/server/dist/cli.js')] : undefined;
  const servers = [];
  for (let i = 0; i < nodes; i++) {
    // only the first node of a cluster writes an admin token
    servers.push(
      await startFloatdProcess({ dataDir: join(dataDir, `n${i}`), nodeArgs, command, env, timeoutMs: 60_000, adminToken: i === 0 }),
    );
  }
  const admin = `Bearer ${(await readFile(join(dataDir, 'n0', 'admin-token'), 'utf8')).trim()}`;
  return {
    servers,
    urls: servers.map((s) => s.url),
    url: servers[0].url,
    admin,
    // A build from before issue #17 (no session keys in its protocol package) refuses a checkout's `session` (its request
    // objects are closed): its clients offer none. A later build's clients offer one, as this build's do.
    legacy: Boolean(build) && !existsSync(join(build, 'packages/protocol/dist/sessionKeys.js')),
    async stop() {
      await Promise.all(servers.map(stopProcess));
      if (proxy) await stopProcess(proxy);
      await pg?.drop();
    },
  };
}

const JSON_HEADERS = { 'content-type': 'application/json' };

// The client side as floatd's SDK does it (issue #17): every client request carries a fresh nonce and asks for RFC 9421
// answers; a checkout offers an X25519 key, and the requests on the use name the session key agreed (so the server
// signs them with HMAC-SHA256). One client key pair for every checkout: the server still makes its own pair and the
// agreement each time; the client derives each use's key from the answer.
const CLIENT_PAIR = x25519Pair();
const SESSION_OFFER = { x25519: CLIENT_PAIR.x25519 };
let nonces = 0;
/** Headers of a client request: the key, a nonce, `Accept-Signature` naming `keyid` (the use's session key) if given. */
const clientHeaders = (key, keyid, json = true) => ({
  ...(json ? JSON_HEADERS : {}),
  authorization: `License ${key}`,
  'floatd-nonce': `n${++nonces}`,
  'accept-signature': acceptSignature(keyid),
});
/** The session key id a checkout's answer agreed (none when the server answered no `session`). */
function sessionKeyIdOf(answer) {
  if (!answer?.session?.x25519) return undefined;
  return sessionKeyId(sessionKeyOf(sharedSecret(CLIENT_PAIR.privateKey, answer.session.x25519), answer.lease.id));
}

/** Checks `n` devices out in parallel batches (offering session keys); returns their leases: `{ id, keyid }`. */
async function checkoutMany(url, key, n, prefix, legacy = false) {
  const leases = [];
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, (_, j) =>
        api(url, 'POST', '/v1/client/checkout', `License ${key}`, {
          fingerprint: `${prefix}-${i + j}-device`,
          instanceId: 'app',
          ...(legacy ? {} : { session: SESSION_OFFER }),
        }),
      ),
    );
    for (const g of batch) leases.push({ id: g.lease.id, keyid: sessionKeyIdOf(g) });
  }
  return leases;
}

/**
 * A request entry sending the heartbeats of every live lease in turn, shared by all connections. (autocannon
 * walks a list of requests from its start on every connection, so a list of 10,000 prebuilt heartbeats had its 50
 * connections renew the same first ~1,300 leases in a 10-s run, each about 50 times a second, and the renewal batch
 * wrote one row for 50 heartbeats. The heartbeat and mixed figures before 2026-12-06 23:50 were measured so.)
 */
function everyLease(requests) {
  let i = 0;
  return { setupRequest: (req) => ({ ...req, ...requests[i++ % requests.length] }) };
}

/** The scenarios: each makes its own license (and leases), then returns a function that drives the load once and
 * resolves to autocannon's result (called once per round, on the same license). */
function scenarioSet(f) {
  const mkLicense = async (seats, policy = {}) =>
    (
      await api(f.url, 'POST', '/v1/admin/licenses', f.admin, {
        productId: f.productId,
        seats,
        leaseTtlSeconds: 3600,
        heartbeatIntervalSeconds: 600,
        ...policy,
      })
    ).key;
  const checkin = (key, ctx) => ({
    method: 'POST',
    path: `/v1/client/leases/${ctx.lease}/checkin`,
    headers: clientHeaders(key, ctx.keyid),
    body: '{"instanceId":"app"}',
  });
  const checkout = (key, fp) => ({
    method: 'POST',
    path: '/v1/client/checkout',
    headers: clientHeaders(key),
    body: JSON.stringify({ fingerprint: fp, instanceId: 'app', ...(f.legacy ? {} : { session: SESSION_OFFER }) }),
  });
  /** A heartbeat of a lease from `checkoutMany`, as the SDK sends it. */
  const heartbeat = (key, lease) => ({
    method: 'POST',
    path: `/v1/client/leases/${lease.id}/heartbeat`,
    headers: clientHeaders(key, lease.keyid),
    body: '{"instanceId":"app"}',
  });
  // A connection that holds a lease from its last checkout checks it in next.
  const checkinHeld = (req, key, ctx) => {
    ctx.phase = 'checkin';
    const r = { ...req, ...checkin(key, ctx) };
    ctx.lease = undefined;
    return r;
  };
  const keepLease = (status, body, ctx) => {
    if (ctx.phase !== 'checkout') return;
    const answer = status === 201 ? JSON.parse(body) : undefined;
    ctx.lease = answer?.lease.id;
    ctx.keyid = sessionKeyIdOf(answer);
  };
  return {
    'checkout-checkin': async () => {
      const key = await mkLicense(1_000_000);
      let n = 0;
      return () =>
        run(f.urls, {
          requests: [
            {
              setupRequest: (req, ctx) => {
                ctx.phase = 'checkout';
                return { ...req, ...checkout(key, `bench-cc-${++n}-device`) };
              },
              onResponse: keepLease,
            },
            { setupRequest: (req, ctx) => ({ ...req, ...checkin(key, ctx) }) },
          ],
        });
    },
    heartbeat: async () => {
      const key = await mkLicense(LIVE_LEASES);
      const leases = await checkoutMany(f.url, key, LIVE_LEASES, 'bench-hb', f.legacy);
      const heartbeats = everyLease(leases.map((lease) => heartbeat(key, lease)));
      return () => run(f.urls, { requests: [heartbeats] });
    },
    mixed: async () => {
      // Per 200 requests: 160 heartbeats, 15 checkouts each followed by its check-in, 10 license infos.
      const key = await mkLicense(1_000_000);
      const leases = await checkoutMany(f.url, key, LIVE_LEASES, 'bench-mx', f.legacy);
      const plan = [...Array(160).fill('heartbeat'), ...Array(15).fill('checkout'), ...Array(10).fill('info')];
      for (let i = plan.length - 1; i > 0; i--) {
        const j = (i * 7919) % (i + 1); // fixed shuffle: the same mix every run
        [plan[i], plan[j]] = [plan[j], plan[i]];
      }
      // The plan, each connection walking it in turn: a heartbeat is of the next live lease of all (as in `heartbeat`);
      // a checkout and the check-in after it are built per request (the check-in names the lease).
      const info = { method: 'GET', path: '/v1/client/license', headers: clientHeaders(key, undefined, false) };
      const heartbeats = everyLease(leases.map((lease) => heartbeat(key, lease)));
      const requests = [];
      let dev = 0;
      for (const what of plan) {
        if (what === 'heartbeat') requests.push(heartbeats);
        else if (what === 'info') requests.push(info);
        else {
          requests.push({
            setupRequest: (req, ctx) => {
              ctx.phase = 'checkout';
              return { ...req, ...checkout(key, `bench-mx-new-${++dev}`) };
            },
            onResponse: keepLease,
          });
          requests.push({ setupRequest: (req, ctx) => (ctx.lease ? checkinHeld(req, key, ctx) : { ...req, ...info, body: undefined }) });
        }
      }
      return () => run(f.urls, { requests });
    },
    contended: async () => async () => {
      // 10 seats, 1,000 devices: most checkouts are denied (409, expected); a grant is checked in at once. A new
      // license each time: a round ends with grants its connections never checked in, which would hold seats.
      const key = await mkLicense(10);
      let n = 0;
      return run(f.urls, {
        requests: [
          {
            setupRequest: (req, ctx) => {
              if (ctx.lease) return checkinHeld(req, key, ctx);
              ctx.phase = 'checkout';
              return { ...req, ...checkout(key, `bench-ct-${n++ % 1000}`) };
            },
            onResponse: keepLease,
          },
        ],
      });
    },
  };
}

async function baselineRun() {
  const baseline = await spawnListening([process.execPath, join(root, 'bench/baseline.mjs')], { timeoutMs: 60_000 });
  try {
    log(`baseline: bare node:http, ${connections} connections, ${duration}s`);
    cpuWatch.pids = [baseline.child.pid];
    return summary(await run([baseline.url + '/'], {}));
  } finally {
    await stopProcess(baseline);
  }
}

/** A scenario's summary with its ratios: to the baseline's req/s and p99, and to the reference's req/s if it ran. */
function rated(s, base, reference) {
  return {
    ...s,
    ratio: +(s.rps / base.rps).toFixed(3),
    p99_ratio: +(s.p99_ms / Math.max(1, base.p99_ms)).toFixed(2),
    ...(reference ? { reference_ratio: +(s.rps / reference.rps).toFixed(3) } : {}),
  };
}

/** The reference server (bench/reference.mjs, one process) under the same scenario code as floatd; summaries by scenario. */
async function referenceRun(base) {
  const names = REFERENCE_SCENARIOS.filter((name) => !only || only === name);
  if (!withReference || names.length === 0) return {};
  // BENCH_NODE_ARGS profiles this process too (its profile is the one written first).
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const ref = await spawnListening([process.execPath, ...nodeArgs, join(root, 'bench/reference.mjs')], { timeoutMs: 60_000 });
  const out = {};
  cpuWatch.pids = [ref.child.pid];
  try {
    const f = { url: ref.url, urls: [ref.url], admin: 'Bearer reference' };
    f.productId = (await api(f.url, 'POST', '/v1/admin/products', f.admin, { name: 'bench' })).id;
    const set = scenarioSet(f);
    for (const name of names) {
      log(`reference: scenario ${name} ...`);
      out[name] = rated(summary(await (await set[name]())()), base);
    }
  } finally {
    await stopProcess(ref);
  }
  return out;
}

/**
 * One store configuration: the baseline, the reference server, then every scenario on floatd (`scenarios`: these
 * only). `dbLatencyMs`: PostgreSQL behind the latency proxy (no reference then: it has no database to be far from).
 */
async function throughput({ store, nodes, dbLatencyMs = DB_LATENCY_MS, scenarios = SCENARIOS }) {
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-bench-'));
  const base = await baselineRun();
  const reference = dbLatencyMs > 0 ? {} : await referenceRun(base);
  const f = await startFloatd({ store, nodes, dataDir, dbLatencyMs });
  // `--before`: the older build's servers beside this build's (each its own data, its own PostgreSQL database).
  const old = BEFORE ? await startFloatd({ store, nodes, dataDir: join(dataDir, 'before'), dbLatencyMs, build: BEFORE }) : undefined;
  const results = {};
  const before = {};
  try {
    f.productId = (await api(f.url, 'POST', '/v1/admin/products', f.admin, { name: 'bench' })).id;
    const set = scenarioSet(f);
    let oldSet;
    if (old) {
      old.productId = (await api(old.url, 'POST', '/v1/admin/products', old.admin, { name: 'bench' })).id;
      oldSet = scenarioSet(old);
    }
    for (const name of scenarios) {
      if (only && only !== name) continue;
      const go = await set[name]();
      const goOld = old ? await oldSet[name]() : undefined;
      const runs = [];
      const oldRuns = [];
      for (let round = 1; round <= ROUNDS; round++) {
        const of = ROUNDS > 1 ? ` (round ${round} of ${ROUNDS})` : '';
        log(`${store}${nodes > 1 ? ` x${nodes}` : ''}: scenario ${name}${of} ...`);
        cpuWatch.pids = f.servers.map((s) => s.child.pid);
        runs.push(summary(await go()));
        if (goOld) {
          log(`${store}${nodes > 1 ? ` x${nodes}` : ''}: scenario ${name} on ${BEFORE_LABEL}${of} ...`);
          cpuWatch.pids = old.servers.map((s) => s.child.pid);
          oldRuns.push(summary(await goOld()));
        }
      }
      results[name] = rated(medianRound(runs), base, reference[name]);
      if (goOld) before[name] = rated(medianRound(oldRuns), base, reference[name]);
    }
    results._rss_mb = rssMb(f.servers[0].child.pid);
  } finally {
    await f.stop();
    await old?.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  const rss = results._rss_mb;
  delete results._rss_mb;
  return {
    store,
    nodes,
    baseline_rps: base.rps,
    baseline_p50_ms: base.p50_ms,
    baseline_p99_ms: base.p99_ms,
    baseline_cpu_us: base.cpu_us,
    scenarios: results,
    reference,
    ...(old ? { before, before_label: BEFORE_LABEL } : {}),
    server_rss_mb: rss,
  };
}

// ---------------------------------------------------------------------------
// scale: 1M leases

/** Fills a stopped server's SQLite file with `total` live leases over 1,000-lease licenses, `expired` of them already expired. */
async function populate(dbPath, productId, total, expired, now) {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(dbPath);
  try {
    return fillLeases(db, productId, total, expired, now, { spread: SCALE_SPREAD }).keys;
  } finally {
    db.close();
  }
}

/** checkout p99 on one license of a server, measured with checkout + check-in pairs (each checkout a new device). */
async function checkoutP99(url, key, seconds) {
  let n = 0;
  const r = await runOne({
    url,
    duration: seconds,
    connections: 10,
    requests: [
      {
        method: 'POST',
        path: '/v1/client/checkout',
        headers: { ...JSON_HEADERS, authorization: `License ${key}` },
        setupRequest: (req, ctx) => ({ ...req, body: JSON.stringify({ fingerprint: `p99-${++n}-${Math.random()}`, instanceId: 'app' }) }),
        onResponse: (status, body, ctx) => (ctx.lease = status === 201 ? JSON.parse(body).lease.id : undefined),
      },
      {
        method: 'POST',
        headers: { ...JSON_HEADERS, authorization: `License ${key}` },
        setupRequest: (req, ctx) => ({ ...req, path: `/v1/client/leases/${ctx.lease}/checkin`, body: '{"instanceId":"app"}' }),
      },
    ],
  });
  // Figures of error answers are not a checkout's: until 2026-12-07 the scale run's keys were not well-formed, and
  // every one of these "checkouts" was a 401 (and its check-in a 400).
  if (r.non2xx > 0) {
    const statuses = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([code, v]) => [code, v.count]));
    throw new Error(`the scale run's checkouts were answered with errors: ${JSON.stringify(statuses)}`);
  }
  return { p50_ms: r.latency.p50, p99_ms: r.latency.p99, max_ms: r.latency.max, rps: Math.round(r.requests.average) };
}

/** Heartbeats over `leases` (from `checkoutMany`) for `seconds`, 10 connections, as the heartbeat scenario sends them. */
async function heartbeatP99(url, key, leases, seconds) {
  const r = await runOne({
    url,
    duration: seconds,
    connections: 10,
    requests: [
      everyLease(
        leases.map((lease) => ({
          method: 'POST',
          path: `/v1/client/leases/${lease.id}/heartbeat`,
          headers: clientHeaders(key, lease.keyid),
          body: '{"instanceId":"app"}',
        })),
      ),
    ],
  });
  if (r.non2xx > 0) throw new Error(`the scale run's heartbeats were answered with errors: ${JSON.stringify(r.statusCodeStats)}`);
  return { p50_ms: r.latency.p50, p99_ms: r.latency.p99, max_ms: r.latency.max, rps: Math.round(r.requests.average) };
}

/** `build`: another floatd checkout's server (`--before`), on a file of the same shape written into its own schema. */
async function scaleAt(total, expired, build) {
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-scale-'));
  try {
    // First start: schema, admin token, a product; then the leases go straight into the file.
    let f = await startFloatd({ store: 'sqlite', nodes: 1, dataDir, build, env: { FLOATD_RECLAIM_INTERVAL_SECONDS: '86400' } });
    const productId = (await api(f.url, 'POST', '/v1/admin/products', f.admin, { name: 'scale' })).id;
    await f.stop();
    const t0 = Date.now();
    const keys = await populate(join(dataDir, 'n0', 'floatd.db'), productId, total, expired, Date.now());
    const populateS = (Date.now() - t0) / 1000;
    f = await startFloatd({ store: 'sqlite', nodes: 1, dataDir, build, env: { FLOATD_RECLAIM_INTERVAL_SECONDS: '86400' } });
    try {
      const live = keys.filter((k) => !k.expired);
      const probe = live[Math.floor(live.length / 2)].key;
      await checkoutP99(f.url, probe, 1); // warm-up
      const p = await checkoutP99(f.url, probe, Math.max(2, Math.min(duration, 5)));
      const rss = rssMb(f.servers[0].child.pid);
      let sweep = null;
      let during = null;
      let beside = () => checkoutP99(f.url, probe, SCALE_DURING);
      let heartbeatIdle = null;
      if (SCALE_DURING_HEARTBEATS && expired > 0 && SCALE_DURING > 0) {
        const key = (
          await api(f.url, 'POST', '/v1/admin/licenses', f.admin, {
            productId,
            seats: 1000,
            leaseTtlSeconds: 3600,
            heartbeatIntervalSeconds: 600,
          })
        ).key;
        const leases = await checkoutMany(f.url, key, 1000, 'scale-hb', f.legacy);
        await heartbeatP99(f.url, key, leases, 1); // warm-up
        heartbeatIdle = await heartbeatP99(f.url, key, leases, SCALE_DURING);
        beside = () => heartbeatP99(f.url, key, leases, SCALE_DURING);
      }
      if (expired > 0) {
        const s0 = process.hrtime.bigint();
        const swept = api(f.url, 'POST', '/v1/admin/reclaim', f.admin).then((r) => ({
          r,
          seconds: Number(process.hrtime.bigint() - s0) / 1e9,
        }));
        if (SCALE_DURING > 0) during = await beside();
        const { r, seconds } = await swept;
        sweep = { freed: r.freed?.length ?? r.freedCount ?? r.freed, seconds };
      }
      return {
        leases: total,
        populate_s: +populateS.toFixed(1),
        checkout: p,
        rss_mb: rss,
        rss_after_sweep_mb: rssMb(f.servers[0].child.pid),
        sweep,
        during,
        heartbeatIdle,
      };
    } finally {
      await f.stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function scale() {
  log(`scale: ${SCALE_LEASES} leases (${SCALE_EXPIRED} expired), then 1,000 leases`);
  const at = async (build) => {
    const big = await scaleAt(SCALE_LEASES, SCALE_EXPIRED, build);
    const small = await scaleAt(1000, 0, build);
    return {
      leases: SCALE_LEASES,
      expired: SCALE_EXPIRED,
      ...(SCALE_SPREAD ? { spread: true } : {}),
      rss_mb: big.rss_mb,
      rss_after_sweep_mb: big.rss_after_sweep_mb,
      sweep_freed: big.sweep?.freed ?? 0,
      sweep_s: big.sweep ? +big.sweep.seconds.toFixed(3) : null,
      checkout_p99_ms_at_scale: big.checkout.p99_ms,
      checkout_p99_ms_at_1k: small.checkout.p99_ms,
      checkout_p99_ratio: +(big.checkout.p99_ms / Math.max(1, small.checkout.p99_ms)).toFixed(2),
      checkout_rps_at_scale: big.checkout.rps,
      checkout_rps_at_1k: small.checkout.rps,
      ...(big.during && !big.heartbeatIdle ? { checkout_during_sweep: big.during } : {}),
      ...(big.heartbeatIdle ? { heartbeat_before_sweep: big.heartbeatIdle, heartbeat_during_sweep: big.during } : {}),
      populate_s: big.populate_s,
    };
  };
  const now = await at();
  if (!BEFORE) return now;
  log(`scale on ${BEFORE_LABEL}`);
  return { ...now, before: await at(BEFORE), before_label: BEFORE_LABEL };
}

// ---------------------------------------------------------------------------
// output

/** Issue #17's targets: req/s as a ratio to the fixed-body baseline, and p99 at most P99_TARGET × the baseline's p99 (50 connections). */
const TARGETS = { heartbeat: 0.6, mixed: 0.5, 'checkout-checkin': 0.3 };
const P99_TARGET = 2;

function table(r) {
  const lines = [
    `| scenario | req/s | p50 ms | p99 ms | ratio to baseline | target | ratio to reference | p99 / baseline p99 | target | non-2xx | 5xx | CPU µs/req: server, PostgreSQL, load gen. |`,
    `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
    `| baseline (node:http, fixed body) | ${r.baseline_rps} | ${r.baseline_p50_ms} | ${r.baseline_p99_ms} | 1.000 | | | 1.00 | | 0 | 0 | ${cpuCell(r.baseline_cpu_us)} |`,
  ];
  for (const [name, s] of Object.entries(r.reference ?? {})) {
    lines.push(
      `| reference: ${name} | ${s.rps} | ${s.p50_ms} | ${s.p99_ms} | ${s.ratio.toFixed(3)} | | 1.000 | ${s.p99_ratio.toFixed(2)} | | ${s.non2xx} | ${s.server_errors} | ${cpuCell(s.cpu_us)} |`,
    );
  }
  const row = (label, name, s) => {
    const target = TARGETS[name];
    return `| ${label} | ${s.rps} | ${s.p50_ms} | ${s.p99_ms} | ${s.ratio.toFixed(3)} | ${target ? `≥ ${target.toFixed(2)}` : ''} | ${s.reference_ratio?.toFixed(3) ?? ''} | ${s.p99_ratio.toFixed(2)} | ${target ? `≤ ${P99_TARGET}` : ''} | ${s.non2xx} | ${s.server_errors} | ${cpuCell(s.cpu_us)} |`;
  };
  for (const [name, s] of Object.entries(r.scenarios)) lines.push(row(name, name, s));
  for (const [name, s] of Object.entries(r.before ?? {})) lines.push(row(`before (${r.before_label}): ${name}`, name, s));
  return lines.join('\n');
}

/** This build against the `--before` build, scenario by scenario (rows of `throughput` results, labelled). */
function beforeAfterTable(configs) {
  const lines = [
    `| configuration | scenario | before req/s (rounds) | this build req/s (rounds) | × | before CPU µs/req (server, PostgreSQL) | this build |`,
    `| --- | --- | ---: | ---: | ---: | ---: | ---: |`,
  ];
  for (const [label, r] of configs) {
    for (const [name, b] of Object.entries(r.before ?? {})) {
      const a = r.scenarios[name];
      if (!a) continue;
      const cpu = (c) => (c ? `${c.server ?? '–'}, ${c.db ?? '–'}` : '');
      const rps = (x) => (x.rounds_rps ? `${x.rps} (${x.rounds_rps.join(' / ')})` : `${x.rps}`);
      lines.push(
        `| ${label} | ${name} | ${rps(b)} | ${rps(a)} | ${(a.rps / Math.max(1, b.rps)).toFixed(2)} | ${cpu(b.cpu_us)} | ${cpu(a.cpu_us)} |`,
      );
    }
  }
  return lines.join('\n');
}

/** A table cell of CPU µs per request: server, PostgreSQL, load generator. */
const cpuCell = (c) => (c ? `${c.server ?? '–'}, ${c.db ?? '–'}, ${c.loadgen ?? '–'}` : '');

const during = (d) => `${d.p50_ms} / ${d.p99_ms} / ${d.max_ms} ms, ${d.rps}`;

function scaleTable(s) {
  const b = s.before;
  const cells = (f) => (b ? ` ${f(b)} |` : '');
  return [
    `| measure | value |${b ? ` before (${s.before_label}) |` : ''} target |`,
    `| --- | ---: |${b ? ' ---: |' : ''} ---: |`,
    `| active leases in the store | ${s.leases.toLocaleString('en')} |${cells((x) => x.leases.toLocaleString('en'))} |`,
    `| server RSS with them (after checkouts) | ${s.rss_mb} MB |${cells((x) => `${x.rss_mb} MB`)} ≤ 512 MB |`,
    `| reclamation sweep freeing ${s.sweep_freed.toLocaleString('en')} expired leases${s.checkout_during_sweep ? ` (with the checkouts below beside it for its first ${SCALE_DURING} s)` : s.heartbeat_during_sweep ? ` (with the heartbeats below beside it for its first ${SCALE_DURING} s)` : ''} | ${s.sweep_s} s |${cells((x) => `${x.sweep_s} s (${x.sweep_freed.toLocaleString('en')} freed)`)} ≤ 1 s |`,
    `| checkout p99 at ${s.leases.toLocaleString('en')} leases | ${s.checkout_p99_ms_at_scale} ms |${cells((x) => `${x.checkout_p99_ms_at_scale} ms`)} |`,
    `| checkout p99 at 1,000 leases | ${s.checkout_p99_ms_at_1k} ms |${cells((x) => `${x.checkout_p99_ms_at_1k} ms`)} |`,
    `| ratio | ${s.checkout_p99_ratio} |${cells((x) => x.checkout_p99_ratio)} ≤ 1.2 |`,
    ...(s.checkout_during_sweep
      ? [
          `| checkout + check-in during the sweep (its first ${SCALE_DURING} s, 10 connections): p50 / p99 / max, req/s | ${during(s.checkout_during_sweep)} |${cells((x) => (x.checkout_during_sweep ? during(x.checkout_during_sweep) : ''))} |`,
        ]
      : []),
    ...(s.heartbeat_during_sweep
      ? [
          `| heartbeats over 1,000 leases, ${SCALE_DURING} s before the sweep (10 connections): p50 / p99 / max, req/s | ${during(s.heartbeat_before_sweep)} |${cells((x) => (x.heartbeat_before_sweep ? during(x.heartbeat_before_sweep) : ''))} |`,
          `| the same heartbeats during the sweep (its first ${SCALE_DURING} s) | ${during(s.heartbeat_during_sweep)} |${cells((x) => (x.heartbeat_during_sweep ? during(x.heartbeat_during_sweep) : ''))} |`,
        ]
      : []),
  ].join('\n');
}

function machine() {
  const c = cpus();
  return `${c.length} × ${c[0]?.model?.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, ${process.platform} ${process.arch}`;
}

async function writeReport() {
  const date = new Date().toISOString();
  const sqlite = await throughput({ store: 'sqlite', nodes: 1 });
  const pg1 = await throughput({ store: 'postgres', nodes: 1 });
  const pg2 = await throughput({ store: 'postgres', nodes: 2 });
  // One key's seat changes with the database a network away (issue #17): the round trips each one makes under its lock.
  const far = await throughput({ store: 'postgres', nodes: 1, dbLatencyMs: 1, scenarios: ['checkout-checkin'] });
  const sc = await scale();
  const nb = await neighbours();
  const cmp = (name) =>
    `| ${name} | ${sqlite.scenarios[name]?.rps ?? ''} | ${pg1.scenarios[name]?.rps ?? ''} | ${pg2.scenarios[name]?.rps ?? ''} |`;
  const md = `# Benchmarks

Generated by \`npm run bench -- --write\` (bench/run.mjs) — do not edit by hand.

- date: ${date}
- machine: ${machine()}
- load: autocannon, ${connections} connections, ${duration} s per scenario, from a separate process on the same machine
- server: one \`floatd serve\` process per node, default settings (SQLite WAL, \`synchronous = ${process.env.FLOATD_SQLITE_SYNCHRONOUS ?? 'FULL'}\`; heartbeat batch ${process.env.FLOATD_HEARTBEAT_BATCH_MS ?? 1000} ms)

The ratio to the baseline (a bare \`node:http\` server answering a fixed JSON body, driven
the same way in the same run) is the figure to compare across machines; the targets (issue #17)
are ratios to it, and p99 at most ${P99_TARGET}× the baseline's p99 at 50 connections. The
\`reference:\` rows are bench/reference.mjs, one \`node:http\` process doing only each request's
necessary work in memory (parse, look up the license and lease, count seats; checkout signs a
lease token and its answer with Ed25519; heartbeat and check-in answer with a SHA-256
Content-Digest and an HMAC-SHA256 signature; nothing durable, no audit), driven by the same
scenario code in the same run: "ratio to reference" is floatd's distance from that limit. The last
column is the CPU time each request cost, from the first answer to the end of the run (\`/proc\`): the
server processes measured, PostgreSQL's processes, and the load generator. The three share this machine's
cores, so it is the figure that says what a request costs the server, whatever the load generator takes.

## SQLite (embedded default), one node

${table(sqlite)}

Server RSS after the run: ${sqlite.server_rss_mb} MB.

## PostgreSQL, one node

${table(pg1)}

## PostgreSQL, two nodes (load split evenly)

${table(pg2)}

## PostgreSQL, one node, the database a network away

One key's checkout-checkin with floatd's connections to PostgreSQL through bench/latency-proxy.mjs (1 ms each way,
timers being whole milliseconds: a round trip of ${dbRoundTrip ? dbRoundTrip.proxied.toFixed(2) : '?'} ms measured through it, ${dbRoundTrip ? dbRoundTrip.direct.toFixed(2) : '?'} ms without),
as in a deployment whose database is on another machine. A seat change holds its license's lock for the round trips
it makes, so this row shows how many it makes (\`npm run bench -- --store postgres --db-latency 1\`).

${table(far)}

## Requests per second side by side

| scenario | SQLite | PostgreSQL ×1 | PostgreSQL ×2 |
| --- | ---: | ---: | ---: |
${SCENARIOS.map(cmp).join('\n')}

${
  BEFORE
    ? `## Before and after, in the same run

\`--before\`: the build ${BEFORE_LABEL} (made by bench/before.mjs), measured beside this one: its servers run next to this
build's (each with its own data and database), and each scenario runs ${ROUNDS} time${ROUNDS > 1 ? 's' : ''} on each, alternating (this build,
then it, on the same licenses and leases), with the same scenario code and the same load; every row gives the round of
median req/s, and the table below every round's req/s. Its clients offer no session key (the build predates them, and refuses the
field): its checkout and heartbeat answers are signed as it signed them. Its rows are in the tables above too
(\`before (${BEFORE_LABEL}): …\`), and its scale figures beside this build's below.

${beforeAfterTable([
  ['SQLite', sqlite],
  ['PostgreSQL ×1', pg1],
  ['PostgreSQL ×2', pg2],
  ['PostgreSQL ×1, database far', far],
])}

`
    : ''
}## Scale (SQLite)

${scaleTable(sc)}

Leases are written straight into the database file (${sc.populate_s} s) over licenses of
1,000 leases each; the sweep is one "reclaim now" (\`POST /v1/admin/reclaim\`), timed by the
caller. Contended: 10 seats for 1,000 devices, so most answers are 409 denials by design.

## Noisy neighbour (one key's storm and a quiet key)

A quiet key B renews its 10 leases one after another, first alone, then while 40 loops check
out and check in on key A (\`npm run bench -- --neighbours\`, ${duration} s per phase; see
docs/performance.md). PostgreSQL runs with its per-license group commit and without it (FLOATD_GROUP_COMMIT=off).

${neighboursTable(nb)}
`;
  await writeFile(join(root, 'BENCHMARKS.md'), md);
  return { date, sqlite, postgres_1: pg1, postgres_2: pg2, scale: sc, neighbours: nb };
}

// ---------------------------------------------------------------------------
// noisy neighbour (issue #24): a quiet key B renews while 40 loops churn key A

const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? +s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(2) : null;
};

/** B's 10 leases renewed one after another for `seconds`; latencies in ms. */
async function quietHeartbeats(url, keyB, leases, seconds, stop = () => false) {
  const lat = [];
  const until = Date.now() + seconds * 1000;
  for (let i = 0; Date.now() < until && !stop(); i++) {
    const t0 = performance.now();
    const lease = leases[i % leases.length];
    const res = await fetch(`${url}/v1/client/leases/${lease.id}/heartbeat`, {
      method: 'POST',
      headers: clientHeaders(keyB, lease.keyid),
      body: '{"instanceId":"app"}',
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`B heartbeat: ${res.status}`);
    lat.push(performance.now() - t0);
  }
  return { n: lat.length, p50_ms: percentile(lat, 50), p99_ms: percentile(lat, 99) };
}

async function neighboursOn(store, queue) {
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-bench-nb-'));
  const f = await startFloatd({
    store,
    nodes: 1,
    dataDir,
    env: queue === 'off' ? { FLOATD_GROUP_COMMIT: 'off' } : {},
  });
  try {
    const productId = (await api(f.url, 'POST', '/v1/admin/products', f.admin, { name: 'neighbours' })).id;
    const mk = async (seats) =>
      (await api(f.url, 'POST', '/v1/admin/licenses', f.admin, { productId, seats, leaseTtlSeconds: 3600, heartbeatIntervalSeconds: 600 }))
        .key;
    const keyA = await mk(40);
    const keyB = await mk(10);
    const leasesB = await checkoutMany(f.url, keyB, 10, 'quiet-b');
    const alone = await quietHeartbeats(f.url, keyB, leasesB, duration);
    let stop = false;
    let churns = 0;
    const churnLat = [];
    const loops = Array.from({ length: 40 }, async (_, i) => {
      while (!stop) {
        const t0 = performance.now();
        const g = await api(f.url, 'POST', '/v1/client/checkout', `License ${keyA}`, {
          fingerprint: `storm-a-${i}-device`,
          instanceId: 'app',
        });
        await api(f.url, 'POST', `/v1/client/leases/${g.lease.id}/checkin`, `License ${keyA}`, { instanceId: 'app' });
        churnLat.push(performance.now() - t0);
        churns++;
      }
    });
    await new Promise((r) => setTimeout(r, 500));
    // A alone first (B idle), then B's heartbeats during the storm.
    const aloneFrom = Date.now();
    const aloneChurns = churns;
    await new Promise((r) => setTimeout(r, (duration * 1000) / 2));
    const aAloneRate = Math.round(((churns - aloneChurns) * 1000) / (Date.now() - aloneFrom));
    const started = Date.now();
    const churnsBefore = churns;
    const storm = await quietHeartbeats(f.url, keyB, leasesB, duration);
    const churnRate = Math.round(((churns - churnsBefore) * 1000) / (Date.now() - started));
    stop = true;
    await Promise.all(loops);
    return {
      store,
      queue,
      alone,
      storm,
      a_alone_churns_per_s: aAloneRate,
      a_churns_per_s: churnRate,
      a_churn_p50_ms: percentile(churnLat, 50),
      a_churn_p99_ms: percentile(churnLat, 99),
    };
  } finally {
    await f.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function neighbours() {
  // SQLite shares every commit anyway; PostgreSQL runs with its per-license group commit and without (the "before").
  const stores = flag('store', 'both') === 'both' ? ['sqlite', 'postgres'] : [flag('store', 'sqlite')];
  const rows = [];
  for (const store of stores) {
    const queues = flag('queue', undefined) ? [flag('queue')] : store === 'postgres' ? ['default', 'off'] : ['default'];
    for (const queue of queues) {
      log(`neighbours: ${store}, group commit ${queue} ...`);
      rows.push(await neighboursOn(store, queue));
    }
  }
  return rows;
}

function neighboursTable(rows) {
  return [
    "| store | per-license group commit | B alone p50 / p99 ms | B under A's storm p50 / p99 ms | A churns/s (B idle) | A churns/s (with B) | A churn p50 / p99 ms |",
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.store} | ${r.queue === 'off' ? 'off (FLOATD_GROUP_COMMIT=off)' : r.store === 'postgres' ? 'on (default: turns per key)' : 'n/a (SQLite shares every commit)'} | ${r.alone.p50_ms} / ${r.alone.p99_ms} | ${r.storm.p50_ms} / ${r.storm.p99_ms} | ${r.a_alone_churns_per_s} | ${r.a_churns_per_s} | ${r.a_churn_p50_ms} / ${r.a_churn_p99_ms} |`,
    ),
  ].join('\n');
}

async function main() {
  if (args.includes('--neighbours')) {
    const rows = await neighbours();
    if (asJson) console.log(JSON.stringify({ node: process.version, duration_s: duration, neighbours: rows }));
    else console.log('\n' + neighboursTable(rows) + `\n\n${machine()}; ${duration}s per phase`);
    return;
  }
  const header = { node: process.version, cpus: cpus().length, connections, duration_s: duration, date: new Date().toISOString() };
  if (args.includes('--write')) {
    const r = await writeReport();
    log('wrote BENCHMARKS.md');
    if (asJson) console.log(JSON.stringify({ ...header, ...r }));
    else console.log(readFileSync(join(root, 'BENCHMARKS.md'), 'utf8'));
    return;
  }
  if (args.includes('--scale')) {
    const s = await scale();
    if (asJson) console.log(JSON.stringify({ ...header, scale: s }));
    else console.log('\n' + scaleTable(s));
    return;
  }
  const store = flag('store', 'sqlite');
  const nodes = Number(flag('nodes', '1'));
  const r = await throughput({ store, nodes });
  if (asJson) {
    console.log(
      JSON.stringify({
        baseline_rps: r.baseline_rps,
        baseline_p99_ms: r.baseline_p99_ms,
        baseline_cpu_us: r.baseline_cpu_us,
        scenarios: r.scenarios,
        reference: r.reference,
        ...(r.before ? { before: r.before, before_label: r.before_label } : {}),
        store,
        nodes,
        server_rss_mb: r.server_rss_mb,
        ...header,
      }),
    );
  } else {
    console.log('\n' + table(r));
    if (r.before) console.log('\n' + beforeAfterTable([[`${store} x${nodes}`, r]]));
    const across = dbRoundTrip
      ? ` (database round trip ${dbRoundTrip.proxied.toFixed(2)} ms through the latency proxy, ${dbRoundTrip.direct.toFixed(2)} ms direct)`
      : '';
    const disk = SLOW_SYNC_MS > 0 ? `, every sync ${SLOW_SYNC_MS} ms slower (bench/slowsync.c)` : '';
    console.log(`\nstore ${store}${across}${disk}, ${nodes} node(s); ${machine()}; ${connections} connections, ${duration}s per scenario`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
