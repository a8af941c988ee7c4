/**
 * Configuration from flags and environment (flags win), validated at start:
 * a bad value stops the server with a message naming the setting.
 */
import { resolve } from 'node:path';
import { defaultInstanceName, validInstanceName } from './ops/announceName.js';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** where the database is: SQLite file path (default `<dataDir>/floatd.db`) or a PostgreSQL URL */
  database: { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; keyEncryptionKey: Buffer; poolSize: number };
  reclaimIntervalSeconds: number;
  /** webhooks: a license's `license.expiring` event is written this many days before it ends */
  licenseExpiringDays: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  logRequests: boolean;
  sqliteSynchronous: 'NORMAL' | 'FULL';
  /** batched heartbeat writes: interval in ms, 0 = write every heartbeat before answering */
  heartbeatBatchMs: number;
  security: SecurityConfig;
  /** hosted: the vendor runs it and manages keys; on-prem: seats come only from a vendor-signed license file */
  mode: 'hosted' | 'on-prem';
  /** on-prem: the license file read at start and polled (default `<dataDir>/license.json`) */
  licenseFile: string;
  /** on-prem: file with the vendor's Ed25519 public key (PEM, JWK or base64url); default: the key baked into the build, if any */
  vendorPublicKeyFile: string | undefined;
  /** hosted vendor server: file with the vendor's Ed25519 private key (mode 0600), to issue license files */
  vendorPrivateKeyFile: string | undefined;
  /** how far the clock may read behind the latest trusted time before grants stop */
  clockToleranceSeconds: number;
  /** seconds between the trusted-time and license-file checks */
  stateIntervalSeconds: number;
  /** connection caps and deadlines (http/connections.ts); `total` undefined = sized from the descriptor limit at start */
  connections: { perAddress: number; total: number | undefined; headersTimeoutMs: number; unauthenticatedIdleMs: number };
  /** PostgreSQL: a license's seat transactions share commits in turns (store/groupCommit.ts); false = each alone */
  groupCommit: boolean;
  /** retention of history (jobs/retention.ts): days kept, 0 = keep forever */
  retention: { auditDays: number; usageDays: number };
  /** DNS-SD on the local network (ops/announce.ts): off (undefined) unless `--announce [name]` / FLOATD_ANNOUNCE */
  announce: { name: string; interface: string | undefined; mdnsPort: number } | undefined;
}

export const DEFAULT_CONNECTIONS = { perAddress: 256, headersTimeoutMs: 10_000, unauthenticatedIdleMs: 5_000 } as const;
export const DEFAULT_RETENTION = { auditDays: 90, usageDays: 800 } as const;

/** A token bucket: up to `max` requests at once, refilled at `max` per `perSeconds`. */
export interface RateLimit {
  max: number;
  perSeconds: number;
}

export interface SecurityConfig {
  /** per-node limits (each node of a cluster counts on its own) */
  rateLimit: {
    enabled: boolean;
    /** client API requests per client IP address */
    clientIp: RateLimit;
    /** client API requests per license key */
    clientKey: RateLimit;
    /** failed authentications (bad admin token, bad license key) per client IP address */
    authFailures: RateLimit;
  };
  /** fastify's trustProxy: whether (and which) X-Forwarded-For to believe for the client address */
  trustProxy: boolean | number | string[];
  /** origins whose pages may call the admin API (CORS); none by default */
  corsOrigins: string[];
}

export const DEFAULT_RATE_LIMITS = {
  clientIp: { max: 6000, perSeconds: 60 },
  clientKey: { max: 3000, perSeconds: 60 },
  authFailures: { max: 30, perSeconds: 60 },
} as const;

export interface ConfigInput {
  host?: string | undefined;
  port?: string | undefined;
  dataDir?: string | undefined;
  databaseUrl?: string | undefined;
  reclaimInterval?: string | undefined;
  licenseExpiringDays?: string | undefined;
  logLevel?: string | undefined;
  logRequests?: string | boolean | undefined;
  sqliteSynchronous?: string | undefined;
  keyEncryptionKey?: string | undefined;
  heartbeatBatchMs?: string | undefined;
  databasePoolSize?: string | undefined;
  rateLimit?: string | undefined;
  rateLimitClientIp?: string | undefined;
  rateLimitClientKey?: string | undefined;
  rateLimitAuthFailures?: string | undefined;
  trustProxy?: string | undefined;
  corsOrigins?: string | undefined;
  mode?: string | undefined;
  licenseFile?: string | undefined;
  vendorPublicKey?: string | undefined;
  vendorPrivateKey?: string | undefined;
  clockTolerance?: string | undefined;
  stateInterval?: string | undefined;
  maxConnectionsPerAddress?: string | undefined;
  maxConnections?: string | undefined;
  headersTimeoutMs?: string | undefined;
  idleUnauthenticatedMs?: string | undefined;
  auditRetentionDays?: string | undefined;
  groupCommit?: string | undefined;
  usageRetentionDays?: string | undefined;
  /** `--announce [name]`: true (default name) or the instance name; FLOATD_ANNOUNCE: 1/true or a name, 0/false/empty = off */
  announce?: string | boolean | undefined;
  announceInterface?: string | undefined;
  mdnsPort?: string | undefined;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Reads FLOATD_* variables; flags given in `flags` take precedence. */
export function configFrom(flags: ConfigInput, env: NodeJS.ProcessEnv = process.env): Config {
  const pick = (flag: string | undefined, name: string) => (flag !== undefined ? flag : env[name]);
  const input: ConfigInput = {
    host: pick(flags.host, 'FLOATD_HOST'),
    port: pick(flags.port, 'FLOATD_PORT'),
    dataDir: pick(flags.dataDir, 'FLOATD_DATA_DIR'),
    databaseUrl: pick(flags.databaseUrl, 'FLOATD_DATABASE_URL'),
    reclaimInterval: pick(flags.reclaimInterval, 'FLOATD_RECLAIM_INTERVAL_SECONDS'),
    licenseExpiringDays: pick(flags.licenseExpiringDays, 'FLOATD_LICENSE_EXPIRING_DAYS'),
    logLevel: pick(flags.logLevel, 'FLOATD_LOG_LEVEL'),
    logRequests: flags.logRequests ?? env.FLOATD_LOG_REQUESTS,
    sqliteSynchronous: pick(flags.sqliteSynchronous, 'FLOATD_SQLITE_SYNCHRONOUS'),
    keyEncryptionKey: env.FLOATD_KEY_ENCRYPTION_KEY,
    heartbeatBatchMs: env.FLOATD_HEARTBEAT_BATCH_MS,
    databasePoolSize: env.FLOATD_DATABASE_POOL_SIZE,
    rateLimit: env.FLOATD_RATE_LIMIT,
    rateLimitClientIp: env.FLOATD_RATE_LIMIT_CLIENT_IP,
    rateLimitClientKey: env.FLOATD_RATE_LIMIT_CLIENT_KEY,
    rateLimitAuthFailures: env.FLOATD_RATE_LIMIT_AUTH_FAILURES,
    trustProxy: env.FLOATD_TRUST_PROXY,
    corsOrigins: env.FLOATD_CORS_ORIGINS,
    mode: pick(flags.mode, 'FLOATD_MODE'),
    licenseFile: pick(flags.licenseFile, 'FLOATD_LICENSE_FILE'),
    vendorPublicKey: pick(flags.vendorPublicKey, 'FLOATD_VENDOR_PUBLIC_KEY'),
    vendorPrivateKey: pick(flags.vendorPrivateKey, 'FLOATD_VENDOR_PRIVATE_KEY'),
    clockTolerance: pick(flags.clockTolerance, 'FLOATD_CLOCK_TOLERANCE_SECONDS'),
    stateInterval: pick(flags.stateInterval, 'FLOATD_STATE_INTERVAL_SECONDS'),
    maxConnectionsPerAddress: env.FLOATD_MAX_CONNECTIONS_PER_ADDRESS,
    maxConnections: env.FLOATD_MAX_CONNECTIONS,
    headersTimeoutMs: env.FLOATD_HEADERS_TIMEOUT_MS,
    idleUnauthenticatedMs: env.FLOATD_IDLE_UNAUTHENTICATED_MS,
    auditRetentionDays: env.FLOATD_AUDIT_RETENTION_DAYS,
    groupCommit: env.FLOATD_GROUP_COMMIT,
    usageRetentionDays: env.FLOATD_USAGE_RETENTION_DAYS,
    announce: flags.announce !== undefined ? flags.announce : env.FLOATD_ANNOUNCE,
    announceInterface: pick(flags.announceInterface, 'FLOATD_ANNOUNCE_INTERFACE'),
    mdnsPort: env.FLOATD_MDNS_PORT,
  };
  return parseConfig(input);
}

export function parseConfig(input: ConfigInput): Config {
  const host = input.host ?? '127.0.0.1';
  if (!/^[A-Za-z0-9.:\-[\]]+$/.test(host)) throw new ConfigError(`FLOATD_HOST / --host: "${host}" is not a host name or IP address`);
  const port = integer(input.port ?? '7070', 'FLOATD_PORT / --port', 0, 65535);
  const dataDir = resolve(input.dataDir ?? './data');
  if ((input.dataDir ?? './data').trim() === '') throw new ConfigError('FLOATD_DATA_DIR / --data-dir: must not be empty');
  const reclaimIntervalSeconds = integer(input.reclaimInterval ?? '30', 'FLOATD_RECLAIM_INTERVAL_SECONDS / --reclaim-interval', 1, 86_400);
  const logLevel = (input.logLevel ?? 'info') as Config['logLevel'];
  if (!LEVELS.includes(logLevel)) throw new ConfigError(`FLOATD_LOG_LEVEL / --log-level: "${logLevel}" is not one of ${LEVELS.join(', ')}`);
  const sync = (input.sqliteSynchronous ?? 'FULL').toUpperCase();
  if (sync !== 'NORMAL' && sync !== 'FULL')
    throw new ConfigError(`FLOATD_SQLITE_SYNCHRONOUS: "${input.sqliteSynchronous}" must be NORMAL or FULL`);
  const heartbeatBatchMs = integer(input.heartbeatBatchMs ?? '1000', 'FLOATD_HEARTBEAT_BATCH_MS', 0, 10_000);
  const logRequests = input.logRequests === true || input.logRequests === '1' || input.logRequests === 'true';
  const mode = (input.mode ?? 'hosted').toLowerCase();
  if (mode !== 'hosted' && mode !== 'on-prem') throw new ConfigError(`FLOATD_MODE / --mode: "${input.mode}" must be hosted or on-prem`);
  if (mode === 'on-prem' && input.vendorPrivateKey)
    throw new ConfigError('--vendor-private-key: an on-prem server never holds the vendor private key');
  const path = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    if (v.trim() === '') throw new ConfigError(`${name}: must not be empty`);
    return resolve(v);
  };
  return {
    host,
    port,
    dataDir,
    database: database(input.databaseUrl, dataDir, input.keyEncryptionKey, input.databasePoolSize),
    reclaimIntervalSeconds,
    licenseExpiringDays: integer(input.licenseExpiringDays ?? '14', 'FLOATD_LICENSE_EXPIRING_DAYS / --license-expiring-days', 1, 366),
    logLevel,
    logRequests,
    sqliteSynchronous: sync,
    heartbeatBatchMs,
    mode,
    licenseFile: path(input.licenseFile, 'FLOATD_LICENSE_FILE / --license-file') ?? resolve(dataDir, 'license.json'),
    vendorPublicKeyFile: path(input.vendorPublicKey, 'FLOATD_VENDOR_PUBLIC_KEY / --vendor-public-key'),
    vendorPrivateKeyFile: path(input.vendorPrivateKey, 'FLOATD_VENDOR_PRIVATE_KEY / --vendor-private-key'),
    clockToleranceSeconds: integer(
      input.clockTolerance ?? '900',
      'FLOATD_CLOCK_TOLERANCE_SECONDS / --clock-tolerance',
      1,
      10 * 365 * 86_400,
    ),
    stateIntervalSeconds: integer(input.stateInterval ?? '60', 'FLOATD_STATE_INTERVAL_SECONDS / --state-interval', 1, 3600),
    security: security(input),
    connections: connections(input),
    retention: retention(input, mode),
    groupCommit: onOff(input.groupCommit, 'FLOATD_GROUP_COMMIT', true),
    announce: announce(input),
  };
}

function announce(input: ConfigInput): Config['announce'] {
  const value = input.announce;
  if (value === undefined || value === false || (typeof value === 'string' && /^(|0|false|no|off)$/i.test(value.trim()))) return undefined;
  const name =
    value === true || (typeof value === 'string' && /^(1|true|yes|on)$/i.test(value.trim())) ? defaultInstanceName() : String(value).trim();
  const bad = validInstanceName(name);
  if (bad) throw new ConfigError(`FLOATD_ANNOUNCE / --announce: the name "${name}" ${bad}`);
  const iface = input.announceInterface?.trim() || undefined;
  if (iface !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(iface))
    throw new ConfigError(`FLOATD_ANNOUNCE_INTERFACE / --announce-interface: "${iface}" is not the IPv4 address of an interface`);
  return { name, interface: iface, mdnsPort: integer(input.mdnsPort ?? '5353', 'FLOATD_MDNS_PORT', 1, 65535) };
}

/** A signed on-premise usage report covers up to 366 days back: its hourly usage must still be there. */
export const MIN_ONPREM_USAGE_RETENTION_DAYS = 367;

function retention(input: ConfigInput, mode: 'hosted' | 'on-prem'): Config['retention'] {
  const auditDays = integer(input.auditRetentionDays ?? String(DEFAULT_RETENTION.auditDays), 'FLOATD_AUDIT_RETENTION_DAYS', 0, 36_500);
  const usageDays = integer(input.usageRetentionDays ?? String(DEFAULT_RETENTION.usageDays), 'FLOATD_USAGE_RETENTION_DAYS', 0, 36_500);
  if (mode === 'on-prem' && usageDays > 0 && usageDays < MIN_ONPREM_USAGE_RETENTION_DAYS) {
    throw new ConfigError(
      `FLOATD_USAGE_RETENTION_DAYS: ${usageDays} days is too short on-prem: a signed usage report covers up to 366 days (use ${MIN_ONPREM_USAGE_RETENTION_DAYS} or more, or 0 to keep all)`,
    );
  }
  return { auditDays, usageDays };
}

function connections(input: ConfigInput): Config['connections'] {
  // Behind a trusted proxy every connection comes from the proxy: a per-address cap would cap the proxy, so it is off
  // unless set (the proxy is where the per-client limit belongs then).
  const behindProxy = input.trustProxy !== undefined && !['', 'false', '0'].includes(input.trustProxy.trim());
  const perAddressDefault = behindProxy ? '0' : String(DEFAULT_CONNECTIONS.perAddress);
  const total =
    input.maxConnections === undefined || input.maxConnections.trim() === '' || input.maxConnections.trim() === 'auto'
      ? undefined
      : integer(input.maxConnections, 'FLOATD_MAX_CONNECTIONS', 16, 1_000_000);
  return {
    perAddress: integer(input.maxConnectionsPerAddress ?? perAddressDefault, 'FLOATD_MAX_CONNECTIONS_PER_ADDRESS', 0, 1_000_000),
    total,
    headersTimeoutMs: integer(
      input.headersTimeoutMs ?? String(DEFAULT_CONNECTIONS.headersTimeoutMs),
      'FLOATD_HEADERS_TIMEOUT_MS',
      500,
      300_000,
    ),
    unauthenticatedIdleMs: integer(
      input.idleUnauthenticatedMs ?? String(DEFAULT_CONNECTIONS.unauthenticatedIdleMs),
      'FLOATD_IDLE_UNAUTHENTICATED_MS',
      500,
      300_000,
    ),
  };
}

/** A switch: on/1/true/yes or off/0/false/no (any case); unset or empty = `fallback`. */
function onOff(raw: string | undefined, name: string, fallback: boolean): boolean {
  const value = (raw ?? '').trim().toLowerCase();
  if (value === '') return fallback;
  if (['on', '1', 'true', 'yes'].includes(value)) return true;
  if (['off', '0', 'false', 'no'].includes(value)) return false;
  throw new ConfigError(`${name}: "${raw}" must be on or off`);
}

function security(input: ConfigInput): SecurityConfig {
  const on = onOff(input.rateLimit, 'FLOATD_RATE_LIMIT', true);
  return {
    rateLimit: {
      enabled: on,
      clientIp: rate(input.rateLimitClientIp, 'FLOATD_RATE_LIMIT_CLIENT_IP', DEFAULT_RATE_LIMITS.clientIp),
      clientKey: rate(input.rateLimitClientKey, 'FLOATD_RATE_LIMIT_CLIENT_KEY', DEFAULT_RATE_LIMITS.clientKey),
      authFailures: rate(input.rateLimitAuthFailures, 'FLOATD_RATE_LIMIT_AUTH_FAILURES', DEFAULT_RATE_LIMITS.authFailures),
    },
    trustProxy: trustProxy(input.trustProxy),
    corsOrigins: corsOrigins(input.corsOrigins),
  };
}

/** `<count>/<seconds>`, e.g. `600/60`. */
function rate(raw: string | undefined, name: string, fallback: RateLimit): RateLimit {
  if (raw === undefined || raw.trim() === '') return { ...fallback };
  const m = /^\s*(\d{1,9})\s*\/\s*(\d{1,6})\s*$/.exec(raw);
  if (!m) throw new ConfigError(`${name}: "${raw}" is not <count>/<seconds>, e.g. 600/60`);
  const max = Number(m[1]);
  const perSeconds = Number(m[2]);
  if (max < 1 || perSeconds < 1 || perSeconds > 86_400)
    throw new ConfigError(`${name}: "${raw}" needs a count of at least 1 and 1..86400 seconds`);
  return { max, perSeconds };
}

function trustProxy(raw: string | undefined): SecurityConfig['trustProxy'] {
  const v = (raw ?? '').trim();
  if (v === '' || v === 'false' || v === '0') return false;
  if (v === 'true') return true;
  if (/^\d{1,2}$/.test(v)) return Number(v);
  const list = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const a of list) {
    if (!/^[0-9A-Fa-f.:]+(\/\d{1,3})?$/.test(a))
      throw new ConfigError(`FLOATD_TRUST_PROXY: "${a}" is not an IP address or CIDR (or use true, or a hop count)`);
  }
  return list;
}

function corsOrigins(raw: string | undefined): string[] {
  const list = (raw ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  return list.map((origin) => {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new ConfigError(`FLOATD_CORS_ORIGINS: "${origin}" is not an origin such as https://admin.example.com`);
    }
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin !== origin.replace(/\/$/, '')) {
      throw new ConfigError(
        `FLOATD_CORS_ORIGINS: "${origin}" is not an origin such as https://admin.example.com (scheme, host and port only; no "*")`,
      );
    }
    return url.origin;
  });
}

function integer(raw: string, name: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name}: "${raw}" is not a whole number`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(`${name}: ${n} is outside ${min}..${max}`);
  return n;
}

function database(
  url: string | undefined,
  dataDir: string,
  encryptionKey: string | undefined,
  poolSize: string | undefined,
): Config['database'] {
  if (url === undefined || url.trim() === '') return { kind: 'sqlite', path: resolve(dataDir, 'floatd.db') };
  const m = /^(sqlite|file):(?:\/\/)?(.+)$/.exec(url.trim());
  if (m?.[2]) return { kind: 'sqlite', path: resolve(m[2]) };
  if (/^postgres(ql)?:\/\/\S+$/.test(url.trim())) {
    // Several hosts (libpq's convention, for a primary and its standbys: postgres://a:5432,b:5433/db?target_session_attrs=read-write)
    // are valid when the URL is valid with each one of them.
    const u = url.trim();
    const authority = u.slice(u.indexOf('://') + 3).split(/[?/]/)[0] ?? '';
    const hosts = authority.slice(authority.lastIndexOf('@') + 1);
    for (const host of hosts.split(',')) {
      try {
        if (host === '') throw new Error('empty host');
        new URL(u.replace(hosts, host));
      } catch {
        throw new ConfigError(`FLOATD_DATABASE_URL: "${redact(url)}" is not a valid URL`);
      }
    }
    return {
      kind: 'postgres',
      url: url.trim(),
      keyEncryptionKey: keyFrom(encryptionKey),
      poolSize: integer(poolSize ?? '10', 'FLOATD_DATABASE_POOL_SIZE', 2, 1000),
    };
  }
  throw new ConfigError(`FLOATD_DATABASE_URL: "${redact(url)}" is neither sqlite:PATH nor postgres://…`);
}

/** The AES-256 key that protects the signing keys stored in PostgreSQL: 32 bytes, base64 or hex. */
function keyFrom(raw: string | undefined): Buffer {
  if (!raw) {
    throw new ConfigError(
      'FLOATD_KEY_ENCRYPTION_KEY: required with PostgreSQL (it encrypts the signing keys in the database; give every node the same one). Make one with: openssl rand -base64 32',
    );
  }
  const key = /^[0-9a-fA-F]{64}$/.test(raw) ? Buffer.from(raw, 'hex') : Buffer.from(raw, 'base64');
  if (key.length !== 32)
    throw new ConfigError('FLOATD_KEY_ENCRYPTION_KEY: must be 32 bytes, as base64 (44 characters) or hex (64 characters)');
  return key;
}

/** Never print a database password back. */
function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}
