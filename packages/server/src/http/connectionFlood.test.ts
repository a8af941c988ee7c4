/**
 * A connection flood from one address (issue #24, part 1), from outside: a real `floatd serve` process with a
 * descriptor limit of 1024 (systemd's and many containers' default), 1,100 slow sockets from 127.0.0.1
 * (a partial request head, one byte every 2 s, reopened when closed) while plain GET /healthz from 127.0.0.2
 * must be answered every time. The caps' refusals are counted in the metric. Bounded: about 25 s.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FloodSummary } from '../testing/slowloris.js';
import { startFloatdProcess, type FloatdProcess } from '../testing/process.js';

const FLOOD = fileURLToPath(new URL('../testing/slowloris.js', import.meta.url));
const FLOOD_SECONDS = 16;

let root = '';
let server: FloatdProcess | undefined;
let url = '';
let log: () => string = () => '';

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'floatd-flood-'));
  // The limit is lowered in a shell around the server alone (bash's ulimit: no extra package). Soft and hard:
  // node raises its soft limit to the hard one at start, so a soft-only 1024 would not stay 1024.
  const p = await startFloatdProcess({
    dataDir: join(root, 'data'),
    wrapper: ['bash', '-c', `ulimit -n 1024 && exec "$0" "$@"`],
    logLevel: 'info',
    env: { FLOATD_HEADERS_TIMEOUT_MS: '4000', FLOATD_RATE_LIMIT: process.env.FLOATD_RATE_LIMIT },
    adminToken: false,
  });
  server = p;
  url = p.url;
  log = p.output;
});

after(async () => {
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

/** GET from a given loopback address on a fresh connection; resolves with the status, or 0 if not answered within 2 s. */
function getFrom(localAddress: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const req = request({ host: hostname, port, path, localAddress, agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('1,100 slow sockets from one address at a descriptor limit of 1024: every /healthz from another address is answered', async () => {
  assert.match(log(), /open-file limit is low \(1024\)/, 'the low limit is logged at start');
  // The attacker runs in its own process with a raised limit (the runner's own may be 1024 in CI).
  const attacker = new Promise<FloodSummary>((resolve, reject) => {
    execFile(
      'bash',
      [
        '-c',
        'ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || ulimit -Sn 4096; exec "$0" "$@"',
        process.execPath,
        FLOOD,
        url,
        '127.0.0.1',
        '1100',
        '2000',
        String(FLOOD_SECONDS),
      ],
      { timeout: (FLOOD_SECONDS + 20) * 1000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as FloodSummary)),
    );
  });
  // Let the flood build up, then ask every 250 ms until it ends.
  await new Promise((r) => setTimeout(r, 1500));
  const answers: number[] = [];
  const until = Date.now() + (FLOOD_SECONDS - 3) * 1000;
  while (Date.now() < until) {
    const started = Date.now();
    answers.push((await getFrom('127.0.0.2', '/healthz')).status);
    await new Promise((r) => setTimeout(r, Math.max(0, 250 - (Date.now() - started))));
  }
  const flood = await attacker;
  const answered = answers.filter((s) => s === 200).length;
  process.stdout.write(`# flood: ${answered}/${answers.length} /healthz answered from 127.0.0.2; attacker ${JSON.stringify(flood)}\n`);
  assert.ok(answers.length >= 10, `asked ${answers.length} times`);
  assert.equal(answered, answers.length, `every /healthz answered (statuses: ${answers.filter((s) => s !== 200).join(',')})`);

  // The caps did the work: past 256 from one address the rest were refused at once with a 503, and
  // the accepted slow sockets were closed by the 4 s head deadline (far from the 60-90 s of before).
  assert.ok(flood.opened >= 1100, `opened ${flood.opened}`);
  assert.ok(flood.refused503 >= 1100 - 256, `refused at once: ${flood.refused503}`);
  assert.ok(flood.closedSilently >= 256, `closed by the head deadline: ${flood.closedSilently}`);
  assert.ok(flood.longestHeldMs < 12_000, `a slow socket was held ${flood.longestHeldMs} ms`);
  const m = (await getFrom('127.0.0.2', '/metrics')).body;
  assert.ok(metric(m, 'floatd_connections_refused_total', 'reason="per-address"') >= flood.refused503, 'each 503 is counted');
  assert.ok(metric(m, 'floatd_connections_refused_total', 'reason="headers-timeout"') >= 256);
  assert.doesNotMatch(log(), /EMFILE|"level":50/, 'no descriptor exhaustion, no error logged');
  assert.equal(server!.exit, undefined, 'the server is still running');
});
