/**
 * On SQLite a sweep frees its dead in runs of 250 across licenses, in license then lease id order (`Store.sweepOrder`
 * `run`, service/reclaim.ts): a commit writes every page its deletes touched, and a license's dead share the pages of
 * the indexes keyed by license, where a run in lease id order touched pages of every license. So a transaction holds
 * the parts of many licenses.
 * These tests check that it still frees each dead lease once and leaves each license's counters exact, and that a
 * counter edited by hand between two of its transactions is caught and counted again, not trusted. (That a batch's
 * leases are read by their ids, not through their license's indexes, is checked with the other plans: plans.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { StoreTx } from '../port.js';
import { sqliteWorld } from '../../testing/sqliteWorld.js';

const LICENSES = 12;
const PER = 100;
const KEPT = 10;

/** 12 licenses of 100 leases, 90 of each dead: 1,080 to free, more than four transactions' 250 each. */
async function world() {
  const w = await sqliteWorld({ prefix: 'floatd-sweep-', seats: PER, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 });
  const licenses = [w.license];
  for (let i = 1; i < LICENSES; i++) {
    const r = await w.catalogue.createLicense(
      { productId: w.license.productId, seats: PER, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20 } as never,
      'test',
    );
    assert.ok(r.ok);
    licenses.push(r.value);
  }
  const kept = new Set<string>();
  const dead = new Set<string>();
  const licenseOf = new Map<string, string>();
  for (const lic of licenses) {
    const grants = await Promise.all(
      Array.from({ length: PER }, (_, i) => w.licensing.checkout(lic.key, { fingerprint: `${lic.id}-dev-${i}`, instanceId: 'a' })),
    );
    grants.forEach((g, i) => {
      const id = g.ok ? g.value.granted.lease.id : assert.fail('checkout failed');
      (i < KEPT ? kept : dead).add(id);
      licenseOf.set(id, lic.id);
    });
  }
  w.clock.advanceSeconds(40);
  for (const lic of licenses) {
    for (const l of await w.store.listLeases(lic.id)) if (kept.has(l.id)) assert.ok((await w.licensing.heartbeat(lic.key, l.id, 'a')).ok);
  }
  w.clock.advanceSeconds(30); // the others expired 10 s ago

  /** The sweep's transactions as run (a retried one twice), each as the licenses it locked and the lease ids it read. */
  const seen: { locked: string[]; ids: string[] }[] = [];
  /** The sweep's transactions as handed to the store, each settled after its commit. */
  const handed: Promise<unknown>[] = [];
  /** Whether each transaction was handed as background work (`transaction(fn, { background: true })`). */
  const background: boolean[] = [];
  /** Runs before the sweep hands a transaction to the store, with the ones it handed before. */
  let before: (earlier: readonly Promise<unknown>[]) => Promise<void> | void = () => undefined;
  const transaction = w.store.transaction.bind(w.store);
  const record = <T>(fn: (tx: StoreTx) => Promise<T>, opts?: Parameters<typeof transaction>[1]): Promise<T> => {
    background.push(opts?.background === true);
    const run = Promise.resolve(before([...handed])).then(() =>
      transaction<T>((tx) => {
        const mine = { locked: [] as string[], ids: [] as string[] };
        seen.push(mine);
        const spy: StoreTx = {
          ...tx,
          lockLicense: (id) => (mine.locked.push(id), tx.lockLicense(id)),
          leasesToSweep: (licenseId, ids) => (mine.ids.push(...ids), tx.leasesToSweep(licenseId, ids)),
        };
        return fn(spy);
      }, opts),
    );
    handed.push(run.catch(() => undefined));
    return run;
  };
  const sweep = async () => {
    w.store.transaction = record as typeof w.store.transaction;
    try {
      return await w.reclaim.sweep('reclaimer');
    } finally {
      w.store.transaction = transaction;
    }
  };
  const close = async () => {
    await w.store.close();
    await rm(w.dir, { recursive: true, force: true });
  };
  return {
    ...w,
    licenses,
    kept,
    dead,
    licenseOf,
    seen,
    background,
    sweep,
    close,
    setBefore: (f: typeof before) => {
      before = f;
    },
  };
}

/** Each license holds its 10 kept leases and nothing else, in rows and counters; every dead lease went once, audited. */
async function assertFreedExactly(w: Awaited<ReturnType<typeof world>>, freed: readonly { leaseId: string }[]) {
  assert.equal(freed.length, w.dead.size);
  assert.deepEqual(new Set(freed.map((f) => f.leaseId)), w.dead);
  for (const lic of w.licenses) {
    assert.equal((await w.store.getLicense(lic.id))!.seatsUsed, KEPT, lic.id);
    const left = await w.store.listLeases(lic.id);
    assert.equal(left.length, KEPT, lic.id);
    assert.ok(left.every((l) => w.kept.has(l.id)));
    const released = await w.store.listAudit({ limit: 1000, licenseId: lic.id, type: 'release' });
    assert.equal(released.items.length, PER - KEPT, lic.id);
    assert.ok(released.items.every((e) => e.reason === 'expired' && e.actor === 'reclaimer'));
  }
  const left = new Set<string>();
  for (const lic of w.licenses) for (const l of await w.store.listLeases(lic.id)) left.add(l.id);
  assert.deepEqual(left, w.kept);
}

/** The dead in the order a sweep frees them: by license, then lease id. */
function sweepOrder(w: Awaited<ReturnType<typeof world>>): string[] {
  const key = (id: string) => `${w.licenseOf.get(id)!} ${id}`;
  return [...w.dead].sort((a, b) => (key(a) < key(b) ? -1 : 1));
}

test('a sweep frees in runs of 250 in license, then lease id order: a transaction holds many licenses, each dead lease goes once, every counter exact', async () => {
  const w = await world();
  const other = new Database(join(w.dir, 'floatd.db'), { readonly: true });
  try {
    // The commits another connection has seen when each run is handed to the store.
    const version = other.prepare('PRAGMA data_version').pluck();
    const handedAt: number[] = [];
    w.setBefore(() => {
      handedAt.push(version.get() as number);
    });
    const r = await w.sweep();
    await assertFreedExactly(w, r.freed);
    const order = sweepOrder(w);
    assert.equal(w.seen.length, 5, 'five transactions: 4 of 250 leases, then 80');
    // Handed at once, before any of them committed (the store's `backgroundPerCommit`: an idle store puts that many in
    // one commit, background.test.ts), not one after another's commit.
    assert.equal(new Set(handedAt).size, 1, JSON.stringify(handedAt));
    // Background work: each in a commit of its own, after the checkouts waiting (background.test.ts).
    assert.deepEqual(w.background, [true, true, true, true, true]);
    w.seen.forEach((t, i) => {
      const ids = order.slice(i * 250, (i + 1) * 250);
      assert.deepEqual(t.ids, ids, `transaction ${i}`);
      // Each locks the licenses of its run, in order: the first the first 3 (90 dead each: 2 whole and 70 of the third).
      assert.deepEqual([...new Set(t.locked)], [...new Set(ids.map((id) => w.licenseOf.get(id)!))]);
    });
    assert.equal(new Set(w.seen[0]!.locked).size, 3);
  } finally {
    other.close();
    await w.close();
  }
});

test("a counter lowered by hand between two of a sweep's transactions is refused by the guard and counted again", async () => {
  const w = await world();
  // A license with dead leases in the first two transactions: the first lease after the first 250 in the sweep's order is one's.
  const victim = { id: w.licenseOf.get(sweepOrder(w)[250]!)! };
  try {
    // Between the first transaction's commit and the second: another connection sets one license's counter to 0. The
    // sweep counted that license in its first transaction, so the second trusts the counter, and freeing its dead
    // leases would take the counter below zero.
    let edited = false;
    w.setBefore(async (earlier) => {
      // Every transaction after the first waits for the first's commit; the edit is made once, before any of them runs.
      if (earlier.length === 0) return;
      await earlier[0];
      if (edited) return;
      edited = true;
      const db = new Database(w.path);
      try {
        assert.equal(db.prepare('UPDATE licenses SET seats_used = 0 WHERE id = ?').run(victim.id).changes, 1);
      } finally {
        db.close();
      }
    });
    const r = await w.sweep();
    await assertFreedExactly(w, r.freed);
    // The second transaction ran twice: refused by the guard at the victim's part, then again in full, with each of its
    // licenses counted.
    assert.equal(w.seen.length, 6);
    const second = sweepOrder(w).slice(250, 500);
    const tries = w.seen.filter((t) => t.ids[0] === second[0]);
    assert.equal(tries.length, 2);
    const [refused, again] = [tries[0]!, tries[1]!];
    assert.equal(refused.locked.at(-1), victim.id);
    assert.deepEqual(again.ids, second);
    assert.deepEqual(refused.ids, again.ids.slice(0, refused.ids.length));
    const repaired = await w.store.listAudit({ limit: 10, licenseId: victim.id, type: 'seats.repaired' });
    assert.equal(repaired.items.length, 1);
    assert.deepEqual(repaired.items[0]!.data.stored, { used: 0, offline: 0 });
  } finally {
    await w.close();
  }
});
