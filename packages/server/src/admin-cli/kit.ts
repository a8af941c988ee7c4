/**
 * The plumbing every admin command shares: its place in the command tree, the connection
 * and `--json` options, running it with a client and turning its failure into the
 * documented exit code, pagination, and finding a license, product or customer by what the user typed.
 */
import { Command, type CommanderError } from 'commander';
import * as protocol from '@floatd/protocol';
import type { TSchema } from '@sinclair/typebox';
import { AdminClient, CliError, describeError, EXIT } from './http.js';
import { resolveConnection, type ConnectionFlags } from './connection.js';
import { out, printJson, visibleLines } from './output.js';
import { wholeNumber } from './parsers.js';

type Page<T> = protocol.Page<T>;
const A = protocol.routes.admin;
const PAGE_MAX = 500;

interface CommonOptions extends ConnectionFlags {
  json?: boolean;
}
export interface Ctx {
  client: AdminClient;
  json: boolean;
  opts: Record<string, unknown>;
  args: string[];
}

export const FOOTER = `
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

function addConnectionOptions(cmd: Command): void {
  cmd
    .option('--server <url>', 'server URL (FLOATD_SERVER; default http://127.0.0.1:7070)')
    .option('--token <token>', 'admin token (FLOATD_TOKEN; default ./data/admin-token)')
    .option('--config <file>', 'config file (FLOATD_CONFIG; default ~/.config/floatd/cli.json)')
    .option('--json', "print the server's JSON answer as one document");
}

/**
 * Builds the command tree: groups, and leaves (commands that talk to the server). The
 * connection options are added to every leaf at the end (`finish`), so they close each help.
 * One kit per program: nothing is kept between programs.
 */
export class CommandKit {
  private readonly leaves: Command[] = [];

  group(program: Command, name: string, description: string): Command {
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
  leaf(parent: Command, nameAndArgs: string, description: string, fn: (ctx: Ctx) => Promise<void>): Command {
    const cmd = parent.command(nameAndArgs).description(description);
    this.leaves.push(cmd);
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

  /** Adds the connection options to every leaf made so far. */
  finish(): void {
    for (const cmd of this.leaves.splice(0)) addConnectionOptions(cmd);
  }
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

export function arg(ctx: Ctx, i: number): string {
  const v = ctx.args[i];
  if (v === undefined) throw new CliError(`missing argument ${i + 1}`, EXIT.usage);
  return v;
}

/** A declared route that answers a page of items. */
type PagedRoute = protocol.RouteSpec & { method: 'GET'; responses: { 200: TSchema } };

/** GET a paginated list: one page, or every page with `all`. `params`: the route's path parameters, if it has any. */
export async function list<R extends PagedRoute>(
  ctx: Ctx,
  route: R,
  query: Record<string, string | number | undefined>,
  params?: Record<string, string>,
): Promise<protocol.ReplyOf<R> & Page<unknown>> {
  type P = protocol.ReplyOf<R> & Page<unknown>;
  const all = ctx.opts.all === true;
  const limit = ctx.opts.limit as number | undefined;
  const get = async (q: Record<string, unknown>) =>
    (await ctx.client.call(route, (params ? { params, query: q } : { query: q }) as protocol.CallInput<R>)).body as P;
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

export function morePages(page: Page<unknown>): void {
  if (page.nextCursor) process.stderr.write(`floatd: more results: repeat with --cursor ${visibleLines(page.nextCursor)}, or use --all\n`);
}

export function pagingOptions(cmd: Command, withAll = true): Command {
  cmd
    .option('--limit <n>', 'entries per page (1-500, default 50)', wholeNumber('--limit', 1))
    .option('--cursor <cursor>', 'the nextCursor of the previous page');
  if (withAll) cmd.option('--all', 'follow every page');
  return cmd;
}

/**
 * Where a command takes a license, it takes its `lic_…` id or the license key itself; where it takes a
 * product, its `prd_…` id or its name. A key or a name is found by reading the lists (the admin API has
 * no lookup by key, and a key in a query string would land in request logs).
 */
export async function licenseRef(ctx: Ctx, ref: string): Promise<string> {
  const r = ref.trim();
  if (/^lic_[A-Za-z0-9]+$/.test(r)) return r;
  const all = await list({ ...ctx, opts: { all: true } }, A.listLicenses, {});
  const found = all.items.find((l) => l.key === r) ?? all.items.find((l) => l.key.toUpperCase() === r.toUpperCase());
  if (!found)
    throw new CliError(
      `no license with key ${JSON.stringify(ref)} on this server (give its key, or its lic_… id from floatd licenses list)`,
      EXIT.refused,
    );
  return found.id;
}
export async function productRef(ctx: Ctx, ref: string): Promise<string> {
  const r = ref.trim();
  if (/^prd_[A-Za-z0-9]+$/.test(r)) return r;
  const all = await list({ ...ctx, opts: { all: true } }, A.listProducts, {});
  let found = all.items.filter((p) => p.name === r);
  if (found.length === 0) found = all.items.filter((p) => p.name.toLowerCase() === r.toLowerCase());
  if (found.length === 0)
    throw new CliError(
      `no product named ${JSON.stringify(ref)} on this server (give its name or its prd_… id from floatd products list)`,
      EXIT.refused,
    );
  if (found.length > 1)
    throw new CliError(
      `${found.length} products are named ${JSON.stringify(ref)}: give one of their ids (${found.map((p) => p.id).join(', ')})`,
      EXIT.refused,
    );
  return found[0]!.id;
}

/**
 * Where a command takes a customer, it takes its `cus_…` id or its name (exact first, then in any case). A name is
 * found with the customer search (`q`), which also matches keys and hosts: only a customer of that very name counts.
 */
export async function customerRef(ctx: Ctx, ref: string): Promise<string> {
  const r = ref.trim();
  if (/^cus_[0-9A-Za-z]{20}$/.test(r)) return r;
  const hint = 'give its name or its cus_… id from floatd customers list';
  if (r === '') throw new CliError(`a customer is named by its name or its cus_… id, not an empty string`, EXIT.usage);
  // A name is at most 200 characters: a longer one names no customer (and the search would refuse it).
  const all = r.length > 200 ? { items: [] } : await list({ ...ctx, opts: { all: true } }, A.listCustomers, { q: r });
  let found = all.items.filter((c) => c.name === r);
  if (found.length === 0) found = all.items.filter((c) => c.name.toLowerCase() === r.toLowerCase());
  if (found.length === 0) throw new CliError(`no customer named ${JSON.stringify(ref)} on this server (${hint})`, EXIT.refused);
  if (found.length > 1)
    throw new CliError(
      `${found.length} customers are named ${JSON.stringify(ref)}: give one of their ids (${found.map((c) => c.id).join(', ')})`,
      EXIT.refused,
    );
  return found[0]!.id;
}

/** The answer as JSON with --json, else as `human` prints it. */
export function show<T>(ctx: Ctx, body: T, human: (b: T) => string): void {
  if (ctx.json) printJson(body);
  else out(human(body));
}

/**
 * Runs an API call whose refusal names fields (`body/url`, `expiresAt`) and rewrites those names into the flags that
 * set them, so the message reads as the command line was typed. Only refusals with one of `codes`; a refusal that
 * names none of the fields is passed on as it came.
 */
export async function withFlagNames<T>(
  request: () => Promise<T>,
  flags: readonly (readonly [RegExp, string])[],
  codes: readonly string[] = ['VALIDATION_FAILED'],
): Promise<T> {
  try {
    return await request();
  } catch (err) {
    const answer = err instanceof CliError ? err.answer : undefined;
    if (!answer || !codes.includes(answer.code)) throw err;
    const message = flags.reduce((m, [pattern, flag]) => m.replace(pattern, flag), (err as CliError).message);
    if (message === (err as CliError).message) throw err;
    throw CliError.refused(answer, message);
  }
}
