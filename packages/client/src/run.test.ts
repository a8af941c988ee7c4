/**
 * floatd-run as a real child process against a real server over HTTP: exit codes
 * pass through, signals are forwarded, the seat is freed after exit and after
 * SIGTERM, and a missing seat is reported with a distinct exit code.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ManualClock } from '@floatd/server';
import { startTestServer, type TestServer } from '@floatd/server/testing';
import { formatKey } from '@floatd/protocol';
import { FloatingLicense } from './index.js';
import { Cleanup, RUN_CLI, tempDir } from './testsupport.js';

let ts: TestServer;
const cleanup = new Cleanup();

before(async () => {
  // The server's clock is the real time (floatd-run runs on the system clock).
  ts = await startTestServer({ clock: new ManualClock(Date.now()) });
  cleanup.add(() => ts.close());
});
after(() => cleanup.run());

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function floatdRun(
  args: string[],
  opts: { onStdout?: (text: string, child: ReturnType<typeof spawn>) => void } = {},
): { done: Promise<Run>; pid: number } {
  const child = spawn(process.execPath, [RUN_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.add(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    opts.onStdout?.(stdout, child);
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { done, pid: child.pid! };
}

async function seatsUsed(licenseId: string): Promise<number> {
  return (await ts.admin('GET', `/v1/admin/licenses/${licenseId}`)).body.seatsUsed;
}

async function common(): Promise<{ lic: { id: string; key: string }; args: string[] }> {
  const lic = await ts.license({ seats: 1, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
  const stateDir = await tempDir(cleanup);
  return { lic, args: ['--server', ts.url, '--key', lic.key, '--state-dir', stateDir, '--quiet'] };
}

test("the command's exit code passes through, it sees its lease, and the seat is freed after it exits", { timeout: 30_000 }, async () => {
  const { lic, args } = await common();
  const r = await floatdRun([...args, '--', process.execPath, '-e', 'console.log(process.env.FLOATD_LEASE_ID); process.exit(7)']).done;
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stdout.trim(), /^lse_[0-9A-Za-z]{20}$/);
  assert.equal(await seatsUsed(lic.id), 0);
  const ok = await floatdRun([...args, '--', process.execPath, '-e', '']).done;
  assert.equal(ok.code, 0);
});

test('SIGTERM is forwarded to the command; floatd-run ends as the command did and frees the seat', { timeout: 30_000 }, async () => {
  const { lic, args } = await common();
  // a command that dies of SIGTERM (the default action)
  let held = -1;
  const script = 'console.log("ready"); setInterval(() => {}, 1000)';
  const run = floatdRun([...args, '--', process.execPath, '-e', script], {
    onStdout: (text) => {
      if (text.includes('ready') && held < 0) {
        held = 0;
        void seatsUsed(lic.id).then((n) => {
          held = n;
          process.kill(run.pid, 'SIGTERM');
        });
      }
    },
  });
  const r = await run.done;
  assert.equal(held, 1, 'the seat was held while the command ran');
  assert.equal(r.signal, 'SIGTERM', `code ${r.code} ${r.stderr}`);
  assert.equal(await seatsUsed(lic.id), 0);

  // a command that handles SIGTERM and exits 3: the signal reached it, its code comes back
  const trap =
    'process.on("SIGTERM", () => { console.log("got SIGTERM"); process.exit(3) }); console.log("ready"); setInterval(() => {}, 1000)';
  let sent = false;
  const run2 = floatdRun([...args, '--', process.execPath, '-e', trap], {
    onStdout: (text) => {
      if (text.includes('ready') && !sent) {
        sent = true;
        process.kill(run2.pid, 'SIGTERM');
      }
    },
  });
  const r2 = await run2.done;
  assert.equal(r2.code, 3, r2.stderr);
  assert.match(r2.stdout, /got SIGTERM/);
  assert.equal(await seatsUsed(lic.id), 0);
});

test('no seat free: floatd-run says who holds what and when one frees, and exits 75; --wait queues', { timeout: 30_000 }, async () => {
  const { lic, args } = await common();
  const holder = new FloatingLicense({
    serverUrl: ts.url,
    licenseKey: lic.key,
    stateDir: await tempDir(cleanup),
    fingerprint: 'holder-device-01',
  });
  cleanup.add(() => holder.close({ checkin: false }));
  assert.ok((await holder.checkout()).ok);
  const r = await floatdRun([...args, '--', process.execPath, '-e', 'process.exit(0)']).done;
  assert.equal(r.code, 75);
  assert.match(
    r.stderr,
    /no seat free: all 1 seats are in use; the earliest lease expires at \d{4}-\d\d-\d\dT[\d:.]+Z unless its holder renews it\n/,
  );
  assert.match(r.stderr, /--wait/);

  // --wait: the holder leaves while floatd-run waits; the command then runs
  const waiting = floatdRun([
    ...args.filter((a) => a !== '--quiet'),
    '--wait',
    '--wait-interval',
    '0.05',
    '--',
    process.execPath,
    '-e',
    'console.log("ran")',
  ]);
  // the holder leaves once floatd-run has been refused twice (it is really queueing)
  // (denials are audited in aggregate: one entry per fingerprint and hour, with a count)
  const denials = async () =>
    ((await ts.admin('GET', `/v1/admin/audit?licenseId=${lic.id}&type=denied`)).body.items ?? []).reduce(
      (n: number, e: { data: { count?: number } }) => n + (e.data.count ?? 1),
      0,
    ) as number;
  const before = await denials();
  const deadline = Date.now() + 10_000;
  while ((await denials()) < before + 2) {
    if (Date.now() > deadline) throw new Error('floatd-run never asked for a seat');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal((await holder.checkin()).released, true);
  const w = await waiting.done;
  assert.equal(w.code, 0, w.stderr);
  assert.match(w.stdout, /ran/);
  assert.match(w.stderr, /no seat free/);
  assert.equal(await seatsUsed(lic.id), 0);
});

test('a command that does not exist: 127, and the seat is given back', { timeout: 30_000 }, async () => {
  const { lic, args } = await common();
  const r = await floatdRun([...args, '--', 'floatd-no-such-command-xyz']).done;
  assert.equal(r.code, 127);
  assert.match(r.stderr, /cannot run floatd-no-such-command-xyz/);
  assert.equal(await seatsUsed(lic.id), 0);
});

test('usage errors exit 64; no server and no terminal to ask on exits 78; an unreachable server exits 69', {
  timeout: 30_000,
}, async () => {
  const { lic } = await common();
  const usage = await floatdRun(['--key', lic.key, '--no-such-flag', '--', 'true']).done;
  assert.equal(usage.code, 64);
  assert.match(usage.stderr, /unknown option --no-such-flag/);
  // (discovery off: this test stays off the network; dnssd.test covers floatd-run's lookups)
  const noServer = await floatdRun(['--key', lic.key, '--state-dir', await tempDir(cleanup), '--no-discover', '--', 'true']).done;
  assert.equal(noServer.code, 78, noServer.stderr);
  assert.match(noServer.stderr, /no license server configured and none found \(DNS SRV, DNS-SD\): pass --server/);
  const stateDir = await tempDir(cleanup);
  const down = await floatdRun([
    '--server',
    'http://127.0.0.1:9',
    '--key',
    lic.key,
    '--state-dir',
    stateDir,
    '--timeout',
    '0.3',
    '--quiet',
    '--',
    'true',
  ]).done;
  assert.equal(down.code, 69, down.stderr);
  assert.match(
    down.stderr,
    /floatd-run: cannot check out a seat: The license server cannot be reached\. Check your network connection or VPN, or ask your administrator whether the server is running\.\n$/,
  );
});

test('handleExit: an app that ends normally (beforeExit) or gets SIGTERM checks its seat in', { timeout: 30_000 }, async () => {
  const lic = await ts.license({ seats: 2, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
  const stateDir = await tempDir(cleanup);
  const sdk = pathToFileURL(join(import.meta.dirname, 'index.js')).href;
  const script = `
    import { FloatingLicense } from ${JSON.stringify(sdk)};
    const lic = new FloatingLicense({ serverUrl: process.env.URL, licenseKey: process.env.KEY, stateDir: process.env.DIR, fingerprint: 'exit-device-' + process.env.MODE, handleExit: true });
    const r = await lic.checkout();
    console.log(r.ok ? 'ready' : 'denied');
    if (process.env.MODE === 'term') setInterval(() => {}, 1000);`;
  const start = (mode: string) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, URL: ts.url, KEY: lic.key, DIR: stateDir, MODE: mode },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanup.add(() => child.kill('SIGKILL'));
    const ready = new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.once('exit', (code, signal) => r({ code, signal })),
    );
    return { child, ready, done };
  };
  // the script's work ends: beforeExit checks in, the process exits 0
  const end = start('end');
  assert.deepEqual(await end.done, { code: 0, signal: null });
  assert.equal(await seatsUsed(lic.id), 0);
  // SIGTERM: checked in, then the process ends as SIGTERM would have ended it
  const term = start('term');
  await term.ready;
  assert.equal(await seatsUsed(lic.id), 1);
  term.child.kill('SIGTERM');
  assert.deepEqual(await term.done, { code: null, signal: 'SIGTERM' });
  assert.equal(await seatsUsed(lic.id), 0);
});

test('end-user texts: an unknown key, and a copy that joins the seat this machine already holds', { timeout: 30_000 }, async () => {
  const { lic, args } = await common();
  // The server gives every bad key the same words (missing, malformed, unknown), so keys cannot be enumerated.
  for (const auth of [undefined, 'License not-a-key', `License ${formatKey('Z'.repeat(24))}`]) {
    const res = await fetch(`${ts.url}/v1/client/checkout`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
      body: JSON.stringify({ fingerprint: 'enumerator-01', instanceId: 'x' }),
    });
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(res.status, 401);
    assert.deepEqual([body.error.code, body.error.message], ['INVALID_LICENSE_KEY', 'this license key is not known to this server']);
  }
  for (const bad of [formatKey('Z'.repeat(24)), formatKey('0123456789ABCDEFGHJKMNPQ')]) {
    const r = await floatdRun(['--server', ts.url, '--key', bad, '--state-dir', await tempDir(cleanup), '--', process.execPath, '-e', '0'])
      .done;
    assert.equal(r.code, 77, r.stderr);
    assert.equal(
      r.stderr,
      'floatd-run: cannot check out a seat: This license key is not known to this server. Check the key (copy it again from the message that gave it to you) or ask your administrator for one.\n',
    );
  }
  // A first copy holds the seat (per-device counting); a second copy on the same machine joins it and says so.
  let release: () => void = () => {};
  const first = floatdRun(
    [
      ...args,
      '--',
      process.execPath,
      '-e',
      'console.log("ready"); setTimeout(() => {}, 20000); process.on("SIGTERM", () => process.exit(0))',
    ],
    {
      onStdout: (text, child) => {
        if (text.includes('ready')) release = () => child.kill('SIGTERM');
      },
    },
  );
  while ((await seatsUsed(lic.id)) === 0) await new Promise((r) => setTimeout(r, 50));
  const second = await floatdRun([...args.filter((a) => a !== '--quiet'), '--', process.execPath, '-e', 'process.exit(0)']).done;
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /^floatd-run: joined the seat this machine already holds \(2 copies run on it; 1\/1 seats in use\)\n/);
  release();
  await first.done;
});
