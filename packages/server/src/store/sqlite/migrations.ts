/**
 * Versioned schema migrations for the SQLite adapter. Append only: a migration
 * that has shipped is never edited. Times are INTEGER milliseconds since the epoch (UTC).
 */
export const SQLITE_MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
CREATE TABLE products (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  metadata TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE licenses (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  product_id TEXT NOT NULL REFERENCES products(id),
  key TEXT NOT NULL UNIQUE,
  seats INTEGER NOT NULL,
  model TEXT NOT NULL,
  expires_at INTEGER,
  trial_days INTEGER,
  trial_started_at INTEGER,
  lease_ttl_seconds INTEGER,
  heartbeat_interval_seconds INTEGER NOT NULL,
  max_offline_seconds INTEGER NOT NULL,
  max_offline_seats INTEGER,
  max_instances_per_device INTEGER NOT NULL,
  counting TEXT NOT NULL,
  suspended INTEGER NOT NULL,
  metadata TEXT NOT NULL,
  seats_used INTEGER NOT NULL DEFAULT 0 CHECK (seats_used >= 0),
  seats_offline INTEGER NOT NULL DEFAULT 0 CHECK (seats_offline >= 0),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX licenses_product ON licenses(product_id, seq);
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  license_id TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  hostname TEXT,
  user_name TEXT,
  app_version TEXT,
  first_seen_at INTEGER NOT NULL,
  last_accessed_at INTEGER NOT NULL,
  UNIQUE (license_id, fingerprint)
);
CREATE TABLE leases (
  id TEXT PRIMARY KEY,
  license_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  offline INTEGER NOT NULL,
  granted_at INTEGER NOT NULL,
  last_heartbeat_at INTEGER NOT NULL,
  expires_at INTEGER,
  offline_expires_at INTEGER
);
CREATE INDEX leases_device ON leases(device_id);
CREATE INDEX leases_license_expiry ON leases(license_id, expires_at);
CREATE INDEX leases_expiry ON leases(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE instances (
  lease_id TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  last_heartbeat_at INTEGER NOT NULL,
  expires_at INTEGER,
  PRIMARY KEY (lease_id, instance_id)
) WITHOUT ROWID;
CREATE INDEX instances_expiry ON instances(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  type TEXT NOT NULL,
  actor TEXT NOT NULL,
  license_id TEXT,
  device_id TEXT,
  lease_id TEXT,
  reason TEXT,
  data TEXT NOT NULL
);
CREATE INDEX audit_license ON audit(license_id, id);
CREATE INDEX audit_device ON audit(device_id, id);
CREATE INDEX audit_at ON audit(at);
CREATE TABLE usage_hourly (
  license_id TEXT NOT NULL,
  hour INTEGER NOT NULL,
  peak_seats INTEGER NOT NULL,
  seats_at_end INTEGER NOT NULL,
  checkouts INTEGER NOT NULL,
  denials INTEGER NOT NULL,
  PRIMARY KEY (license_id, hour)
) WITHOUT ROWID;
CREATE TABLE admin_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  token_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at INTEGER
);
`,
  },
  {
    version: 2,
    name: 'kv',
    sql: `
-- Named server-state records: on-premise license file and highest serial, trusted time, vendor deployments, usage reports.
CREATE TABLE kv (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
`,
  },
  {
    version: 3,
    name: 'audit-aggregate-retention',
    sql: `
-- Denials are audited in aggregate (domain/seats.ts denialAudit): one entry per key with a count and a last time;
-- agg_window groups the keys of one license and hour, so the number of distinct keys in a window can be capped.
ALTER TABLE audit ADD COLUMN agg_key TEXT;
ALTER TABLE audit ADD COLUMN agg_window TEXT;
ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit ADD COLUMN last_at INTEGER;
CREATE UNIQUE INDEX audit_agg_key ON audit(agg_key) WHERE agg_key IS NOT NULL;
CREATE INDEX audit_agg_window ON audit(agg_window) WHERE agg_window IS NOT NULL;
-- Retention prunes hourly usage by age (jobs/retention.ts).
CREATE INDEX usage_hourly_hour ON usage_hourly(hour);
`,
  },
  {
    version: 4,
    name: 'sharing-rules',
    sql: `
-- Sharing rules (domain/sharing.ts): per license the rule (JSON {by, cap}; null on licenses from before it,
-- read as their counting mode), the clone policy and the VM policy; per seat its share group; per use its
-- device and what its client said (JSON); per device the machines its uses came from at once.
ALTER TABLE licenses ADD COLUMN sharing TEXT;
ALTER TABLE licenses ADD COLUMN clone_policy TEXT NOT NULL DEFAULT 'separate';
ALTER TABLE licenses ADD COLUMN vm_policy TEXT NOT NULL DEFAULT 'allow';
ALTER TABLE leases ADD COLUMN share_group TEXT;
UPDATE leases SET share_group = CASE
  WHEN (SELECT counting FROM licenses WHERE licenses.id = leases.license_id) = 'per-instance' THEN 'instance=' || id
  ELSE 'device=' || device_id END;
CREATE INDEX leases_share_group ON leases(license_id, share_group);
ALTER TABLE instances ADD COLUMN device_id TEXT;
ALTER TABLE instances ADD COLUMN meta TEXT;
UPDATE instances SET device_id = (SELECT device_id FROM leases WHERE leases.id = instances.lease_id);
CREATE INDEX instances_device ON instances(device_id);
ALTER TABLE devices ADD COLUMN machines_seen TEXT;
ALTER TABLE devices ADD COLUMN clone_suspected_at INTEGER;
`,
  },
  {
    version: 5,
    name: 'seat-policies',
    sql: `
-- Seat policies (issue #15): per license the linger time, the overdraft seats and the access policy; per seat whether it
-- was granted beyond the count and until when it lingers; per hour the overdraft in use and granted.
ALTER TABLE licenses ADD COLUMN linger_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE licenses ADD COLUMN overdraft_seats INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN overdraft INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN linger_until INTEGER;
ALTER TABLE usage_hourly ADD COLUMN peak_overdraft INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN overdraft_at_end INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN overdraft_checkouts INTEGER NOT NULL DEFAULT 0;
-- Access policy (allow and deny lists, maxima, reservations; JSON): null on licenses from before it, read as open.
ALTER TABLE licenses ADD COLUMN access TEXT;
`,
  },
  {
    version: 6,
    name: 'feature-pools',
    sql: `
-- Feature pools (domain/features.ts): per license its features (JSON [{name, seats}]; null: none); per seat whether it
-- holds a base seat and the features it holds (JSON names; null: none); per use the features it asked for; per feature
-- and hour its peak, grants and denials. A feature's seats in use are counted from the lease rows: no counter.
ALTER TABLE licenses ADD COLUMN features TEXT;
ALTER TABLE leases ADD COLUMN base INTEGER NOT NULL DEFAULT 1;
ALTER TABLE leases ADD COLUMN features TEXT;
ALTER TABLE instances ADD COLUMN features TEXT;
CREATE INDEX leases_features ON leases(license_id) WHERE features IS NOT NULL;
CREATE TABLE usage_features (
  license_id TEXT NOT NULL,
  feature TEXT NOT NULL,
  hour INTEGER NOT NULL,
  peak INTEGER NOT NULL,
  checkouts INTEGER NOT NULL,
  denials INTEGER NOT NULL,
  PRIMARY KEY (license_id, feature, hour)
);
CREATE INDEX usage_features_hour ON usage_features(hour);
`,
  },
  {
    version: 7,
    name: 'fair-queue',
    sql: `
-- The fair queue (domain/queue.ts): checkouts waiting for a seat of a pool (base or a feature), in order of arrival
-- (seq); a waiter keeps its place while it asks again in time. Per hour: checkouts queued, waiters granted and their wait.
CREATE TABLE waiters (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  license_id TEXT NOT NULL,
  pool TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  enqueued_at INTEGER NOT NULL,
  last_poll_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  UNIQUE (license_id, pool, fingerprint, instance_id)
);
CREATE INDEX waiters_license ON waiters(license_id, seq);
ALTER TABLE usage_hourly ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN queue_grants INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN queue_wait_ms INTEGER NOT NULL DEFAULT 0;
`,
  },
  {
    version: 8,
    name: 'customers',
    sql: `
-- Customers (issue #16): the organisations licenses belong to. Every license belongs to one; licenses from before
-- belong to the built-in customer (DEFAULT_CUSTOMER_ID, renamable, not deletable). An admin token may belong to one
-- customer: then it reaches only that customer's licenses (protocol CustomerScope).
CREATE TABLE customers (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  contact TEXT NOT NULL,
  metadata TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
INSERT INTO customers (id, name, contact, metadata, created_at, updated_at)
  VALUES ('cus_default0000000000000', 'Unassigned', '{}', '{}', CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000);
ALTER TABLE licenses ADD COLUMN customer_id TEXT NOT NULL DEFAULT 'cus_default0000000000000';
CREATE INDEX licenses_customer ON licenses(customer_id, seq);
ALTER TABLE admin_tokens ADD COLUMN customer_id TEXT;
`,
  },
  {
    version: 9,
    name: 'webhooks',
    sql: `
-- Webhooks (issue #16, domain/webhooks.ts): endpoints; events written in the transaction of the change they tell of
-- (an outbox; a dedupe key drops repeats); one delivery per endpoint and event, claimed by one sender at a time
-- (claimed_until) and retried with backoff for a day; every attempt's answer.
CREATE TABLE webhooks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  url TEXT NOT NULL,
  events TEXT NOT NULL,
  description TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  secret TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE webhook_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  license_id TEXT,
  at INTEGER NOT NULL,
  data TEXT NOT NULL,
  dedupe_key TEXT UNIQUE
);
CREATE TABLE webhook_deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  webhook_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER,
  claimed_until INTEGER,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER,
  UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id, seq);
CREATE TABLE webhook_attempts (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  status INTEGER,
  error TEXT,
  duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id, seq);
`,
  },
  {
    version: 10,
    name: 'session keys',
    sql: `
-- Per-use session keys (issue #17): the HMAC key a use agreed with the server at checkout (X25519 + HKDF), with which
-- the answers on its lease are signed afterwards (RFC 9421 hmac-sha256) instead of with Ed25519. Gone with the use's row.
-- Kept like the signing key files beside this database (same data directory).
ALTER TABLE instances ADD COLUMN session_key TEXT;
`,
  },
  {
    version: 11,
    name: 'sweep index',
    sql: `
-- The reclaimer finds the dead by a range scan of this index alone (issue #17): in order of expiry, then license and
-- lease, the order its cursor pages in, with nothing read from the table, so a sweep costs what it frees whatever the
-- number of leases stored. It replaces leases_expiry (its leading column; the dead uses are read from instances_expiry,
-- which holds the lease and instance ids already, the table being WITHOUT ROWID).
CREATE INDEX leases_sweep ON leases(expires_at, license_id, id) WHERE expires_at IS NOT NULL;
DROP INDEX leases_expiry;
`,
  },
  {
    version: 12,
    name: 'device indexes by license',
    sql: `
-- A device's leases and uses are found by license, then device (issue #17): a device belongs to one license, and its
-- id is random, so an index on the device alone put each lease's and each use's entry on a random page of the whole
-- file. Every checkout then dirtied one more random page per index, and a sweep's commit one per freed lease: at a
-- million leases, a 100,000-lease sweep's floor went from 13.2 to 8.1 s without them (bench/sweep-floor.mjs). Keyed by
-- license first, a license's entries are neighbours. A use carries its lease's license for it.
DROP INDEX leases_device;
CREATE INDEX leases_license_device ON leases(license_id, device_id);
ALTER TABLE instances ADD COLUMN license_id TEXT;
UPDATE instances SET license_id = (SELECT license_id FROM leases WHERE leases.id = instances.lease_id);
DROP INDEX instances_device;
CREATE INDEX instances_license_device ON instances(license_id, device_id);
`,
  },
];
