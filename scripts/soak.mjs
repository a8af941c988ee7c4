#!/usr/bin/env node
// Soak test: a few thousand simulated clients (checkout, heartbeats at a short interval, check-in, some crash
// without checking in) against a real `floatd serve` process for a chosen duration. Samples the server's RSS
// (/proc/<pid>/status) and the client-observed latency, prints one table row per interval, and exits 1 when
// the RSS grew more than allowed after the warm-up, or when any request failed with a 5xx or a network error.
//
//   npm run soak -- [--duration 60s] [--clients 2000] [--interval 5] [--warmup 20s] [--every 10s]
//                   [--max-growth-mb 64] [--store sqlite|postgres] [--rate-limit off|on] [--json]
//
// The server's per-node rate limits are off by default (every simulated client shares one address and one key).
//
// --store postgres uses FLOATD_DATABASE_URL (and FLOATD_KEY_ENCRYPTION_KEY) from the environment.
// The server must be built (npm run soak builds it first).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'node:http';
// One way to start a floatd process and wait for it (tests, bench, soak): the compiled test helper (npm run soak builds first).
import { startFloatdProcess } from '../packages/server/dist/testing/process.js';

function parseArgs(argv) {
  const o = {
    duration: '60s',
    clients: '2000',
    interval: '5',
    warmup: '',
    every: '',
    'max-growth-mb': '64',
    store: 'sqlite',
    'rate-limit': 'off',
    json: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a.startsWith('--') && argv[i + 1] !== undefined) o[a.slice(2)] = argv[++i];
    else {
      console.error(`soak: unknown argument ${a}`);
      process.exit(2);
    }
  }
  const seconds = (s, name) => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(s));
    if (!m) {
      console.error(`soak: --${name} "${s}" is not a duration (e.g. 90s, 2m, 1h)`);
      process.exit(2);
    }
    return Number(m[1]) * ({ ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] ?? 's'] ?? 1);
  };
  const duration = seconds(o.duration, 'duration');
  return {
    duration,
    clients: Number(o.clients),
    interval: Number(o.interval),
    warmup: o.warmup ? seconds(o.warmup, 'warmup') : Math.max(3, duration * 0.25),
    every: o.every ? seconds(o.every, 'every') : Math.max(2, Math.round(duration / 12)),
    maxGrowthMb: Number(o['max-growth-mb']),
    store: o.store,
    rateLimit: o['rate-limit'],
    json: o.json,
  };
}

const opts = parseArgs(process.argv.slice(2));
const dataDir = mkdtempSync(join(tmpdir(), 'floatd-soak-'));
const env = { ...process.env };
if (opts.store === 'postgres' && !env.FLOATD_DATABASE_URL) {
  console.error('soak: --store postgres needs FLOATD_DATABASE_URL (and FLOATD_KEY_ENCRYPTION_KEY)');
  process.exit(2);
}
if (opts.store !== 'postgres') delete env.FLOATD_DATABASE_URL;
// Thousands of clients from one address and one key: the per-node rate limits would answer most of them 429.
// The soak measures the server's own stability, so they are off unless --rate-limit on.
if (opts.rateLimit !== 'on') env.FLOATD_RATE_LIMIT = 'off';

// --- the server -------------------------------------------------------------------------------------------------
const serverProcess = await startFloatdProcess({
  dataDir,
  args: ['--reclaim-interval', '5'],
  baseEnv: env,
  env: { FLOATD_RATE_LIMIT: env.FLOATD_RATE_LIMIT },
  timeoutMs: 20_000,
});
const server = serverProcess.child;
let serverExited = false;
server.on('exit', () => (serverExited = true));
const url = serverProcess.url;
const { port } = new URL(url);
const adminToken = serverProcess.adminToken;

const agent = new Agent({ keepAlive: true, maxSockets: 64 });
function call(method, path, body, auth) {
  const started = performance.now();
  return new Promise((resolve) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        timeout: 30_000,
        headers: {
          authorization: auth,
          ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          let parsed;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode, body: parsed, ms: performance.now() - started });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, error: err.message, ms: performance.now() - started }));
    req.end(data);
  });
}
const admin = (method, path, body) => call(method, path, body, `Bearer ${adminToken}`);

const product = await admin('POST', '/v1/admin/products', { name: 'soak' });
const ttl = Math.max(10, opts.interval * 3);
// Fewer seats than clients, so denials (and their counters) are part of the load.
const seats = Math.max(1, Math.floor(opts.clients * 0.9));
const license = await admin('POST', '/v1/admin/licenses', {
  productId: product.body.id,
  seats,
  leaseTtlSeconds: ttl,
  heartbeatIntervalSeconds: opts.interval,
});
if (license.status !== 201) throw new Error(`license: ${JSON.stringify(license.body)}`);
const key = license.body.key;

// --- the clients ------------------------------------------------------------------------------------------------
const t0 = performance.now();
const endAt = t0 + opts.duration * 1000;
let bucket = newBucket();
const totals = { requests: 0, grants: 0, denials: 0, heartbeats: 0, checkins: 0, crashes: 0, rateLimited: 0, failures: [] };
function newBucket() {
  return { lat: [], errors: 0, requests: 0 };
}
function observe(r, what) {
  totals.requests++;
  bucket.requests++;
  bucket.lat.push(r.ms);
  if (r.status === 429) totals.rateLimited++;
  if (r.status === 0 || r.status >= 500) {
    bucket.errors++;
    if (totals.failures.length < 20)
      totals.failures.push(`${what} → ${r.status || r.error} ${r.body ? JSON.stringify(r.body).slice(0, 160) : ''}`);
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const jitter = (ms) => ms * (0.8 + Math.random() * 0.4);

async function client(i) {
  await sleep(Math.random() * opts.interval * 1000); // spread the start over one interval
  let generation = 0;
  while (performance.now() < endAt) {
    const fingerprint = `soak-device-${i}-${generation}`;
    const g = await call('POST', '/v1/client/checkout', { fingerprint, instanceId: 'app' }, `License ${key}`);
    observe(g, 'checkout');
    if (g.status === 409) {
      totals.denials++;
      await sleep(jitter(opts.interval * 1000));
      continue;
    }
    if (g.status !== 201 && g.status !== 200) {
      await sleep(jitter(opts.interval * 1000));
      continue;
    }
    totals.grants++;
    const lease = g.body.lease.id;
    const beats = 1 + Math.floor(Math.random() * 6);
    let ok = true;
    for (let b = 0; b < beats && ok && performance.now() < endAt; b++) {
      await sleep(jitter(opts.interval * 1000));
      const hb = await call('POST', `/v1/client/leases/${lease}/heartbeat`, { instanceId: 'app' }, `License ${key}`);
      observe(hb, 'heartbeat');
      ok = hb.status === 200;
      if (ok) totals.heartbeats++;
    }
    if (Math.random() < 0.1) {
      // crashes holding its seat: reclamation frees it after the TTL; the "process" comes back as a new device
      totals.crashes++;
      generation++;
      await sleep(jitter(opts.interval * 1000));
      continue;
    }
    const ci = await call('POST', `/v1/client/leases/${lease}/checkin`, { instanceId: 'app' }, `License ${key}`);
    observe(ci, 'checkin');
    if (ci.status === 200) totals.checkins++;
    await sleep(Math.random() * opts.interval * 500);
  }
}

// --- sampling ---------------------------------------------------------------------------------------------------
function rssMb() {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);
const rssSamples = []; // [seconds since start, MB]
const rows = [];
const sampler = setInterval(() => {
  const mb = rssMb();
  if (mb !== undefined) rssSamples.push([(performance.now() - t0) / 1000, mb]);
}, 500);
const say = (s) => {
  if (!opts.json) console.log(s);
};
say(
  `floatd soak: ${opts.clients} clients, heartbeat every ${opts.interval} s, ${seats} seats, ${opts.duration} s on ${opts.store} (server pid ${server.pid}), warm-up ${opts.warmup} s`,
);
say('   t(s)   req/s   p50(ms)   p99(ms)   5xx+net   RSS(MB)');
const reporter = setInterval(() => {
  const b = bucket;
  bucket = newBucket();
  const lat = b.lat.sort((x, y) => x - y);
  const row = {
    t: Math.round((performance.now() - t0) / 1000),
    rps: Math.round(b.requests / opts.every),
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    errors: b.errors,
    rssMb: rssMb(),
  };
  rows.push(row);
  say(
    `${String(row.t).padStart(7)} ${String(row.rps).padStart(7)} ${row.p50.toFixed(1).padStart(9)} ${row.p99.toFixed(1).padStart(9)} ${String(row.errors).padStart(9)} ${(row.rssMb ?? NaN).toFixed(1).padStart(9)}`,
  );
}, opts.every * 1000);

await Promise.all(Array.from({ length: opts.clients }, (_, i) => client(i)));
clearInterval(reporter);
clearInterval(sampler);

// --- verdict ----------------------------------------------------------------------------------------------------
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};
const afterWarmup = rssSamples.filter(([t]) => t >= opts.warmup);
const window = Math.max(1, Math.min(6, Math.floor(afterWarmup.length / 4)));
const baseline = median(afterWarmup.slice(0, window).map(([, mb]) => mb));
const final = median(afterWarmup.slice(-window).map(([, mb]) => mb));
const growth = final - baseline;
const alive = !serverExited && (await call('GET', '/healthz', undefined, '')).status === 200;
const lic = await admin('GET', `/v1/admin/licenses/${license.body.id}`);
const leases = await admin('GET', `/v1/admin/licenses/${license.body.id}/leases`);
const consistent = lic.body?.seatsUsed === leases.body?.items?.length;

const problems = [];
if (!alive) problems.push('the server is not answering /healthz');
if (totals.failures.length)
  problems.push(`${rows.reduce((n, r) => n + r.errors, 0)} requests failed (5xx or network): ${totals.failures.slice(0, 5).join('; ')}`);
if (Number.isFinite(growth) && growth > opts.maxGrowthMb)
  problems.push(
    `RSS grew ${growth.toFixed(1)} MB after the warm-up (from ${baseline.toFixed(1)} to ${final.toFixed(1)} MB; allowed ${opts.maxGrowthMb} MB)`,
  );
if (!Number.isFinite(growth)) say('RSS not measured (no /proc): the growth check was skipped');
if (totals.rateLimited && opts.rateLimit !== 'on')
  problems.push(`${totals.rateLimited} requests were rate limited (429) although the limits are off`);
if (!consistent) problems.push(`seatsUsed ${lic.body?.seatsUsed} but ${leases.body?.items?.length} leases`);

const allLat = rows.filter((r) => r.t >= opts.warmup);
const summary = {
  ok: problems.length === 0,
  clients: opts.clients,
  durationSeconds: opts.duration,
  intervalSeconds: opts.interval,
  store: opts.store,
  ...totals,
  failures: totals.failures.length,
  rss: {
    baselineMb: Number(baseline.toFixed(1)),
    finalMb: Number(final.toFixed(1)),
    growthMb: Number(growth.toFixed(1)),
    maxGrowthMb: opts.maxGrowthMb,
  },
  latencyAfterWarmup: {
    p50WorstMs: Math.max(...allLat.map((r) => r.p50).filter(Number.isFinite)),
    p99WorstMs: Math.max(...allLat.map((r) => r.p99).filter(Number.isFinite)),
  },
  rows,
  problems,
};
if (opts.json) console.log(JSON.stringify(summary));
else {
  say(
    `requests ${totals.requests}, grants ${totals.grants}, denials ${totals.denials}, heartbeats ${totals.heartbeats}, check-ins ${totals.checkins}, crashed clients ${totals.crashes}, rate limited ${totals.rateLimited}`,
  );
  say(
    `RSS after warm-up: ${baseline.toFixed(1)} MB → ${final.toFixed(1)} MB (${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MB, allowed +${opts.maxGrowthMb} MB)`,
  );
  say(problems.length ? `FAILED:\n- ${problems.join('\n- ')}` : 'OK');
}

agent.destroy();
server.kill('SIGTERM');
await new Promise((r) => (serverExited ? r() : server.on('exit', r)));
rmSync(dataDir, { recursive: true, force: true });
process.exit(problems.length ? 1 : 0);
