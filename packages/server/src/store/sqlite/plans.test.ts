/**
 * What the SQLite store's statements cost as the data grows: each statement the store prepares, planned by SQLite on
 * floatd's schema (`EXPLAIN QUERY PLAN`). floatd never runs ANALYZE, so the planner's choice is the same on an empty
 * file as on one of a hundred million leases. No statement may read a whole table that grows with use (leases, uses,
 * devices, the audit trail, usage history, webhook deliveries) but for the few named below, each with why it may.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from './store.js';

/** Tables whose rows grow with use, not with what an administrator creates. */
const GROWING = [
  'leases',
  'instances',
  'devices',
  'audit',
  'usage_hourly',
  'usage_features',
  'webhook_events',
  'webhook_deliveries',
  'webhook_attempts',
  'licenses',
];

/** Statements that may read a whole growing table, and why. */
const MAY_SCAN: Record<string, { table: string; why: string }> = {
  seatTotals: { table: 'licenses', why: "the metrics gauge's sum of every license's counters: one row per license" },
  releaseClaims: { table: 'webhook_deliveries', why: 'once, at start: claims of a previous process are released' },
};

/** Every prepared statement of the store, by its name (arrays of statements as `name[i]`). */
function statements(store: SqliteStore): [string, string][] {
  const out: [string, string][] = [];
  const walk = (o: unknown, name: string) => {
    if (o instanceof Object && 'source' in o && typeof o.source === 'string' && 'all' in o) out.push([name, o.source]);
    else if (Array.isArray(o)) o.forEach((x, i) => walk(x, `${name}[${i}]`));
    else if (o instanceof Object) for (const [k, v] of Object.entries(o)) walk(v, name ? `${name}.${k}` : k);
  };
  walk((store as unknown as { s: unknown }).s, '');
  return out;
}

/** Its plan, with a value bound to each parameter (the plan does not depend on the values). */
function plan(db: Database.Database, sql: string): string[] {
  const st = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
  const named = [...sql.matchAll(/@(\w+)/g)].map((m) => m[1]!);
  const args = named.length ? [Object.fromEntries(named.map((k) => [k, 1]))] : Array((sql.match(/\?/g) ?? []).length).fill(1);
  return (st.all(...args) as { detail: string }[]).map((r) => r.detail);
}

test('no statement of the SQLite store reads a whole table that grows with use, but the named few', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-plans-'));
  const store = new SqliteStore({ path: join(dir, 'floatd.db') });
  const db = new Database(join(dir, 'floatd.db'), { readonly: true });
  try {
    const all = statements(store);
    assert.ok(all.length > 100, `found ${all.length} statements`);
    const scans: string[] = [];
    for (const [name, sql] of all) {
      for (const line of plan(db, sql)) {
        const m = /^SCAN (\w+)(?: AS \w+)?/.exec(line);
        // A scan names the table, or its alias in the statement.
        const table =
          m && (GROWING.includes(m[1]!) ? m[1]! : GROWING.find((t) => new RegExp(`\\b${t}\\s+(?:AS\\s+)?${m[1]}\\b`).test(sql)));
        if (!table) continue;
        if (MAY_SCAN[name]?.table === table) continue;
        scans.push(`${name}: ${line} (${sql.replace(/\s+/g, ' ').slice(0, 120)})`);
      }
    }
    assert.deepEqual(scans, []);
    // The named few are still there (an entry for a statement that went would excuse a new one of its name).
    for (const name of Object.keys(MAY_SCAN))
      assert.ok(
        all.some(([n]) => n === name),
        name,
      );
  } finally {
    db.close();
    store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("a sweep reads its batch's leases by their ids, not every lease of their license", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-plans-'));
  const store = new SqliteStore({ path: join(dir, 'floatd.db') });
  const db = new Database(join(dir, 'floatd.db'), { readonly: true });
  try {
    // By the lease table's id index only. On the license's indexes it would read every lease of the license for each
    // batch, so a big license's sweep would cost what it holds (one of 200,000 leases, 20,000 dead: 8 s of reads).
    const sql = statements(store).find(([name]) => name === 'leasesToSweep')![1];
    const steps = plan(db, sql);
    assert.ok(
      steps.some((d) => /^SEARCH leases USING INDEX sqlite_autoindex_leases_1 \(id=\?\)/.test(d)),
      steps.join('; '),
    );
    assert.ok(!steps.some((d) => d.includes('license_id')), steps.join('; '));
  } finally {
    db.close();
    store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
