/**
 * On-premise and vendor commands (docs/cli.md, docs/on-prem.md).
 *
 * Local, with key files (no server): `entitlements keygen`, `entitlements issue`,
 * `entitlements verify`. Against a running server: `entitlements status|load|request|activate`,
 * `usage export|send|import|reports`, `deployments create|list|show|update|issue`.
 * The vendor private key is read from a file of mode 0600 and never printed.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import * as protocol from '@floatd/protocol';
import { CliError, EXIT } from './http.js';
import type { CommandKit } from './kit.js';
import { timestamp } from './parsers.js';
import { keyValues, out, printJson, table, visibleLines } from './output.js';

type StoredReport = protocol.routes.onprem.StoredReport;

async function readJson(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.usage);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CliError(`the ${what} ${file} is not JSON: ${(err as Error).message}`, EXIT.usage);
  }
}

async function writeOut(file: string | undefined, doc: unknown): Promise<void> {
  const text = JSON.stringify(doc, null, 2) + '\n';
  if (file) await writeFile(file, text, { mode: 0o644 });
  else process.stdout.write(text);
}

/** A local command: errors end with `floatd: …` on stderr and a documented exit code. */
function local(cmd: Command, fn: (opts: Record<string, unknown>, args: string[]) => Promise<void>): Command {
  return cmd.action(async (...a: unknown[]) => {
    const command = a[a.length - 1] as Command;
    try {
      await fn(command.opts(), command.args);
      process.exitCode = EXIT.ok;
    } catch (err) {
      process.stderr.write(`floatd: ${visibleLines(err instanceof Error ? err.message : String(err))}\n`);
      for (const h of err instanceof CliError ? err.hints : []) process.stderr.write(`${visibleLines(h)}\n`);
      process.exitCode = err instanceof CliError ? err.exitCode : EXIT.refused;
    }
  });
}

const R = protocol.routes.onprem;
/** What a license file grants: the summary the server answers, or a verified file's payload. */
type Summary = Pick<
  protocol.routes.onprem.LicenseFileSummary,
  'serial' | 'issuedAt' | 'notBefore' | 'notAfter' | 'customer' | 'boundTo' | 'licenses'
>;
function summaryText(s: Summary): string {
  return (
    keyValues([
      ['customer', s.customer.name],
      ['serial', s.serial],
      ['issued', s.issuedAt],
      ['valid', `${s.notBefore} .. ${s.notAfter ?? 'no end'}`],
      ['bound to', s.boundTo ?? 'any server'],
    ]) +
    '\n\n' +
    table(
      ['KEY', 'SEATS', 'MODEL', 'EXPIRES', 'MAX OFFLINE (s)'],
      s.licenses.map((l) => [l.key, l.seats, l.model, l.expiresAt, l.maxOfflineSeconds]),
    )
  );
}

export function registerOnPremCommands(program: Command, kit: CommandKit): void {
  const ent = kit.group(
    program,
    'entitlements',
    'on-premise license files: issue and verify (vendor), load, activate and inspect (on-prem server)',
  );

  // --- local, vendor side ---------------------------------------------------
  local(
    ent
      .command('keygen')
      .description('vendor: make an Ed25519 key pair for signing license files: <prefix>.key (0600) and <prefix>.pub')
      .requiredOption('--out <prefix>', 'file name prefix, e.g. ./vendor'),
    async (options) => {
      const { writeKeyPair } = await import('../onprem/keyFiles.js');
      const r = await writeKeyPair(String(options.out));
      out(
        `private key ${r.privateFile} (mode 0600: keep it offline, never share it)\npublic key  ${r.publicFile} (give it to every on-premise server: --vendor-public-key)\nkey id      ${r.kid}`,
      );
    },
  );

  local(
    ent
      .command('issue')
      .description(
        'vendor: sign a license file from a spec (ids and keys missing in the spec are filled in, and the spec file is updated so renewals keep them)',
      )
      .requiredOption('--spec <file>', 'the license spec (JSON): customer, products, licenses, validity')
      .requiredOption('--private-key <file>', 'the vendor private key (mode 0600)')
      .requiredOption('--serial <n>', 'the serial: higher than every file issued before to this customer')
      .option('--request <file>', 'an activation request from the on-prem server: binds the file to that server')
      .option('--deployment <id>', 'the vendor deployment id the file belongs to (for usage upload)')
      .option('--out <file>', 'write the license file here (default: stdout)'),
    async (options) => {
      const { readPrivateKeyFile } = await import('../onprem/keyFiles.js');
      const { completeSpec, issueLicenseFile, payloadFromSpec } = await import('../onprem/licenseFile.js');
      const { verifyActivationRequest } = await import('../onprem/reports.js');
      const { signerOf } = await import('../onprem/signed.js');
      const serial = Number(options.serial);
      if (!Number.isSafeInteger(serial) || serial < 1) throw new CliError('--serial must be a whole number of at least 1', EXIT.usage);
      const signer = signerOf(await readPrivateKeyFile(String(options.privateKey)));
      const specFile = String(options.spec);
      const spec = completeSpec(await readJson(specFile, 'spec'));
      if (!spec.ok) throw new CliError(spec.error.message, EXIT.usage);
      let server: { fingerprint: string; publicKey: string } | null = null;
      if (options.request) {
        const r = verifyActivationRequest(await readJson(String(options.request), 'activation request'));
        if (!r.ok) throw new CliError(r.error.message, EXIT.refused);
        server = { fingerprint: r.value.fingerprint, publicKey: r.value.publicKey };
      }
      const payload = payloadFromSpec(spec.value, {
        serial,
        now: Date.now(),
        deploymentId: (options.deployment as string | undefined) ?? null,
        server,
      });
      if (!payload.ok) throw new CliError(payload.error.message, EXIT.usage);
      await writeFile(specFile, JSON.stringify(spec.value, null, 2) + '\n');
      await writeOut(options.out as string | undefined, issueLicenseFile(payload.value, signer));
      if (options.out)
        out(
          `license file serial ${serial} for ${spec.value.customer.name} written to ${String(options.out)}${server ? ` (bound to ${server.fingerprint})` : ''}`,
        );
    },
  );

  local(
    ent
      .command('verify <file>')
      .description('check a license file against the vendor public key and print what it grants (exit 1 if it does not verify)')
      .requiredOption('--vendor-public-key <file>', 'the vendor public key')
      .option('--fingerprint <fp>', 'also check that the file is bound to this server fingerprint')
      .option('--json', 'print the verified payload as JSON'),
    async (options, args) => {
      const { readVendorPublicKeys } = await import('../onprem/keyFiles.js');
      const { readLicenseFile } = await import('../onprem/licenseFile.js');
      const keys = await readVendorPublicKeys(String(options.vendorPublicKey));
      const text = await readFile(args[0]!, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new CliError(`cannot read ${args[0]}: ${err.code ?? err.message}`, EXIT.usage);
      });
      const r = readLicenseFile(text, keys, {
        fingerprint: options.fingerprint as string | undefined,
        now: Date.now(),
        checkWindow: false,
      });
      if (!r.ok) throw new CliError(r.error.message, EXIT.refused);
      const p = r.value.payload;
      if (options.json) return printJson(p);
      out(`OK  signature verified (key ${r.value.envelope.signature.kid})\n`);
      out(summaryText({ ...p, boundTo: p.server?.fingerprint ?? null }));
    },
  );

  // --- against a running on-prem server --------------------------------------
  kit.leaf(ent, 'status', 'role of the server, the license file in force and the server clock check', async (ctx) => {
    const r = await ctx.client.call(R.entitlementStatus, {});
    if (ctx.json) return printJson(r.body);
    out(
      keyValues([
        ['mode', r.body.mode],
        ['fingerprint', r.body.fingerprint],
        [
          'clock',
          r.body.clock.rolledBack || r.body.clock.tampered
            ? `SET BACK: grants refused (trusted time ${String(r.body.clock.trustedTime)})`
            : 'ok',
        ],
      ]),
    );
    if (r.body.licenseFile) out('\n' + summaryText(r.body.licenseFile));
    else if (r.body.mode === 'on-prem') out('\nno license file loaded: nothing is granted (floatd entitlements load FILE, or activate)');
  });

  kit.leaf(
    ent,
    'load <file>',
    'load a license file into the running on-prem server (renewal without restart; a lower serial is refused)',
    async (ctx) => {
      const doc = await readJson(ctx.args[0]!, 'license file');
      const r = await ctx.client.call(R.loadEntitlements, { body: { licenseFile: doc as Record<string, unknown> } });
      if (ctx.json) return printJson(r.body);
      const loaded = r.body.loaded;
      out(
        r.body.unchanged
          ? `serial ${loaded.serial} is already loaded: nothing changed`
          : `loaded serial ${loaded.serial}\n\n${summaryText(loaded)}`,
      );
    },
  );

  kit
    .leaf(
      ent,
      'request',
      'write the activation request of the on-prem server (fingerprint and public key, signed) for the vendor',
      async (ctx) => {
        const r = await ctx.client.call(R.activationRequest, {});
        await writeOut(ctx.opts.out as string | undefined, r.body);
        if (ctx.opts.out)
          out(`activation request written to ${String(ctx.opts.out)}: send it to the vendor, then load the license file they return`);
      },
    )
    .option('--out <file>', 'write it to this file (default: stdout)');

  kit
    .leaf(
      ent,
      'activate',
      "online activation: the on-prem server fetches its license file from the vendor's floatd and loads it",
      async (ctx) => {
        const r = await ctx.client.call(R.activate, {
          body: { vendorUrl: String(ctx.opts.vendorUrl), activationKey: String(ctx.opts.activationKey) },
        });
        if (ctx.json) return printJson(r.body);
        const loaded = r.body.loaded;
        out(`activated: serial ${loaded.serial}\n\n${summaryText(loaded)}`);
      },
    )
    .requiredOption('--vendor-url <url>', "the vendor's floatd, e.g. https://licenses.vendor.example")
    .requiredOption('--activation-key <key>', 'the activation key the vendor gave you');

  // --- usage reports (on the existing `usage <licenseId>` command: its subcommands) ---
  const usage = program.commands.find((c) => c.name() === 'usage') ?? kit.group(program, 'usage', 'usage reports');
  kit
    .leaf(
      usage,
      'export',
      'on-prem: write the signed usage report (peak seats, checkouts, denials per key and day) for the vendor',
      async (ctx) => {
        const r = await ctx.client.call(R.usageReport, {
          query: { from: ctx.opts.from as string | undefined, to: ctx.opts.to as string | undefined },
        });
        await writeOut(ctx.opts.out as string | undefined, r.body);
        if (ctx.opts.out) out(`usage report written to ${String(ctx.opts.out)}`);
      },
    )
    .option('--from <time>', 'start (default: 30 days before --to)', timestamp)
    .option('--to <time>', 'end (default: now)', timestamp)
    .option('--out <file>', 'write it to this file (default: stdout)');
  kit
    .leaf(usage, 'send', "on-prem: send the signed usage report to the vendor's floatd named in the license file", async (ctx) => {
      const r = await ctx.client.call(R.sendUsageReport, {
        body: { from: ctx.opts.from as string | undefined, to: ctx.opts.to as string | undefined },
      });
      if (ctx.json) return printJson(r.body);
      out(`usage report sent to ${r.body.vendorUrl}`);
    })
    .option('--from <time>', 'start (default: 30 days before --to)', timestamp)
    .option('--to <time>', 'end (default: now)', timestamp);
  kit.leaf(
    usage,
    'import <file>',
    'vendor: verify a usage report file from an on-prem server and store it for true-up billing',
    async (ctx) => {
      const doc = await readJson(ctx.args[0]!, 'usage report');
      const r = await ctx.client.call(R.importUsageReport, { body: { report: doc as Record<string, unknown> } });
      if (ctx.json) return printJson(r.body);
      const stored = r.body;
      out(
        `imported: deployment ${stored.deploymentId}, ${stored.report.from} .. ${stored.report.to}${stored.continuity ? ` (sequence: ${stored.continuity})` : ''}\n`,
      );
      out(
        table(
          ['KEY', 'SEATS', 'PEAK', 'DENIALS'],
          stored.report.licenses.map((l) => [l.key, l.seats, l.peakSeats, l.denials]),
        ),
      );
    },
  );
  kit.leaf(usage, 'reports <deploymentId>', 'vendor: usage reports imported for a deployment', async (ctx) => {
    const r = await ctx.client.call(R.deploymentUsageReports, { params: { deploymentId: ctx.args[0]! } });
    if (ctx.json) return printJson(r.body);
    const items: StoredReport[] = r.body.items;
    out(
      table(
        ['FROM', 'TO', 'VIA', 'SEQUENCE', 'PEAK', 'DENIALS'],
        items.map((i) => [
          i.report.from,
          i.report.to,
          i.via,
          i.continuity ?? '',
          Math.max(0, ...i.report.licenses.map((l) => l.peakSeats)),
          i.report.licenses.reduce((n, l) => n + l.denials, 0),
        ]),
      ),
    );
  });

  // --- vendor deployments ----------------------------------------------------
  const dep = kit.group(program, 'deployments', 'vendor: on-premise deployments (a hosted floatd started with --vendor-private-key)');
  kit
    .leaf(dep, 'create <name>', 'create a deployment from a license spec; prints its activation key once', async (ctx) => {
      const spec = await readJson(String(ctx.opts.spec), 'spec');
      const r = await ctx.client.call(R.createDeployment, { body: { name: ctx.args[0]!, spec: spec as Record<string, unknown> } });
      if (ctx.json) return printJson(r.body);
      out(`deployment ${r.body.deployment.id}\nactivation key (shown only now): ${r.body.activationKey}`);
    })
    .requiredOption('--spec <file>', 'the license spec (JSON)');
  kit.leaf(dep, 'list', 'list deployments', async (ctx) => {
    const r = await ctx.client.call(R.listDeployments, {});
    if (ctx.json) return printJson(r.body);
    const items = r.body.items;
    out(
      table(
        ['ID', 'NAME', 'SERIAL', 'BOUND TO'],
        items.map((d) => [d.id, d.name, d.serial, d.fingerprint]),
      ),
    );
  });
  kit.leaf(dep, 'show <deploymentId>', 'one deployment with its spec', async (ctx) => {
    printJson((await ctx.client.call(R.getDeployment, { params: { deploymentId: ctx.args[0]! } })).body);
  });
  kit
    .leaf(dep, 'update <deploymentId>', 'replace the spec (renewal, more seats): the next file issued has a higher serial', async (ctx) => {
      const spec = await readJson(String(ctx.opts.spec), 'spec');
      const r = await ctx.client.call(R.updateDeploymentSpec, {
        params: { deploymentId: ctx.args[0]! },
        body: { spec: spec as Record<string, unknown> },
      });
      if (ctx.json) return printJson(r.body);
      out(`deployment ${r.body.id} updated`);
    })
    .requiredOption('--spec <file>', 'the new license spec (JSON)');
  kit
    .leaf(
      dep,
      'issue <deploymentId>',
      'issue the next license file (offline activation: --request binds it to the on-prem server)',
      async (ctx) => {
        const request = ctx.opts.request ? await readJson(String(ctx.opts.request), 'activation request') : null;
        const r = await ctx.client.call(R.issueLicenseFile, {
          params: { deploymentId: ctx.args[0]! },
          body: { request: request as Record<string, unknown> | null },
        });
        await writeOut(ctx.opts.out as string | undefined, r.body);
        if (ctx.opts.out) out(`license file written to ${String(ctx.opts.out)}`);
      },
    )
    .option('--request <file>', 'the activation request file from the on-prem server')
    .option('--out <file>', 'write the license file here (default: stdout)');
}
