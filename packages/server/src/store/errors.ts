/**
 * Which database failures are the storage's fault rather than floatd's: a full
 * disk, an I/O error, a write lock held past `busy_timeout` by another process,
 * a lost or refused PostgreSQL connection, a server that shuts down. Such a
 * failure rolls its transaction back and changes nothing, so the HTTP layer
 * answers it `503 STORAGE_UNAVAILABLE` with `Retry-After` (the client retries and
 * keeps its lease) instead of a 500 that reads like a bug.
 *
 * Classified by the drivers' stable codes, never by message text:
 * better-sqlite3 puts SQLite's extended result code in `code` (`SQLITE_FULL`,
 * `SQLITE_IOERR_WRITE`, …); postgres.js puts the SQLSTATE in `code` for a server
 * error and a connection code (`CONNECTION_CLOSED`, `ECONNREFUSED`, …) otherwise.
 */

export interface StorageFailure {
  /** what kind of failure, for the message and the log: never the driver's text, which may hold a path or a host */
  kind: 'full' | 'io' | 'busy' | 'connection' | 'read-only';
  /** the driver's code (`SQLITE_FULL`, `53100`, `CONNECTION_CLOSED`, …) */
  code: string;
  /** seconds a client should wait before retrying */
  retryAfterSeconds: number;
}

const SQLITE: [RegExp, StorageFailure['kind']][] = [
  [/^SQLITE_FULL$/, 'full'],
  [/^SQLITE_IOERR(_\w+)?$/, 'io'],
  [/^SQLITE_(BUSY|LOCKED)(_\w+)?$/, 'busy'],
  [/^SQLITE_READONLY(_\w+)?$/, 'read-only'],
  [/^SQLITE_(CANTOPEN|PROTOCOL|NOLFS)(_\w+)?$/, 'io'],
];

/** SQLSTATE classes and codes: 08 connection exception, 53 insufficient resources (53100 disk full), 57P01-57P03 shutdown, 25P03/57P05 idle timeouts, 58030 I/O error, 25006 read-only (a standby after fail-over). */
const PG_SQLSTATE: [RegExp, StorageFailure['kind']][] = [
  [/^53100$/, 'full'],
  [/^53\d{3}$/, 'busy'],
  [/^08[0-9A-Z]{3}$/, 'connection'],
  [/^57P0[123]$/, 'connection'],
  // the session was ended for sitting idle in a transaction (or idle) too long: its transaction rolled back
  [/^25P03$/, 'connection'],
  [/^57P05$/, 'connection'],
  [/^58030$/, 'io'],
  [/^25006$/, 'read-only'],
];

/** postgres.js connection codes and the socket errors it passes through; ENOSPC and friends from writing files in the data directory. */
const NODE_CODES: Record<string, StorageFailure['kind']> = {
  CONNECTION_CLOSED: 'connection',
  CONNECTION_ENDED: 'connection',
  CONNECTION_DESTROYED: 'connection',
  CONNECT_TIMEOUT: 'connection',
  // floatd's own: a read answered with another query's result on a cut connection (store/postgres/store.ts)
  RESULT_MISMATCH: 'connection',
  ECONNREFUSED: 'connection',
  ECONNRESET: 'connection',
  ETIMEDOUT: 'connection',
  EHOSTUNREACH: 'connection',
  ENETUNREACH: 'connection',
  EPIPE: 'connection',
  EAI_AGAIN: 'connection',
  ENOSPC: 'full',
  EDQUOT: 'full',
  EIO: 'io',
  EROFS: 'read-only',
};

// Short on purpose: a client that honours Retry-After must still get several tries within its lease's TTL, and
// the storage may come back any moment (space freed, connection restored).
const RETRY_AFTER: Record<StorageFailure['kind'], number> = { full: 5, io: 5, busy: 1, connection: 2, 'read-only': 5 };

/** The storage failure `err` is, or undefined when it is something else (a bug, a constraint, bad input). */
export function storageFailure(err: unknown): StorageFailure | undefined {
  // A pool that tried several addresses reports an AggregateError whose parts carry the codes.
  if (err instanceof AggregateError) {
    for (const e of err.errors) {
      const f = storageFailure(e);
      if (f) return f;
    }
  }
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  const kind =
    (code.startsWith('SQLITE_') ? SQLITE.find(([re]) => re.test(code))?.[1] : undefined) ??
    (/^[0-9A-Z]{5}$/.test(code) ? PG_SQLSTATE.find(([re]) => re.test(code))?.[1] : undefined) ??
    NODE_CODES[code];
  return kind ? { kind, code, retryAfterSeconds: RETRY_AFTER[kind] } : undefined;
}

const DESCRIPTION: Record<StorageFailure['kind'], string> = {
  full: 'the database storage is full',
  io: 'the database storage reported an I/O error',
  busy: 'the database is busy (locked by another process, or out of connections or memory)',
  connection: 'the database connection is lost',
  'read-only': 'the database is read-only',
};

export function describeStorageFailure(failure: StorageFailure): string {
  return `${DESCRIPTION[failure.kind]} (${failure.code}); nothing was changed, retry in ${failure.retryAfterSeconds} s`;
}

/**
 * Whether the storage is failing right now, as seen by the requests: set when a
 * request fails with a storage failure, cleared when a write succeeds again
 * (a request that changed something, or the readiness probe's test write).
 * `/readyz` reports not ready while it is set.
 */
export class StorageHealth {
  private failure: (StorageFailure & { since: number }) | undefined;

  failed(failure: StorageFailure, now: number): void {
    this.failure ??= { ...failure, since: now };
    if (this.failure.code !== failure.code) this.failure = { ...failure, since: this.failure.since };
  }

  recovered(): void {
    this.failure = undefined;
  }

  /** The current failure, if the last write attempt failed. */
  get current(): (StorageFailure & { since: number }) | undefined {
    return this.failure;
  }
}

/**
 * A seat transaction that waited its whole bound for its license's turn (the turns ahead of it are stuck
 * on a database that does not answer, or the key is flooded past what one connection commits; see
 * `groupCommit.ts`): answered `503 SERVICE_UNAVAILABLE` with Retry-After, like any other moment the server
 * cannot serve, rather than held past the client's patience.
 */
export class LicenseBusyError extends Error {
  constructor(readonly waitedMs: number) {
    super(`the license key's operations ahead of this one did not finish within ${Math.round(waitedMs)} ms; retry`);
    this.name = 'LicenseBusyError';
  }
}
