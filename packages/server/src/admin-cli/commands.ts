/**
 * The admin commands of `floatd` (the same binary as `floatd serve`): products, keys, leases, reclaim,
 * audit, usage, tokens and status, over the admin HTTP API. See docs/cli.md.
 */
import { Command, InvalidArgumentError, Option, type CommanderError } from 'commander';
import * as W from '@floatd/protocol';
import type { TSchema } from '@sinclair/typebox';
import { AdminClient, CliError, describeError, EXIT } from './http.js';
import { resolveConnection, type ConnectionFlags } from './connection.js';
import { csv, keyValues, out, printJson, table, visibleLines, type Cell } from './output.js';
import { registerOnPremCommands } from './onprem.js';

// --- the answers we print: the protocol's types ----------------------------------------------------
type Page<T> = { items: T[]; nextCursor: string | null };
type Product = W.Product;
type License = W.License;
type Lease = W.Lease;
type AuditEvent = W.AuditEvent;
type AdminToken = W.AdminTokenInfo & { token?: string };
const A = W.routes.admin;
const O = W.routes.ops;

/** Taken from the wire schema, so the CLI never refuses a type the server knows. */
const AUDIT_TYPES: string[] = W.AuditType.anyOf.map((t) => String(t.const));
const ROLES: string[] = W.Role.anyOf.map((t) => String(t.const));
const PAGE_MAX = 500;

// --- option value parsers (a bad value is exit code 2, through commander) ---------------------------
function wholeNumber(what: string, min = 0) {
  return (v: string): number => {
    if (!/^\d{1,15}$/.test(v.trim())) throw new InvalidArgumentError(`${what} must be a whole number.`);
    const n = Number(v.trim());
    if (n < min) throw new InvalidArgumentError(`${what} must be at least ${min}.`);
    return n;
  };
}
/** `none` clears a nullable field. Commander turns a parser's `null` into '', hence a marker, mapped to null in policyBody. */
const NONE = Symbol('none');
function orNone<T>(parse: (v: string) => T) {
  return (v: string): T | typeof NONE => (v.trim().toLowerCase() === 'none' ? NONE : parse(v));
}
function timestamp(v: string): string {
  const s = v.trim();
  // A date alone (2027-01-31) is taken as midnight UTC; a date-time needs a zone (Z or +02:00).
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/i.test(s) || Number.isNaN(Date.parse(s))) {
    throw new InvalidArgumentError('expected an ISO 8601 time with a zone, e.g. 2027-01-31T00:00:00Z, or a date 2027-01-31 (UTC).');
  }
  return new Date(s).toISOString();
}
function jsonObject(v: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    throw new InvalidArgumentError('expected a JSON object, e.g. \'{"customer":"ACME"}\'.');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidArgumentError('expected a JSON object.');
  return parsed as Record<string, unknown>;
}

// --- plumbing ----------------------------------------------------------------------------------------
interface CommonOptions extends ConnectionFlags {
  json?: boolean;
}
interface Ctx {
  client: AdminClient;
  json: boolean;
  opts: Record<string, unknown>;
  args: string[];
}

const FOOTER = `
Connection (highest first): --server/--token, FLOATD_SERVER/FLOATD_TOKEN, the config file
(--config, $FLOATD_CONFIG or ~/.config/floatd/cli.json: {"server": "...", "token": "..."}),
then http://127.0.0.1:7070 and ./data/admin-token.
Exit codes: 0 ok, 1 refused by the server (4xx), 2 bad usage, 3 server unreachable or 5xx,
4 not authenticated (401) or not allowed (403). See docs/cli.md.`;

/** Commander's own errors (unknown option, missing argument, bad value) end with exit code 2; help with 0. */
export function onCommanderExit(err: CommanderError): never {
  process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
}

/** Commander's error lines start with `floatd: ` like every other error of the CLI. */
export const OUTPUT = { outputError: (str: string, write: (s: string) => void) => write(`floatd: ${str.replace(/^error: /, '')}`) };

/** Every command that talks to the server; the connection options are added last, so they close each help. */
const leaves: Command[] = [];

function addConnectionOptions(cmd: Command): void {
  cmd
    .option('--server <url>', 'server URL (FLOATD_SERVER; default http://127.0.0.1:7070)')
    .option('--token <token>', 'admin token (FLOATD_TOKEN; default ./data/admin-token)')
    .option('--config <file>', 'config file (FLOATD_CONFIG; default ~/.config/floatd/cli.json)')
    .option('--json', "print the server's JSON answer as one document");
}

function group(program: Command, name: string, description: string): Command {
  const cmd = new Command(name)
    .description(description)
    .exitOverride(onCommanderExit)
    .configureOutput(OUTPUT)
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', FOOTER);
  program.addCommand(cmd);
  return cmd;
}

/** A command that talks to the server: adds the connection options and `--json`, and runs `fn` with a client. */
function leaf(parent: Command, nameAndArgs: string, description: string, fn: (ctx: Ctx) => Promise<void>): Command {
  const cmd = parent.command(nameAndArgs).description(description);
  leaves.push(cmd);
  cmd
    .addHelpText('after', FOOTER)
    .configureOutput(OUTPUT)
    .exitOverride(onCommanderExit)
    .action(async (...a: unknown[]) => {
      const command = a[a.length - 1] as Command;
      // With globals: a subcommand of `usage <licenseId>` gets the options its parent parsed (commander reads them on either side).
      const opts = command.optsWithGlobals<CommonOptions & Record<string, unknown>>();
      const json = opts.json === true;
      try {
        const conn = resolveConnection(opts);
        const client = new AdminClient(conn.server, conn.token);
        await fn({ client, json, opts, args: command.args });
        process.exitCode = EXIT.ok;
      } catch (err) {
        process.exitCode = report(err, json);
      }
    });
  return cmd;
}

function report(err: unknown, json: boolean): number {
  if (err instanceof CliError) {
    if (json && err.answer && err.answer.body !== null) printJson(err.answer.body);
    // An error message may quote what a client or the server sent: shown escaped like everything else.
    for (const line of describeError(err)) process.stderr.write(`${visibleLines(line)}\n`);
    return err.exitCode;
  }
  process.stderr.write(`floatd: ${visibleLines(err instanceof Error ? err.message : String(err))}\n`);
  return EXIT.refused;
}

function arg(ctx: Ctx, i: number): string {
  const v = ctx.args[i];
  if (v === undefined) throw new CliError(`missing argument ${i + 1}`, EXIT.usage);
  return v;
}

/** A declared route that answers a page of items. */
type PagedRoute = W.RouteSpec & { method: 'GET'; responses: { 200: TSchema } };

/** GET a paginated list: one page, or every page with `all`. */
async function list<R extends PagedRoute>(ctx: Ctx, route: R, query: Record<string, string | number | undefined>): Promise<W.ReplyOf<R> & Page<unknown>> {
  type P = W.ReplyOf<R> & Page<unknown>;
  const all = ctx.opts.all === true;
  const limit = ctx.opts.limit as number | undefined;
  const get = async (q: Record<string, unknown>) => (await ctx.client.call(route, { query: q } as W.CallInput<R>)).body as P;
  if (!all) return get({ ...query, limit, cursor: ctx.opts.cursor as string | undefined });
  const items: unknown[] = [];
  let cursor: string | undefined;
  do {
    const page = await get({ ...query, limit: PAGE_MAX, cursor });
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return { items, nextCursor: null } as P;
}

function morePages(page: Page<unknown>): void {
  if (page.nextCursor) process.stderr.write(`floatd: more results: repeat with --cursor ${visibleLines(page.nextCursor)}, or use --all\n`);
}

function pagingOptions(cmd: Command, withAll = true): Command {
  cmd.option('--limit <n>', 'entries per page (1-500, default 50)', wholeNumber('--limit', 1)).option('--cursor <cursor>', 'the nextCursor of the previous page');
  if (withAll) cmd.option('--all', 'follow every page');
  return cmd;
}

/**
 * Where a command takes a license, it takes its `lic_…` id or the license key itself; where it takes a
 * product, its `prd_…` id or its name. A key or a name is found by reading the lists (the admin API has
 * no lookup by key, and a key in a query string would land in request logs).
 */
async function licenseRef(ctx: Ctx, ref: string): Promise<string> {
  const r = ref.trim();
  if (/^lic_[A-Za-z0-9]+$/.test(r)) return r;
  const all = await list({ ...ctx, opts: { all: true } }, A.listLicenses, {});
  const found = all.items.find((l) => l.key === r) ?? all.items.find((l) => l.key.toUpperCase() === r.toUpperCase());
  if (!found) throw new CliError(`no license key ${JSON.stringify(ref)} on this server (give the key, or its lic_… id from floatd keys list)`, EXIT.refused);
  return found.id;
}
async function productRef(ctx: Ctx, ref: string): Promise<string> {
  const r = ref.trim();
  if (/^prd_[A-Za-z0-9]+$/.test(r)) return r;
  const all = await list({ ...ctx, opts: { all: true } }, A.listProducts, {});
  let found = all.items.filter((p) => p.name === r);
  if (found.length === 0) found = all.items.filter((p) => p.name.toLowerCase() === r.toLowerCase());
  if (found.length === 0) throw new CliError(`no product named ${JSON.stringify(ref)} on this server (give its name or its prd_… id from floatd products list)`, EXIT.refused);
  if (found.length > 1) throw new CliError(`${found.length} products are named ${JSON.stringify(ref)}: give one of their ids (${found.map((p) => p.id).join(', ')})`, EXIT.refused);
  return found[0]!.id;
}


// --- products ------------------------------------------------------------------------------------
function productTable(items: Product[]): string {
  return table(['ID', 'NAME', 'CREATED', 'UPDATED'], items.map((p) => [p.id, p.name, p.createdAt, p.updatedAt]));
}
function productBlock(p: Product): string {
  return keyValues([
    ['id', p.id],
    ['name', p.name],
    ['metadata', JSON.stringify(p.metadata)],
    ['created', p.createdAt],
    ['updated', p.updatedAt],
  ]);
}
function show<T>(ctx: Ctx, body: T, human: (b: T) => string): void {
  if (ctx.json) printJson(body);
  else out(human(body));
}

function registerProducts(program: Command): void {
  const g = group(program, 'products', 'manage products (the applications that own license keys)');
  pagingOptions(
    leaf(g, 'list', 'list products, oldest first', async (ctx) => {
      const page = await list(ctx, A.listProducts, {});
      if (ctx.json) return printJson(page);
      out(productTable(page.items));
      morePages(page);
    }),
  );
  leaf(g, 'create <name>', 'create a product', async (ctx) => {
    const body: Record<string, unknown> = { name: arg(ctx, 0) };
    if (ctx.opts.metadata) body.metadata = ctx.opts.metadata;
    show(ctx, (await ctx.client.call(A.createProduct, { body: body as W.CreateProduct })).body, productBlock);
  }).option('--metadata <json>', 'a JSON object stored with the product', jsonObject);
  leaf(g, 'show <product>', 'show one product (its prd_… id or its name)', async (ctx) => {
    show(ctx, (await ctx.client.call(A.getProduct, { params: { productId: await productRef(ctx, arg(ctx, 0)) } })).body, productBlock);
  });
  leaf(g, 'rename <product> <name>', 'rename a product (its prd_… id or its name)', async (ctx) => {
    const res = await ctx.client.call(A.updateProduct, { params: { productId: await productRef(ctx, arg(ctx, 0)) }, body: { name: arg(ctx, 1) } });
    show(ctx, res.body, productBlock);
  });
  leaf(g, 'delete <product>', 'delete a product, by prd_… id or name (refused while it owns license keys)', async (ctx) => {
    const res = await ctx.client.call(A.deleteProduct, { params: { productId: await productRef(ctx, arg(ctx, 0)) } });
    show(ctx, res.body, () => `deleted ${arg(ctx, 0)}`);
  });
}

// --- keys ----------------------------------------------------------------------------------------
function ttl(s: number | null): string {
  return s === null ? 'none' : `${s}s`;
}
function keyTable(items: License[]): string {
  return table(
    ['ID', 'PRODUCT', 'KEY', 'MODEL', 'SEATS', 'OFFLINE', 'EXPIRES', 'STATE'],
    items.map((l) => [l.id, l.productId, l.key, l.model, `${l.seatsUsed}/${l.seats}`, l.seatsOffline, l.expiresAt, l.suspended ? 'suspended' : 'active']),
  );
}
function keyBlock(l: License): string {
  return keyValues([
    ['id', l.id],
    ['product', l.productId],
    ['key', l.key],
    ['state', l.suspended ? 'suspended' : 'active'],
    ['model', l.model],
    ['seats used', `${l.seatsUsed}/${l.seats}`],
    ['seats offline', l.seatsOffline],
    ['expires', l.expiresAt],
    ['trial days', l.trialDays],
    ['trial started', l.trialStartedAt],
    ['lease ttl', ttl(l.leaseTtlSeconds)],
    ['heartbeat', `${l.heartbeatIntervalSeconds}s`],
    ['max offline', `${l.maxOfflineSeconds}s`],
    ['max offline seats', l.maxOfflineSeats],
    ['max instances', l.maxInstancesPerDevice],
    ['counting', l.counting],
    ['metadata', JSON.stringify(l.metadata)],
    ['created', l.createdAt],
    ['updated', l.updatedAt],
  ]);
}

function policyOptions(cmd: Command, create: boolean): Command {
  if (create) cmd.requiredOption('--seats <n>', 'number of seats (1-1000000)', wholeNumber('--seats', 1));
  else cmd.option('--seats <n>', 'number of seats (1-1000000)', wholeNumber('--seats', 1));
  return cmd
    .addOption(new Option('--model <model>', 'license model (default permanent)').choices(['permanent', 'subscription', 'trial']))
    .option('--expires-at <time|none>', 'subscription end, ISO 8601 (UTC if no zone is given for a date)', orNone(timestamp))
    .option('--trial-days <n|none>', 'trial length in days, counted from the first checkout', orNone(wholeNumber('--trial-days', 1)))
    .option('--lease-ttl <s|none>', 'lease lifetime without a heartbeat in seconds, or none (default 900)', orNone(wholeNumber('--lease-ttl', 1)))
    .option('--heartbeat <s>', 'heartbeat interval told to clients, seconds (default TTL/3)', wholeNumber('--heartbeat', 1))
    .option('--max-offline <s>', 'longest offline checkout in seconds; 0 forbids it (default 0)', wholeNumber('--max-offline'))
    .option('--max-offline-seats <n|none>', 'cap on seats offline at once (default none)', orNone(wholeNumber('--max-offline-seats')))
    .option('--max-instances <n>', 'instances per device (default 10)', wholeNumber('--max-instances', 1))
    .addOption(new Option('--counting <mode>', 'seat counting (default per-device)').choices(['per-device', 'per-instance']))
    .option('--metadata <json>', 'a JSON object stored with the key (replaces the old one)', jsonObject);
}

/** The API field each policy flag sets: an error about a field is reported with the flag that set it. */
const POLICY_FLAGS: [string, string, string][] = [
  ['seats', 'seats', '--seats'],
  ['model', 'model', '--model'],
  ['expiresAt', 'expiresAt', '--expires-at'],
  ['trialDays', 'trialDays', '--trial-days'],
  ['leaseTtl', 'leaseTtlSeconds', '--lease-ttl'],
  ['heartbeat', 'heartbeatIntervalSeconds', '--heartbeat'],
  ['maxOffline', 'maxOfflineSeconds', '--max-offline'],
  ['maxOfflineSeats', 'maxOfflineSeats', '--max-offline-seats'],
  ['maxInstances', 'maxInstancesPerDevice', '--max-instances'],
  ['counting', 'counting', '--counting'],
  ['metadata', 'metadata', '--metadata'],
];

/**
 * Rewrites the API field names in a refusal (`expiresAt`, `body/seats`) into the flags that set them, so
 * `--expires-at is only for subscriptions` reads as the command line was typed. Plain words (seats,
 * model) are rewritten only as a validation path (`body/seats`): in a sentence they are just words.
 */
async function policyRequest<T>(request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (err) {
    const answer = err instanceof CliError ? err.answer : undefined;
    if (!(err instanceof CliError) || !answer || (answer.code !== 'INVALID_POLICY' && answer.code !== 'VALIDATION_FAILED')) throw err;
    let message = err.message;
    for (const [, field, flag] of POLICY_FLAGS) {
      const pattern = /[A-Z]/.test(field) ? `(?:/?body/)?\\b${field}\\b` : `/?body/${field}\\b`;
      message = message.replace(new RegExp(pattern, 'g'), flag);
    }
    if (message === err.message) throw err;
    throw CliError.refused(answer, message);
  }
}

function policyBody(o: Record<string, unknown>): Record<string, unknown> {
  const map: [string, string][] = [
    ['seats', 'seats'],
    ['model', 'model'],
    ['expiresAt', 'expiresAt'],
    ['trialDays', 'trialDays'],
    ['leaseTtl', 'leaseTtlSeconds'],
    ['heartbeat', 'heartbeatIntervalSeconds'],
    ['maxOffline', 'maxOfflineSeconds'],
    ['maxOfflineSeats', 'maxOfflineSeats'],
    ['maxInstances', 'maxInstancesPerDevice'],
    ['counting', 'counting'],
    ['metadata', 'metadata'],
  ];
  const body: Record<string, unknown> = {};
  for (const [opt, field] of map) if (o[opt] !== undefined) body[field] = o[opt] === NONE ? null : o[opt];
  return body;
}

function registerKeys(program: Command): void {
  const g = group(program, 'keys', 'manage license keys');
  pagingOptions(
    leaf(g, 'list', 'list license keys, oldest first', async (ctx) => {
      const product = ctx.opts.product === undefined ? undefined : await productRef(ctx, ctx.opts.product as string);
      const page = await list(ctx, A.listLicenses, { productId: product });
      if (ctx.json) return printJson(page);
      out(keyTable(page.items));
      morePages(page);
    }).option('--product <product>', "only this product's keys (its prd_… id or its name)"),
  );
  policyOptions(
    leaf(g, 'create', 'create a license key (the server generates the key)', async (ctx) => {
      const body = { productId: await productRef(ctx, ctx.opts.product as string), ...policyBody(ctx.opts) };
      show(ctx, (await policyRequest(() => ctx.client.call(A.createLicense, { body: body as W.CreateLicense }))).body, keyBlock);
    }).requiredOption('--product <product>', 'the product that owns the key (its prd_… id or its name)'),
    true,
  );
  leaf(g, 'show <license>', 'show one license key (the key or its lic_… id)', async (ctx) => {
    show(ctx, (await ctx.client.call(A.getLicense, { params: { licenseId: await licenseRef(ctx, arg(ctx, 0)) } })).body, keyBlock);
  });
  policyOptions(
    leaf(g, 'update <license>', "change a key's policy (only the options given; none clears a field)", async (ctx) => {
      const body = policyBody(ctx.opts);
      if (Object.keys(body).length === 0) throw new CliError('keys update needs at least one option to change (see floatd keys update --help)', EXIT.usage);
      const id = await licenseRef(ctx, arg(ctx, 0));
      show(ctx, (await policyRequest(() => ctx.client.call(A.updateLicense, { params: { licenseId: id }, body: body as W.UpdateLicense }))).body, keyBlock);
    }),
    false,
  );
  for (const [verb, done, what] of [
    ['suspend', 'suspended', 'suspend a key: checkouts and heartbeats are refused, held leases stay'],
    ['resume', 'resumed', 'lift a suspension'],
  ] as const) {
    leaf(g, `${verb} <license>`, what, async (ctx) => {
      const res = await ctx.client.call(verb === 'suspend' ? A.suspendLicense : A.resumeLicense, { params: { licenseId: await licenseRef(ctx, arg(ctx, 0)) } });
      show(ctx, res.body, (l) => `${done} ${l.id} (${l.key})`);
    });
  }
  leaf(g, 'delete <license>', 'delete a key, by key or lic_… id (refused while seats are held, unless --force)', async (ctx) => {
    const id = await licenseRef(ctx, arg(ctx, 0));
    const res = await ctx.client.call(A.deleteLicense, { params: { licenseId: id }, query: ctx.opts.force === true ? { force: true } : {} });
    show(ctx, res.body, (b) => `deleted ${id}; released ${b.released} lease(s)`);
  }).option('--force', 'release every held seat, then delete');
}

// --- leases --------------------------------------------------------------------------------------
function registerLeases(program: Command): void {
  const g = group(program, 'leases', 'list and release the seats held on a key');
  leaf(g, 'list <license>', 'leases held on a key (the key or its lic_… id), oldest grant first (includes expired ones not yet reclaimed)', async (ctx) => {
    const res = await ctx.client.call(A.listLeases, { params: { licenseId: await licenseRef(ctx, arg(ctx, 0)) } });
    show(ctx, res.body, (b) =>
      table(
        ['LEASE', 'DEVICE', 'HOSTNAME', 'USER', 'OFFLINE', 'INSTANCES', 'GRANTED', 'LAST ACCESSED', 'EXPIRES'],
        b.items.map((l) => [l.id, l.deviceId, l.hostname, l.user, l.offline, l.instanceCount, l.grantedAt, l.lastAccessedAt, l.expiresAt ?? 'never']),
      ),
    );
  });
  leaf(g, 'release <leaseId>', 'free a seat now (an offline lease before its OED needs --force)', async (ctx) => {
    const res = await ctx.client.call(A.releaseLease, { params: { leaseId: arg(ctx, 0) }, body: ctx.opts.force === true ? { force: true } : {} });
    show(ctx, res.body, (b) => `released ${b.leaseId}${b.offlineOverridden ? ' (an unexpired offline lease: forced)' : ''}`);
  }).option('--force', 'also release an offline lease before its Offline Expiry Date');
}

// --- reclaim -------------------------------------------------------------------------------------
function registerReclaim(program: Command): void {
  const g = group(program, 'reclaim', 'reclamation of the seats of silent holders');
  leaf(g, 'run', 'run a reclamation sweep now and show what it freed', async (ctx) => {
    const res = await ctx.client.call(A.reclaimNow, {});
    show(ctx, res.body, (b) => {
      const head = `freed ${b.freed.length} lease(s), dropped ${b.instancesDropped} instance(s) at ${b.ranAt}`;
      return b.freed.length ? `${head}\n\n${table(['LEASE', 'LICENSE', 'DEVICE', 'REASON'], b.freed.map((f) => [f.leaseId, f.licenseId, f.deviceId, f.reason]))}` : head;
    });
  });
  leaf(g, 'settings', 'show the reclamation interval and server settings', async (ctx) => {
    const res = await ctx.client.call(A.settings, {});
    show(ctx, res.body, (s) =>
      keyValues([
        ['reclaim interval', `${s.reclaimIntervalSeconds}s`],
        ['version', s.version],
        ['store', s.store],
        ['server time', s.serverTime],
      ]),
    );
  });
}

// --- audit, usage --------------------------------------------------------------------------------
function registerHistory(program: Command): void {
  const audit = leaf(program, 'audit', 'the audit log, newest first', async (ctx) => {
    const o = ctx.opts;
    const page = await list(ctx, A.listAudit, {
      licenseId: o.key === undefined ? undefined : await licenseRef(ctx, o.key as string),
      deviceId: o.device as string | undefined,
      leaseId: o.lease as string | undefined,
      type: o.type as string | undefined,
      actor: o.actor as string | undefined,
      from: o.from as string | undefined,
      to: o.to as string | undefined,
    });
    if (ctx.json) return printJson(page);
    out(
      table(
        ['ID', 'AT', 'TYPE', 'ACTOR', 'LICENSE', 'DEVICE', 'LEASE', 'REASON'],
        page.items.map((e) => [e.id, e.at, e.type, e.actor, e.licenseId, e.deviceId, e.leaseId, e.reason]),
      ),
    );
    morePages(page);
  })
    .option('--key <license>', 'only events about this license key (the key or its lic_… id)')
    .option('--device <deviceId>', 'only events about this device')
    .option('--lease <leaseId>', 'only events about this lease')
    .option('--actor <actor>', 'only events by this actor: client, reclaimer or admin:<token id>')
    .addOption(new Option('--type <type>', 'only events of this type').choices(AUDIT_TYPES))
    .option('--from <time>', 'from this time (inclusive), ISO 8601', timestamp)
    .option('--to <time>', 'up to this time (exclusive), ISO 8601', timestamp);
  pagingOptions(audit);

  leaf(program, 'usage <license>', 'seats in use per hour on a key, the key or its lic_… id (default the last 24 hours)', async (ctx) => {
    if (ctx.opts.csv && ctx.json) throw new CliError('--csv and --json exclude each other', EXIT.usage);
    const res = await ctx.client.call(A.licenseUsage, {
      params: { licenseId: await licenseRef(ctx, arg(ctx, 0)) },
      query: { from: ctx.opts.from as string | undefined, to: ctx.opts.to as string | undefined },
    });
    const rows: Cell[][] = res.body.items.map((h) => [h.hour, h.peakSeats, h.seatsAtEnd, h.checkouts, h.denials]);
    if (ctx.opts.csv) return out(csv(['hour', 'peakSeats', 'seatsAtEnd', 'checkouts', 'denials'], rows));
    show(
      ctx,
      res.body,
      (b) => `${table(['HOUR', 'PEAK', 'AT END', 'CHECKOUTS', 'DENIALS'], rows)}\n\npeak ${b.peakSeats} seat(s), ${b.checkouts} checkout(s), ${b.denials} denial(s)`,
    );
  })
    .option('--from <time>', 'start, ISO 8601 (default: 24 hours before --to)', timestamp)
    .option('--to <time>', 'end, ISO 8601 (default: now)', timestamp)
    .option('--csv', 'print CSV: hour,peakSeats,seatsAtEnd,checkouts,denials');
}

// --- tokens --------------------------------------------------------------------------------------
function tokenBlock(t: AdminToken): string {
  return keyValues([
    ['id', t.id],
    ['name', t.name],
    ['role', t.role],
    ['created', t.createdAt],
    ['last used', t.lastUsedAt],
    ['revoked', t.revokedAt],
  ]);
}

function registerTokens(program: Command): void {
  const g = group(program, 'tokens', 'admin tokens and their roles (admin, operator, viewer)');
  leaf(g, 'list', 'list admin tokens (never their secrets)', async (ctx) => {
    const res = await ctx.client.call(A.listTokens, {});
    show(ctx, res.body, (b) =>
      table(['ID', 'NAME', 'ROLE', 'CREATED', 'LAST USED', 'REVOKED'], b.items.map((t) => [t.id, t.name, t.role, t.createdAt, t.lastUsedAt, t.revokedAt])),
    );
  });
  leaf(g, 'create', 'create an admin token; its secret is printed this once', async (ctx) => {
    const res = await ctx.client.call(A.createToken, { body: { name: ctx.opts.name as string, role: ctx.opts.role as W.Role } });
    if (ctx.json) return printJson(res.body);
    out(`${tokenBlock(res.body)}\n\ntoken  ${res.body.token ?? ''}`);
    process.stderr.write('floatd: the token secret above is shown only this once; keep it now\n');
  })
    .requiredOption('--name <name>', 'a name for the token (1-100 characters)')
    .addOption(new Option('--role <role>', 'what the token may do').choices(ROLES).makeOptionMandatory());
  leaf(g, 'revoke <tokenId>', 'revoke an admin token at once', async (ctx) => {
    const res = await ctx.client.call(A.revokeToken, { params: { tokenId: arg(ctx, 0) } });
    show(ctx, res.body, (t) => `revoked ${t.id} (${t.name}, ${t.role}) at ${t.revokedAt ?? '-'}`);
  });
}

// --- status --------------------------------------------------------------------------------------
function registerStatus(program: Command): void {
  leaf(program, 'status', 'server health and readiness, and seats in use per key', async (ctx) => {
    const health = await ctx.client.call(O.healthz, {});
    // 503 is an answer here (not ready), not a failure: its envelope is shown.
    const ready = await ctx.client.call(O.readyz, {}, { accept: [503] });
    const dashboard = await list({ ...ctx, opts: { all: true } }, A.dashboard, {});
    if (ctx.json) {
      printJson({ server: ctx.client.server, healthz: health.body, readyz: ready.body, dashboard });
    } else {
      const used = dashboard.items.reduce((n, r) => n + r.license.seatsUsed, 0);
      const total = dashboard.items.reduce((n, r) => n + r.license.seats, 0);
      out(
        keyValues([
          ['server', ctx.client.server],
          ['version', health.body.version],
          ['health', health.body.status],
          ['ready', ready.status === 200 ? `${ready.body.status} (${ready.body.store})` : `no: ${(ready.body as { error?: { message?: string } }).error?.message ?? `HTTP ${ready.status}`}`],
          ['keys', dashboard.items.length],
          ['seats used', `${used}/${total}`],
        ]),
      );
      if (dashboard.items.length) {
        out(
          '\n' +
            table(
              ['LICENSE', 'PRODUCT', 'KEY', 'SEATS', 'OFFLINE', 'DENIALS TODAY', 'STATE'],
              dashboard.items.map((r) => [
                r.license.id,
                r.productName ?? r.license.productId,
                r.license.key,
                `${r.license.seatsUsed}/${r.license.seats}`,
                r.license.seatsOffline,
                r.denialsToday,
                r.license.suspended ? 'suspended' : 'active',
              ]),
            ),
        );
      }
    }
    if (ready.status !== 200) throw new CliError('the server is not ready', EXIT.unreachable);
  });
}

/** Adds the admin commands to the `floatd` program. */
export function registerAdminCommands(program: Command): void {
  registerProducts(program);
  registerKeys(program);
  registerLeases(program);
  registerReclaim(program);
  registerHistory(program);
  registerTokens(program);
  registerStatus(program);
  registerOnPremCommands(program, { group, leaf, timestamp });
  for (const cmd of leaves.splice(0)) addConnectionOptions(cmd);
}
