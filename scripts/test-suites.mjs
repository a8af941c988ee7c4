// Which compiled test files belong to which pass of scripts/test.mjs. Explicit lists, not path patterns:
// scripts/test.mjs fails when a test file that starts a server through the test harness is in neither
// STORE_SENSITIVE nor NOT_STORE_SENSITIVE, and when an entry names a file that does not exist.
// Paths are relative to the repository root (compiled output, as the runner runs it).

/** Run a second time on PostgreSQL (FLOATD_TEST_STORE=postgres): their servers come from the test harness. */
export const STORE_SENSITIVE = [
  'packages/server/dist/admin-cli/cli.test.js',
  'packages/client/dist/crash.test.js',
  'packages/client/dist/example.test.js',
  'packages/client/dist/online.test.js',
  'packages/client/dist/sharing.test.js',
  'packages/client/dist/features.test.js',
  'packages/client/dist/onprem.test.js',
  'packages/client/dist/process.test.js',
  'packages/client/dist/run.test.js',
  'packages/client/dist/runclock.test.js',
  'packages/client/dist/security.test.js',
  'packages/client/dist/shortruns.test.js',
  'packages/client/dist/signatures.test.js',
  'packages/client/dist/storage.test.js',
  'packages/client/dist/stories.test.js',
  'packages/client/dist/units.test.js',
  'packages/server/dist/http/views.test.js',
  'packages/server/dist/http/adminAuth.test.js',
  'packages/server/dist/http/badInput.test.js',
  'packages/server/dist/http/catalogue.test.js',
  'packages/server/dist/http/clockStep.test.js',
  'packages/server/dist/http/renewals.test.js',
  'packages/server/dist/http/connectionFlood.test.js',
  'packages/server/dist/http/contract.test.js',
  'packages/server/dist/http/denialFlood.test.js',
  'packages/server/dist/http/events.test.js',
  'packages/server/dist/http/exactness.test.js',
  'packages/server/dist/http/sharing.test.js',
  'packages/server/dist/http/policies.test.js',
  'packages/server/dist/http/features.test.js',
  'packages/server/dist/http/queue.test.js',
  'packages/server/dist/http/customers.test.js',
  'packages/server/dist/http/webhooks.test.js',
  'packages/server/dist/http/access.test.js',
  'packages/server/dist/http/fuzz.test.js',
  'packages/server/dist/http/onprem.test.js',
  'packages/server/dist/http/ops.test.js',
  'packages/server/dist/http/roles.test.js',
  'packages/server/dist/http/security.test.js',
  'packages/server/dist/http/messageSignatures.test.js',
  'packages/server/dist/http/serverClock.test.js',
  'packages/server/dist/http/storage.test.js',
  'packages/server/dist/http/stories.test.js',
  'packages/server/dist/http/tamper.test.js',
  'packages/server/dist/service/clockFence.test.js',
  'packages/server/dist/service/licensing.test.js',
  'packages/server/dist/service/reclaim.test.js',
  'packages/server/dist/service/seats.property.test.js',
  // the conformance suite's scenarios and the Python SDK's tests, against a real server on each store
  'test/e2e/conformance.test.mjs',
  'test/e2e/console.test.mjs',
  'test/e2e/python.test.mjs',
];

/** Start a server through the harness but are deliberately not rerun on PostgreSQL (say why). */
export const NOT_STORE_SENSITIVE = {
  // the log lines of a harness server; the store does not change them
  'packages/server/dist/logs.test.js': 'log format only',
  // the test harness's environment for a server on a moved clock; the store does not change it
  'packages/server/dist/testing/fakedClock.test.js': 'test harness environment only',
  // backup/restore is the SQLite file's own procedure (PostgreSQL backups are pg_dump, docs/operations.md)
  'packages/server/dist/ops/backup.test.js': 'SQLite backup file',
  // the end user's first run: prompts, the remembered key, messages, SRV discovery; the store does not change them
  'packages/client/dist/firstrun.test.js': 'client-side first run only',
  // DNS-SD announce and browse between server processes and the SDK; discovery and pins are client-side
  'packages/client/dist/dnssd.test.js': 'local-network discovery only',
};

/**
 * `npm run test:fast` (the edit loop, under a minute on 2 cores): the domain, the Store contract on SQLite
 * and the HTTP tests of servers in this process (the harness's real server, real SQLite file, manual clock).
 * Left out: anything that spawns processes, floods connections, fuzzes 20,000 requests or waits for a
 * browser; the slow property run through the real store (service/seats.property) and the tampering suite;
 * and the PostgreSQL pass.
 */
export const FAST = [
  'packages/protocol/dist/errors.test.js',
  'packages/protocol/dist/random.test.js',
  'packages/protocol/dist/sessionKeys.test.js',
  'packages/server/dist/config.test.js',
  'packages/server/dist/ids.test.js',
  'packages/server/dist/domain/clock.test.js',
  'packages/server/dist/domain/recommend.test.js',
  'packages/server/dist/domain/webhooks.test.js',
  'packages/server/dist/domain/seats.property.test.js',
  'packages/server/dist/domain/seats.test.js',
  'packages/server/dist/domain/sharing.test.js',
  'packages/server/dist/store/contract.test.js',
  'packages/server/dist/http/renewals.test.js',
  'packages/server/dist/service/clockFence.test.js',
  'packages/server/dist/store/groupCommit.test.js',
  'packages/server/dist/store/tickBatch.test.js',
  'packages/server/dist/store/syncAfter.test.js',
  'packages/server/dist/store/postgres/turnView.test.js',
  'packages/server/dist/store/errors.test.js',
  'packages/server/dist/store/seatCounters.test.js',
  'packages/server/dist/store/hotReads.test.js',
  'packages/server/dist/store/sqlite/renew.test.js',
  'packages/server/dist/store/sqlite/sweep.test.js',
  'packages/server/dist/store/sqlite/plans.test.js',
  'packages/server/dist/store/sqlite/migrations.test.js',
  'packages/server/dist/store/sqlite/background.test.js',
  'packages/server/dist/service/reclaim.test.js',
  'packages/server/dist/service/sessions.test.js',
  'packages/server/dist/http/views.test.js',
  'packages/server/dist/http/adminAuth.test.js',
  'packages/server/dist/http/catalogue.test.js',
  'packages/server/dist/http/contract.test.js',
  'packages/server/dist/http/events.test.js',
  'packages/server/dist/http/exactness.test.js',
  'packages/server/dist/http/sharing.test.js',
  'packages/server/dist/http/policies.test.js',
  'packages/server/dist/http/features.test.js',
  'packages/server/dist/http/queue.test.js',
  'packages/server/dist/http/customers.test.js',
  'packages/server/dist/http/webhooks.test.js',
  'packages/server/dist/http/access.test.js',
  'packages/server/dist/http/ops.test.js',
  'packages/server/dist/http/roles.test.js',
  'packages/server/dist/http/serverClock.test.js',
  'packages/server/dist/http/stories.test.js',
];

/** A compiled test file that starts a server through the test harness (directly or through a package's test support). */
export const STARTS_HARNESS_SERVER = /startTestServer|testing\/harness\.js|@floatd\/server\/testing|\.\/testsupport\.js/;
