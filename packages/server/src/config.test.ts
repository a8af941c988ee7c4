import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { ConfigError, configFrom, parseConfig } from './config.js';

test('defaults: 127.0.0.1:7070, ./data, SQLite in the data directory', () => {
  const c = parseConfig({});
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 7070);
  assert.equal(c.dataDir, resolve('./data'));
  assert.deepEqual(c.database, { kind: 'sqlite', path: resolve('./data/floatd.db') });
});

test('environment is read, flags win over it', () => {
  const env = { FLOATD_HOST: '0.0.0.0', FLOATD_PORT: '8080', FLOATD_DATA_DIR: '/tmp/x', FLOATD_DATABASE_URL: 'sqlite:/tmp/y.db' };
  const c = configFrom({ port: '9090' }, env);
  assert.deepEqual([c.host, c.port, c.dataDir, c.database], ['0.0.0.0', 9090, '/tmp/x', { kind: 'sqlite', path: '/tmp/y.db' }]);
});

test('bad values stop the start with a message naming the setting', () => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ port: 'abc' }, /FLOATD_PORT.*not a whole number/],
    [{ port: '70000' }, /FLOATD_PORT.*outside 0\.\.65535/],
    [{ host: 'bad host' }, /FLOATD_HOST/],
    [{ databaseUrl: 'mysql://x' }, /FLOATD_DATABASE_URL/],
    [{ databaseUrl: 'postgres://localhost/db' }, /FLOATD_KEY_ENCRYPTION_KEY: required with PostgreSQL/],
    [{ databaseUrl: 'postgres://localhost/db', keyEncryptionKey: 'c2hvcnQ=' }, /must be 32 bytes/],
    [
      { databaseUrl: 'postgres://u:secret@h:bad/db', keyEncryptionKey: Buffer.alloc(32).toString('base64') },
      /^(?!.*secret).*not a valid URL/,
    ],
    [
      { databaseUrl: 'postgres://u:secret@a:5432,b:bad/db', keyEncryptionKey: Buffer.alloc(32).toString('base64') },
      /^(?!.*secret).*not a valid URL/,
    ],
    [{ databaseUrl: 'postgres://a:5432,/db', keyEncryptionKey: Buffer.alloc(32).toString('base64') }, /not a valid URL/],
    [{ reclaimInterval: '0' }, /RECLAIM_INTERVAL/],
    [{ logLevel: 'loud' }, /FLOATD_LOG_LEVEL/],
    [{ sqliteSynchronous: 'OFF' }, /FLOATD_SQLITE_SYNCHRONOUS/],
    [{ heartbeatBatchMs: '-1' }, /FLOATD_HEARTBEAT_BATCH_MS/],
    [{ heartbeatBatchMs: '60000' }, /FLOATD_HEARTBEAT_BATCH_MS.*outside 0\.\.10000/],
    [
      { databaseUrl: 'postgres://h/db', keyEncryptionKey: Buffer.alloc(32).toString('base64'), databasePoolSize: '1' },
      /FLOATD_DATABASE_POOL_SIZE/,
    ],
  ];
  for (const [input, message] of bad)
    assert.throws(
      () => parseConfig(input),
      (e: unknown) => e instanceof ConfigError && message.test(e.message),
      JSON.stringify(input),
    );
});

test('DNS-SD announcing: off by default; --announce [name] / FLOATD_ANNOUNCE; a bad name or interface stops the start', () => {
  assert.equal(parseConfig({}).announce, undefined);
  for (const off of ['', '0', 'false', 'off', 'no']) assert.equal(configFrom({}, { FLOATD_ANNOUNCE: off }).announce, undefined, off);
  const dflt = configFrom({ announce: true }, {}).announce;
  assert.match(dflt!.name, /^floatd on \S+$/);
  assert.deepEqual([dflt!.interface, dflt!.mdnsPort], [undefined, 5353]);
  assert.equal(configFrom({}, { FLOATD_ANNOUNCE: '1' }).announce?.name, dflt!.name);
  assert.deepEqual(
    configFrom(
      { announce: 'floatd build-farm' },
      { FLOATD_ANNOUNCE: 'other', FLOATD_ANNOUNCE_INTERFACE: '192.0.2.7', FLOATD_MDNS_PORT: '5454' },
    ).announce,
    { name: 'floatd build-farm', interface: '192.0.2.7', mdnsPort: 5454 },
  );
  for (const [input, message] of [
    [{ announce: 'a.b' }, /FLOATD_ANNOUNCE \/ --announce: the name "a\.b" must not contain a dot/],
    [{ announce: 'x'.repeat(64) }, /at most 63 bytes/],
    [{ announce: 'x\u0007' }, /control characters/],
    [{ announce: true, announceInterface: 'eth0' }, /FLOATD_ANNOUNCE_INTERFACE.*not the IPv4 address/],
    [{ announce: true, mdnsPort: '0' }, /FLOATD_MDNS_PORT/],
  ] as [Record<string, string | boolean>, RegExp][])
    assert.throws(
      () => parseConfig(input),
      (e: unknown) => e instanceof ConfigError && message.test(e.message),
      JSON.stringify(input),
    );
});

test('a PostgreSQL URL with a 32-byte key selects the PostgreSQL store', () => {
  const key = Buffer.alloc(32, 1);
  const c = parseConfig({ databaseUrl: 'postgres://floatd@db.internal:5432/floatd', keyEncryptionKey: key.toString('base64') });
  assert.equal(c.database.kind, 'postgres');
  assert.ok(c.database.kind === 'postgres' && c.database.keyEncryptionKey.equals(key));
  const hex = parseConfig({ databaseUrl: 'postgresql://h/db', keyEncryptionKey: key.toString('hex') });
  assert.ok(hex.database.kind === 'postgres' && hex.database.keyEncryptionKey.equals(key));
  assert.ok(c.database.kind === 'postgres' && c.database.poolSize === 10, 'default pool of 10 connections per node');
  const big = parseConfig({ databaseUrl: 'postgres://h/db', keyEncryptionKey: key.toString('hex'), databasePoolSize: '40' });
  assert.ok(big.database.kind === 'postgres' && big.database.poolSize === 40);
  const multi = 'postgres://floatd:pw@db1:5432,db2:5433/floatd?target_session_attrs=read-write';
  const m = parseConfig({ databaseUrl: multi, keyEncryptionKey: key.toString('hex') });
  assert.ok(m.database.kind === 'postgres' && m.database.url === multi, 'a multi-host URL (libpq convention) is taken as it is');
});

test('heartbeat batching: 1000 ms by default, 0 turns it off', () => {
  assert.equal(parseConfig({}).heartbeatBatchMs, 1000);
  assert.equal(parseConfig({ heartbeatBatchMs: '0' }).heartbeatBatchMs, 0);
  assert.equal(configFrom({}, { FLOATD_HEARTBEAT_BATCH_MS: '250' }).heartbeatBatchMs, 250);
});

test('security settings: rate limits on by default with generous per-address limits, FLOATD_RATE_LIMIT=off, CORS origins, trusted proxies', () => {
  const d = parseConfig({});
  assert.deepEqual(d.security.rateLimit, {
    enabled: true,
    clientIp: { max: 6000, perSeconds: 60 },
    clientKey: { max: 3000, perSeconds: 60 },
    authFailures: { max: 30, perSeconds: 60 },
  });
  assert.deepEqual([d.security.trustProxy, d.security.corsOrigins], [false, []]);
  const env = {
    FLOATD_RATE_LIMIT: 'off',
    FLOATD_RATE_LIMIT_CLIENT_IP: '100/10',
    FLOATD_RATE_LIMIT_CLIENT_KEY: ' 5 / 1 ',
    FLOATD_RATE_LIMIT_AUTH_FAILURES: '3/600',
    FLOATD_TRUST_PROXY: '10.0.0.1, 10.1.0.0/16',
    FLOATD_CORS_ORIGINS: 'https://admin.example.com, http://localhost:5173',
  };
  const c = configFrom({}, env);
  assert.equal(c.security.rateLimit.enabled, false);
  assert.deepEqual(c.security.rateLimit.clientIp, { max: 100, perSeconds: 10 });
  assert.deepEqual(c.security.rateLimit.clientKey, { max: 5, perSeconds: 1 });
  assert.deepEqual(c.security.rateLimit.authFailures, { max: 3, perSeconds: 600 });
  assert.deepEqual(c.security.trustProxy, ['10.0.0.1', '10.1.0.0/16']);
  assert.deepEqual(c.security.corsOrigins, ['https://admin.example.com', 'http://localhost:5173']);
  assert.equal(parseConfig({ trustProxy: 'true' }).security.trustProxy, true);
  assert.equal(parseConfig({ trustProxy: '2' }).security.trustProxy, 2);
  const bad: [Record<string, string>, RegExp][] = [
    [{ rateLimit: 'maybe' }, /FLOATD_RATE_LIMIT: .* on or off/],
    [{ rateLimitClientIp: '100' }, /FLOATD_RATE_LIMIT_CLIENT_IP: .*<count>\/<seconds>/],
    [{ rateLimitClientKey: '0/60' }, /FLOATD_RATE_LIMIT_CLIENT_KEY/],
    [{ rateLimitAuthFailures: '5/0' }, /FLOATD_RATE_LIMIT_AUTH_FAILURES/],
    [{ trustProxy: 'proxy.internal' }, /FLOATD_TRUST_PROXY/],
    [{ corsOrigins: '*' }, /FLOATD_CORS_ORIGINS/],
    [{ corsOrigins: 'https://admin.example.com/console' }, /FLOATD_CORS_ORIGINS/],
  ];
  for (const [input, message] of bad)
    assert.throws(
      () => parseConfig(input),
      (e: unknown) => e instanceof ConfigError && message.test(e.message),
      JSON.stringify(input),
    );
});

test('roles: hosted by default; on-prem reads the license file from the data directory; bad role settings are refused', () => {
  const hosted = parseConfig({});
  assert.equal(hosted.mode, 'hosted');
  assert.equal(hosted.clockToleranceSeconds, 900);
  const onPrem = configFrom({ mode: 'on-prem', dataDir: '/srv/floatd' }, { FLOATD_VENDOR_PUBLIC_KEY: '/etc/floatd/vendor.pub' });
  assert.deepEqual(
    [onPrem.mode, onPrem.licenseFile, onPrem.vendorPublicKeyFile],
    ['on-prem', '/srv/floatd/license.json', '/etc/floatd/vendor.pub'],
  );
  const bad: [Record<string, string>, RegExp][] = [
    [{ mode: 'cloud' }, /FLOATD_MODE.*hosted or on-prem/],
    [{ mode: 'on-prem', vendorPrivateKey: '/k' }, /never holds the vendor private key/],
    [{ clockTolerance: '0' }, /CLOCK_TOLERANCE/],
    [{ stateInterval: 'soon' }, /STATE_INTERVAL/],
    [{ licenseFile: ' ' }, /LICENSE_FILE.*empty/],
  ];
  for (const [input, message] of bad)
    assert.throws(
      () => parseConfig(input),
      (e: unknown) => e instanceof ConfigError && message.test(e.message),
      JSON.stringify(input),
    );
});

test('hostile clients (#24): connection caps, group commit and retention have documented defaults and checked values', () => {
  const d = parseConfig({});
  assert.deepEqual(d.connections, { perAddress: 256, total: undefined, headersTimeoutMs: 10_000, unauthenticatedIdleMs: 5_000 });
  assert.deepEqual(d.retention, { auditDays: 90, usageDays: 800 });
  assert.equal(d.groupCommit, true);
  // behind a trusted proxy every connection comes from the proxy: no per-address cap unless set
  assert.equal(parseConfig({ trustProxy: '10.0.0.1' }).connections.perAddress, 0);
  assert.equal(parseConfig({ trustProxy: '10.0.0.1', maxConnectionsPerAddress: '1000' }).connections.perAddress, 1000);
  const set = configFrom(
    {},
    {
      FLOATD_MAX_CONNECTIONS: '5000',
      FLOATD_HEADERS_TIMEOUT_MS: '3000',
      FLOATD_GROUP_COMMIT: 'off',
      FLOATD_AUDIT_RETENTION_DAYS: '0',
      FLOATD_USAGE_RETENTION_DAYS: '400',
    },
  );
  assert.deepEqual(
    [set.connections.total, set.connections.headersTimeoutMs, set.groupCommit, set.retention.auditDays, set.retention.usageDays],
    [5000, 3000, false, 0, 400],
  );
  const bad: [Record<string, string>, RegExp][] = [
    [{ maxConnections: '3' }, /FLOATD_MAX_CONNECTIONS/],
    [{ headersTimeoutMs: 'soon' }, /FLOATD_HEADERS_TIMEOUT_MS/],
    [{ groupCommit: 'sometimes' }, /FLOATD_GROUP_COMMIT/],
    [{ auditRetentionDays: '-1' }, /FLOATD_AUDIT_RETENTION_DAYS/],
    // a signed on-prem usage report covers up to 366 days: shorter usage retention is refused there
    [{ mode: 'on-prem', usageRetentionDays: '30' }, /FLOATD_USAGE_RETENTION_DAYS.*366 days/],
  ];
  for (const [input, message] of bad)
    assert.throws(
      () => parseConfig(input),
      (e: unknown) => e instanceof ConfigError && message.test(e.message),
      JSON.stringify(input),
    );
});
