#!/usr/bin/env node
/**
 * Benchmark harness: starts a real floatd server process on a fresh data
 * directory and drives it over HTTP with autocannon from this (separate)
 * process. In the same run, a bare node:http server answering a fixed small
 * JSON body is driven with the same connections: every scenario is reported
 * as requests/s, p50/p99 and its ratio to that baseline (the figure to steer
 * by, since absolute numbers drift between machines).
 *
 *   npm run bench                      # table
 *   npm run bench -- --json            # one JSON object on the last line
 *   npm run bench -- --duration 3      # seconds per scenario (default 10)
 *   npm run bench -- --only heartbeat  # one scenario (plus the baseline)
 *   npm run bench -- --store postgres --nodes 2   # PostgreSQL (a fresh database), load spread over N nodes
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

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
const STORE = flag('store', 'sqlite');
const NODES = Number(flag('nodes', '1'));
const PG_ADMIN = process.env.FLOATD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function log(...a) {
  if (!asJson) console.log(...a);
  else console.error(...a);
}

async function startProcess(argv, env = {}) {
  const child = spawn(process.execPath, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  const url = await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('did not start: ' + out)), 20000);
    child.stdout.on('data', () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        res(m[1]);
      }
    });
    child.on('exit', () => rej(new Error('exited: ' + out)));
  });
  return { child, url };
}

function runOne(opts) {
  return new Promise((res, rej) => {
    const inst = autocannon({ duration, ...opts }, (err, r) => (err ? rej(err) : res(r)));
    autocannon.track(inst, { renderProgressBar: false, renderResultsTable: false, renderLatencyTable: false, outputStream: { write() {} } });
  });
}

/** Drives every URL with its share of the connections at once (a load balancer's round robin) and adds the results up. */
let serverUrls = [];
async function run(opts) {
  const urls = opts.url === 'SERVER' ? serverUrls : [opts.url];
  const parts = await Promise.all(urls.map((url) => runOne({ ...opts, url, connections: Math.max(1, Math.round(connections / urls.length)) })));
  if (parts.length === 1) return parts[0];
  const sum = (f) => parts.reduce((n, p) => n + f(p), 0);
  return {
    requests: { average: sum((p) => p.requests.average) },
    latency: { p50: Math.max(...parts.map((p) => p.latency.p50)), p99: Math.max(...parts.map((p) => p.latency.p99)) },
    non2xx: sum((p) => p.non2xx),
    errors: sum((p) => p.errors),
  };
}

const summary = (r) => ({ rps: Math.round(r.requests.average), p50_ms: r.latency.p50, p99_ms: r.latency.p99, non2xx: r.non2xx, errors: r.errors });

async function api(url, method, path, auth, body) {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return res.json();
}

async function main() {
  const dataDir = await mkdtemp(join(tmpdir(), 'floatd-bench-'));
  const baseline = await startProcess([join(root, 'bench/baseline.mjs')]);
  // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof" profiles the server process.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  let pgDb;
  const env = {};
  if (STORE === 'postgres') {
    const { default: postgres } = await import('postgres');
    pgDb = `floatd_bench_${process.pid}`;
    const a = postgres(PG_ADMIN, { max: 1, onnotice: () => {} });
    await a.unsafe(`CREATE DATABASE ${pgDb}`);
    await a.end();
    const u = new URL(PG_ADMIN);
    u.pathname = '/' + pgDb;
    env.FLOATD_DATABASE_URL = u.toString();
    env.FLOATD_KEY_ENCRYPTION_KEY = Buffer.alloc(32, 9).toString('base64');
  }
  const servers = [];
  for (let i = 0; i < NODES; i++) {
    servers.push(await startProcess([...nodeArgs, join(root, 'packages/server/dist/cli.js'), 'serve', '--port', '0', '--data-dir', join(dataDir, `n${i}`), '--log-level', 'warn'], env));
  }
  const server = servers[0];
  serverUrls = servers.map((s) => s.url);
  const results = {};
  try {
    const admin = `Bearer ${(await readFile(join(dataDir, 'n0', 'admin-token'), 'utf8')).trim()}`;
    const product = await api(server.url, 'POST', '/v1/admin/products', admin, { name: 'bench' });
    const mkLicense = async (seats) => (await api(server.url, 'POST', '/v1/admin/licenses', admin, { productId: product.id, seats, leaseTtlSeconds: 3600, heartbeatIntervalSeconds: 600 })).key;
    const json = { 'content-type': 'application/json' };

    log(`baseline: bare node:http, ${connections} connections, ${duration}s`);
    const base = summary(await run({ url: baseline.url + '/' }));
    results.baseline = base;

    const scenarios = {
      'checkout-checkin': async () => {
        const key = await mkLicense(1_000_000);
        let n = 0;
        return run({
          url: 'SERVER',
          requests: [
            {
              method: 'POST',
              path: '/v1/client/checkout',
              headers: { ...json, authorization: `License ${key}` },
              setupRequest: (req, ctx) => {
                ctx.fp = `bench-cc-${++n}-device`;
                return { ...req, body: JSON.stringify({ fingerprint: ctx.fp, instanceId: 'app' }) };
              },
              onResponse: (status, body, ctx) => {
                ctx.lease = status === 201 ? JSON.parse(body).lease.id : undefined;
              },
            },
            {
              method: 'POST',
              headers: { ...json, authorization: `License ${key}` },
              setupRequest: (req, ctx) => ({ ...req, path: `/v1/client/leases/${ctx.lease}/checkin`, body: '{"instanceId":"app"}' }),
            },
          ],
        });
      },
      heartbeat: async () => {
        const key = await mkLicense(LIVE_LEASES);
        const leases = [];
        for (let i = 0; i < LIVE_LEASES; i += 100) {
          const batch = await Promise.all(
            Array.from({ length: Math.min(100, LIVE_LEASES - i) }, (_, j) =>
              api(server.url, 'POST', '/v1/client/checkout', `License ${key}`, { fingerprint: `bench-hb-${i + j}-device`, instanceId: 'app' }),
            ),
          );
          for (const g of batch) leases.push(g.lease.id);
        }
        let n = 0;
        return run({
          url: 'SERVER',
          requests: [
            {
              method: 'POST',
              headers: { ...json, authorization: `License ${key}` },
              setupRequest: (req) => ({ ...req, path: `/v1/client/leases/${leases[n++ % leases.length]}/heartbeat`, body: '{"instanceId":"app"}' }),
            },
          ],
        });
      },
    };

    for (const [name, scenario] of Object.entries(scenarios)) {
      if (only && only !== name) continue;
      log(`scenario ${name} ...`);
      const s = summary(await scenario());
      results[name] = { ...s, ratio: +(s.rps / base.rps).toFixed(3) };
    }
  } finally {
    for (const s of servers) s.child.kill('SIGTERM');
    baseline.child.kill('SIGTERM');
    await Promise.all(servers.map((s) => new Promise((r) => s.child.once('exit', r))));
    await rm(dataDir, { recursive: true, force: true });
    if (pgDb) {
      const { default: postgres } = await import('postgres');
      const a = postgres(PG_ADMIN, { max: 1, onnotice: () => {} });
      await a.unsafe(`DROP DATABASE IF EXISTS ${pgDb} WITH (FORCE)`);
      await a.end();
    }
  }

  const report = {
    baseline_rps: results.baseline.rps,
    baseline_p99_ms: results.baseline.p99_ms,
    scenarios: Object.fromEntries(Object.entries(results).filter(([k]) => k !== 'baseline')),
    store: STORE,
    nodes: NODES,
    node: process.version,
    cpus: cpus().length,
    connections,
    duration_s: duration,
    date: new Date().toISOString(),
  };
  if (asJson) {
    console.log(JSON.stringify(report));
  } else {
    console.log(`\n| scenario | req/s | p50 ms | p99 ms | ratio to baseline | non-2xx |`);
    console.log(`| --- | ---: | ---: | ---: | ---: | ---: |`);
    console.log(`| baseline (node:http) | ${results.baseline.rps} | ${results.baseline.p50_ms} | ${results.baseline.p99_ms} | 1.000 | ${results.baseline.non2xx} |`);
    for (const [name, s] of Object.entries(report.scenarios)) console.log(`| ${name} | ${s.rps} | ${s.p50_ms} | ${s.p99_ms} | ${s.ratio.toFixed(3)} | ${s.non2xx} |`);
    console.log(`\nstore ${STORE}, ${NODES} node(s); node ${process.version}, ${cpus().length} cpus, ${connections} connections, ${duration}s per scenario`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
