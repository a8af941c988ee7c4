/**
 * `floatd licenses …` (old name `keys`, kept as an alias): the license records, their policy,
 * suspension and deletion.
 */
import { Option, type Command } from 'commander';
import * as protocol from '@floatd/protocol';
import { describeRule } from '../domain/sharing.js';
import { CliError, EXIT } from './http.js';
import { arg, customerRef, licenseRef, list, morePages, pagingOptions, productRef, show, withFlagNames, type CommandKit } from './kit.js';
import { featurePool, jsonObject, NONE, orNone, principalCount, principals, shareAttributes, timestamp, wholeNumber } from './parsers.js';
import { keyValues, out, printJson, table } from './output.js';

type License = protocol.License;
const A = protocol.routes.admin;

function ttl(s: number | null): string {
  return s === null ? 'none' : `${s}s`;
}
function licenseTable(items: License[]): string {
  return table(
    ['ID', 'CUSTOMER', 'PRODUCT', 'KEY', 'MODEL', 'SEATS', 'OFFLINE', 'EXPIRES', 'STATE'],
    items.map((l) => [
      l.id,
      l.customerId,
      l.productId,
      l.key,
      l.model,
      `${l.seatsUsed}/${l.seats}`,
      l.seatsOffline,
      l.expiresAt,
      l.suspended ? 'suspended' : 'active',
    ]),
  );
}
function licenseBlock(l: License): string {
  return keyValues([
    ['id', l.id],
    ['customer', l.customerId],
    ['product', l.productId],
    ['key', l.key],
    ['state', l.suspended ? 'suspended' : 'active'],
    ['model', l.model],
    ['seats used', `${l.seatsUsed}/${l.seats}`],
    ['seats offline', l.seatsOffline],
    ['waiting', l.waiting],
    ['expires', l.expiresAt],
    ['trial days', l.trialDays],
    ['trial started', l.trialStartedAt],
    ['lease ttl', ttl(l.leaseTtlSeconds)],
    ['heartbeat', `${l.heartbeatIntervalSeconds}s`],
    ['max offline', `${l.maxOfflineSeconds}s`],
    ['max offline seats', l.maxOfflineSeats],
    ['max instances', l.maxInstancesPerDevice],
    ['counting', l.counting],
    ['sharing', describeRule(l.sharing)],
    ['clone policy', l.clonePolicy],
    ['vm policy', l.vmPolicy],
    ['linger', l.lingerSeconds ? `${l.lingerSeconds}s` : 'none'],
    ['overdraft', l.overdraftSeats ? `${l.overdraftSeats} seat(s)` : 'none'],
    [
      'features',
      l.features
        .map(
          (f) =>
            `${f.name} ${l.featureSeatsUsed[f.name] ?? 0}/${f.seats}` +
            (f.counting === 'instance' ? ' per instance' : '') +
            (f.leaseTtlSeconds !== undefined ? ` ttl ${f.leaseTtlSeconds}s` : '') +
            (f.access?.allow ? ` allow ${f.access.allow.join(',')}` : '') +
            (f.access?.deny.length ? ` deny ${f.access.deny.join(',')}` : '') +
            (f.access?.limits.length ? ` limit ${f.access.limits.map((x) => `${x.principal}<=${x.max}`).join(',')}` : '') +
            (f.access?.reservations.length ? ` reserve ${f.access.reservations.map((x) => `${x.principal}:${x.seats}`).join(',')}` : ''),
        )
        .join(', ') || 'none',
    ],
    ['allow', l.access.allow === null ? 'everyone' : l.access.allow.join(', ') || 'no one'],
    ['deny', l.access.deny.join(', ') || 'none'],
    ['limits', l.access.limits.map((x) => `${x.principal} <= ${x.max}`).join(', ') || 'none'],
    ['reservations', l.access.reservations.map((x) => `${x.principal}: ${x.seats}`).join(', ') || 'none'],
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
    .option(
      '--lease-ttl <s|none>',
      'lease lifetime without a heartbeat in seconds, or none (default 900)',
      orNone(wholeNumber('--lease-ttl', 1)),
    )
    .option('--heartbeat <s>', 'heartbeat interval told to clients, seconds (default TTL/3)', wholeNumber('--heartbeat', 1))
    .option('--max-offline <s>', 'longest offline checkout in seconds; 0 forbids it (default 0)', wholeNumber('--max-offline'))
    .option('--max-offline-seats <n|none>', 'cap on seats offline at once (default none)', orNone(wholeNumber('--max-offline-seats')))
    .option('--max-instances <n>', 'instances per device (default 10)', wholeNumber('--max-instances', 1))
    .addOption(new Option('--counting <mode>', 'seat counting (default per-device)').choices(['per-device', 'per-instance']))
    .option(
      '--share-by <attrs>',
      'which uses share one seat: device, user, host, display, key (any mix, comma separated), or instance, or site',
      shareAttributes,
    )
    .option(
      '--share-cap <n|none>',
      'most uses on one seat under the sharing rule (needs --share-by)',
      orNone(wholeNumber('--share-cap', 1)),
    )
    .addOption(
      new Option('--clone-policy <policy>', 'one fingerprint from several machines (default separate)').choices([
        'separate',
        'refuse',
        'allow',
      ]),
    )
    .addOption(
      new Option('--vm-policy <policy>', 'uses in a VM or container (default allow)').choices(['allow', 'count-per-instance', 'deny']),
    )
    .option('--linger <s>', 'after the last use checks in, hold the seat this long for its group (default 0)', wholeNumber('--linger'))
    .option('--overdraft <n>', 'seats granted beyond the count when the pool is full (default 0)', wholeNumber('--overdraft'))
    .option(
      '--feature <name=seats>',
      'a feature pool beside the base seats, with its own seat count (repeatable; replaces every feature)',
      featurePool,
    )
    .option('--no-features', 'remove every feature pool')
    .option(
      '--allow <principals|everyone>',
      'only these may check out: user:<name>, host:<name>, group:<name>, comma separated',
      (v: string) => (v.trim().toLowerCase() === 'everyone' ? NONE : principals(v)),
    )
    .option('--deny <principals|none>', 'these may not check out (comma separated)', (v: string) =>
      v.trim().toLowerCase() === 'none' ? [] : principals(v),
    )
    .option(
      '--limit <principal=max>',
      'most seats a user, host or group holds at once (repeatable; max 0 blocks)',
      principalCount('--limit'),
    )
    .option('--reserve <principal=seats>', 'seats kept for a user, host or group (repeatable)', principalCount('--reserve'))
    .option('--no-limits', 'remove every maximum')
    .option('--no-reservations', 'remove every reservation')
    .option('--metadata <json>', 'a JSON object stored with the license (replaces the old one)', jsonObject);
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
  ['shareBy', 'sharing', '--share-by'],
  ['clonePolicy', 'clonePolicy', '--clone-policy'],
  ['vmPolicy', 'vmPolicy', '--vm-policy'],
  ['linger', 'lingerSeconds', '--linger'],
  ['overdraft', 'overdraftSeats', '--overdraft'],
  ['feature', 'features', '--feature'],
  ['allow', 'access', '--allow'],
  ['metadata', 'metadata', '--metadata'],
];

/**
 * Rewrites the API field names in a refusal (`expiresAt`, `body/seats`) into the flags that set them, so
 * `--expires-at is only for subscriptions` reads as the command line was typed. Plain words (seats,
 * model) are rewritten only as a validation path (`body/seats`): in a sentence they are just words.
 */
const POLICY_FLAG_NAMES = POLICY_FLAGS.map(([, field, flag]) => {
  const pattern = /[A-Z]/.test(field) ? `(?:/?body/)?\\b${field}\\b` : `/?body/${field}\\b`;
  return [new RegExp(pattern, 'g'), flag] as const;
});
const policyRequest = <T>(request: () => Promise<T>): Promise<T> =>
  withFlagNames(request, POLICY_FLAG_NAMES, ['INVALID_POLICY', 'VALIDATION_FAILED']);

function policyBody(options: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [opt, field] of POLICY_FLAGS) {
    if (opt === 'shareBy' || opt === 'allow' || options[opt] === undefined) continue;
    body[field] = options[opt] === NONE ? null : options[opt];
  }
  if (options.features === false) {
    if (options.feature !== undefined) throw new CliError('--feature and --no-features exclude each other', EXIT.usage);
    body.features = [];
  }
  if (options.shareCap !== undefined && options.shareBy === undefined)
    throw new CliError('--share-cap needs --share-by (the whole rule is set at once)', EXIT.usage);
  if (options.shareBy !== undefined)
    body.sharing = { by: options.shareBy, cap: options.shareCap === undefined || options.shareCap === NONE ? null : options.shareCap };
  return body;
}

/**
 * The access policy the flags ask for, on top of `current` (the license's, on update): a flag replaces its
 * part, the others stay. Undefined when no access flag was given.
 */
function accessOf(options: Record<string, unknown>, current: protocol.AccessPolicy): protocol.AccessPolicy | undefined {
  const given =
    ['allow', 'deny', 'limit', 'reserve'].some((k) => options[k] !== undefined) ||
    options.limits === false ||
    options.reservations === false;
  if (!given) return undefined;
  const counts = (v: unknown) => v as { principal: string; n: number }[];
  return {
    allow: options.allow === undefined ? current.allow : options.allow === NONE ? null : (options.allow as string[]),
    deny: options.deny === undefined ? current.deny : (options.deny as string[]),
    limits:
      options.limits === false
        ? []
        : options.limit === undefined
          ? current.limits
          : counts(options.limit).map(({ principal, n }) => ({ principal, max: n })),
    reservations:
      options.reservations === false
        ? []
        : options.reserve === undefined
          ? current.reservations
          : counts(options.reserve).map(({ principal, n }) => ({ principal, seats: n })),
  };
}

export function registerLicenses(program: Command, kit: CommandKit): void {
  // `keys` was this group's first name: scripts and notes that use it keep working.
  const g = kit
    .group(program, 'licenses', 'manage licenses (what a customer bought: seats, model, policy; each has a license key)')
    .alias('keys');
  pagingOptions(
    kit
      .leaf(g, 'list', 'list licenses, oldest first', async (ctx) => {
        const product = ctx.opts.product === undefined ? undefined : await productRef(ctx, ctx.opts.product as string);
        const customer = ctx.opts.customer === undefined ? undefined : await customerRef(ctx, ctx.opts.customer as string);
        const page = await list(ctx, A.listLicenses, { productId: product, customerId: customer });
        if (ctx.json) return printJson(page);
        out(licenseTable(page.items));
        morePages(page);
      })
      .option('--product <product>', "only this product's licenses (its prd_… id or its name)")
      .option('--customer <customer>', "only this customer's licenses (its cus_… id or its name)"),
  );
  policyOptions(
    kit
      .leaf(g, 'create', 'create a license (the server generates its key)', async (ctx) => {
        const access = accessOf(ctx.opts, protocol.OPEN_ACCESS);
        const body = {
          productId: await productRef(ctx, ctx.opts.product as string),
          ...(ctx.opts.customer === undefined ? {} : { customerId: await customerRef(ctx, ctx.opts.customer as string) }),
          ...policyBody(ctx.opts),
          ...(access ? { access } : {}),
        };
        show(
          ctx,
          (await policyRequest(() => ctx.client.call(A.createLicense, { body: body as protocol.CreateLicense }))).body,
          licenseBlock,
        );
      })
      .requiredOption('--product <product>', 'the product that owns the license (its prd_… id or its name)')
      .option('--customer <customer>', 'the customer it belongs to (its cus_… id or its name; default the built-in Unassigned)'),
    true,
  );
  kit.leaf(g, 'show <license>', 'show one license (its key or its lic_… id)', async (ctx) => {
    show(ctx, (await ctx.client.call(A.getLicense, { params: { licenseId: await licenseRef(ctx, arg(ctx, 0)) } })).body, licenseBlock);
  });
  policyOptions(
    kit
      .leaf(g, 'update <license>', "change a license's policy (only the options given; none clears a field)", async (ctx) => {
        const body = policyBody(ctx.opts);
        const id = await licenseRef(ctx, arg(ctx, 0));
        if (ctx.opts.customer !== undefined) body.customerId = await customerRef(ctx, ctx.opts.customer as string);
        if (accessOf(ctx.opts, protocol.OPEN_ACCESS)) {
          const current = (await ctx.client.call(A.getLicense, { params: { licenseId: id } })).body.access;
          body.access = accessOf(ctx.opts, current);
        }
        if (Object.keys(body).length === 0)
          throw new CliError('licenses update needs at least one option to change (see floatd licenses update --help)', EXIT.usage);
        show(
          ctx,
          (await policyRequest(() => ctx.client.call(A.updateLicense, { params: { licenseId: id }, body: body as protocol.UpdateLicense })))
            .body,
          licenseBlock,
        );
      })
      .option('--customer <customer>', 'move the license to this customer (its cus_… id or its name)'),
    false,
  );
  for (const [verb, done, what] of [
    ['suspend', 'suspended', 'suspend a license: checkouts and heartbeats are refused, held leases stay'],
    ['resume', 'resumed', 'lift a suspension'],
  ] as const) {
    kit.leaf(g, `${verb} <license>`, what, async (ctx) => {
      const res = await ctx.client.call(verb === 'suspend' ? A.suspendLicense : A.resumeLicense, {
        params: { licenseId: await licenseRef(ctx, arg(ctx, 0)) },
      });
      show(ctx, res.body, (l) => `${done} ${l.id} (${l.key})`);
    });
  }
  kit
    .leaf(g, 'delete <license>', 'delete a license, by its key or lic_… id (refused while seats are held, unless --force)', async (ctx) => {
      const id = await licenseRef(ctx, arg(ctx, 0));
      const res = await ctx.client.call(A.deleteLicense, {
        params: { licenseId: id },
        query: ctx.opts.force === true ? { force: true } : {},
      });
      show(ctx, res.body, (b) => `deleted ${id}; released ${b.released} lease(s)`);
    })
    .option('--force', 'release every held seat, then delete');
}
