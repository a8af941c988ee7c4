/**
 * Trusted seat counters on SQLite (service/seatCounters.ts, SqliteStore.countersTrusted): a license counted equal to
 * its lease rows is not counted again while nothing but floatd's own connection writes the file. What a customer who
 * wants a free seat would try against that, on a real file, through the real service:
 * - another process zeroes the counter (sqlite3 on the live file) after the counters became trusted: the next
 *   checkout counts again, repairs, and grants nothing past the seats;
 * - a drift by floatd's own connection (a bug, not a person: data_version does not move) is found by the periodic
 *   recount within RECOUNT_EVERY uses of the license;
 * - a failed transaction drops the trust (its group may have held a repair that rolled back).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { rm } from 'node:fs/promises';
import { sqliteWorld } from '../testing/sqliteWorld.js';
import { RECOUNT_EVERY } from './sqlite/store.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function world(seats: number) {
  const w = await sqliteWorld({ prefix: 'floatd-counters-', seats, leaseTtlSeconds: 86_400 });
  dirs.push(w.dir);
  const { store, path, licensing, metrics } = w;
  const lic = { value: w.license };
  const checkout = (fingerprint: string) => licensing.checkout(lic.value.key, { fingerprint, instanceId: 'app' });
  const rows = (sql: string) => new Database(path, { readonly: true }).prepare(sql).all() as Record<string, unknown>[];
  const leases = () => Number(rows(`SELECT COUNT(*) AS n FROM leases`)[0]!.n);
  const repairs = () => Number(rows(`SELECT COUNT(*) AS n FROM audit WHERE type = 'seats.repaired'`)[0]!.n);
  return { store, path, license: lic.value, checkout, leases, repairs, metrics };
}

test('another process zeroes a trusted counter on the live file: the next checkout counts again and grants nothing past the seats', async () => {
  const w = await world(3);
  for (let i = 0; i < 3; i++) assert.ok((await w.checkout(`held-${i}`)).ok);
  assert.equal(w.store.countersTrusted(w.license.id), true, 'counted equal: trusted');
  const other = new Database(w.path);
  other.pragma('busy_timeout = 5000');
  other.prepare('UPDATE licenses SET seats_used = 0 WHERE id = ?').run(w.license.id);
  other.close();
  assert.equal(w.store.countersTrusted(w.license.id), false, 'another connection committed: not trusted');
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => w.checkout(`extra-${i}`)));
  assert.ok(
    answers.every((a) => !a.ok && a.error.code === 'NO_SEATS_AVAILABLE'),
    JSON.stringify(answers.find((a) => a.ok || a.error.code !== 'NO_SEATS_AVAILABLE')),
  );
  assert.equal(w.leases(), 3);
  assert.equal(w.repairs(), 1, 'repaired and audited once');
  w.store.close();
});

test(`a drift by floatd's own connection (a bug) is found by the recount within ${RECOUNT_EVERY} uses`, async () => {
  const w = await world(3);
  for (let i = 0; i < 3; i++) assert.ok((await w.checkout(`held-${i}`)).ok);
  // floatd's own connection: PRAGMA data_version does not move, so only the recount can find it.
  (w.store as unknown as { db: Database.Database }).db.prepare('UPDATE licenses SET seats_used = 2 WHERE id = ?').run(w.license.id);
  assert.equal(w.store.countersTrusted(w.license.id), true);
  // Uses that change no seat (the holders checking out again get their own leases back).
  let uses = 0;
  while (w.repairs() === 0 && uses <= RECOUNT_EVERY + 1) {
    assert.ok((await w.checkout(`held-${uses % 3}`)).ok);
    uses++;
  }
  assert.equal(w.repairs(), 1, `repaired after ${uses} uses`);
  assert.ok(uses <= RECOUNT_EVERY + 1, `found within ${RECOUNT_EVERY} uses (${uses})`);
  assert.equal((await w.checkout('newcomer')).ok, false, 'the pool is full again');
  assert.equal(w.leases(), 3);
  w.store.close();
});

test('a transaction that fails drops the trust', async () => {
  const w = await world(2);
  assert.ok((await w.checkout('held-0')).ok);
  assert.equal(w.store.countersTrusted(w.license.id), true);
  await assert.rejects(
    w.store.transaction(async () => {
      throw new Error('a unit that fails');
    }),
  );
  assert.equal(w.store.countersTrusted(w.license.id), false);
  w.store.close();
});
