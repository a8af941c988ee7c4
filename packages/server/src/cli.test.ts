/** The `floatd serve` process itself: first start, restart, bad configuration, graceful shutdown, kill -9. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { runFloatd, startFloatdProcess } from './testing/process.js';

interface Proc {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  exited: Promise<number | null>;
}

async function serve(dataDir: string, extra: string[] = []): Promise<Proc> {
  // the server's own rate limits (the shared helper turns them off by default)
  const p = await startFloatdProcess({
    dataDir,
    args: extra,
    env: { FLOATD_RATE_LIMIT: process.env.FLOATD_RATE_LIMIT },
    adminToken: false,
  });
  return { child: p.child, url: p.url, stdout: p.output, exited: p.exited.then(() => p.child.exitCode) };
}

async function json(url: string, method = 'GET', auth?: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: { ...(auth ? { authorization: auth } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : null,
  });
  return { status: res.status, body: (await res.json()) as any };
}

test('first start prints the admin token once and stores it 0600; a restart keeps data and prints nothing secret', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-cli-'));
  try {
    const first = await serve(dir);
    const token = (await readFile(join(dir, 'admin-token'), 'utf8')).trim();
    assert.match(token, /^fdt_[0-9A-Za-z]{20}_[A-Za-z0-9_-]{43}$/);
    assert.ok(first.stdout().includes(token), 'the token is printed on first start');
    assert.equal((await stat(join(dir, 'admin-token'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'floatd.db'))).mode & 0o777, 0o600, 'the database (it holds license keys) is private');
    assert.equal((await stat(join(dir, 'signing-keys.json'))).mode & 0o777, 0o600);
    const product = await json(`${first.url}/v1/admin/products`, 'POST', `Bearer ${token}`, { name: 'Kept' });
    assert.equal(product.status, 201);
    first.child.kill('SIGTERM');
    assert.equal(await first.exited, 0);

    const second = await serve(dir);
    assert.ok(!second.stdout().includes(token), 'the token is not printed again');
    assert.ok(!second.stdout().includes('fdt_'));
    const read = await json(`${second.url}/v1/admin/products/${product.body.id}`, 'GET', `Bearer ${token}`);
    assert.equal(read.body.name, 'Kept');
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a bad configuration value stops the start with a clear message and exit code 2', async () => {
  for (const [args, env, message] of [
    [['--port', 'abc'], {}, /FLOATD_PORT.*"abc" is not a whole number/],
    [[], { FLOATD_PORT: '99999' }, /FLOATD_PORT.*outside/],
    [[], { FLOATD_DATABASE_URL: 'mysql://db' }, /FLOATD_DATABASE_URL/],
  ] as const) {
    const { code, stderr } = await runFloatd(['serve', ...args], { env });
    assert.equal(code, 2);
    assert.match(stderr, message);
  }
});

test('SIGTERM under load finishes in-flight requests, closes the database and exits 0; SIGKILL loses no granted lease', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-cli-'));
  try {
    const p = await serve(dir);
    const token = (await readFile(join(dir, 'admin-token'), 'utf8')).trim();
    const product = await json(`${p.url}/v1/admin/products`, 'POST', `Bearer ${token}`, { name: 'P' });
    const lic = await json(`${p.url}/v1/admin/licenses`, 'POST', `Bearer ${token}`, { productId: product.body.id, seats: 500 });
    const key = `License ${lic.body.key}`;
    const granted: string[] = [];
    const attempts = Array.from({ length: 300 }, (_, i) =>
      json(`${p.url}/v1/client/checkout`, 'POST', key, { fingerprint: `shutdown-dev-${i}`, instanceId: 'a' }).then(
        (r) => {
          assert.ok(r.status === 201 || r.status === 503, `answered ${r.status}`);
          if (r.status === 503) assert.equal(r.body.error.code, 'SERVICE_UNAVAILABLE');
          if (r.status === 201) granted.push(r.body.lease.id);
        },
        () => undefined, // refused after the listener closed: never answered, never granted
      ),
    );
    await new Promise((r) => setTimeout(r, 20));
    p.child.kill('SIGTERM');
    await Promise.all(attempts);
    assert.equal(await p.exited, 0);
    assert.match(p.stdout(), /SIGTERM received/);

    const db = new Database(join(dir, 'floatd.db'), { readonly: true });
    const rows = db.prepare('SELECT id FROM leases').all() as { id: string }[];
    const used = (db.prepare('SELECT seats_used AS n FROM licenses').get() as { n: number }).n;
    db.close();
    assert.equal(used, rows.length);
    const stored = new Set(rows.map((r) => r.id));
    for (const id of granted) assert.ok(stored.has(id), `granted lease ${id} is stored`);

    // kill -9 right after grants were answered: they are all still there after a restart.
    const q = await serve(dir);
    const more: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await json(`${q.url}/v1/client/checkout`, 'POST', key, { fingerprint: `kill-dev-${i}`, instanceId: 'a' });
      assert.equal(r.status, 201);
      more.push(r.body.lease.id);
    }
    q.child.kill('SIGKILL');
    await q.exited;
    const r = await serve(dir);
    const leases = await json(`${r.url}/v1/admin/licenses/${lic.body.id}/leases`, 'GET', `Bearer ${token}`);
    const ids = new Set(leases.body.items.map((l: { id: string }) => l.id));
    for (const id of [...granted, ...more]) assert.ok(ids.has(id), `lease ${id} survived`);
    const after = await json(`${r.url}/v1/admin/licenses/${lic.body.id}`, 'GET', `Bearer ${token}`);
    assert.equal(after.body.seatsUsed, ids.size);
    r.child.kill('SIGTERM');
    await r.exited;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('floatd serve --mode on-prem: needs the vendor public key, loads --license-file at start; a vendor key others can read stops a vendor server', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-cli-onprem-'));
  try {
    const { testVendor } = await import('./testing/onprem.js');
    const v = await testVendor();
    const noKey = await runFloatd(['serve', '--port', '0', '--data-dir', join(dir, 'a'), '--mode', 'on-prem']);
    assert.notEqual(noKey.code, 0);
    assert.match(noKey.stderr, /needs the vendor public key: pass --vendor-public-key/);

    const spec = v.spec([{ seats: 1 }]);
    const licenseFile = join(dir, 'license.json');
    const { writeFile, chmod } = await import('node:fs/promises');
    await writeFile(licenseFile, JSON.stringify(v.issue(spec, { serial: 1, now: Date.now() }), null, 2));
    const p = await serve(join(dir, 'b'), ['--mode', 'on-prem', '--vendor-public-key', v.publicKeyFile, '--license-file', licenseFile]);
    const key = `License ${spec.licenses[0]!.key}`;
    assert.equal((await json(`${p.url}/v1/client/checkout`, 'POST', key, { fingerprint: 'serve-onprem-1', instanceId: 'a' })).status, 201);
    assert.equal((await json(`${p.url}/v1/client/checkout`, 'POST', key, { fingerprint: 'serve-onprem-2', instanceId: 'a' })).status, 409);
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0);

    await chmod(v.privateKeyFile, 0o640);
    const loose = await runFloatd(['serve', '--port', '0', '--data-dir', join(dir, 'c'), '--vendor-private-key', v.privateKeyFile]);
    const out = loose.stdout + loose.stderr;
    assert.notEqual(loose.code, 0);
    assert.match(out, /mode 640: it must be readable by its owner only/);
    assert.ok(!out.includes((await readFile(v.privateKeyFile, 'utf8')).split('\n')[1]!), 'the key is not printed');
    await rm(v.dir, { recursive: true, force: true });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the start banner names the console and how to sign in; GET / redirects to the console', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-cli-'));
  let s: Proc | undefined;
  try {
    s = await serve(dir);
    const tokenFile = join(dir, 'admin-token');
    assert.ok(
      s
        .stdout()
        .includes(`floatd: web console at ${s.url}/console/ — sign in with the admin token kept in ${tokenFile} (cat ${tokenFile})\n`),
      s.stdout(),
    );
    const root = await fetch(`${s.url}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.match(root.headers.get('location') ?? '', /^\/console\/?$/);
  } finally {
    // Also when an assertion failed: a server left running keeps the test file from ever ending.
    s?.child.kill('SIGTERM');
    await s?.exited;
    await rm(dir, { recursive: true, force: true });
  }
});

test('a port already in use says how to pick another (--port, FLOATD_PORT) and exits 2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-cli-'));
  try {
    const first = await serve(join(dir, 'a'));
    const port = new URL(first.url).port;
    const second = await runFloatd(['serve', '--port', port, '--data-dir', join(dir, 'b'), '--log-level', 'silent']);
    assert.equal(second.code, 2);
    assert.equal(
      second.stderr,
      `floatd: port ${port} on 127.0.0.1 is already in use (another floatd?); pick another with --port <n> or FLOATD_PORT=<n> (0 = any free port)\n`,
    );
    first.child.kill('SIGTERM');
    await first.exited;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
