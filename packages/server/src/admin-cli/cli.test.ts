/**
 * The admin commands end to end: a real `floatd serve` process, and the CLI run as real child processes
 * (`node dist/cli.js <command>`), asserting on stdout, stderr and exit codes (docs/cli.md).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CUSTOMER_ID } from '@floatd/protocol';
import { runFloatd, startFloatdProcess, type FloatdProcess } from '../testing/process.js';
import { TEST_STORE } from '../testing/harness.js';
import { createTempDatabase, TEST_KEY_ENCRYPTION_KEY, type TempDatabase } from '../testing/pg.js';

let root = '';
let work = ''; // the CLI's working directory: no ./data/admin-token unless a test puts one there
let home = ''; // HOME of the CLI: no ~/.config/floatd/cli.json unless a test writes one
let server: FloatdProcess | undefined;
let url = '';
let adminToken = '';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `floatd <args>`. By default the server and token come from FLOATD_SERVER and FLOATD_TOKEN. */
async function cli(
  args: string[],
  opts: { env?: Record<string, string | undefined>; cwd?: string; noDefaults?: boolean } = {},
): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('FLOATD_')) env[k] = v;
  env.HOME = home;
  if (!opts.noDefaults) {
    env.FLOATD_SERVER = url;
    env.FLOATD_TOKEN = adminToken;
  }
  const { code, stdout, stderr } = await runFloatd(args, { baseEnv: env, env: opts.env, cwd: opts.cwd ?? work, timeoutMs: 20_000 });
  // The admin token used to connect is never printed, whatever happens.
  assert.ok(!stdout.includes(adminToken) && !stderr.includes(adminToken), `the admin token leaked in: floatd ${args.join(' ')}`);
  return { code: code ?? -1, stdout, stderr };
}

function ok(r: Run, what: string): Run {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

async function okJson<T = any>(args: string[], opts?: Parameters<typeof cli>[1]): Promise<T> {
  const r = ok(await cli([...args, '--json'], opts), args.join(' '));
  return JSON.parse(r.stdout) as T;
}

async function checkout(key: string, instanceId = 'a') {
  const res = await fetch(`${url}/v1/client/checkout`, {
    method: 'POST',
    headers: { authorization: `License ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ fingerprint: 'cli-test-device', instanceId, hostname: 'ws-cli' }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

/** A port on which nothing listens. */
async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', res));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

let database: TempDatabase | undefined;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'floatd-admin-cli-'));
  work = join(root, 'work');
  home = join(root, 'home');
  await mkdir(work);
  await mkdir(home);
  const dataDir = join(root, 'server-data');
  // The PostgreSQL pass runs the same commands against a server on PostgreSQL.
  database = TEST_STORE === 'postgres' ? await createTempDatabase() : undefined;
  const store = database ? { FLOATD_DATABASE_URL: database.url, FLOATD_KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY } : {};
  const p = await startFloatdProcess({ dataDir, env: { FLOATD_RATE_LIMIT: process.env.FLOATD_RATE_LIMIT, ...store } });
  server = p;
  url = p.url;
  adminToken = p.adminToken;
});

after(async () => {
  await server?.stop();
  await database?.drop();
  if (root) await rm(root, { recursive: true, force: true });
});

// State shared by the tests below, which run in order.
let productId = '';
let licenseId = '';
let licenseKey = '';
let leaseId = '';

test('products: create (--json), list, show, rename', async () => {
  const created = await okJson(['products', 'create', 'Acme CAD', '--metadata', '{"team":"cad"}']);
  assert.match(created.id, /^prd_/);
  assert.deepEqual(created.metadata, { team: 'cad' });
  productId = created.id;

  const [table, shown] = await Promise.all([cli(['products', 'list']), cli(['products', 'show', productId])]);
  ok(table, 'products list');
  assert.match(table.stdout.split('\n')[0] ?? '', /^ID\s+NAME\s+CREATED\s+UPDATED$/);
  assert.match(table.stdout, new RegExp(`${productId}\\s+Acme CAD\\s+\\d{4}-\\d{2}-\\d{2}T[\\d:.]+Z`));
  assert.match(ok(shown, 'products show').stdout, /metadata\s+\{"team":"cad"\}/);
  const renamed = await cli(['products', 'rename', productId, 'Acme CAD Pro']);
  assert.match(ok(renamed, 'products rename').stdout, /name\s+Acme CAD Pro/);
});

test('keys: create, list (table, --json, --product, --all), show, update', async () => {
  const created = await okJson([
    'keys',
    'create',
    '--product',
    productId,
    '--seats',
    '3',
    '--lease-ttl',
    '600',
    '--counting',
    'per-device',
  ]);
  licenseId = created.id;
  licenseKey = created.key;
  assert.equal(created.seats, 3);
  assert.equal(created.leaseTtlSeconds, 600);

  // `licenses` is the group's name; `keys`, its first name, still works (scripts written for it).
  const [table, json, all, shown, oldName] = await Promise.all([
    cli(['licenses', 'list']),
    okJson(['licenses', 'list', '--product', productId]),
    okJson(['keys', 'list', '--all', '--limit', '1']),
    cli(['licenses', 'show', licenseId]),
    cli(['keys', 'list']),
  ]);
  ok(table, 'licenses list');
  assert.equal(ok(oldName, 'keys list').stdout, table.stdout);
  const lines = table.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^ID\s+CUSTOMER\s+PRODUCT\s+KEY\s+MODEL\s+SEATS\s+OFFLINE\s+EXPIRES\s+STATE$/);
  assert.equal(lines.length, 2);
  // made without --customer: it belongs to the built-in customer
  assert.match(
    lines[1] ?? '',
    new RegExp(`^${licenseId}\\s+${DEFAULT_CUSTOMER_ID}\\s+${productId}\\s+${licenseKey}\\s+permanent\\s+0/3\\s+0\\s+-\\s+active$`),
  );
  // Columns are aligned: every column starts at the same offset in the header and the row.
  assert.equal(lines[0]!.indexOf('KEY'), lines[1]!.indexOf(licenseKey));
  assert.deepEqual(
    json.items.map((l: any) => l.id),
    [licenseId],
  );
  assert.deepEqual(all, { items: json.items, nextCursor: null });
  assert.match(ok(shown, 'keys show').stdout, new RegExp(`key\\s+${licenseKey}`));
  assert.match(shown.stdout, /lease ttl\s+600s/);

  // "none" clears a nullable field (sent as null).
  const updated = await okJson(['keys', 'update', licenseId, '--seats', '2', '--lease-ttl', 'none', '--metadata', '{"po":"42"}']);
  assert.equal(updated.seats, 2);
  assert.equal(updated.leaseTtlSeconds, null);
  assert.deepEqual(updated.metadata, { po: '42' });
});

test('leases: a client checkout shows in leases list; keys delete is refused while it is held (exit 1, SEATS_HELD); release frees it', async () => {
  const co = await checkout(licenseKey);
  assert.equal(co.status, 201);
  leaseId = co.body.lease.id;

  const [table, json, refused] = await Promise.all([
    cli(['leases', 'list', licenseId]),
    okJson(['leases', 'list', licenseId]),
    cli(['keys', 'delete', licenseId]),
  ]);
  ok(table, 'leases list');
  assert.match(table.stdout, /^SEAT \/ USE\s+SHARE GROUP\s+DEVICE\s+HOSTNAME\s+USER\s+USES\s+MARKS\s+SINCE\s+EXPIRES/);
  assert.match(table.stdout, new RegExp(`${leaseId}\\s+device=dev_\\w+\\s+dev_\\w+\\s+ws-cli\\s+-\\s+1 use\\(s\\)\\s+`));
  assert.deepEqual(
    json.items.map((l: any) => l.id),
    [leaseId],
  );

  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /^floatd: SEATS_HELD: .+ \(request req_\w+\)\nfloatd: hint: add --force .+\n$/);
  assert.equal(refused.stdout, '');

  const released = ok(await cli(['leases', 'release', leaseId]), 'leases release');
  assert.equal(released.stdout, `released ${leaseId}\n`);
  assert.deepEqual((await okJson(['leases', 'list', licenseId])).items, []);
  // A second release: the lease is gone (exit 1); with --json the envelope is on stdout.
  const again = await cli(['leases', 'release', leaseId, '--force', '--json']);
  assert.equal(again.code, 1);
  assert.equal(JSON.parse(again.stdout).error.code, 'LEASE_NOT_FOUND');
  assert.match(again.stderr, /^floatd: LEASE_NOT_FOUND: /);
});

test('keys suspend and resume', async () => {
  const s = ok(await cli(['keys', 'suspend', licenseId]), 'keys suspend');
  assert.equal(s.stdout, `suspended ${licenseId} (${licenseKey})\n`);
  assert.equal((await checkout(licenseKey)).body.error.code, 'LICENSE_SUSPENDED');
  const r = await okJson(['keys', 'resume', licenseId]);
  assert.equal(r.suspended, false);
  const co = await checkout(licenseKey, 'b');
  assert.equal(co.status, 201);
  leaseId = co.body.lease.id;
});

test('reclaim run and settings', async () => {
  const [run, settings, settingsJson] = await Promise.all([
    cli(['reclaim', 'run']),
    cli(['reclaim', 'settings']),
    okJson(['reclaim', 'settings']),
  ]);
  assert.match(ok(run, 'reclaim run').stdout, /^freed 0 lease\(s\), dropped 0 instance\(s\) at \d{4}-\d{2}-\d{2}T[\d:.]+Z\n$/);
  assert.match(ok(settings, 'reclaim settings').stdout, /reclaim interval\s+30s/);
  assert.equal(settingsJson.reclaimIntervalSeconds, 30);
  assert.equal(settingsJson.store, TEST_STORE);
});

test('audit --type checkout, --license (and its old name --key); a bad --type is exit 2', async () => {
  const [table, json, badType, oldName] = await Promise.all([
    cli(['audit', '--type', 'checkout']),
    okJson(['audit', '--type', 'checkout', '--license', licenseId, '--limit', '1']),
    cli(['audit', '--type', 'nope']),
    okJson(['audit', '--type', 'checkout', '--key', licenseId, '--limit', '1']),
  ]);
  assert.deepEqual(oldName, json);
  ok(table, 'audit');
  const rows = table.stdout.trimEnd().split('\n').slice(1);
  assert.equal(rows.length, 2, table.stdout);
  for (const row of rows) assert.match(row, new RegExp(`^\\d+\\s+\\S+Z\\s+checkout\\s+client\\s+${licenseId}\\s+dev_`));
  assert.equal(json.items.length, 1);
  assert.ok(json.items.every((e: any) => e.type === 'checkout' && e.licenseId === licenseId));
  assert.match(json.nextCursor, /^\d+$/, 'a second page exists');
  assert.equal(badType.code, 2);
  assert.match(badType.stderr, /floatd: option '--type <type>' argument 'nope' is invalid/);
});

test('audit --actor: only the events of that actor (clients, or one admin token)', async () => {
  const [clients, admins] = await Promise.all([
    okJson(['audit', '--actor', 'client', '--all']),
    okJson(['audit', '--type', 'license.created', '--all']),
  ]);
  assert.ok(clients.items.length > 0 && clients.items.every((e: any) => e.actor === 'client'), JSON.stringify(clients.items.slice(0, 3)));
  const adminActor = admins.items[0]?.actor as string;
  assert.match(adminActor, /^admin:tok_/);
  const byToken = await okJson(['audit', '--actor', adminActor, '--all']);
  assert.ok(byToken.items.length > 0 && byToken.items.every((e: any) => e.actor === adminActor));
  assert.ok(!byToken.items.some((e: any) => e.type === 'checkout'), 'no client event under an admin actor');
});

test('usage --csv prints a header and one row per hour; the table and --json agree', async () => {
  const [csvRun, json, table] = await Promise.all([
    cli(['usage', licenseId, '--csv']),
    okJson(['usage', licenseId]),
    cli(['usage', licenseId]),
  ]);
  const lines = ok(csvRun, 'usage --csv').stdout.trimEnd().split('\n');
  assert.equal(lines[0], 'hour,peakSeats,seatsAtEnd,checkouts,denials');
  assert.ok(lines.length >= 2);
  for (const l of lines.slice(1)) assert.match(l, /^\d{4}-\d{2}-\d{2}T\d{2}:00:00\.000Z,\d+,\d+,\d+,\d+$/);
  const checkouts = lines.slice(1).reduce((n, l) => n + Number(l.split(',')[3]), 0);
  assert.equal(checkouts, 2);
  assert.equal(json.checkouts, 2);
  assert.equal(lines.length - 1, json.items.length);
  assert.match(ok(table, 'usage').stdout, /peak 1 seat\(s\), 2 checkout\(s\), 0 denial\(s\)/);
});

test('recommend: the seat count from measured demand with its reason; --json is the API answer; a bad --days is exit 2', async () => {
  const [json, text] = await Promise.all([okJson(['recommend', licenseId, '--days', '7']), cli(['recommend', licenseId])]);
  assert.equal(typeof json.recommendedSeats, 'number');
  assert.equal(Date.parse(json.to) - Date.parse(json.from), 7 * 86_400_000);
  assert.equal(json.checkouts, 2);
  const out = ok(text, 'recommend').stdout;
  assert.match(out, new RegExp(`^recommended seats  ${json.recommendedSeats} \\(today ${json.seats}\\)\n`));
  assert.ok(out.includes(json.reason), out);
  for (const bad of ['0', '367', 'x']) {
    const r = await cli(['recommend', licenseId, '--days', bad]);
    assert.equal(r.code, 2, `--days ${bad}: ${r.stderr}`);
    assert.match(r.stderr, /days/);
  }
});

test('tokens: create a viewer, which may read but not write (exit 4); revoke it (then exit 4 UNAUTHENTICATED)', async () => {
  const created = await okJson(['tokens', 'create', '--name', 'ci-viewer', '--role', 'viewer']);
  assert.equal(created.role, 'viewer');
  assert.match(created.token, /^fdt_/);
  const human = ok(await cli(['tokens', 'create', '--name', 'ops', '--role', 'operator']), 'tokens create');
  assert.match(human.stdout, /role\s+operator/);
  assert.match(human.stdout, /^token\s+fdt_\S+$/m);
  assert.match(human.stderr, /shown only this once/);

  const viewer = { env: { FLOATD_TOKEN: created.token } };
  const [read, write, list] = await Promise.all([
    cli(['keys', 'list'], viewer),
    cli(['products', 'create', 'Nope'], viewer),
    cli(['tokens', 'list']),
  ]);
  ok(read, 'viewer keys list');
  assert.equal(write.code, 4);
  assert.match(write.stderr, /^floatd: INSUFFICIENT_ROLE: .+ \(request req_\w+\)\n/);
  assert.match(write.stderr, /hint: this token has role viewer; this command needs admin.*--token or FLOATD_TOKEN/);
  assert.ok(!write.stderr.includes(created.token), 'the token is not echoed');
  ok(list, 'tokens list');
  assert.match(list.stdout, new RegExp(`${created.id}\\s+ci-viewer\\s+viewer\\s+`));

  const revoked = ok(await cli(['tokens', 'revoke', created.id]), 'tokens revoke');
  assert.match(revoked.stdout, new RegExp(`^revoked ${created.id} \\(ci-viewer, viewer\\) at \\S+Z\n$`));
  const afterRevoke = await cli(['keys', 'list'], viewer);
  assert.equal(afterRevoke.code, 4);
  assert.match(afterRevoke.stderr, /^floatd: UNAUTHENTICATED: .+\nfloatd: hint: .*--token, FLOATD_TOKEN/);
});

test('status: version, readiness and seats in use per key', async () => {
  const [table, json] = await Promise.all([cli(['status']), okJson(['status'])]);
  ok(table, 'status');
  assert.match(table.stdout, /^server\s+http:\/\/127\.0\.0\.1:\d+$/m);
  assert.match(table.stdout, /^version\s+\d+\.\d+\.\d+$/m);
  assert.match(table.stdout, new RegExp(`^ready\\s+ready \\(${TEST_STORE}\\)$`, 'm'));
  assert.match(table.stdout, /^seats used\s+1\/2$/m);
  assert.match(table.stdout, /LICENSE\s+PRODUCT\s+KEY\s+SEATS\s+OFFLINE\s+DENIALS TODAY\s+STATE/);
  assert.match(table.stdout, new RegExp(`${licenseId}\\s+Acme CAD Pro\\s+${licenseKey}\\s+1/2\\s+0\\s+0\\s+active`));
  assert.equal(json.healthz.status, 'ok');
  assert.equal(json.readyz.store, TEST_STORE);
  assert.equal(json.dashboard.items[0].license.seatsUsed, 1);
});

test('bad usage is exit 2: --seats abc, a missing option, an unknown command, update without changes, a bad --metadata; --help is 0', async () => {
  const runs = await Promise.all([
    cli(['keys', 'create', '--product', productId, '--seats', 'abc']),
    cli(['keys', 'create', '--seats', '2']),
    cli(['keys', 'frobnicate']),
    cli(['keys', 'update', licenseId]),
    cli(['products', 'create', 'x', '--metadata', '[1]']),
    cli(['keys', 'list', '--server', 'not a url']),
    cli(['usage', licenseId, '--csv', '--json']),
    cli(['keys', 'create', '--help']),
  ]);
  const [seats, missing, unknown, noChange, metadata, badUrl, csvJson, help] = runs;
  for (const r of runs.slice(0, 7)) assert.equal(r.code, 2, r.stderr);
  assert.match(csvJson!.stderr, /--csv and --json exclude each other/);
  assert.match(seats!.stderr, /^floatd: option '--seats <n>' argument 'abc' is invalid\. --seats must be a whole number\./);
  assert.match(missing!.stderr, /required option '--product <product>' not specified/);
  assert.match(unknown!.stderr, /unknown command 'frobnicate'/);
  assert.match(noChange!.stderr, /needs at least one option/);
  assert.match(metadata!.stderr, /expected a JSON object/);
  assert.match(badUrl!.stderr, /is not a URL/);
  assert.equal(help!.code, 0);
  assert.match(help!.stdout, /--lease-ttl <s\|none>/);
  assert.match(help!.stdout, /Exit codes: 0 ok, 1 refused/);
});

test('an unreachable server and a 5xx are exit 3', async () => {
  const port = await closedPort();
  const down = await cli(['keys', 'list', '--server', `http://127.0.0.1:${port}`]);
  assert.equal(down.code, 3);
  assert.match(down.stderr, new RegExp(`^floatd: cannot reach the server at http://127.0.0.1:${port}: ECONNREFUSED`));

  const broken = createHttpServer((_req, res) => {
    res.writeHead(500, { 'content-type': 'application/json', 'x-request-id': 'req_broken' });
    res.end(JSON.stringify({ error: { code: 'INTERNAL_ERROR', message: 'boom', requestId: 'req_broken' } }));
  });
  await new Promise<void>((res) => broken.listen(0, '127.0.0.1', res));
  try {
    const r = await cli(['products', 'list', '--server', `http://127.0.0.1:${(broken.address() as AddressInfo).port}`]);
    assert.equal(r.code, 3);
    assert.equal(r.stderr, 'floatd: INTERNAL_ERROR: boom (request req_broken)\n');
  } finally {
    await new Promise<void>((res) => broken.close(() => res()));
  }
});

test('connection settings: flag over environment over config file over ./data/admin-token; no token is exit 4', async () => {
  const bad = 'fdt_00000000000000000000_' + 'x'.repeat(43);
  const configFile = join(root, 'cli.json');
  await writeFile(configFile, JSON.stringify({ server: url, token: adminToken }));
  const badConfig = join(root, 'bad.json');
  await writeFile(badConfig, JSON.stringify({ server: url, token: bad }));
  await mkdir(join(home, '.config', 'floatd'), { recursive: true });
  await writeFile(join(home, '.config', 'floatd', 'cli.json'), JSON.stringify({ server: url, token: adminToken }));
  const defaultDir = join(root, 'with-data');
  await mkdir(join(defaultDir, 'data'), { recursive: true });
  await writeFile(join(defaultDir, 'data', 'admin-token'), `${adminToken}\n`);

  const runs = await Promise.all([
    cli(['keys', 'list', '--config', configFile], { noDefaults: true }), // config file by flag
    cli(['keys', 'list'], { noDefaults: true, env: { FLOATD_CONFIG: configFile } }), // config file by FLOATD_CONFIG
    cli(['keys', 'list'], { noDefaults: true }), // ~/.config/floatd/cli.json
    cli(['keys', 'list', '--token', adminToken], { env: { FLOATD_TOKEN: bad } }), // flag beats environment
    cli(['keys', 'list', '--token', bad]), // flag beats a good environment
    cli(['keys', 'list', '--config', badConfig]), // environment beats the config file
    cli(['keys', 'list', '--server', url], { noDefaults: true, cwd: defaultDir, env: { HOME: root } }), // ./data/admin-token
    cli(['keys', 'list', '--server', url], { noDefaults: true, env: { HOME: root } }), // no token anywhere
    cli(['keys', 'list', '--config', join(root, 'missing.json')]), // a named config file must exist
  ]);
  const codes = runs.map((r) => r.code);
  assert.deepEqual(codes, [0, 0, 0, 0, 4, 0, 0, 4, 2], runs.map((r) => r.stderr).join('\n'));
  for (const r of [runs[0], runs[1], runs[2], runs[3], runs[5], runs[6]]) assert.match(r!.stdout, new RegExp(licenseId));
  assert.match(runs[7]!.stderr, /^floatd: no admin token\nfloatd: hint: pass one with --token, FLOATD_TOKEN/);
  assert.match(runs[8]!.stderr, /config file .*missing\.json does not exist/);
});

test('keys delete --force releases the held seat; then the product can be deleted', async () => {
  const r = ok(await cli(['keys', 'delete', licenseId, '--force']), 'keys delete --force');
  assert.equal(r.stdout, `deleted ${licenseId}; released 1 lease(s)\n`);
  const gone = await cli(['keys', 'show', licenseId]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /^floatd: LICENSE_NOT_FOUND: /);
  assert.deepEqual(await okJson(['products', 'delete', productId]), { deleted: true });
});

test('license keys and product names are taken wherever lic_… and prd_… ids are', async () => {
  const product = await okJson(['products', 'create', 'Acme CAD Names']);
  // keys create --product "<name>" (any case), keys list --product <name>, products show <name>
  const key = await okJson(['keys', 'create', '--product', 'acme cad names', '--seats', '1']);
  assert.equal(key.productId, product.id);
  const listed = await okJson(['keys', 'list', '--product', 'Acme CAD Names']);
  assert.deepEqual(
    listed.items.map((l: any) => l.id),
    [key.id],
  );
  assert.equal((await okJson(['products', 'show', 'Acme CAD Names'])).id, product.id);
  // keys show, leases list, usage, audit --key: the key itself
  assert.equal((await okJson(['keys', 'show', key.key])).id, key.id);
  assert.equal((await checkout(key.key, 'names')).status, 201);
  const leases = await okJson(['leases', 'list', key.key]);
  assert.equal(leases.items.length, 1);
  const usage = await okJson(['usage', key.key]);
  assert.equal(usage.checkouts, 1);
  const audit = await okJson(['audit', '--key', key.key, '--type', 'checkout']);
  assert.ok(audit.items.length === 1 && audit.items[0].licenseId === key.id);
  // Unknown: one line, exit 1, naming what was given.
  const noKey = await cli(['keys', 'show', 'ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ']);
  assert.equal(noKey.code, 1);
  assert.equal(
    noKey.stderr,
    'floatd: no license with key "ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ" on this server (give its key, or its lic_… id from floatd licenses list)\n',
  );
  const noProduct = await cli(['keys', 'create', '--product', 'No Such Product', '--seats', '1']);
  assert.equal(noProduct.code, 1);
  assert.equal(
    noProduct.stderr,
    'floatd: no product named "No Such Product" on this server (give its name or its prd_… id from floatd products list)\n',
  );
  ok(await cli(['keys', 'delete', key.key, '--force']), 'keys delete <key>');
});

test('an unknown top-level command exits 2 with the floatd: prefix', async () => {
  const r = await cli(['key', 'list']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "floatd: unknown command 'key'\n(Did you mean keys?)\n(add --help for usage)\n");
});

test('an error caused by a flag names the flag, not the API field', async () => {
  const r = await cli(['keys', 'create', '--product', productId, '--seats', '1', '--expires-at', '2027-01-01']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^floatd: INVALID_POLICY: --expires-at is only for subscriptions \(model is permanent\) \(request req_\S+\)\n$/);
});

test('--server https:// against a plain HTTP server is one line', async () => {
  const r = await cli(['keys', 'list', '--server', url.replace(/^http:/, 'https:')]);
  assert.equal(r.code, 3);
  const https = url.replace(/^http:/, 'https:');
  assert.equal(r.stderr, `floatd: the server at ${https} does not speak TLS (HTTPS) on that port: if it serves plain HTTP, use ${url}\n`);
});

test('ENTITLEMENT_MANAGED points at the license file, not at a higher role', async () => {
  const onprem = createHttpServer((_req, res) => {
    res.writeHead(403, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'ENTITLEMENT_MANAGED', message: 'seats come from the license file', requestId: 'req_m' } }));
  });
  await new Promise<void>((res) => onprem.listen(0, '127.0.0.1', res));
  try {
    const r = await cli([
      'keys',
      'update',
      'lic_abc',
      '--seats',
      '3',
      '--server',
      `http://127.0.0.1:${(onprem.address() as AddressInfo).port}`,
    ]);
    assert.equal(r.code, 4);
    assert.equal(
      r.stderr,
      'floatd: ENTITLEMENT_MANAGED: seats come from the license file (request req_m)\n' +
        'floatd: hint: this on-premise server takes its products, licenses and seats from the license file; to change them, load a new file from the vendor with floatd entitlements load <file>\n',
    );
    assert.doesNotMatch(r.stderr, /higher role/);
  } finally {
    await new Promise<void>((res) => onprem.close(() => res()));
  }
});

test('sharing rule, clone and VM policy, linger and overdraft from the command line; leases grouped by share group; clone suspects in devices list', async () => {
  // its own product, last in the file: the tests above count what they made
  const productId = (await okJson(['products', 'create', 'Sharing CAD'])).id;
  const made = await okJson([
    'licenses',
    'create',
    '--product',
    productId,
    '--seats',
    '1',
    '--share-by',
    'host,user',
    '--share-cap',
    '2',
    '--clone-policy',
    'refuse',
    '--vm-policy',
    'count-per-instance',
    '--linger',
    '30',
    '--overdraft',
    '1',
  ]);
  assert.deepEqual(made.sharing, { by: ['user', 'host'], cap: 2 });
  assert.equal(made.clonePolicy, 'refuse');
  assert.equal(made.vmPolicy, 'count-per-instance');
  assert.equal(made.lingerSeconds, 30);
  assert.equal(made.overdraftSeats, 1);
  const shown = ok(await cli(['licenses', 'show', made.id]), 'licenses show');
  assert.match(shown.stdout, /sharing\s+user\+host, cap 2\n/);
  assert.match(shown.stdout, /clone policy\s+refuse\n/);
  assert.match(shown.stdout, /linger\s+30s\n/);
  assert.match(shown.stdout, /overdraft\s+1 seat\(s\)\n/);
  // two uses of one user on one host share a seat; the listing puts them under it
  const use = (fingerprint: string, instanceId: string, extra: Record<string, unknown> = {}) =>
    fetch(`${url}/v1/client/checkout`, {
      method: 'POST',
      headers: { authorization: `License ${made.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ fingerprint, instanceId, user: 'pat', hostname: 'ws-9', ...extra }),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
  const a = await use('cli-share-device-1', 'i-1');
  const b = await use('cli-share-device-2', 'i-2');
  assert.equal(b.body.lease.id, a.body.lease.id);
  const listed = ok(await cli(['leases', 'list', made.id]), 'leases list');
  const lines = listed.stdout.split('\n');
  const seatLine = lines.findIndex((l) => l.startsWith(a.body.lease.id));
  assert.match(lines[seatLine]!, /user=pat&host=ws-9\s+dev_\w+\s+ws-9\s+pat\s+2 use\(s\)/);
  assert.match(lines[seatLine + 1]!, /^ {2}i-1\s+-\s+dev_\w+\s+ws-9\s+pat/);
  assert.match(lines[seatLine + 2]!, /^ {2}i-2\s+/);
  // a clone of device 1 from another host is refused (clone policy refuse) and shows in devices list
  const byDevice = await okJson([
    'licenses',
    'create',
    '--product',
    productId,
    '--seats',
    '3',
    '--share-by',
    'device',
    '--clone-policy',
    'refuse',
  ]);
  const c1 = await fetch(`${url}/v1/client/checkout`, {
    method: 'POST',
    headers: { authorization: `License ${byDevice.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ fingerprint: 'cli-clone-device', instanceId: 'x-1', hostname: 'origin' }),
  });
  assert.equal(c1.status, 201);
  const c2 = await fetch(`${url}/v1/client/checkout`, {
    method: 'POST',
    headers: { authorization: `License ${byDevice.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ fingerprint: 'cli-clone-device', instanceId: 'x-2', hostname: 'clone' }),
  });
  assert.equal(c2.status, 409);
  const devices = ok(await cli(['devices', 'list', byDevice.id]), 'devices list');
  assert.match(devices.stdout, /CLONE SUSPECT/);
  assert.match(devices.stdout, /since \S+: origin.*; clone/);
  // bad values are exit 2 before any request
  for (const bad of [
    ['--share-by', 'planet'],
    ['--share-by', 'user,user'],
    ['--share-cap', '2'],
    ['--clone-policy', 'maybe'],
    ['--overdraft', '-1'],
  ]) {
    const r = await cli(['licenses', 'create', '--product', productId, '--seats', '1', ...bad]);
    assert.equal(r.code, 2, `${bad.join(' ')}: ${r.stderr}`);
  }
  // a rule the server refuses names the flag
  const refused = await cli(['licenses', 'create', '--product', productId, '--seats', '1', '--share-by', 'instance,user']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /INVALID_POLICY: .*instance/);
});

test('groups and access policies from the command line: set a group, allow it, limit a user, reserve seats; shown by licenses show', async () => {
  const productId = (await okJson(['products', 'create', 'Access CAD'])).id;
  const group = ok(await cli(['groups', 'set', 'cad', '--users', 'ann,bob', '--hosts', 'ws-1']), 'groups set');
  assert.equal(group.stdout, 'group cad: 2 user(s), 1 host(s)\n');
  const groups = ok(await cli(['groups', 'list']), 'groups list');
  assert.match(groups.stdout, /^GROUP\s+USERS\s+HOSTS\s+UPDATED\ncad\s+ann, bob\s+ws-1\s+/);
  const made = await okJson([
    'licenses',
    'create',
    '--product',
    productId,
    '--seats',
    '4',
    '--allow',
    'group:cad,user:cid',
    '--deny',
    'host:kiosk',
    '--limit',
    'user:ann=1',
    '--reserve',
    'group:cad=2',
  ]);
  assert.deepEqual(made.access, {
    allow: ['group:cad', 'user:cid'],
    deny: ['host:kiosk'],
    limits: [{ principal: 'user:ann', max: 1 }],
    reservations: [{ principal: 'group:cad', seats: 2 }],
  });
  // an update replaces only the parts it names
  const updated = await okJson(['licenses', 'update', made.id, '--allow', 'everyone', '--no-limits']);
  assert.deepEqual(updated.access, { allow: null, deny: ['host:kiosk'], limits: [], reservations: [{ principal: 'group:cad', seats: 2 }] });
  const shown = ok(await cli(['licenses', 'show', made.id]), 'licenses show');
  assert.match(shown.stdout, /allow\s+everyone\n/);
  assert.match(shown.stdout, /reservations\s+group:cad: 2\n/);
  for (const bad of [
    ['--allow', 'ann'],
    ['--limit', 'user:ann'],
    ['--reserve', 'team:x=2'],
  ]) {
    const r = await cli(['licenses', 'update', made.id, ...bad]);
    assert.equal(r.code, 2, `${bad.join(' ')}: ${r.stderr}`);
  }
  assert.equal((await cli(['groups', 'show', 'nobody'])).code, 1);
  assert.equal(ok(await cli(['groups', 'delete', 'cad']), 'groups delete').stdout, 'deleted group cad\n');
});

test('feature pools from the command line: --feature name=seats, shown with their use by licenses show, leases list and usage; --no-features', async () => {
  const productId = (await okJson(['products', 'create', 'Feature CAD'])).id;
  const made = await okJson(['licenses', 'create', '--product', productId, '--seats', '2', '--feature', 'render=1', '--feature', 'sim=2']);
  assert.deepEqual(made.features, [
    { name: 'render', seats: 1 },
    { name: 'sim', seats: 2 },
  ]);
  const use = (fingerprint: string, features: string[]) =>
    fetch(`${url}/v1/client/checkout`, {
      method: 'POST',
      headers: { authorization: `License ${made.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ fingerprint, instanceId: 'app', features }),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
  assert.equal((await use('cli-feature-device-1', ['base', 'render'])).status, 201);
  assert.equal((await use('cli-feature-device-2', ['render'])).body.error.code, 'NO_FEATURE_SEATS_AVAILABLE');
  const shown = ok(await cli(['licenses', 'show', made.id]), 'licenses show');
  assert.match(shown.stdout, /features\s+render 1\/1, sim 0\/2\n/);
  const listed = ok(await cli(['leases', 'list', made.id]), 'leases list');
  assert.match(listed.stdout, /pools base\+render/);
  const usage = ok(await cli(['usage', made.id]), 'usage');
  assert.match(usage.stdout, /feature render: peak 1 seat\(s\), 1 checkout\(s\), 1 denial\(s\)/);
  // bad values are exit 2 before any request; the license is unchanged
  for (const bad of [
    ['--feature', 'render'],
    ['--feature', 'Render=2'],
    ['--feature', 'render=0'],
    ['--feature', 'x=1', '--no-features'],
  ]) {
    const r = await cli(['licenses', 'update', made.id, ...bad]);
    assert.equal(r.code, 2, `${bad.join(' ')}: ${r.stderr}`);
  }
  // a name the server refuses (the base pool's) names the flag
  const refused = await cli(['licenses', 'update', made.id, '--feature', 'base=3']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /INVALID_POLICY: .*base/);
  assert.equal((await okJson(['licenses', 'show', made.id])).features.length, 2);
  const tuned = await okJson(['licenses', 'update', made.id, '--feature', 'render=1 instance ttl=400', '--feature', 'sim=2']);
  assert.deepEqual(tuned.features, [
    { name: 'render', seats: 1, counting: 'instance', leaseTtlSeconds: 400 },
    { name: 'sim', seats: 2 },
  ]);
  assert.match(
    ok(await cli(['licenses', 'show', made.id]), 'licenses show').stdout,
    /features\s+render 1\/1 per instance ttl 400s, sim 0\/2\n/,
  );
  assert.equal((await cli(['licenses', 'update', made.id, '--feature', 'render=1 often'])).code, 2);
  const guarded = await okJson([
    'licenses',
    'update',
    made.id,
    '--feature',
    'render=2 allow=group:render,user:zed limit=user:ann=1 reserve=user:bo=1',
  ]);
  assert.deepEqual(guarded.features[0].access, {
    allow: ['group:render', 'user:zed'],
    deny: [],
    limits: [{ principal: 'user:ann', max: 1 }],
    reservations: [{ principal: 'user:bo', seats: 1 }],
  });
  assert.match(
    ok(await cli(['licenses', 'show', made.id]), 'licenses show').stdout,
    /render \d\/2 allow group:render,user:zed limit user:ann<=1 reserve user:bo:1/,
  );
  assert.equal((await cli(['licenses', 'update', made.id, '--feature', 'render=2 limit=ann=1'])).code, 2);
  const cleared = await okJson(['licenses', 'update', made.id, '--no-features']);
  assert.deepEqual(cleared.features, []);
});

test('the queue from the command line: licenses show says how many wait, usage how many waited and how long', async () => {
  const productId = (await okJson(['products', 'create', 'Queue CAD'])).id;
  const made = await okJson(['licenses', 'create', '--product', productId, '--seats', '1']);
  const ask = (fingerprint: string, wait: boolean) =>
    fetch(`${url}/v1/client/checkout`, {
      method: 'POST',
      headers: { authorization: `License ${made.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ fingerprint, instanceId: 'app', ...(wait ? { wait: { timeoutSeconds: 600 } } : {}) }),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
  const holder = await ask('cli-queue-holder', false);
  assert.equal(holder.status, 201);
  assert.equal((await ask('cli-queue-waiter-1', true)).body.error.queue.position, 1);
  assert.equal((await ask('cli-queue-waiter-2', true)).body.error.queue.position, 2);
  assert.match(ok(await cli(['licenses', 'show', made.id]), 'licenses show').stdout, /waiting\s+2\n/);
  await fetch(`${url}/v1/client/leases/${holder.body.lease.id}/checkin`, {
    method: 'POST',
    headers: { authorization: `License ${made.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ instanceId: 'app' }),
  });
  assert.equal((await ask('cli-queue-waiter-1', true)).status, 201);
  const usage = ok(await cli(['usage', made.id]), 'usage');
  assert.match(usage.stdout, /queue: 2 checkout\(s\) waited, 1 got a seat, after \d+ s on average/);
});

// --- customers: their own product and customers, last in the file (the tests above count what they made) ---
const customers = { acme: '', initech: '', productId: '', subscription: { id: '', key: '' }, permanent: { id: '', key: '' }, other: '' };

/** A checkout from a named host and user: the customer search finds its customer by them. */
async function checkoutAs(key: string, fingerprint: string, hostname: string, user: string) {
  const res = await fetch(`${url}/v1/client/checkout`, {
    method: 'POST',
    headers: { authorization: `License ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ fingerprint, instanceId: 'app', hostname, user }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

test('customers: create with contact and --meta, list, licenses create --customer (id or name), search by name, key, host and user', async () => {
  customers.productId = (await okJson(['products', 'create', 'Customer CAD'])).id;
  const acme = await okJson([
    'customers',
    'create',
    '--name',
    'Acme Corp',
    '--contact-name',
    'Jane Doe',
    '--email',
    'jane@acme.example',
    '--phone',
    '+1 555 0100',
    '--meta',
    'crm=4711',
    '--meta',
    'note=a=b',
  ]);
  assert.match(acme.id, /^cus_[0-9A-Za-z]{20}$/);
  assert.deepEqual(acme.contact, { name: 'Jane Doe', email: 'jane@acme.example', phone: '+1 555 0100' });
  assert.deepEqual(acme.metadata, { crm: '4711', note: 'a=b' });
  customers.acme = acme.id;
  const initech = ok(await cli(['customers', 'create', '--name', 'Initech']), 'customers create');
  assert.match(initech.stdout, /^id\s+cus_\w+\nname\s+Initech\ncontact\s+-\nemail\s+-\nphone\s+-\nmetadata\s+\{\}\n/);
  customers.initech = /^id\s+(cus_\w+)$/m.exec(initech.stdout)![1]!;

  const table = ok(await cli(['customers', 'list']), 'customers list');
  const lines = table.stdout.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^ID\s+NAME\s+CONTACT\s+EMAIL\s+PHONE\s+CREATED$/);
  assert.match(lines[1] ?? '', new RegExp(`^${DEFAULT_CUSTOMER_ID}\\s+Unassigned\\s+-\\s+-\\s+-\\s+\\S+Z$`), 'the built-in customer first');
  assert.ok(
    lines.some((l) => new RegExp(`^${acme.id}\\s+Acme Corp\\s+Jane Doe\\s+jane@acme\\.example\\s+\\+1 555 0100\\s+\\S+Z$`).test(l)),
  );
  assert.ok(lines.some((l) => new RegExp(`^${customers.initech}\\s+Initech\\s+-\\s+-\\s+-\\s+\\S+Z$`).test(l)));

  // --customer takes the name (any case) or the id
  const sub = await okJson([
    'licenses',
    'create',
    '--product',
    customers.productId,
    '--customer',
    'acme corp',
    '--seats',
    '5',
    '--model',
    'subscription',
    '--expires-at',
    '2099-01-31',
  ]);
  const perm = await okJson(['licenses', 'create', '--product', customers.productId, '--customer', acme.id, '--seats', '2']);
  const other = await okJson(['licenses', 'create', '--product', customers.productId, '--customer', 'Initech', '--seats', '1']);
  assert.equal(sub.customerId, acme.id);
  assert.equal(perm.customerId, acme.id);
  assert.equal(other.customerId, customers.initech);
  customers.subscription = { id: sub.id, key: sub.key };
  customers.permanent = { id: perm.id, key: perm.key };
  customers.other = other.id;
  assert.match(ok(await cli(['licenses', 'show', perm.id]), 'licenses show').stdout, new RegExp(`^customer\\s+${acme.id}$`, 'm'));
  assert.equal((await checkoutAs(perm.key, 'cli-customer-device-1', 'roadrunner-ws-7', 'wile')).status, 201);

  const [listed, listedTable] = await Promise.all([
    okJson(['licenses', 'list', '--customer', 'Acme Corp', '--all']),
    cli(['licenses', 'list', '--customer', acme.id]),
  ]);
  assert.deepEqual(
    listed.items.map((l: any) => l.id),
    [sub.id, perm.id],
  );
  const rows = ok(listedTable, 'licenses list --customer').stdout.trimEnd().split('\n').slice(1);
  assert.equal(rows.length, 2);
  for (const row of rows) assert.match(row, new RegExp(`^lic_\\w+\\s+${acme.id}\\s+${customers.productId}\\s+`));

  const search = async (text: string) => ((await okJson(['customers', 'list', '--search', text])).items as any[]).map((c) => c.id).sort();
  const [byName, byNameAnyCase, byKey, byHost, byUser, none] = await Promise.all([
    search('Acme'),
    search('INITECH'),
    search(other.key),
    search('RUNNER-WS'),
    search('wile'),
    search('nobody-has-this'),
  ]);
  assert.deepEqual(byName, [acme.id]);
  assert.deepEqual(byNameAnyCase, [customers.initech]);
  assert.deepEqual(byKey, [customers.initech]);
  assert.deepEqual(byHost, [acme.id]);
  assert.deepEqual(byUser, [acme.id]);
  assert.deepEqual(none, []);
  const found = ok(await cli(['customers', 'list', '--search', 'roadrunner']), 'customers list --search');
  assert.equal(found.stdout.trimEnd().split('\n').length, 2, found.stdout);
  assert.match(found.stdout, new RegExp(`^${acme.id}\\s+Acme Corp\\s+`, 'm'));
});

test('customers show: the customer, its licenses (seats used/total, expiry), totals, next expiry and 30-day usage', async () => {
  const { acme, subscription: sub, permanent: perm } = customers;
  const [human, json, byName] = await Promise.all([
    cli(['customers', 'show', acme]),
    okJson(['customers', 'show', acme]),
    okJson(['customers', 'show', 'ACME CORP']),
  ]);
  assert.deepEqual(byName, json);
  assert.equal(json.customer.id, acme);
  assert.deepEqual(
    json.licenses.map((l: any) => [l.id, l.productName, l.seatsUsed, l.seats]),
    [
      [sub.id, 'Customer CAD', 0, 5],
      [perm.id, 'Customer CAD', 1, 2],
    ],
  );
  assert.equal(json.seats, 7);
  assert.equal(json.seatsUsed, 1);
  assert.deepEqual(json.nextExpiry, { licenseId: sub.id, at: '2099-01-31T00:00:00.000Z' });
  assert.equal(json.usage.checkouts, 1);
  assert.equal(json.usage.peakSeats, 1);

  const out = ok(human, 'customers show').stdout;
  assert.match(out, /^name\s+Acme Corp$/m);
  assert.match(out, /^contact\s+Jane Doe$/m);
  assert.match(out, /^email\s+jane@acme\.example$/m);
  assert.match(out, /^metadata\s+\{"crm":"4711","note":"a=b"\}$/m);
  assert.match(out, /^licenses\s+2$/m);
  assert.match(out, /^seats used\s+1\/7$/m);
  assert.match(out, new RegExp(`^next expiry\\s+2099-01-31T00:00:00\\.000Z \\(${sub.id}\\)$`, 'm'));
  assert.match(out, /^last 30 days\s+peak 1 seat\(s\), 1 checkout\(s\), 0 denial\(s\) \(\S+Z \.\. \S+Z\)$/m);
  const table = out.split('\n\n')[1]!.trimEnd().split('\n');
  assert.match(table[0]!, /^LICENSE\s+PRODUCT\s+KEY\s+MODEL\s+SEATS\s+OFFLINE\s+EXPIRES\s+STATE$/);
  assert.match(
    table[1]!,
    new RegExp(`^${sub.id}\\s+Customer CAD\\s+${sub.key}\\s+subscription\\s+0/5\\s+0\\s+2099-01-31T00:00:00\\.000Z\\s+active$`),
  );
  assert.match(table[2]!, new RegExp(`^${perm.id}\\s+Customer CAD\\s+${perm.key}\\s+permanent\\s+1/2\\s+0\\s+-\\s+active$`));
  assert.equal(table.length, 3);

  // a customer without licenses says so
  const empty = await okJson(['customers', 'create', '--name', 'Empty Co']);
  const shown = ok(await cli(['customers', 'show', empty.id]), 'customers show (empty)').stdout;
  assert.match(shown, /^seats used\s+0\/0$/m);
  assert.match(shown, /^next expiry\s+none$/m);
  assert.match(shown, /\n\nno licenses\n$/);
  ok(await cli(['customers', 'delete', empty.id]), 'customers delete');
});

test('customers update changes only what is given; licenses update --customer moves a license', async () => {
  const { acme, initech, permanent: perm } = customers;
  const updated = await okJson([
    'customers',
    'update',
    'Acme Corp',
    '--email',
    'ops@acme.example',
    '--phone',
    'none',
    '--meta',
    'tier=gold',
    '--unset-meta',
    'note',
  ]);
  assert.equal(updated.name, 'Acme Corp');
  assert.deepEqual(updated.contact, { name: 'Jane Doe', email: 'ops@acme.example' });
  assert.deepEqual(updated.metadata, { crm: '4711', tier: 'gold' });
  const renamed = ok(await cli(['customers', 'update', initech, '--name', 'Initech Ltd']), 'customers update --name');
  assert.match(renamed.stdout, /^name\s+Initech Ltd$/m);

  const moved = await okJson(['licenses', 'update', perm.key, '--customer', 'Initech Ltd']);
  assert.equal(moved.customerId, initech);
  assert.equal(moved.seats, 2, 'nothing else changed');
  const [acmeNow, initechNow] = await Promise.all([okJson(['customers', 'show', acme]), okJson(['customers', 'show', initech])]);
  assert.deepEqual(
    acmeNow.licenses.map((l: any) => l.id),
    [customers.subscription.id],
  );
  assert.deepEqual(initechNow.licenses.map((l: any) => l.id).sort(), [customers.other, perm.id].sort());
  assert.equal(initechNow.seatsUsed, 1, 'its held seat moved with it');
});

test("customer tokens: tokens create --customer; with it licenses list shows only that customer's licenses, products list is CUSTOMER_SCOPE (exit 4)", async () => {
  const { acme, initech, subscription: sub } = customers;
  const created = await okJson(['tokens', 'create', '--name', 'acme-admin', '--role', 'viewer', '--customer', 'Acme Corp']);
  assert.equal(created.customerId, acme);
  const human = ok(await cli(['tokens', 'create', '--name', 'initech-admin', '--role', 'viewer', '--customer', initech]), 'tokens create');
  assert.match(human.stdout, new RegExp(`^customer\\s+${initech}$`, 'm'));
  const tokens = ok(await cli(['tokens', 'list']), 'tokens list').stdout;
  assert.match(tokens, /^ID\s+NAME\s+ROLE\s+CUSTOMER\s+CREATED\s+LAST USED\s+REVOKED$/m);
  assert.match(tokens, new RegExp(`^${created.id}\\s+acme-admin\\s+viewer\\s+${acme}\\s+\\S+Z\\s+-\\s+-$`, 'm'));
  assert.match(tokens, /^tok_\w+\s+initial\s+admin\s+-\s+/m, 'a vendor token has no customer');

  const asAcme = { env: { FLOATD_TOKEN: created.token } };
  const [json, table, products, own, another, byName] = await Promise.all([
    okJson(['licenses', 'list', '--all'], asAcme),
    cli(['licenses', 'list'], asAcme),
    cli(['products', 'list'], asAcme),
    okJson(['customers', 'show', 'Acme Corp'], asAcme),
    cli(['customers', 'show', initech], asAcme),
    cli(['customers', 'show', 'Initech Ltd'], asAcme),
  ]);
  assert.deepEqual(
    json.items.map((l: any) => l.id),
    [sub.id],
  );
  const rows = ok(table, 'licenses list (customer token)').stdout.trimEnd().split('\n').slice(1);
  assert.equal(rows.length, 1);
  assert.match(rows[0]!, new RegExp(`^${sub.id}\\s+${acme}\\s+`));
  assert.equal(products.code, 4);
  assert.equal(products.stdout, '');
  assert.match(
    products.stderr,
    /^floatd: CUSTOMER_SCOPE: .+ \(request req_\w+\)\nfloatd: hint: a customer's own token reaches only .*vendor token/,
  );
  assert.doesNotMatch(products.stderr, /higher role/);
  assert.equal(own.customer.id, acme);
  assert.equal(another.code, 1);
  assert.match(another.stderr, /^floatd: CUSTOMER_NOT_FOUND: /);
  assert.equal(byName.code, 1, 'another customer is not found by name either');
  assert.match(byName.stderr, /^floatd: no customer named "Initech Ltd" on this server/);
});

test('customers delete: refused while it owns licenses (CUSTOMER_HAS_LICENSES) and for the built-in customer; an empty one goes with its tokens', async () => {
  const [owns, builtIn] = await Promise.all([
    cli(['customers', 'delete', 'Acme Corp']),
    cli(['customers', 'delete', DEFAULT_CUSTOMER_ID, '--json']),
  ]);
  assert.equal(owns.code, 1);
  assert.match(owns.stderr, /^floatd: CUSTOMER_HAS_LICENSES: .+ \(request req_\w+\)\nfloatd: hint: move its licenses .*--customer/);
  assert.equal(owns.stdout, '');
  assert.equal(builtIn.code, 1);
  assert.equal(JSON.parse(builtIn.stdout).error.code, 'DEFAULT_CUSTOMER');
  assert.equal((await okJson(['customers', 'show', 'Acme Corp'])).licenses.length, 1, 'nothing changed');

  const gone = await okJson(['customers', 'create', '--name', 'Gone Inc']);
  const token = await okJson(['tokens', 'create', '--name', 'gone-admin', '--role', 'admin', '--customer', gone.id]);
  const deleted = ok(await cli(['customers', 'delete', 'Gone Inc']), 'customers delete');
  assert.equal(deleted.stdout, `deleted ${gone.id}; revoked 1 token(s)\n`);
  const revoked = await cli(['licenses', 'list'], { env: { FLOATD_TOKEN: token.token } });
  assert.equal(revoked.code, 4);
  assert.match(revoked.stderr, /^floatd: UNAUTHENTICATED: /);
  const again = await cli(['customers', 'show', gone.id]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^floatd: CUSTOMER_NOT_FOUND: /);
});

test('customers: bad input is one clear line and a non-zero exit, before any request where the CLI can tell', async () => {
  const runs = await Promise.all([
    cli(['customers', 'create']), // 0
    cli(['customers', 'create', '--name', 'X', '--email', 'not-an-email']), // 1
    cli(['customers', 'create', '--name', 'X', '--phone', 'call me']), // 2
    cli(['customers', 'create', '--name', 'X', '--meta', 'novalue']), // 3
    cli(['customers', 'update', 'Acme Corp']), // 4
    cli(['customers', 'update', 'Acme Corp', '--meta', 'a=1', '--unset-meta', 'a']), // 5
    cli(['customers', 'list', '--search', ' ']), // 6
    cli(['customers', 'create', '--name', 'x'.repeat(201)]), // 7
    cli(['customers', 'show', 'No Such Customer']), // 8
    cli(['licenses', 'create', '--product', customers.productId, '--seats', '1', '--customer', 'No Such Customer']), // 9
    cli(['tokens', 'create', '--name', 't', '--role', 'viewer', '--customer', 'cus_00000000000000000000']), // 10
    cli(['licenses', 'update', customers.subscription.id, '--customer', 'cus_00000000000000000000']), // 11
  ]);
  assert.deepEqual(
    runs.map((r) => r.code),
    [2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1],
    runs.map((r) => r.stderr).join('\n'),
  );
  for (const r of runs) assert.equal(r.stdout, '');
  assert.match(runs[0]!.stderr, /^floatd: required option '--name <name>' not specified/);
  assert.match(runs[1]!.stderr, /^floatd: option '--email <email>' argument 'not-an-email' is invalid\. expected an email address/);
  assert.match(runs[2]!.stderr, /^floatd: option '--phone <phone>' argument 'call me' is invalid\. expected a phone number/);
  assert.match(runs[3]!.stderr, /expected key=value/);
  assert.match(runs[4]!.stderr, /^floatd: customers update needs at least one option to change/);
  assert.match(runs[5]!.stderr, /^floatd: --meta and --unset-meta both name the key "a"\n$/);
  assert.match(runs[6]!.stderr, /--search needs some text/);
  // the server's limit, named by the flag that set it
  assert.match(runs[7]!.stderr, /^floatd: VALIDATION_FAILED: --name must NOT have more than 200 characters \(request req_\w+\)\n$/);
  assert.equal(
    runs[8]!.stderr,
    'floatd: no customer named "No Such Customer" on this server (give its name or its cus_… id from floatd customers list)\n',
  );
  assert.match(runs[9]!.stderr, /^floatd: no customer named "No Such Customer"/);
  assert.match(runs[10]!.stderr, /^floatd: CUSTOMER_NOT_FOUND: /);
  assert.match(runs[11]!.stderr, /^floatd: CUSTOMER_NOT_FOUND: /);
  assert.equal(
    (await okJson(['licenses', 'show', customers.subscription.id])).customerId,
    customers.acme,
    'the refused move changed nothing',
  );
});

test('customer text that would act on a terminal is printed escaped by customers list and show; --json stays valid', async () => {
  const hostile = '\u001b]0;PWNED\u0007\u001b[2JEvil \u202eCorp';
  const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;
  const made = await okJson(['customers', 'create', '--name', hostile, '--contact-name', `Mr ${hostile}`, '--meta', `k=${hostile}`]);
  assert.equal(made.name, hostile);
  const runs = await Promise.all([
    cli(['customers', 'list', '--search', 'PWNED']),
    cli(['customers', 'show', made.id]),
    cli(['customers', 'list', '--search', 'PWNED', '--json']),
  ]);
  runs.push(await cli(['customers', 'delete', made.id]));
  for (const r of runs) {
    ok(r, 'hostile customer');
    assert.doesNotMatch(r.stdout, raw, r.stdout);
    assert.doesNotMatch(r.stderr, raw, r.stderr);
  }
  assert.ok(runs[0]!.stdout.includes('\\x1b]0;PWNED\\x07\\x1b[2JEvil \\u202eCorp'), runs[0]!.stdout);
  assert.equal(runs[0]!.stdout.trimEnd().split('\n').length, 2, 'header and one row');
  assert.match(runs[1]!.stdout, /^contact\s+Mr \\x1b\]0;PWNED/m);
  assert.equal(JSON.parse(runs[2]!.stdout).items[0].name, hostile);
});

/** A webhook receiver on 127.0.0.1: records every request (headers and raw body) and answers 204. */
async function webhookReceiver() {
  const received: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  const srv = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/floatd-hook`,
    received,
    close: () => new Promise<void>((res) => srv.close(() => res())),
  };
}

/** The Standard Webhooks check a receiver makes: one of the `v1,<base64>` signatures is the HMAC of "<id>.<timestamp>.<body>". */
function signatureVerifies(secret: string, headers: Record<string, string | string[] | undefined>, body: string): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`).digest();
  return String(headers['webhook-signature'] ?? '')
    .split(' ')
    .some((sig) => {
      if (!sig.startsWith('v1,')) return false;
      const got = Buffer.from(sig.slice(3), 'base64');
      return got.length === expected.length && timingSafeEqual(got, expected);
    });
}

/** Reads `webhooks deliveries <id> --json` until `done` holds for the delivery `deliveryId` (at most ~10 s). */
async function waitForDelivery(webhookId: string, deliveryId: string, done: (d: any) => boolean): Promise<any> {
  const deadline = Date.now() + 10_000;
  let last: any;
  while (Date.now() < deadline) {
    const page = await okJson(['webhooks', 'deliveries', webhookId]);
    last = page.items.find((d: any) => d.id === deliveryId);
    if (last && done(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`delivery ${deliveryId} not as expected within 10 s: ${JSON.stringify(last)}`);
}

test('webhooks: create (secret once) at a local receiver, list without the secret, ping delivered once and signed with that secret, redeliver, update, disable, delete', async () => {
  const receiver = await webhookReceiver();
  try {
    const created = ok(
      await cli(['webhooks', 'create', '--url', receiver.url, '--event', 'ping', '--event', 'seats.full', '--description', 'cli test']),
      'webhooks create',
    );
    const secret = /^secret\s+(whsec_\S+)$/m.exec(created.stdout)?.[1] ?? '';
    assert.ok(secret, created.stdout);
    assert.match(created.stderr, /^floatd: the signing secret above is shown only this once/);
    const webhookId = /^id\s+(whk_\w+)$/m.exec(created.stdout)?.[1] ?? '';
    assert.match(webhookId, /^whk_[0-9A-Za-z]{20}$/);
    assert.match(created.stdout, /^events\s+ping, seats\.full$/m);
    assert.match(created.stdout, /^enabled\s+yes$/m);

    // listed, never with its secret
    const [listed, listedJson] = await Promise.all([cli(['webhooks', 'list']), cli(['webhooks', 'list', '--json'])]);
    ok(listed, 'webhooks list');
    assert.match(listed.stdout.split('\n')[0] ?? '', /^ID\s+URL\s+EVENTS\s+ENABLED\s+DESCRIPTION\s+CREATED$/);
    assert.match(listed.stdout, new RegExp(`^${webhookId}\\s+${receiver.url}\\s+ping,seats\\.full\\s+yes\\s+cli test\\s+\\d{4}-`, 'm'));
    const item = JSON.parse(ok(listedJson, 'webhooks list --json').stdout).items.find((w: any) => w.id === webhookId);
    assert.deepEqual(
      { url: item.url, events: item.events, description: item.description, enabled: item.enabled },
      { url: receiver.url, events: ['ping', 'seats.full'], description: 'cli test', enabled: true },
    );
    assert.ok(!('secret' in item));
    for (const r of [listed, listedJson])
      assert.ok(!r.stdout.includes(secret) && !r.stdout.includes(secret.slice(6)), 'the secret was listed');

    // ping: queued, then delivered on the first attempt, signed with the secret printed at create
    const ping = await okJson(['webhooks', 'ping', webhookId]);
    assert.match(ping.id, /^dlv_/);
    assert.match(ping.eventId, /^evt_/);
    assert.equal(ping.webhookId, webhookId);
    assert.equal(ping.eventType, 'ping');
    const delivered = await waitForDelivery(webhookId, ping.id, (d) => d.state === 'delivered');
    assert.equal(delivered.attempts, 1);
    assert.equal(delivered.nextAttemptAt, null);
    assert.equal(delivered.lastAttempts[0]?.status, 204);
    const requests = receiver.received.filter((r) => r.headers['webhook-id'] === ping.eventId);
    assert.equal(requests.length, 1, 'one request for the ping');
    const request = requests[0]!;
    assert.ok(
      signatureVerifies(secret, request.headers, request.body),
      `signature ${request.headers['webhook-signature']} does not verify`,
    );
    assert.ok(!signatureVerifies(`whsec_${Buffer.alloc(32).toString('base64')}`, request.headers, request.body), 'another secret verifies');
    assert.equal(JSON.parse(request.body).type, 'ping');
    assert.equal(JSON.parse(request.body).id, ping.eventId);

    const [log, failed] = await Promise.all([
      cli(['webhooks', 'deliveries', webhookId]),
      okJson(['webhooks', 'deliveries', webhookId, '--state', 'failed']),
    ]);
    ok(log, 'webhooks deliveries');
    assert.match(log.stdout.split('\n')[0] ?? '', /^ID\s+EVENT\s+STATE\s+ATTEMPTS\s+LAST STATUS\s+NEXT ATTEMPT\s+CREATED$/);
    assert.match(log.stdout, new RegExp(`^${ping.id}\\s+ping\\s+delivered\\s+1\\s+204\\s+-\\s+\\d{4}-`, 'm'));
    assert.deepEqual(failed.items, []);

    // redeliver: the same event id again, a second attempt
    const again = await okJson(['webhooks', 'redeliver', ping.id]);
    assert.equal(again.id, ping.id);
    assert.equal(again.eventId, ping.eventId);
    await waitForDelivery(webhookId, ping.id, (d) => d.state === 'delivered' && d.attempts === 2);
    const both = receiver.received.filter((r) => r.headers['webhook-id'] === ping.eventId);
    assert.equal(both.length, 2);
    assert.ok(signatureVerifies(secret, both[1]!.headers, both[1]!.body));

    // update: only what is given changes
    const moved = await okJson([
      'webhooks',
      'update',
      webhookId,
      '--url',
      `${receiver.url}/v2`,
      '--event',
      'checkout.denied,license.expiring',
    ]);
    assert.equal(moved.url, `${receiver.url}/v2`);
    assert.deepEqual(moved.events, ['checkout.denied', 'license.expiring']);
    assert.equal(moved.description, 'cli test');
    assert.equal(moved.enabled, true);
    const disabled = ok(await cli(['webhooks', 'update', webhookId, '--disable', '--all-events', '--description', 'paused']), 'disable');
    assert.match(disabled.stdout, /^enabled\s+no$/m);
    assert.match(disabled.stdout, /^events\s+\*$/m);
    assert.match(disabled.stdout, /^description\s+paused$/m);
    assert.equal((await okJson(['webhooks', 'update', webhookId, '--enable'])).enabled, true);
    assert.equal((await okJson(['webhooks', 'update', webhookId, '--disable'])).enabled, false);

    // delete: gone from the list; then it is WEBHOOK_NOT_FOUND (exit 1) with a hint
    const deleted = ok(await cli(['webhooks', 'delete', webhookId]), 'webhooks delete');
    assert.equal(deleted.stdout, `deleted ${webhookId}\n`);
    assert.ok(!(await okJson(['webhooks', 'list'])).items.some((w: any) => w.id === webhookId));
    const gone = await Promise.all([
      cli(['webhooks', 'delete', webhookId]),
      cli(['webhooks', 'ping', webhookId]),
      cli(['webhooks', 'deliveries', webhookId]),
      cli(['webhooks', 'update', webhookId, '--enable']),
      cli(['webhooks', 'redeliver', ping.id]),
    ]);
    assert.deepEqual(
      gone.map((r) => r.code),
      [1, 1, 1, 1, 1],
      gone.map((r) => r.stderr).join('\n'),
    );
    for (const r of gone.slice(0, 4)) {
      assert.match(r.stderr, /^floatd: WEBHOOK_NOT_FOUND: .* \(request req_\w+\)\n/);
      assert.match(r.stderr, /\nfloatd: hint: floatd webhooks list shows the webhook endpoints/);
    }
    assert.match(gone[4]!.stderr, /^floatd: WEBHOOK_DELIVERY_NOT_FOUND: .*\nfloatd: hint: floatd webhooks deliveries <webhookId>/);
  } finally {
    await receiver.close();
  }
});

test('webhooks: a bad --event, --url or --state, or clashing flags, are exit 2 before any request; a too long --description is refused by its flag name', async () => {
  // Against a port where nothing listens: a request would be exit 3.
  const server = `http://127.0.0.1:${await closedPort()}`;
  const id = 'whk_00000000000000000000';
  const runs = await Promise.all([
    cli(['webhooks', 'create', '--url', 'http://127.0.0.1:9/h', '--event', 'seat.full', '--server', server]), // 0
    cli(['webhooks', 'create', '--url', 'http://127.0.0.1:9/h', '--event', 'ping,nope', '--server', server]), // 1
    cli(['webhooks', 'create', '--url', 'http://127.0.0.1:9/h', '--event', '*', '--server', server]), // 2
    cli(['webhooks', 'create', '--url', 'http://127.0.0.1:9/h', '--event', 'ping', '--all-events', '--server', server]), // 3
    cli(['webhooks', 'create', '--url', 'http://127.0.0.1:9/h', '--server', server]), // 4
    cli(['webhooks', 'create', '--url', 'ftp://example.com/h', '--all-events', '--server', server]), // 5
    cli(['webhooks', 'create', '--all-events', '--server', server]), // 6
    cli(['webhooks', 'update', id, '--event', 'bogus', '--server', server]), // 7
    cli(['webhooks', 'update', id, '--enable', '--disable', '--server', server]), // 8
    cli(['webhooks', 'update', id, '--server', server]), // 9
    cli(['webhooks', 'deliveries', id, '--state', 'lost', '--server', server]), // 10
  ]);
  assert.deepEqual(
    runs.map((r) => r.code),
    runs.map(() => 2),
    runs.map((r) => r.stderr).join('\n'),
  );
  for (const r of runs) assert.equal(r.stdout, '');
  assert.match(
    runs[0]!.stderr,
    /^floatd: option '--event <type>' argument 'seat\.full' is invalid\. unknown event type "seat\.full": expected seats\.full, /,
  );
  assert.match(runs[1]!.stderr, /unknown event type "nope"/);
  assert.match(runs[2]!.stderr, /use --all-events/);
  assert.match(runs[3]!.stderr, /^floatd: --event and --all-events exclude each other\n$/);
  assert.match(runs[4]!.stderr, /^floatd: webhooks create needs --event <type> \(repeatable\) or --all-events/);
  assert.match(
    runs[5]!.stderr,
    /^floatd: option '--url <url>' argument 'ftp:\/\/example\.com\/h' is invalid\. expected an http:\/\/ or https:\/\/ URL/,
  );
  assert.match(runs[6]!.stderr, /^floatd: required option '--url <url>' not specified/);
  assert.match(runs[7]!.stderr, /unknown event type "bogus"/);
  assert.match(runs[8]!.stderr, /^floatd: --enable and --disable exclude each other\n$/);
  assert.match(runs[9]!.stderr, /^floatd: webhooks update needs at least one option to change/);
  assert.match(
    runs[10]!.stderr,
    /^floatd: option '--state <state>' argument 'lost' is invalid\. Allowed choices are pending, delivered, failed/,
  );

  // the server's limit, named by the flag that set it (exit 1: the server refused)
  const long = await cli(['webhooks', 'create', '--url', 'http://127.0.0.1:9/h', '--all-events', '--description', 'x'.repeat(201)]);
  assert.equal(long.code, 1, long.stderr);
  assert.match(long.stderr, /^floatd: VALIDATION_FAILED: --description must NOT have more than 200 characters \(request req_\w+\)\n$/);
});
