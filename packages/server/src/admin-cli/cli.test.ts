/**
 * The admin commands end to end: a real `floatd serve` process, and the CLI run as real child processes
 * (`node dist/cli.js <command>`), asserting on stdout, stderr and exit codes (docs/cli.md).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  assert.match(lines[0] ?? '', /^ID\s+PRODUCT\s+KEY\s+MODEL\s+SEATS\s+OFFLINE\s+EXPIRES\s+STATE$/);
  assert.equal(lines.length, 2);
  assert.match(lines[1] ?? '', new RegExp(`^${licenseId}\\s+${productId}\\s+${licenseKey}\\s+permanent\\s+0/3\\s+0\\s+-\\s+active$`));
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
