/**
 * `floatd webhooks …`: the endpoints the server POSTs its events to, their delivery log, a ping and redelivery.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import * as protocol from '@floatd/protocol';
import { CliError, EXIT } from './http.js';
import { arg, list, morePages, pagingOptions, show, withFlagNames, type CommandKit } from './kit.js';
import { keyValues, out, printJson, table } from './output.js';

type Webhook = protocol.Webhook;
type Delivery = protocol.WebhookDelivery;
const A = protocol.routes.admin;
/** Taken from the wire schema, so the CLI never refuses an event type the server knows. */
const EVENT_TYPES: readonly string[] = protocol.WEBHOOK_EVENT_TYPES;
const DELIVERY_STATES = ['pending', 'delivered', 'failed'];

/** `--event seats.full` (repeatable, or a comma list): event types checked against the wire schema's, before any request. */
function eventTypes(v: string, previous: string[] = []): string[] {
  const parts = v
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new InvalidArgumentError(`expected an event type: ${EVENT_TYPES.join(', ')}.`);
  for (const p of parts) {
    if (p === '*') throw new InvalidArgumentError('for every event type, use --all-events instead of --event "*".');
    if (!EVENT_TYPES.includes(p)) throw new InvalidArgumentError(`unknown event type "${p}": expected ${EVENT_TYPES.join(', ')}.`);
  }
  return [...new Set([...previous, ...parts])];
}

/** `--url`: checked against the wire schema's own pattern and length, before any request. */
function webhookUrl(v: string): string {
  const schema = protocol.WebhookUrl;
  const s = v.trim();
  if (
    s.length < (schema.minLength ?? 0) ||
    s.length > (schema.maxLength ?? Number.POSITIVE_INFINITY) ||
    !new RegExp(schema.pattern ?? '').test(s)
  )
    throw new InvalidArgumentError(
      `expected an http:// or https:// URL, e.g. https://hooks.example.com/floatd (at most ${schema.maxLength} characters).`,
    );
  return s;
}

/** The `events` the flags ask for: undefined when neither `--event` nor `--all-events` was given. */
function eventsOf(opts: Record<string, unknown>): string[] | undefined {
  const events = opts.event as string[] | undefined;
  if (events && opts.allEvents) throw new CliError('--event and --all-events exclude each other', EXIT.usage);
  if (opts.allEvents) return ['*'];
  return events;
}

/** The API field each flag sets: a refusal about a field is reported with the flag that set it. */
const FIELD_FLAGS: [RegExp, string][] = [
  [/\/?body\/url\b/g, '--url'],
  [/\/?body\/events\b/g, '--event'],
  [/\/?body\/description\b/g, '--description'],
];

function webhookBlock(w: Webhook): string {
  return keyValues([
    ['id', w.id],
    ['url', w.url],
    ['events', w.events.join(', ')],
    ['description', w.description],
    ['enabled', w.enabled],
    ['created', w.createdAt],
    ['updated', w.updatedAt],
  ]);
}

/** The newest attempt (the server lists them newest first; the time decides). */
function lastAttempt(d: Delivery): Delivery['lastAttempts'][number] | undefined {
  return d.lastAttempts.reduce<Delivery['lastAttempts'][number] | undefined>((a, b) => (a === undefined || b.at > a.at ? b : a), undefined);
}
/** The receiver's last answer: its HTTP status, else why none came (`not sent: ECONNREFUSED`). */
function lastStatus(d: Delivery): string | number | null {
  const a = lastAttempt(d);
  return a ? (a.status ?? a.error) : null;
}

function deliveryBlock(d: Delivery): string {
  const head = keyValues([
    ['id', d.id],
    ['webhook', d.webhookId],
    ['event', `${d.eventType} (${d.eventId})`],
    ['license', d.licenseId],
    ['state', d.state],
    ['attempts', d.attempts],
    ['next attempt', d.nextAttemptAt],
    ['created', d.createdAt],
    ['delivered', d.deliveredAt],
  ]);
  if (d.lastAttempts.length === 0) return head;
  const attempts = table(
    ['AT', 'STATUS', 'ERROR', 'DURATION (ms)'],
    d.lastAttempts.map((a) => [a.at, a.status, a.error, a.durationMs]),
  );
  return `${head}\n\n${attempts}`;
}

export function registerWebhooks(program: Command, kit: CommandKit): void {
  const g = kit.group(program, 'webhooks', 'webhook endpoints: the URLs events are POSTed to, signed; their deliveries');
  kit.leaf(g, 'list', 'list webhook endpoints (never their secrets)', async (ctx) => {
    const res = await ctx.client.call(A.listWebhooks, {});
    show(ctx, res.body, (b) =>
      table(
        ['ID', 'URL', 'EVENTS', 'ENABLED', 'DESCRIPTION', 'CREATED'],
        b.items.map((w) => [w.id, w.url, w.events.join(','), w.enabled, w.description, w.createdAt]),
      ),
    );
  });
  kit
    .leaf(g, 'create', 'add a webhook endpoint; its signing secret is printed this once', async (ctx) => {
      const events = eventsOf(ctx.opts);
      if (!events)
        throw new CliError(
          'webhooks create needs --event <type> (repeatable) or --all-events (see floatd webhooks create --help)',
          EXIT.usage,
        );
      const body: protocol.CreateWebhook = { url: ctx.opts.url as string, events: events as protocol.CreateWebhook['events'] };
      if (ctx.opts.description !== undefined) body.description = ctx.opts.description as string;
      if (ctx.opts.disabled) body.enabled = false;
      const res = await withFlagNames(() => ctx.client.call(A.createWebhook, { body }), FIELD_FLAGS);
      if (ctx.json) return printJson(res.body);
      out(`${webhookBlock(res.body)}\n\nsecret       ${res.body.secret}`);
      process.stderr.write(
        'floatd: the signing secret above is shown only this once; keep it now (the receiver checks signatures with it)\n',
      );
    })
    .requiredOption('--url <url>', 'where deliveries are POSTed: an http:// or https:// URL', webhookUrl)
    .option('--event <type>', `an event type to send (repeatable, or a comma list): ${EVENT_TYPES.join(', ')}`, eventTypes)
    .option('--all-events', 'send every event type, those added later too (events: ["*"])')
    .option('--description <text>', 'what the endpoint is for (at most 200 characters)')
    .option('--disabled', 'create it disabled: it gets no deliveries until enabled');
  kit
    .leaf(
      g,
      'update <webhookId>',
      "change an endpoint's URL, events or description, or enable or disable it (only the options given)",
      async (ctx) => {
        if (ctx.opts.enable && ctx.opts.disable) throw new CliError('--enable and --disable exclude each other', EXIT.usage);
        const body: protocol.UpdateWebhook = {};
        if (ctx.opts.url !== undefined) body.url = ctx.opts.url as string;
        const events = eventsOf(ctx.opts);
        if (events) body.events = events as protocol.UpdateWebhook['events'];
        if (ctx.opts.description !== undefined) body.description = ctx.opts.description as string;
        if (ctx.opts.enable) body.enabled = true;
        if (ctx.opts.disable) body.enabled = false;
        if (Object.keys(body).length === 0)
          throw new CliError('webhooks update needs at least one option to change (see floatd webhooks update --help)', EXIT.usage);
        const res = await withFlagNames(() => ctx.client.call(A.updateWebhook, { params: { webhookId: arg(ctx, 0) }, body }), FIELD_FLAGS);
        show(ctx, res.body, webhookBlock);
      },
    )
    .option('--url <url>', 'a new URL (http:// or https://)', webhookUrl)
    .option('--event <type>', 'the event types to send from now on, replacing the list (repeatable, or a comma list)', eventTypes)
    .option('--all-events', 'send every event type from now on')
    .option('--description <text>', 'a new description (at most 200 characters; "" clears it)')
    .option('--enable', 'enable the endpoint: new events are delivered to it again')
    .option('--disable', 'disable the endpoint: it gets no new deliveries (those queued are still sent)');
  kit.leaf(g, 'delete <webhookId>', 'delete a webhook endpoint and its delivery log', async (ctx) => {
    const res = await ctx.client.call(A.deleteWebhook, { params: { webhookId: arg(ctx, 0) } });
    show(ctx, res.body, () => `deleted ${arg(ctx, 0)}`);
  });
  kit.leaf(g, 'ping <webhookId>', 'queue a ping event for one endpoint (enabled or not), to test its receiver', async (ctx) => {
    const res = await ctx.client.call(A.pingWebhook, { params: { webhookId: arg(ctx, 0) } });
    show(
      ctx,
      res.body,
      (d) => `queued ping ${d.eventId} as delivery ${d.id}; see floatd webhooks deliveries ${d.webhookId}\n\n${deliveryBlock(d)}`,
    );
  });
  pagingOptions(
    kit
      .leaf(
        g,
        'deliveries <webhookId>',
        "an endpoint's delivery log, newest first: state, attempts, the receiver's last answer",
        async (ctx) => {
          const page = await list(
            ctx,
            A.listWebhookDeliveries,
            { state: ctx.opts.state as string | undefined },
            { webhookId: arg(ctx, 0) },
          );
          if (ctx.json) return printJson(page);
          out(
            table(
              ['ID', 'EVENT', 'STATE', 'ATTEMPTS', 'LAST STATUS', 'NEXT ATTEMPT', 'CREATED'],
              page.items.map((d) => [d.id, d.eventType, d.state, d.attempts, lastStatus(d), d.nextAttemptAt, d.createdAt]),
            ),
          );
          morePages(page);
        },
      )
      .addOption(new Option('--state <state>', 'only deliveries in this state').choices(DELIVERY_STATES)),
  );
  kit.leaf(g, 'redeliver <deliveryId>', 'send a delivery again now (delivered or failed ones too), with the same event id', async (ctx) => {
    const res = await ctx.client.call(A.redeliverWebhook, { params: { deliveryId: arg(ctx, 0) } });
    show(ctx, res.body, (d) => `queued ${d.id} (${d.eventType} ${d.eventId}) again\n\n${deliveryBlock(d)}`);
  });
}
