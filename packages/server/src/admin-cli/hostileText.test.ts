/**
 * Client text that would act on an administrator's terminal (issue #24, part 3): a real `floatd serve`
 * process refuses it in identity fields, and the CLI (real child processes) prints what is already stored,
 * or what an error quotes, with control characters and bidi overrides escaped visibly.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { csv, keyValues, table } from './output.js';
import { runFloatd, startFloatdProcess, type FloatdProcess } from '../testing/process.js';

/** The strings: OSC 0 (window title) + clear screen, OSC 52 (clipboard), and friends. */
const HOSTILE = {
  title: '\u001b]0;PWNED\u0007\u001b[2Jws-evil',
  clipboard: '\u001b]52;c;cm0gLXJmIH4K\u0007bob',
  c1: 'ws\u009b2Jc1', // CSI as one C1 character
  del: 'ws\u007fdel',
  bidi: 'ws-\u202egpj.exe',
  isolate: 'ws-\u2066x\u2069',
};
/** Anything a terminal obeys: must never reach stdout or stderr raw. */
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;

let root = '';
let home = '';
let dataDir = '';
let server: FloatdProcess | undefined;
let url = '';
let adminToken = '';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], serverUrl = url): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('FLOATD_')) env[k] = v;
  Object.assign(env, { HOME: home, FLOATD_SERVER: serverUrl, FLOATD_TOKEN: adminToken });
  const { code, stdout, stderr } = await runFloatd(args, { baseEnv: env, cwd: root, timeoutMs: 20_000 });
  return { code: code ?? -1, stdout, stderr };
}

async function admin(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.ok(res.status < 300, `${method} ${path}: ${res.status}`);
  return res.json();
}

async function checkout(key: string, body: Record<string, unknown>) {
  const res = await fetch(`${url}/v1/client/checkout`, {
    method: 'POST',
    headers: { authorization: `License ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ fingerprint: 'hostile-text-dev', instanceId: 'a', ...body }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'floatd-hostile-text-'));
  home = join(root, 'home');
  await mkdir(home);
  dataDir = join(root, 'data');
  // The shared process helper; the per-node rate limits stay on as in production.
  server = await startFloatdProcess({ dataDir, env: { FLOATD_RATE_LIMIT: 'on' } });
  url = server.url;
  adminToken = server.adminToken;
});

after(async () => {
  await server?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

test('identity text with control characters or bidi overrides is refused with VALIDATION_FAILED and stores nothing', async () => {
  const product = await admin('POST', '/v1/admin/products', { name: 'Hostile' });
  const license = await admin('POST', '/v1/admin/licenses', { productId: product.id, seats: 5 });
  for (const [name, text] of Object.entries(HOSTILE)) {
    for (const field of ['hostname', 'user', 'appVersion']) {
      const r = await checkout(license.key, { [field]: text.slice(0, 60) });
      assert.equal(r.status, 400, `${field} = ${name}`);
      assert.equal(r.body.error.code, 'VALIDATION_FAILED');
      assert.match(r.body.error.message, new RegExp(`body/${field} must not contain control characters`));
    }
  }
  // plain text (accents, CJK, emoji, a tab-free space) is still fine
  const fine = await checkout(license.key, { hostname: 'ws-Ünïcode-工作站-🖥', user: 'José Ñ' });
  assert.equal(fine.status, 201);
  const devices = await admin('GET', `/v1/admin/licenses/${license.id}/devices`);
  assert.equal(devices.items.length, 1, 'only the accepted checkout stored a device');
  assert.equal(devices.items[0].hostname, 'ws-Ünïcode-工作站-🖥');
});

test('the CLI prints client text stored before the rule, metadata and error messages with escapes visible', async () => {
  const product = await admin('POST', '/v1/admin/products', { name: 'Legacy' });
  const license = await admin('POST', '/v1/admin/licenses', {
    productId: product.id,
    seats: 2,
    metadata: { note: HOSTILE.title, [`k${HOSTILE.bidi}`]: HOSTILE.c1 },
  });
  const granted = await checkout(license.key, { fingerprint: 'legacy-device-1', hostname: 'placeholder', user: 'placeholder' });
  assert.equal(granted.status, 201);
  // Rows written by a server that did not refuse them yet: put them in the database directly.
  const db = new Database(join(dataDir, 'floatd.db'));
  try {
    db.pragma('busy_timeout = 5000');
    const changed = db
      .prepare('UPDATE devices SET hostname = ?, user_name = ?, app_version = ? WHERE license_id = ?')
      .run(HOSTILE.title, HOSTILE.clipboard, HOSTILE.bidi + HOSTILE.del, license.id).changes;
    assert.equal(changed, 1);
  } finally {
    db.close();
  }

  const runs = {
    leases: await cli(['leases', 'list', license.id]),
    keys: await cli(['keys', 'show', license.id]),
    leasesJson: await cli(['leases', 'list', license.id, '--json']),
  };
  for (const [what, r] of Object.entries(runs)) {
    assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    assert.doesNotMatch(r.stdout, RAW, `${what} printed a raw control character or bidi override`);
    assert.doesNotMatch(r.stderr, RAW);
  }
  if (process.env.FLOATD_SHOW_CLI) process.stdout.write(`# leases list:\n${runs.leases.stdout.replace(/^/gm, '# ')}\n`);
  // The table shows what is there, escaped, on one line per lease.
  const line = runs.leases.stdout.split('\n').find((l) => l.startsWith(granted.body.lease.id)) ?? '';
  assert.ok(line.includes('\\x1b]0;PWNED\\x07\\x1b[2Jws-evil'), line);
  assert.ok(line.includes('\\x1b]52;c;cm0gLXJmIH4K\\x07bob'), line);
  assert.equal(runs.leases.stdout.trim().split('\n').length, 3, 'header + one seat + its use');
  // --json stays valid JSON that parses back to the stored text (JSON escapes, not raw bytes).
  const parsed = JSON.parse(runs.leasesJson.stdout);
  assert.equal(parsed.items[0].hostname, HOSTILE.title);
  assert.equal(parsed.items[0].appVersion, HOSTILE.bidi + HOSTILE.del);
  assert.ok(runs.leasesJson.stdout.includes('\\u202e'));
  // metadata in the key/value block (printed as JSON, whose escapes are visible too)
  assert.ok(runs.keys.stdout.includes('\\u001b]0;PWNED'), runs.keys.stdout);
  assert.ok(runs.keys.stdout.includes('\\x9b2Jc1') && runs.keys.stdout.includes('\\u202e'), runs.keys.stdout);

  // An error message that quotes hostile text (here from a server that misbehaves) is escaped too.
  const liar: Server = createHttpServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        error: { code: 'LICENSE_NOT_FOUND', message: `no key ${HOSTILE.title} ${HOSTILE.bidi}`, requestId: HOSTILE.clipboard },
      }),
    );
  });
  await new Promise<void>((res) => liar.listen(0, '127.0.0.1', res));
  try {
    const r = await cli(['keys', 'show', license.id], `http://127.0.0.1:${(liar.address() as AddressInfo).port}`);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stderr, RAW, r.stderr);
    assert.ok(r.stderr.includes('no key \\x1b]0;PWNED\\x07\\x1b[2Jws-evil ws-\\u202egpj.exe'), r.stderr);
  } finally {
    await new Promise<void>((res) => liar.close(() => res()));
  }
});

test('tables, key/value blocks and CSV from the output module', () => {
  const t = table(['HOST', 'USER'], [[HOSTILE.title, `two\nlines\r`]]);
  assert.doesNotMatch(t, RAW);
  assert.equal(t.split('\n').length, 2, 'a line break inside a cell cannot add a row');
  assert.ok(t.includes('two\\nlines\\r'));
  assert.doesNotMatch(keyValues([['host', HOSTILE.isolate]]), RAW);
  // OWASP CSV injection: = + - @ tab CR at the start of a cell get an apostrophe; numbers stay numbers.
  const text = csv(
    ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'],
    [['=HYPERLINK("http://x")', '+1+cmd|x', '-2+3', '@SUM(A1)', '\tx', '\rx', -5, 'plain']],
  );
  const [, row] = text.split('\n');
  assert.equal(row, `"'=HYPERLINK(""http://x"")",'+1+cmd|x,'-2+3,'@SUM(A1),'\tx,"'\rx",-5,plain`);
});
