#!/usr/bin/env node
/**
 * Applies floatd's fixes to postgres.js 3.4.9 (porsager/postgres), run by `npm install` / `npm ci`
 * (the server package's postinstall). No released version has them (3.4.9 is the newest on npm);
 * each is a few lines, guarded by the exact text it replaces, and idempotent. A driver whose text
 * differs (a new version) is left alone and reported: re-check the upstream issues below, then
 * adapt or drop the patch. `floatd serve` refuses to use an unpatched driver with PostgreSQL
 * (store/postgres/driver.ts checks the marker).
 *
 * 1. porsager/postgres#1208, #1154, #1066: a write buffered behind setImmediate runs after the
 *    socket closed (`socket.write` on null) and throws an uncatchable TypeError that ends the
 *    process; and the close paths cancel that timer without resetting it, so the connection's
 *    next writes are never flushed (a wedged connection). Fix: nextWrite settles the queries with
 *    CONNECTION_CLOSED instead of writing to no socket; close and terminate reset the buffer.
 * 2. A transaction whose connection closed goes on writing on it (its ROLLBACK, statements issued
 *    after the failure): on a null socket (1.), or on the next session that reuses the connection
 *    object. Fix: execute() refuses a query on a closed connection, and sql.begin's handle refuses
 *    every query once its connection closed.
 * 3. porsager/postgres#823, #1189, #1206/#1207, #1218 (UNSAFE_TRANSACTION): sql.begin's BEGIN is
 *    reserved by the `onexecute` hook at the end of an && chain, skipped when the write met
 *    back-pressure or filled the pipeline; and a connection whose BEGIN is in flight stays in the
 *    `busy` queue, so the pool pipelines other queries (another BEGIN included) into the open
 *    transaction. Fix: the hook runs whenever BEGIN was written, and execute() then answers "full"
 *    so nothing else is pipelined onto that connection; drain() does not hand a reserved
 *    connection back to the pool.
 * 4. The queries a new connection sends by itself before its first query (the array types, and
 *    with target_session_attrs whether the server is read-only) have no one to catch their
 *    failure: a connection cut at that moment rejects a promise nobody handles, which ends the
 *    process (`unhandledRejection`, seen as a bare `read ECONNRESET`). Fix: those failures are
 *    swallowed there; the connection's own error path already failed or retried the query that
 *    opened it.
 * 5. (floatd-patch-2) A half-open connection (the network path went silent: a firewall dropping
 *    packets, a peer gone without a FIN) leaves a query waiting for ever, and with it the pool's
 *    connection: enough of them and the node is wedged. postgres.js has no per-query timeout.
 *    Fix: the option `silence_timeout` (seconds, default off): a connection with a query in flight
 *    that hears nothing from the server for that long is destroyed (its queries fail with
 *    CONNECTION_CLOSED, the pool opens a new one). An idle connection is never touched.
 * 6. (floatd-patch-3) `target_session_attrs=read-write` kept a hot standby: PostgreSQL 14 and later
 *    report `in_hot_standby` and `default_transaction_read_only` at connection, and postgres.js
 *    looked only at the second, which is `off` on a standby (its sessions are read-only because
 *    of recovery, not because of the setting). libpq's rule (and the documentation's): read-write
 *    needs both off; read-only needs either on. A multi-host URL during a fail-over (the old primary
 *    gone, the standby not yet promoted) then gave the pool connections to the standby, whose
 *    first statements failed or wedged: the license's writes waited 5 s for the reaper (the
 *    fail-over test's 5.5-6.3 s from promotion to the first write, 1 run in 6). Fix: libpq's rule.
 * 7. (floatd-patch-4) A connection that fails with an error (ECONNRESET: a cut) is closed a tick after the
 *    error event. The error fails the queries in flight; a query written in between (a transaction's
 *    ROLLBACK after its statement failed, the next unit's statement) went into the connection's queue
 *    of sent queries, and the close, because it followed an error, did not fail it. It stayed there,
 *    and the connection object's next session took the answers of its own queries as the answers to
 *    these: every answer one query late. A query then got another's rows (the foreign answers the
 *    key-addressed reads check for, store/postgres/store.ts), a ROLLBACK waited 0.3-2 s for a new
 *    session, and a COMMIT waited the whole silence bound (12 s) with the license's turn behind it
 *    (measured in the 25-cut test). Fix: execute() refuses a query on a destroyed socket as on a null
 *    one, and every close fails and forgets the queries in flight, whether or not an error came first.
 * 8. (floatd-patch-5) A transaction whose queries were held back (its connection answered "full":
 *    the pipeline of `max_pipeline` queries was full, or a new statement waited for its Describe)
 *    sent the held-back queries one per round trip for the rest of the backlog: each time the
 *    connection had answered everything, it sent the next one only. A turn of the license's group
 *    commit issues a few hundred statements without waiting (store/postgres/turnView.ts); with the
 *    database 2.6 ms away, one key's checkouts fell from 109 to 34 a second. Fix: each time the
 *    connection has answered everything, the held-back queries are sent until it is full again.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MARKER = '/* floatd-patch-1 */';
export const MARKER2 = '/* floatd-patch-2 */';
export const MARKER3 = '/* floatd-patch-3 */';
export const MARKER4 = '/* floatd-patch-4 */';
export const MARKER5 = '/* floatd-patch-5 */';

const CONNECTION = [
  [
    `  function nextWrite(fn) {
    const x = socket.write(chunk, fn)`,
    `  function nextWrite(fn) {
    if (!socket) { ${MARKER}
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options))
      return false
    }
    const x = socket.write(chunk, fn)`,
  ],
  [
    `    if (terminated)
      return queryError(q, Errors.connection('CONNECTION_DESTROYED', options))
`,
    `    if (terminated)
      return queryError(q, Errors.connection('CONNECTION_DESTROYED', options))

    if (!socket) ${MARKER}
      return queryError(q, Errors.connection('CONNECTION_CLOSED', options))
`,
  ],
  [
    `      build(q)
      return write(toBuffer(q))
        && !q.describeFirst`,
    `      build(q)
      if (q.options.onexecute) ${MARKER}
        return (write(toBuffer(q)), q.options.onexecute(connection), false)
      return write(toBuffer(q))
        && !q.describeFirst`,
  ],
  [
    `  function drain() {
    !query && onopen(connection)`,
    `  function drain() {
    !query && !connection.reserved && onopen(connection) ${MARKER}`,
  ],
  [
    `    clearImmediate(nextWriteTimer)
    if (socket) {`,
    `    clearImmediate(nextWriteTimer)
    chunk = nextWriteTimer = null ${MARKER}
    if (socket) {`,
  ],
  [
    `    clearImmediate(nextWriteTimer)
    socket.removeListener('data', data)`,
    `    clearImmediate(nextWriteTimer)
    chunk = nextWriteTimer = null ${MARKER}
    socket.removeListener('data', data)`,
  ],
  [
    `    \`], [], execute)
    types.forEach(({ oid, typarray }) => addArrayType(oid, typarray))`,
    `    \`], [], execute).catch(() => null) ${MARKER}
    types && types.forEach(({ oid, typarray }) => addArrayType(oid, typarray))`,
  ],
  [
    `    query.resolve = ([[a], [b]]) => {`,
    `    query.reject = () => undefined ${MARKER}
    query.resolve = ([[a], [b]]) => {`,
  ],
];

const INDEX = [
  [
    `      , connection
      , prepare = null

    try {`,
    `      , connection
      , prepare = null
      , closedError = null ${MARKER}

    try {`,
  ],
  [
    `        new Promise((_, reject) => connection.onclose = reject)`,
    `        new Promise((_, reject) => connection.onclose = (e) => (closedError = e || new Error('CONNECTION_CLOSED'), reject(e))) ${MARKER}`,
  ],
  [
    `      function handler(q) {
        q.catch(e => uncaughtError || (uncaughtError = e))`,
    `      function handler(q) {
        if (closedError) ${MARKER}
          return (q.catch(() => undefined), q.reject(closedError))
        q.catch(e => uncaughtError || (uncaughtError = e))`,
  ],
];

const CONNECTION2 = [
  [
    `      , connectTimer = timer(connectTimedOut, options.connect_timeout)
`,
    `      , connectTimer = timer(connectTimedOut, options.connect_timeout)
      , silenceTimer = timer(silent, options.silence_timeout) ${MARKER2}
`,
  ],
  [
    `    try {
      q.state = backend
      query
        ? sent.push(q)`,
    `    try {
      q.state = backend
      query || sent.length || silenceTimer.start() ${MARKER2}
      query
        ? sent.push(q)`,
  ],
  [
    `  function data(x) {
    if (incomings) {`,
    `  function data(x) {
    silenceTimer.start() ${MARKER2}
    if (incomings) {`,
  ],
  [
    `    idleTimer.cancel()
    lifeTimer.cancel()
    connectTimer.cancel()

    socket.removeAllListeners()`,
    `    idleTimer.cancel()
    lifeTimer.cancel()
    connectTimer.cancel()
    silenceTimer.cancel() ${MARKER2}

    socket.removeAllListeners()`,
  ],
  [
    `  function end() {
    return ending || (`,
    `  function silent() { ${MARKER2}
    if (socket && (query || sent.length))
      socket.destroy(Errors.connection('CONNECTION_CLOSED', options, socket))
  }

  function end() {
    return ending || (`,
  ],
];

const INDEX2 = [
  [
    `    connect_timeout : 30,
`,
    `    connect_timeout : 30,
    silence_timeout : null, ${MARKER2}
`,
  ],
  [
    `  const ints = ['idle_timeout', 'connect_timeout', 'max_lifetime', 'max_pipeline', 'backoff', 'keep_alive']`,
    `  const ints = ['idle_timeout', 'connect_timeout', 'max_lifetime', 'max_pipeline', 'backoff', 'keep_alive', 'silence_timeout'] ${MARKER2}`,
  ],
];

const CONNECTION3 = [
  [
    `      (x === 'read-write' && xs.default_transaction_read_only === 'on') ||
      (x === 'read-only' && xs.default_transaction_read_only === 'off') ||`,
    `      (x === 'read-write' && (xs.default_transaction_read_only === 'on' || xs.in_hot_standby === 'on')) || ${MARKER3}
      (x === 'read-only' && xs.default_transaction_read_only === 'off' && xs.in_hot_standby !== 'on') ||`,
  ],
];

// Applied after CONNECTION (its first edit is patch 1's refusal).
const CONNECTION4 = [
  [
    `    if (!socket) ${MARKER}
      return queryError(q, Errors.connection('CONNECTION_CLOSED', options))`,
    `    if (!socket || socket.destroyed) ${MARKER} ${MARKER4}
      return queryError(q, Errors.connection('CONNECTION_CLOSED', options))`,
  ],
  [
    `    !hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))`,
    `    if (query || sent.length) { ${MARKER4}
      const closedError = Errors.connection('CONNECTION_CLOSED', options, socket)
      errored(closedError)
      while (sent.length) queryError(sent.shift(), closedError)
      query = null
    }`,
  ],
];

const INDEX5 = [
  [
    `      c.reserved = () => queries.length
        ? c.execute(queries.shift())
        : move(c, reserved)`,
    `      c.reserved = () => { ${MARKER5}
        while (queries.length)
          if (!c.execute(queries.shift())) return
        move(c, reserved)
      }`,
  ],
];

function patchFile(file, edits, marker = MARKER) {
  if (!existsSync(file)) return 'absent';
  let text = readFileSync(file, 'utf8');
  if (text.includes(marker)) return 'already';
  for (const [from, to] of edits) {
    const at = text.indexOf(from);
    if (at < 0 || text.indexOf(from, at + 1) >= 0) throw new Error(`${file}: the text to patch was not found exactly once:\n${from}`);
    text = text.slice(0, at) + to + text.slice(at + from.length);
  }
  writeFileSync(file, text);
  return 'patched';
}

export function driverRoot() {
  return dirname(dirname(fileURLToPath(import.meta.resolve('postgres'))));
}

export function patchPostgres(root = driverRoot()) {
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
  if (version !== '3.4.9') throw new Error(`postgres ${version}: floatd's patch is for 3.4.9 (see scripts/patch-postgres.mjs)`);
  const out = {};
  for (const dir of ['src', 'cjs/src', 'cf/src']) {
    out[`${dir}/connection.js`] = patchFile(join(root, dir, 'connection.js'), CONNECTION);
    out[`${dir}/index.js`] = patchFile(join(root, dir, 'index.js'), INDEX);
    out[`${dir}/connection.js (2)`] = patchFile(join(root, dir, 'connection.js'), CONNECTION2, MARKER2);
    out[`${dir}/index.js (2)`] = patchFile(join(root, dir, 'index.js'), INDEX2, MARKER2);
    out[`${dir}/connection.js (3)`] = patchFile(join(root, dir, 'connection.js'), CONNECTION3, MARKER3);
    out[`${dir}/connection.js (4)`] = patchFile(join(root, dir, 'connection.js'), CONNECTION4, MARKER4);
    out[`${dir}/index.js (5)`] = patchFile(join(root, dir, 'index.js'), INDEX5, MARKER5);
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const r = patchPostgres();
    console.log(
      `postgres.js patched for floatd: ${Object.entries(r)
        .map(([f, s]) => `${f} ${s}`)
        .join(', ')}`,
    );
  } catch (e) {
    console.error(`floatd: cannot patch postgres.js: ${e.message}`);
    process.exit(1);
  }
}
