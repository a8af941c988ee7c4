/**
 * `floatd customers …`: the organisations licenses belong to, their contact and metadata, and what
 * each holds (its licenses, seats in use, next expiry, last 30 days of use).
 */
import { InvalidArgumentError, type Command } from 'commander';
import * as protocol from '@floatd/protocol';
import { CliError, EXIT } from './http.js';
import { arg, customerRef, list, morePages, pagingOptions, show, withFlagNames, type CommandKit, type Ctx } from './kit.js';
import { contactField, metaKey, metaPair, NONE, orNone } from './parsers.js';
import { keyValues, out, printJson, table } from './output.js';

type Customer = protocol.Customer;
type CustomerDetail = protocol.CustomerDetail;
const A = protocol.routes.admin;

function customerTable(items: Customer[]): string {
  return table(
    ['ID', 'NAME', 'CONTACT', 'EMAIL', 'PHONE', 'CREATED'],
    items.map((c) => [c.id, c.name, c.contact.name, c.contact.email, c.contact.phone, c.createdAt]),
  );
}
function customerPairs(c: Customer): [string, string | null | undefined][] {
  return [
    ['id', c.id],
    ['name', c.name],
    ['contact', c.contact.name],
    ['email', c.contact.email],
    ['phone', c.contact.phone],
    ['metadata', JSON.stringify(c.metadata)],
    ['created', c.createdAt],
    ['updated', c.updatedAt],
  ];
}
function customerBlock(c: Customer): string {
  return keyValues(customerPairs(c));
}
/** The customer, its totals, then its licenses as a table (SEATS is used/total, as in `licenses list`). */
function detailBlock(d: CustomerDetail): string {
  const u = d.usage;
  const head = keyValues([
    ...customerPairs(d.customer),
    ['licenses', d.licenses.length],
    ['seats used', `${d.seatsUsed}/${d.seats}`],
    ['next expiry', d.nextExpiry ? `${d.nextExpiry.at} (${d.nextExpiry.licenseId})` : 'none'],
    ['last 30 days', `peak ${u.peakSeats} seat(s), ${u.checkouts} checkout(s), ${u.denials} denial(s) (${u.from} .. ${u.to})`],
  ]);
  if (d.licenses.length === 0) return `${head}\n\nno licenses`;
  const licenses = table(
    ['LICENSE', 'PRODUCT', 'KEY', 'MODEL', 'SEATS', 'OFFLINE', 'EXPIRES', 'STATE'],
    d.licenses.map((l) => [
      l.id,
      l.productName ?? l.productId,
      l.key,
      l.model,
      `${l.seatsUsed}/${l.seats}`,
      l.seatsOffline,
      l.expiresAt,
      l.suspended ? 'suspended' : 'active',
    ]),
  );
  return `${head}\n\n${licenses}`;
}

/** The API field each flag sets: a refusal about a field is reported with the flag that set it. */
const FIELD_FLAGS: [RegExp, string][] = [
  [/\/?body\/contact\/name\b/g, '--contact-name'],
  [/\/?body\/contact\/email\b/g, '--email'],
  [/\/?body\/contact\/phone\b/g, '--phone'],
  [/\/?body\/metadata\b/g, '--meta'],
  [/\/?body\/name\b/g, '--name'],
];

/** The contact the flags ask for, on top of `current`: a flag replaces its field (`none` removes it), the others stay. */
function contactOf(opts: Record<string, unknown>, current: protocol.CustomerContact): protocol.CustomerContact | undefined {
  const flags = [
    ['contactName', 'name'],
    ['email', 'email'],
    ['phone', 'phone'],
  ] as const;
  if (flags.every(([opt]) => opts[opt] === undefined)) return undefined;
  const contact: protocol.CustomerContact = { ...current };
  for (const [opt, field] of flags) {
    if (opts[opt] === NONE) delete contact[field];
    else if (opts[opt] !== undefined) contact[field] = opts[opt] as string;
  }
  return contact;
}

/** The metadata the flags ask for, on top of `current`: `--meta` sets keys, `--unset-meta` removes them, the others stay. */
function metadataOf(opts: Record<string, unknown>, current: Record<string, unknown>): Record<string, unknown> | undefined {
  const set = opts.meta as Record<string, string> | undefined;
  const unset = (opts.unsetMeta as string[] | undefined) ?? [];
  if (!set && unset.length === 0) return undefined;
  for (const key of unset)
    if (set && key in set) throw new CliError(`--meta and --unset-meta both name the key ${JSON.stringify(key)}`, EXIT.usage);
  const metadata: Record<string, unknown> = { ...current, ...set };
  for (const key of unset) delete metadata[key];
  return metadata;
}

function contactOptions(cmd: Command, update: boolean): Command {
  const none = (parse: (v: string) => string) => (update ? orNone(parse) : parse);
  const or = update ? '|none' : '';
  const clears = update ? '; none removes it' : '';
  return cmd
    .option(
      `--contact-name <name${or}>`,
      `the contact person${clears}`,
      none((v) => v),
    )
    .option(`--email <email${or}>`, `the contact's email address${clears}`, none(contactField('email', 'ops@acme.example')))
    .option(
      `--phone <phone${or}>`,
      `the contact's phone number (digits, + ( ) . / - and spaces)${clears}`,
      none(contactField('phone', '+1 555 0100')),
    )
    .option('--meta <key=value>', `a metadata entry, its value a string (repeatable${update ? '; other keys stay' : ''})`, metaPair);
}

async function currentCustomer(ctx: Ctx, id: string): Promise<Customer> {
  return (await ctx.client.call(A.getCustomer, { params: { customerId: id } })).body.customer;
}

export function registerCustomers(program: Command, kit: CommandKit): void {
  const g = kit.group(program, 'customers', 'manage customers (the organisations licenses belong to)');
  pagingOptions(
    kit
      .leaf(g, 'list', 'list customers, oldest first, or search them', async (ctx) => {
        const search = ctx.opts.search as string | undefined;
        const page = await list(ctx, A.listCustomers, { q: search });
        if (ctx.json) return printJson(page);
        out(customerTable(page.items));
        morePages(page);
      })
      .option('--search <text>', "part of a customer's name (any case), a license key, or part of a device's host or user name", (v) => {
        if (v.trim() === '') throw new InvalidArgumentError('--search needs some text.');
        return v.trim();
      }),
  );
  contactOptions(
    kit
      .leaf(g, 'create', 'create a customer', async (ctx) => {
        const contact = contactOf(ctx.opts, {});
        const body: protocol.CreateCustomer = { name: ctx.opts.name as string };
        if (contact) body.contact = contact;
        if (ctx.opts.meta) body.metadata = ctx.opts.meta as Record<string, string>;
        show(ctx, (await withFlagNames(() => ctx.client.call(A.createCustomer, { body }), FIELD_FLAGS)).body, customerBlock);
      })
      .requiredOption('--name <name>', "the customer's name (1-200 characters)"),
    false,
  );
  kit.leaf(
    g,
    'show <customer>',
    'show one customer (its cus_… id or its name): its licenses, seats in use, next expiry and last 30 days',
    async (ctx) => {
      const id = await customerRef(ctx, arg(ctx, 0));
      show(ctx, (await ctx.client.call(A.getCustomer, { params: { customerId: id } })).body, detailBlock);
    },
  );
  contactOptions(
    kit
      .leaf(g, 'update <customer>', "change a customer's name, contact or metadata (only the options given)", async (ctx) => {
        const body: protocol.UpdateCustomer = {};
        if (ctx.opts.name !== undefined) body.name = ctx.opts.name as string;
        const contactGiven = contactOf(ctx.opts, {}) !== undefined;
        const metadataGiven = metadataOf(ctx.opts, {}) !== undefined;
        if (body.name === undefined && !contactGiven && !metadataGiven)
          throw new CliError('customers update needs at least one option to change (see floatd customers update --help)', EXIT.usage);
        const id = await customerRef(ctx, arg(ctx, 0));
        if (contactGiven || metadataGiven) {
          const current = await currentCustomer(ctx, id);
          const contact = contactOf(ctx.opts, current.contact);
          const metadata = metadataOf(ctx.opts, current.metadata);
          if (contact) body.contact = contact;
          if (metadata) body.metadata = metadata;
        }
        show(
          ctx,
          (await withFlagNames(() => ctx.client.call(A.updateCustomer, { params: { customerId: id }, body }), FIELD_FLAGS)).body,
          customerBlock,
        );
      })
      .option('--name <name>', 'a new name (1-200 characters)'),
    true,
  ).option('--unset-meta <key>', 'remove a metadata entry (repeatable)', metaKey);
  kit.leaf(
    g,
    'delete <customer>',
    "delete a customer, by cus_… id or name (refused while it owns licenses); its administrators' tokens are revoked",
    async (ctx) => {
      const id = await customerRef(ctx, arg(ctx, 0));
      const res = await ctx.client.call(A.deleteCustomer, { params: { customerId: id } });
      show(ctx, res.body, (b) => `deleted ${id}; revoked ${b.tokensRevoked} token(s)`);
    },
  );
}
