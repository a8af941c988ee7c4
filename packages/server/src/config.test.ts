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
  assert.deepEqual([c.host, c.port, c.dataDir, c.database.path], ['0.0.0.0', 9090, '/tmp/x', '/tmp/y.db']);
});

test('bad values stop the start with a message naming the setting', () => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ port: 'abc' }, /FLOATD_PORT.*not a whole number/],
    [{ port: '70000' }, /FLOATD_PORT.*outside 0\.\.65535/],
    [{ host: 'bad host' }, /FLOATD_HOST/],
    [{ databaseUrl: 'mysql://x' }, /FLOATD_DATABASE_URL/],
    [{ databaseUrl: 'postgres://localhost/db' }, /PostgreSQL is not available/],
    [{ reclaimInterval: '0' }, /RECLAIM_INTERVAL/],
    [{ logLevel: 'loud' }, /FLOATD_LOG_LEVEL/],
    [{ sqliteSynchronous: 'OFF' }, /FLOATD_SQLITE_SYNCHRONOUS/],
  ];
  for (const [input, message] of bad) assert.throws(() => parseConfig(input), (e: unknown) => e instanceof ConfigError && message.test(e.message), JSON.stringify(input));
});
