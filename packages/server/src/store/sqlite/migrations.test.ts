/**
 * A file written before a migration opens with its rows intact and found where the new schema looks for them. Here
 * migration 12 (device indexes keyed by license first): a file at version 11, with a device's own seat and another
 * device's use on that seat (a shared seat), opened by today's store; the uses get their lease's license, and the
 * device look-ups that now go through the license (a device's leases, the devices view's counts) find both.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { SqliteStore } from './store.js';

test('migration 12: uses of a version-11 file get their license, and a device finds its own seat and the shared one it uses', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-migrate-'));
  const path = join(dir, 'floatd.db');
  try {
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    for (const m of SQLITE_MIGRATIONS.filter((x) => x.version <= 11)) {
      old.exec(m.sql);
      old.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)').run(m.version, m.name);
    }
    const now = Date.now();
    old.prepare("INSERT INTO products (id, name, created_at, updated_at, metadata) VALUES ('prd_m', 'm', 0, 0, '{}')").run();
    const license = (id: string, key: string) =>
      old
        .prepare(`INSERT INTO licenses (id, product_id, key, seats, model, lease_ttl_seconds, heartbeat_interval_seconds, max_offline_seconds,
          max_instances_per_device, counting, suspended, metadata, seats_used, seats_offline, created_at, updated_at)
          VALUES (?, 'prd_m', ?, 5, 'permanent', 300, 60, 0, 4, 'per-device', 0, '{}', ?, 0, 0, 0)`)
        .run(id, key, id === 'lic_a' ? 1 : 0);
    license('lic_a', 'KEY-A');
    license('lic_b', 'KEY-B');
    const device = old.prepare('INSERT INTO devices (id, license_id, fingerprint, first_seen_at, last_accessed_at) VALUES (?, ?, ?, 0, 0)');
    device.run('dev_a1', 'lic_a', 'fp-a1');
    device.run('dev_a2', 'lic_a', 'fp-a2');
    device.run('dev_b1', 'lic_b', 'fp-b1');
    old
      .prepare(`INSERT INTO leases (id, license_id, device_id, offline, granted_at, last_heartbeat_at, expires_at, share_group)
        VALUES ('lse_a', 'lic_a', 'dev_a1', 0, ?, ?, ?, 'device=dev_a1')`)
      .run(now, now, now + 300_000);
    const use = old.prepare(
      'INSERT INTO instances (lease_id, instance_id, started_at, last_heartbeat_at, expires_at, device_id) VALUES (?, ?, ?, ?, ?, ?)',
    );
    use.run('lse_a', 'app', now, now, now + 300_000, 'dev_a1');
    // dev_a2 runs a use on dev_a1's seat (a sharing rule would put it there)
    use.run('lse_a', 'other', now, now, now + 300_000, 'dev_a2');
    old.close();

    const store = new SqliteStore({ path });
    try {
      const db = new Database(path, { readonly: true });
      try {
        assert.deepEqual(db.prepare('SELECT instance_id, license_id FROM instances ORDER BY instance_id').all(), [
          { instance_id: 'app', license_id: 'lic_a' },
          { instance_id: 'other', license_id: 'lic_a' },
        ]);
        const indexes = (
          db
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name IN ('leases', 'instances') AND name LIKE '%device%'")
            .all() as { name: string }[]
        )
          .map((r) => r.name)
          .sort();
        assert.deepEqual(indexes, ['instances_license_device', 'leases_license_device']);
      } finally {
        db.close();
      }
      const ofDevice = (id: string) => store.transaction((tx) => tx.leasesOfDevice(id));
      assert.deepEqual(
        (await ofDevice('dev_a1')).map((l) => l.id),
        ['lse_a'],
        'the seat it took',
      );
      assert.deepEqual(
        (await ofDevice('dev_a2')).map((l) => l.id),
        ['lse_a'],
        'the shared seat its use is on',
      );
      assert.deepEqual(await ofDevice('dev_b1'), [], "another license's device holds nothing");
      assert.deepEqual(
        (await store.leasesOfFingerprint('lic_a', 'fp-a1')).map((l) => l.id),
        ['lse_a'],
      );
      const devices = new Map((await store.listDevices('lic_a')).map((d) => [d.id, d]));
      assert.equal(devices.get('dev_a1')!.seatsHeld, 1);
      assert.equal(devices.get('dev_a1')!.instanceCount, 1);
      assert.equal(devices.get('dev_a2')!.seatsHeld, 0);
      assert.equal(devices.get('dev_a2')!.instanceCount, 1);
    } finally {
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
