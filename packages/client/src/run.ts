#!/usr/bin/env node
/**
 * floatd-run: licenses any program without changing it. Checks out a seat, runs
 * the command, heartbeats while it runs, forwards signals, checks in when it
 * exits, and exits with the command's code.
 *
 *   floatd-run --server https://licenses.example.com --key XXXXX-… -- ./solver --input model.dat
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { FloatingLicense, FloatingLicenseError, type ViolationCode } from './index.js';
import { EXIT_NO_KEY, forgetKey, resolveKey } from './firstRun.js';
import { discoverServer, type DiscoveryOptions } from './discovery.js';
import { endUserCode, explain } from './messages.js';

/** Exit codes of floatd-run itself (from sysexits.h); otherwise it exits with the command's code. */
export const EXIT = {
  USAGE: 64,
  /** the server is unreachable and no stored lease applies */
  UNAVAILABLE: 69,
  /** every seat is taken (without --wait, or --wait timed out) */
  NO_SEAT: 75,
  /** the license refuses (suspended, expired, unknown key, forged answer, …) */
  REFUSED: 77,
  /** no key configured and no terminal to ask on */
  NO_KEY: EXIT_NO_KEY,
  CANNOT_EXECUTE: 126,
  NOT_FOUND: 127,
} as const;

const HELP = `usage: floatd-run --server URL --key KEY [options] -- <command> [args…]
       floatd-run --forget

With no server given or remembered, floatd-run looks for one: DNS SRV
_floatd._tcp.<domain> (2 s), then DNS-SD on the local network (1 s); a found
server is pinned under its name, and an impostor later is refused.
On a terminal, a missing key (and server) is asked for once, checked with the
server and remembered in the state directory; without a terminal floatd-run
exits ${EXIT_NO_KEY} instead of asking.

Checks out a floating-license seat, runs the command while heartbeating,
forwards signals to it, checks the seat in when it exits, and exits with
the command's exit code.

options:
  --server URL            license server (env FLOATD_SERVER)
  --key KEY               license key (env FLOATD_LICENSE_KEY)
  --state-dir DIR         where tokens are kept (env FLOATD_STATE_DIR, default ~/.floatd)
  --forget                forget the remembered key and server, then exit
  --domain DOMAIN         DNS domain of the SRV lookup (env FLOATD_DOMAIN, default the system's)
  --no-discover           no DNS SRV or DNS-SD lookup (env FLOATD_DISCOVER=0)
  --wait                  no seat free: wait for one instead of exiting ${EXIT.NO_SEAT}
  --timeout SECONDS       give up waiting (or retrying an unreachable server) after this long
  --wait-interval SECONDS how often to ask for a seat while waiting (default 15)
  --app-version VERSION   version shown to administrators
  --share-key VALUE       uses with the same share key share a seat under a sharing rule by key
  --feature NAME          a pool to check out (repeat, or NAME,NAME): base (the license's seats) and feature
                          names, all or none; default the base pool (FLOATD_FEATURES)
                          (env FLOATD_SHARE_KEY); user, host and display are sent from the
                          environment ($USER or $LOGNAME, the host name, $DISPLAY)
  --enforce               on a license violation, stop the command (SIGTERM); default: warn only
  --quiet                 print only errors
  -h, --help              this text

exit codes: the command's own; ${EXIT.NO_SEAT} no seat free; ${EXIT.REFUSED} license refused;
${EXIT.UNAVAILABLE} server unreachable; ${EXIT_NO_KEY} no key (or server) and no terminal; ${EXIT.USAGE} usage error; ${EXIT.NOT_FOUND} command not found.
the command sees FLOATD_LEASE_ID, FLOATD_INSTANCE_ID and FLOATD_LEASE_TOKEN.
`;

interface Args {
  server?: string;
  key?: string;
  stateDir?: string;
  /** the DNS domain of the SRV step; false: no discovery at all */
  domain?: string | false;
  wait: boolean;
  timeout?: number;
  waitInterval?: number;
  appVersion?: string;
  enforce: boolean;
  quiet: boolean;
  help: boolean;
  forget: boolean;
  command: string[];
  /** the value of the `key` sharing attribute (--share-key, FLOATD_SHARE_KEY) */
  shareKey?: string;
  /** the pools to check out (--feature, FLOATD_FEATURES); absent: the base pool */
  features?: string[];
  /** the user name from the environment ($USER, $LOGNAME, %USERNAME%) */
  user?: string;
}

class UsageError extends Error {}

/** `render,sim` → the names; an empty name is a usage error. */
function poolList(v: string): string[] {
  const names = v.split(',').map((n) => n.trim());
  if (names.some((n) => n === '')) throw new UsageError(`--feature: empty pool name in "${v}"`);
  return names;
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv): Args {
  const a: Args = { wait: false, enforce: false, quiet: false, help: false, forget: false, command: [] };
  let i = 0;
  const value = (flag: string): string => {
    const v = argv[++i];
    if (v === undefined) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  const seconds = (flag: string): number => {
    const v = Number(value(flag));
    if (!Number.isFinite(v) || v < 0) throw new UsageError(`${flag} needs a number of seconds`);
    return v;
  };
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      a.command = argv.slice(i + 1);
      break;
    }
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      // --flag=value: split and reread
      argv = [...argv.slice(0, i), arg.slice(0, eq), arg.slice(eq + 1), ...argv.slice(i + 1)];
      i--;
      continue;
    }
    switch (arg) {
      case '--server':
        a.server = value(arg);
        break;
      case '--key':
        a.key = value(arg);
        break;
      case '--state-dir':
        a.stateDir = value(arg);
        break;
      case '--domain':
        a.domain = value(arg);
        break;
      case '--no-discover':
        a.domain = false;
        break;
      case '--wait':
        a.wait = true;
        break;
      case '--timeout':
        a.timeout = seconds(arg);
        break;
      case '--wait-interval':
        a.waitInterval = seconds(arg);
        break;
      case '--app-version':
        a.appVersion = value(arg);
        break;
      case '--share-key':
        a.shareKey = value(arg);
        break;
      case '--feature':
        a.features = [...(a.features ?? []), ...poolList(value(arg))];
        break;
      case '--enforce':
        a.enforce = true;
        break;
      case '--forget':
        a.forget = true;
        break;
      case '--quiet':
        a.quiet = true;
        break;
      case '-h':
      case '--help':
        a.help = true;
        break;
      default:
        if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
        a.command = argv.slice(i);
        i = argv.length;
    }
  }
  a.server ??= env.FLOATD_SERVER;
  a.key ??= env.FLOATD_LICENSE_KEY;
  a.stateDir ??= env.FLOATD_STATE_DIR;
  a.shareKey ??= env.FLOATD_SHARE_KEY || undefined;
  a.features ??= env.FLOATD_FEATURES ? poolList(env.FLOATD_FEATURES) : undefined;
  a.user ??= env.USER || env.LOGNAME || env.USERNAME || undefined;
  if (a.domain === undefined && env.FLOATD_DISCOVER !== undefined && /^(0|false|no|off)$/i.test(env.FLOATD_DISCOVER)) a.domain = false;
  if (a.domain === undefined && env.FLOATD_DOMAIN) a.domain = env.FLOATD_DOMAIN;
  if (a.help || a.forget) return a;
  // a missing --server/--key is asked for (or read from what was remembered) in main()
  if (a.command.length === 0) throw new UsageError('no command given (put it after --)');
  return a;
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
const ENFORCED: ViolationCode[] = [
  'SEAT_LOST',
  'LICENSE_EXPIRED',
  'LICENSE_SUSPENDED',
  'SERVER_UNREACHABLE',
  'OFFLINE_EXPIRED',
  'CLOCK_TAMPERED',
];

/** discoverServer's options for floatd-run: --domain/FLOATD_DOMAIN, and the lab settings FLOATD_DNS_SERVERS, FLOATD_SRV_SCHEME, FLOATD_MDNS_INTERFACE, FLOATD_MDNS_PORT. */
export function discoveryOptions(args: Pick<Args, 'domain' | 'stateDir'>, env: NodeJS.ProcessEnv): DiscoveryOptions {
  const dns = (env.FLOATD_DNS_SERVERS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const mdnsPort = Number(env.FLOATD_MDNS_PORT);
  return {
    remembered: false, // resolveKey reads the remembered server itself
    ...(args.stateDir ? { stateDir: args.stateDir } : {}),
    ...(typeof args.domain === 'string' ? { domain: args.domain } : {}),
    ...(dns.length ? { dnsServers: dns } : {}),
    ...(env.FLOATD_SRV_SCHEME === 'http' ? { scheme: 'http' as const } : {}),
    browse: {
      ...(env.FLOATD_MDNS_INTERFACE ? { interface: env.FLOATD_MDNS_INTERFACE } : {}),
      ...(Number.isInteger(mdnsPort) && mdnsPort > 0 && mdnsPort < 65536 ? { port: mdnsPort } : {}),
    },
  };
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`floatd-run: ${err.message}\n\n${HELP}`);
      return EXIT.USAGE;
    }
    throw err;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const say = (msg: string) => {
    if (!args.quiet) process.stderr.write(`floatd-run: ${msg}\n`);
  };
  const fail = (msg: string) => process.stderr.write(`floatd-run: ${msg}\n`);
  if (args.forget) {
    await forgetKey(args.stateDir);
    say('the remembered license key and server are forgotten');
    return 0;
  }
  {
    const r = await resolveKey({
      ...(args.server ? { server: args.server } : {}),
      ...(args.key ? { key: args.key } : {}),
      ...(args.stateDir ? { stateDir: args.stateDir } : {}),
      tty: !!process.stdin.isTTY && !!process.stderr.isTTY,
      ...(args.domain !== false ? { discover: () => discoverServer(discoveryOptions(args, process.env)) } : {}),
    });
    if (!r.ok) {
      fail(r.line);
      return r.exit;
    }
    args.server = r.serverUrl;
    args.key = r.licenseKey;
  }

  let lic: FloatingLicense;
  try {
    lic = new FloatingLicense({
      serverUrl: args.server!,
      licenseKey: args.key!,
      ...(args.stateDir ? { stateDir: args.stateDir } : {}),
      ...(args.appVersion ? { appVersion: args.appVersion } : {}),
      ...(args.shareKey ? { shareKey: args.shareKey } : {}),
      ...(args.features ? { features: [...new Set(args.features)] } : {}),
      ...(args.user ? { user: args.user } : {}),
      ...(args.waitInterval !== undefined ? { waitIntervalSeconds: args.waitInterval } : {}),
    });
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
    return err instanceof FloatingLicenseError && err.code === 'VALIDATION_FAILED' ? EXIT.USAGE : EXIT.REFUSED;
  }

  // A signal before the command runs: stop waiting, exit as that signal would.
  const early = new AbortController();
  let earlySignal: NodeJS.Signals | undefined;
  const onEarly = (sig: NodeJS.Signals) => {
    earlySignal = sig;
    early.abort(new Error(sig));
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onEarly);
  const dropEarly = () => {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(s, onEarly);
  };

  let child: ChildProcess | undefined;
  lic.on('violation', (v) => {
    fail(`license violation ${v.code}: ${v.message}`);
    if (args.enforce && ENFORCED.includes(v.code) && child && child.exitCode === null && child.signalCode === null) {
      fail('stopping the command (--enforce)');
      child.kill('SIGTERM');
    }
  });
  lic.on('reacquired', () => say('seat reacquired'));
  lic.on('waiting', (w) =>
    say(
      w.queue
        ? `no seat free: number ${w.queue.position} of ${w.queue.length} waiting for ${w.queue.pool}; asking again in ${secs(w.retryInMs)}`
        : `no seat free (${w.message}); asking again in ${secs(w.retryInMs)}`,
    ),
  );
  lic.on('retry', (r) => {
    if (r.operation === 'checkout') say(`license server unreachable (${r.error.message}); retrying in ${secs(r.delayMs)}`);
  });

  let result;
  try {
    result = await lic.checkout({
      wait: args.wait,
      signal: early.signal,
      ...(args.timeout !== undefined ? { timeoutMs: args.timeout * 1000 } : {}),
    });
  } catch (err) {
    dropEarly();
    if (earlySignal) return exitForSignal(earlySignal);
    const e = err instanceof FloatingLicenseError ? err : undefined;
    fail(`cannot check out a seat: ${endUserCode(err) ? explain(err) : err instanceof Error ? err.message : String(err)}`);
    return e?.code === 'NETWORK_ERROR' || e?.transient ? EXIT.UNAVAILABLE : EXIT.REFUSED;
  }
  dropEarly();
  if (earlySignal) {
    if (result.ok) await lic.checkin({ timeoutMs: 5000 }).catch(() => undefined);
    return exitForSignal(earlySignal);
  }
  if (!result.ok) {
    fail(`no seat free: ${result.message}${result.timedOut ? ' (gave up waiting)' : ''}`);
    if (result.holders?.length) {
      fail('seats are held by:');
      for (const h of result.holders) fail(`  ${formatHolder(h)}`);
    }
    if (!args.wait) fail('run with --wait to queue for the next free seat');
    return EXIT.NO_SEAT;
  }
  const st = result.status;
  if (result.source === 'offline-token') say(`running on the seat borrowed offline until ${st.offlineExpiresAt?.toISOString()}`);
  else if (result.source === 'cached-token') say('license server unreachable: running on the lease this device still holds');
  else if (!result.created && result.source === 'server') {
    // Per-device counting: another copy on this machine already holds the seat, and this one shares it.
    say(
      `joined the seat this machine already holds (${st.instances ?? '?'} copies run on it; ${st.seatsUsed}/${st.seatsTotal} seats in use)`,
    );
  } else say(`seat checked out (${st.seatsUsed}/${st.seatsTotal} in use)`);

  let running: ChildProcess;
  try {
    running = child = spawn(args.command[0]!, args.command.slice(1), {
      stdio: 'inherit',
      env: { ...process.env, FLOATD_LEASE_ID: st.leaseId ?? '', FLOATD_INSTANCE_ID: lic.instanceId, FLOATD_LEASE_TOKEN: st.token ?? '' },
    });
  } catch (err) {
    await lic.checkin({ timeoutMs: 5000 }).catch(() => undefined);
    fail(`cannot run ${args.command[0]}: ${(err as Error).message}`);
    return EXIT.CANNOT_EXECUTE;
  }

  // Signals go to the command. A terminal's Ctrl-C already reached it (same process group): not twice.
  const forward = (sig: NodeJS.Signals) => {
    if (sig === 'SIGINT' && process.stdin.isTTY) return;
    if (running.exitCode === null && running.signalCode === null) running.kill(sig);
  };
  for (const s of FORWARDED) process.on(s, forward);

  const outcome = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: NodeJS.ErrnoException }>((resolve) => {
    running.once('error', (error: NodeJS.ErrnoException) => resolve({ code: null, signal: null, error }));
    running.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const checkin = await lic.checkin({ timeoutMs: 5000 }).catch(() => undefined);
  await lic.close({ checkin: false });
  if (checkin && !checkin.reachedServer)
    say('could not reach the license server to check in; the seat stays with this device until it expires');
  for (const s of FORWARDED) process.removeListener(s, forward);

  if (outcome.error) {
    fail(`cannot run ${args.command[0]}: ${outcome.error.message}`);
    return outcome.error.code === 'ENOENT' ? EXIT.NOT_FOUND : EXIT.CANNOT_EXECUTE;
  }
  if (outcome.signal) return exitForSignal(outcome.signal);
  return outcome.code ?? 1;
}

/** Dies of the same signal, so whoever waits for floatd-run sees what the command did. */
function exitForSignal(sig: NodeJS.Signals): number {
  for (const s of FORWARDED) process.removeAllListeners(s);
  process.kill(process.pid, sig);
  // not fatal (ignored, or a platform without it): the shell convention
  return 128 + (constants.signals[sig] ?? 1);
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

function formatHolder(value: unknown): string {
  if (!value || typeof value !== 'object') return String(value);
  const holder = value as Record<string, unknown>;
  const who = [holder.user, holder.hostname].filter((x) => typeof x === 'string' && x).join('@') || String(holder.deviceId ?? 'a device');
  const until = typeof holder.expiresAt === 'string' ? ` until ${holder.expiresAt}` : '';
  return `${who}${until}`;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`floatd-run: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 70;
  },
);
