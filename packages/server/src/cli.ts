#!/usr/bin/env node
/** The `floatd` command. `floatd serve` runs the server; later issues add admin commands. */
import { Command } from 'commander';
import { ConfigError, configFrom } from './config.js';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { consoleBanner, portInUse } from './banner.js';
import { onCommanderExit, OUTPUT, registerAdminCommands } from './admin-cli/commands.js';

// The server (fastify, drivers) is imported only by the commands that run it: admin commands start in a fraction of the time.
const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

type Flags = Record<string, string | boolean | undefined>;

/** Configuration from flags and environment; a bad value ends the process with exit code 2. */
function loadConfig(flags: Flags) {
  try {
    return configFrom({
      host: flags.host as string | undefined,
      port: flags.port as string | undefined,
      dataDir: flags.dataDir as string | undefined,
      databaseUrl: flags.databaseUrl as string | undefined,
      reclaimInterval: flags.reclaimInterval as string | undefined,
      licenseExpiringDays: flags.licenseExpiringDays as string | undefined,
      logLevel: flags.logLevel as string | undefined,
      logRequests: flags.logRequests as boolean | undefined,
      sqliteSynchronous: flags.sqliteSynchronous as string | undefined,
      mode: flags.mode as string | undefined,
      licenseFile: flags.licenseFile as string | undefined,
      vendorPublicKey: flags.vendorPublicKey as string | undefined,
      vendorPrivateKey: flags.vendorPrivateKey as string | undefined,
      clockTolerance: flags.clockTolerance as string | undefined,
      stateInterval: flags.stateInterval as string | undefined,
      announce: flags.announce,
      announceInterface: flags.announceInterface as string | undefined,
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`floatd: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

// An unknown command, like every usage error, exits 2 with the `floatd:` prefix (docs/cli.md).
const program = new Command('floatd')
  .description('floatd floating-license server')
  .version(VERSION)
  .exitOverride(onCommanderExit)
  .configureOutput(OUTPUT)
  .showHelpAfterError('(add --help for usage)');

program
  .command('serve')
  .description('run the server (embedded SQLite by default)')
  .option('--host <host>', 'address to listen on (FLOATD_HOST, default 127.0.0.1)')
  .option('--port <port>', 'port to listen on (FLOATD_PORT, default 7070)')
  .option('--data-dir <dir>', 'data directory: database, signing keys, admin token (FLOATD_DATA_DIR, default ./data)')
  .option('--database-url <url>', 'database (FLOATD_DATABASE_URL, default sqlite:<data-dir>/floatd.db)')
  .option('--reclaim-interval <seconds>', 'seconds between reclamation sweeps (FLOATD_RECLAIM_INTERVAL_SECONDS, default 30)')
  .option(
    '--license-expiring-days <days>',
    'webhooks: days before a license ends that license.expiring is sent (FLOATD_LICENSE_EXPIRING_DAYS, default 14)',
  )
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (FLOATD_LOG_LEVEL, default info)')
  .option('--log-requests', 'log every request (FLOATD_LOG_REQUESTS=1)')
  .option(
    '--sqlite-synchronous <mode>',
    'FULL (default: every answer after its commit is synced) or NORMAL (a power cut may lose the last commits): see docs/operations.md (FLOATD_SQLITE_SYNCHRONOUS)',
  )
  .option('--mode <mode>', 'hosted (default) or on-prem: seats only from a vendor-signed license file (FLOATD_MODE)')
  .option('--license-file <file>', 'on-prem: the license file, polled for renewals (FLOATD_LICENSE_FILE, default <data-dir>/license.json)')
  .option('--vendor-public-key <file>', 'on-prem: the vendor public key that license files must verify with (FLOATD_VENDOR_PUBLIC_KEY)')
  .option(
    '--vendor-private-key <file>',
    'hosted vendor server: private key (mode 0600) to issue license files to on-prem deployments (FLOATD_VENDOR_PRIVATE_KEY)',
  )
  .option(
    '--clock-tolerance <seconds>',
    'how far the clock may go back before new grants stop with SERVER_CLOCK_ROLLBACK (FLOATD_CLOCK_TOLERANCE_SECONDS, default 900)',
  )
  .option(
    '--state-interval <seconds>',
    'seconds between trusted-time saves and license-file checks (FLOATD_STATE_INTERVAL_SECONDS, default 60)',
  )
  .option(
    '--announce [name]',
    'announce the server on the local network by DNS-SD (_floatd._tcp), as <name> (default "floatd on <host>"); off by default (FLOATD_ANNOUNCE)',
  )
  .option('--announce-interface <ipv4>', 'announce on this interface only, given by its IPv4 address (FLOATD_ANNOUNCE_INTERFACE)')
  .action(async (flags: Flags) => {
    const config = loadConfig(flags);
    const { startServer } = await import('./server.js');
    let server: Awaited<ReturnType<typeof startServer>>;
    try {
      server = await startServer(config);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        process.stderr.write(`${portInUse(config.host, config.port)}\n`);
        process.exit(2);
      }
      throw err;
    }
    if (server.createdAdminSecret) {
      process.stdout.write(
        `\nfloatd: first start — created an admin token. It is shown only this once and kept in ${server.adminTokenFile} (mode 0600):\n\n  ${server.createdAdminSecret}\n\n`,
      );
    }
    // One write: a reader that waits for "listening on" gets the console line with it.
    process.stdout.write(
      `floatd ${VERSION} listening on ${server.url} (data in ${config.dataDir})\n${consoleBanner(server.url, server.adminTokenFile, existsSync(server.adminTokenFile))}\n`,
    );
    const stop = (signal: string) => {
      process.stdout.write(`floatd: ${signal} received, finishing in-flight requests\n`);
      server.close().then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`floatd: shutdown failed: ${String(err)}\n`);
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });

program
  .command('migrate')
  .description('apply pending database migrations (also done by serve at start) and print the schema version')
  .option('--data-dir <dir>', 'data directory (FLOATD_DATA_DIR, default ./data)')
  .option('--database-url <url>', 'database (FLOATD_DATABASE_URL)')
  .action(async (flags: Flags) => {
    const { runMigrate } = await import('./ops/doctor.js');
    const r = await runMigrate(loadConfig(flags));
    process.stdout.write(`floatd: ${r.store} schema at version ${r.version}\n`);
  });

program
  .command('doctor')
  .description('check the database, schema, signing keys and clocks (every node against the database); exit 1 on a failure')
  .option('--data-dir <dir>', 'data directory (FLOATD_DATA_DIR, default ./data)')
  .option('--database-url <url>', 'database (FLOATD_DATABASE_URL)')
  .option('--json', 'print the checks as JSON')
  .action(async (flags: Flags) => {
    const { runDoctor } = await import('./ops/doctor.js');
    const checks = await runDoctor(loadConfig(flags));
    if (flags.json) process.stdout.write(JSON.stringify(checks) + '\n');
    else for (const c of checks) process.stdout.write(`${c.status.toUpperCase().padEnd(4)}  ${c.name}: ${c.detail}\n`);
    process.exitCode = checks.some((c) => c.status === 'fail') ? 1 : 0;
  });

program
  .command('backup <file>')
  .description("copy the SQLite database (online, consistent while the server runs) and the data directory's files into one new file")
  .option('--data-dir <dir>', 'data directory (FLOATD_DATA_DIR, default ./data)')
  .option('--database-url <url>', 'database (FLOATD_DATABASE_URL); PostgreSQL: use pg_dump, see docs/operations.md')
  .action(async (file: string, flags: Flags) => {
    const { backup } = await import('./ops/backup.js');
    const r = await backup(loadConfig(flags), file);
    process.stdout.write(
      `floatd: backed up the database (${r.leases} leases) and ${r.files.join(', ') || 'no other files'} to ${r.file} (${r.bytes} bytes, mode 0600)\n`,
    );
  });

program
  .command('restore <file>')
  .description('replace the database and data directory files with a backup (the server must be stopped; the file is checked first)')
  .option('--data-dir <dir>', 'data directory (FLOATD_DATA_DIR, default ./data)')
  .option('--database-url <url>', 'database (FLOATD_DATABASE_URL)')
  .action(async (file: string, flags: Flags) => {
    const { restore } = await import('./ops/backup.js');
    const r = await restore(loadConfig(flags), file);
    process.stdout.write(
      `floatd: restored ${r.licenses} licenses and ${r.leases} leases (schema version ${r.schemaVersion}) and ${r.files.join(', ')}. ` +
        'Leases granted after the backup get LEASE_NOT_FOUND at their next heartbeat and check out again; seats checked in after it are freed by the reclaimer at their TTL (docs/operations.md#backup-and-restore).\n',
    );
  });

registerAdminCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`floatd: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
