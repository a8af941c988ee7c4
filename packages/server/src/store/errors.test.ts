/** Which driver errors are the storage's fault (503 STORAGE_UNAVAILABLE, retried) rather than floatd's (500). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { storageFailure } from './errors.js';

const kind = (code: string) => storageFailure(Object.assign(new Error('x'), { code }))?.kind;

test('driver codes: connection, disk, I/O, busy and read-only failures are the storage; anything else is not', () => {
  assert.equal(kind('SQLITE_FULL'), 'full');
  assert.equal(kind('SQLITE_IOERR_WRITE'), 'io');
  assert.equal(kind('SQLITE_BUSY'), 'busy');
  assert.equal(kind('53100'), 'full');
  assert.equal(kind('08006'), 'connection');
  assert.equal(kind('57P01'), 'connection');
  // A session ended by the database for sitting idle in a transaction (a server clock moved past the timeout,
  // a client gone quiet): its transaction rolled back, nothing changed; the client retries.
  assert.equal(kind('25P03'), 'connection');
  assert.equal(kind('57P05'), 'connection');
  assert.equal(kind('25006'), 'read-only');
  assert.equal(kind('CONNECTION_CLOSED'), 'connection');
  assert.equal(kind('RESULT_MISMATCH'), 'connection');
  assert.equal(kind('ECONNRESET'), 'connection');
  // Bugs stay bugs.
  assert.equal(kind('23505'), undefined);
  assert.equal(kind('40P01'), undefined);
  assert.equal(storageFailure(new TypeError('x')), undefined);
});
