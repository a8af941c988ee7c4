/**
 * SQLite writes a batch of renewals in parts (`renewalsPerTransaction`, RENEWALS_PER_TRANSACTION in production):
 * its transactions run on the event loop, and a second's 6,000 renewals in one transaction held every answer for
 * 20-30 ms. Between the parts, the event loop is let go (not asserted here: the group commit's own scheduling lets
 * queued callbacks run between transactions already, so no test tells the two apart). A part that fails leaves the parts before it committed and
 * says which renewals were not written (`unwrittenRenewals`), which the RenewalBuffer keeps for its next flush.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import Database from 'better-sqlite3';
import { sqliteWorld } from '../../testing/sqliteWorld.js';

async function world(errors: unknown[] = []) {
  const w = await sqliteWorld({
    prefix: 'floatd-renew-',
    seats: 20,
    leaseTtlSeconds: 600,
    heartbeatIntervalSeconds: 60,
    renewalBatchMs: 60_000,
    renewalsPerTransaction: 4,
    onRenewalError: (e) => errors.push(e),
  });
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    const g = await w.licensing.checkout(w.key, { fingerprint: `dev-${i}`, instanceId: 'a' });
    ids.push(g.ok ? g.value.granted.lease.id : assert.fail('checkout failed'));
  }
  w.clock.advanceSeconds(30);
  for (const id of ids) assert.ok((await w.licensing.heartbeat(w.key, id, 'a')).ok);
  assert.equal(w.renewals!.size, 10, 'the heartbeats were batched');
  /** expiries as another connection reads the file */
  const onFile = () => {
    const db = new Database(w.path, { readonly: true });
    try {
      return ids.map((id) => (db.prepare('SELECT expires_at AS e FROM leases WHERE id = ?').get(id) as { e: number }).e);
    } finally {
      db.close();
    }
  };
  const renewedTo = () => w.clock.now() + 600_000;
  const close = async () => {
    await w.store.close();
    await rm(w.dir, { recursive: true, force: true });
  };
  return { ...w, ids, onFile, renewedTo, close };
}

test('a batch of 10 with 4 per transaction: three transactions, every renewal on the file', async () => {
  const w = await world();
  try {
    const sizes: number[] = [];
    let transactions = 0;
    const transaction = w.store.transaction.bind(w.store) as (fn: (tx: unknown) => Promise<unknown>) => Promise<unknown>;
    w.store.transaction = ((fn: (tx: unknown) => Promise<unknown>) => (transactions++, transaction(fn))) as typeof w.store.transaction;
    const renew = w.store.renew.bind(w.store);
    w.store.renew = async (batch) => (sizes.push(batch.length), renew(batch));
    await w.renewals!.flush();
    delete (w.store as { transaction?: unknown }).transaction;
    delete (w.store as { renew?: unknown }).renew;
    assert.deepEqual(sizes, [10], 'the buffer hands the store the whole batch');
    assert.equal(transactions, 3, 'the store wrote it in 3 transactions (4 + 4 + 2)');
    assert.equal(w.renewals!.written, 10);
    assert.deepEqual(w.onFile(), w.ids.map(w.renewedTo), 'every renewal on the file');
  } finally {
    await w.close();
  }
});

test('the second part fails: the first stays written, the error names the 6 not written, the next flush writes them', async () => {
  // Parts are in lease id order (neighbouring rows together): the first part is the 4 smallest ids.
  const errors: unknown[] = [];
  const w = await world(errors);
  try {
    const granted = w.onFile();
    const transaction = w.store.transaction.bind(w.store) as (...a: unknown[]) => Promise<unknown>;
    let calls = 0;
    w.store.transaction = (async (...a: unknown[]) => {
      if (++calls === 2) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
      return transaction(...a);
    }) as typeof w.store.transaction;
    await w.renewals!.flush();
    delete (w.store as { transaction?: unknown }).transaction;
    assert.equal(errors.length, 1, 'the failure is reported to the buffer');
    assert.equal((errors[0] as { unwritten?: unknown[] }).unwritten?.length, 6);
    const after = w.onFile();
    const sorted = [...w.ids].sort();
    const first = new Set(sorted.slice(0, 4));
    w.ids.forEach((id, i) =>
      assert.equal(
        after[i],
        first.has(id) ? w.renewedTo() : granted[i],
        first.has(id) ? 'the first part (the 4 smallest lease ids) is committed' : 'the rest is untouched',
      ),
    );
    assert.deepEqual(
      ((errors[0] as { unwritten: { leaseId: string }[] }).unwritten ?? []).map((r) => r.leaseId),
      sorted.slice(4),
      'the unwritten, in the order they were to be written',
    );
    assert.equal(w.renewals!.written, 4);
    assert.equal(w.renewals!.size, 6, 'kept for the next flush');
    await w.renewals!.flush();
    assert.equal(w.renewals!.written, 10);
    assert.deepEqual(w.onFile(), w.ids.map(w.renewedTo), 'every renewal on the file');
  } finally {
    await w.close();
  }
});
