/**
 * Versioned schema migrations for the PostgreSQL adapter. Append only. Applied
 * at start under an advisory lock, so several nodes starting at once apply each
 * migration exactly once. Times are BIGINT milliseconds since the epoch (UTC),
 * as in the SQLite adapter.
 */
export const PG_MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
CREATE TABLE products (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  metadata JSONB NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE licenses (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  product_id TEXT NOT NULL REFERENCES products(id),
  key TEXT NOT NULL UNIQUE,
  seats INTEGER NOT NULL,
  model TEXT NOT NULL,
  expires_at BIGINT,
  trial_days INTEGER,
  trial_started_at BIGINT,
  lease_ttl_seconds INTEGER,
  heartbeat_interval_seconds INTEGER NOT NULL,
  max_offline_seconds INTEGER NOT NULL,
  max_offline_seats INTEGER,
  max_instances_per_device INTEGER NOT NULL,
  counting TEXT NOT NULL,
  suspended BOOLEAN NOT NULL,
  metadata JSONB NOT NULL,
  seats_used INTEGER NOT NULL DEFAULT 0 CHECK (seats_used >= 0),
  seats_offline INTEGER NOT NULL DEFAULT 0 CHECK (seats_offline >= 0),
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX licenses_product ON licenses(product_id, seq);
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  license_id TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  hostname TEXT,
  user_name TEXT,
  app_version TEXT,
  first_seen_at BIGINT NOT NULL,
  last_accessed_at BIGINT NOT NULL,
  UNIQUE (license_id, fingerprint)
);
CREATE TABLE leases (
  id TEXT PRIMARY KEY,
  license_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  offline BOOLEAN NOT NULL,
  granted_at BIGINT NOT NULL,
  last_heartbeat_at BIGINT NOT NULL,
  expires_at BIGINT,
  offline_expires_at BIGINT
);
CREATE INDEX leases_device ON leases(device_id);
CREATE INDEX leases_license_expiry ON leases(license_id, expires_at);
CREATE INDEX leases_expiry ON leases(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE instances (
  lease_id TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  started_at BIGINT NOT NULL,
  last_heartbeat_at BIGINT NOT NULL,
  expires_at BIGINT,
  PRIMARY KEY (lease_id, instance_id)
);
CREATE INDEX instances_expiry ON instances(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE audit (
  id BIGSERIAL PRIMARY KEY,
  at BIGINT NOT NULL,
  type TEXT NOT NULL,
  actor TEXT NOT NULL,
  license_id TEXT,
  device_id TEXT,
  lease_id TEXT,
  reason TEXT,
  data JSONB NOT NULL
);
CREATE INDEX audit_license ON audit(license_id, id);
CREATE INDEX audit_device ON audit(device_id, id);
CREATE INDEX audit_at ON audit(at);
CREATE TABLE usage_hourly (
  license_id TEXT NOT NULL,
  hour BIGINT NOT NULL,
  peak_seats INTEGER NOT NULL,
  seats_at_end INTEGER NOT NULL,
  checkouts INTEGER NOT NULL,
  denials INTEGER NOT NULL,
  PRIMARY KEY (license_id, hour)
);
CREATE TABLE admin_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  token_hash TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT,
  revoked_at BIGINT
);
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY,
  created_at BIGINT NOT NULL,
  retired_at BIGINT,
  publish_until BIGINT,
  -- the private JWK, encrypted (AES-256-GCM) with FLOATD_KEY_ENCRYPTION_KEY
  private_jwk_encrypted TEXT NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'nodes',
    sql: `
-- Every running node reports itself here, so \`floatd doctor\` can show the clock skew of each node against the database.
CREATE TABLE nodes (
  id TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  version TEXT NOT NULL,
  started_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  clock_offset_ms INTEGER NOT NULL,
  leader BOOLEAN NOT NULL DEFAULT FALSE
);
`,
  },
  {
    version: 3,
    name: 'kv',
    sql: `
-- Named server-state records: on-premise license file and highest serial, trusted time, vendor deployments, usage reports.
CREATE TABLE kv (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
`,
  },
  {
    version: 4,
    name: 'audit-aggregate-retention',
    sql: `
-- Denials are audited in aggregate (domain/seats.ts denialAudit): one entry per key with a count and a last time;
-- agg_window groups the keys of one license and hour, so the number of distinct keys in a window can be capped.
ALTER TABLE audit ADD COLUMN agg_key TEXT;
ALTER TABLE audit ADD COLUMN agg_window TEXT;
ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit ADD COLUMN last_at BIGINT;
CREATE UNIQUE INDEX audit_agg_key ON audit(agg_key) WHERE agg_key IS NOT NULL;
CREATE INDEX audit_agg_window ON audit(agg_window) WHERE agg_window IS NOT NULL;
-- Retention prunes hourly usage by age (jobs/retention.ts).
CREATE INDEX usage_hourly_hour ON usage_hourly(hour);
`,
  },
  {
    version: 5,
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
ALTER TABLE devices ADD COLUMN clone_suspected_at BIGINT;
`,
  },
  {
    version: 6,
    name: 'seat-policies',
    sql: `
-- Seat policies (issue #15): per license the linger time, the overdraft seats and the access policy; per seat whether it
-- was granted beyond the count and until when it lingers; per hour the overdraft in use and granted.
ALTER TABLE licenses ADD COLUMN linger_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE licenses ADD COLUMN overdraft_seats INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leases ADD COLUMN overdraft BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE leases ADD COLUMN linger_until BIGINT;
ALTER TABLE usage_hourly ADD COLUMN peak_overdraft INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN overdraft_at_end INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN overdraft_checkouts INTEGER NOT NULL DEFAULT 0;
-- Access policy (allow and deny lists, maxima, reservations; JSON): null on licenses from before it, read as open.
ALTER TABLE licenses ADD COLUMN access TEXT;
`,
  },
  {
    version: 7,
    name: 'feature-pools',
    sql: `
-- Feature pools (domain/features.ts): per license its features (JSON [{name, seats}]; null: none); per seat whether it
-- holds a base seat and the features it holds (JSON names; null: none); per use the features it asked for; per feature
-- and hour its peak, grants and denials. A feature's seats in use are counted from the lease rows: no counter.
ALTER TABLE licenses ADD COLUMN features TEXT;
ALTER TABLE leases ADD COLUMN base BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE leases ADD COLUMN features TEXT;
ALTER TABLE instances ADD COLUMN features TEXT;
CREATE INDEX leases_features ON leases(license_id) WHERE features IS NOT NULL;
CREATE TABLE usage_features (
  license_id TEXT NOT NULL,
  feature TEXT NOT NULL,
  hour BIGINT NOT NULL,
  peak INTEGER NOT NULL,
  checkouts INTEGER NOT NULL,
  denials INTEGER NOT NULL,
  PRIMARY KEY (license_id, feature, hour)
);
CREATE INDEX usage_features_hour ON usage_features(hour);
`,
  },
  {
    version: 8,
    name: 'fair-queue',
    sql: `
-- The fair queue (domain/queue.ts): checkouts waiting for a seat of a pool (base or a feature), in order of arrival
-- (seq); a waiter keeps its place while it asks again in time. Per hour: checkouts queued, waiters granted and their wait.
CREATE TABLE waiters (
  seq BIGSERIAL PRIMARY KEY,
  license_id TEXT NOT NULL,
  pool TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  instance_id TEXT NOT NULL,
  enqueued_at BIGINT NOT NULL,
  last_poll_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  UNIQUE (license_id, pool, fingerprint, instance_id)
);
CREATE INDEX waiters_license ON waiters(license_id, seq);
ALTER TABLE usage_hourly ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN queue_grants INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN queue_wait_ms BIGINT NOT NULL DEFAULT 0;
`,
  },
  {
    version: 9,
    name: 'customers',
    sql: `
-- Customers (issue #16): the organisations licenses belong to. Every license belongs to one; licenses from before
-- belong to the built-in customer (DEFAULT_CUSTOMER_ID, renamable, not deletable). An admin token may belong to one
-- customer: then it reaches only that customer's licenses (protocol CustomerScope).
CREATE TABLE customers (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  contact JSONB NOT NULL,
  metadata JSONB NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
INSERT INTO customers (id, name, contact, metadata, created_at, updated_at)
  VALUES ('cus_default0000000000000', 'Unassigned', '{}', '{}', (extract(epoch FROM now()) * 1000)::bigint, (extract(epoch FROM now()) * 1000)::bigint);
ALTER TABLE licenses ADD COLUMN customer_id TEXT NOT NULL DEFAULT 'cus_default0000000000000';
CREATE INDEX licenses_customer ON licenses(customer_id, seq);
ALTER TABLE admin_tokens ADD COLUMN customer_id TEXT;
`,
  },
  {
    version: 10,
    name: 'webhooks',
    sql: `
-- Webhooks (issue #16, domain/webhooks.ts): endpoints; events written in the transaction of the change they tell of
-- (an outbox; a dedupe key drops repeats); one delivery per endpoint and event, claimed by one sender at a time
-- (claimed_until) and retried with backoff for a day; every attempt's answer.
CREATE TABLE webhooks (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  url TEXT NOT NULL,
  events JSONB NOT NULL,
  description TEXT NOT NULL,
  enabled BOOLEAN NOT NULL,
  secret TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE webhook_events (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  license_id TEXT,
  at BIGINT NOT NULL,
  data JSONB NOT NULL,
  dedupe_key TEXT UNIQUE
);
CREATE TABLE webhook_deliveries (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  webhook_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at BIGINT,
  claimed_until BIGINT,
  created_at BIGINT NOT NULL,
  delivered_at BIGINT,
  UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id, seq);
CREATE TABLE webhook_attempts (
  seq BIGSERIAL PRIMARY KEY,
  delivery_id TEXT NOT NULL,
  at BIGINT NOT NULL,
  status INTEGER,
  error TEXT,
  duration_ms INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id, seq);
`,
  },
  {
    version: 11,
    name: 'session keys',
    sql: `
-- Per-use session keys (issue #17): the HMAC key a use agreed with the server at checkout (X25519 + HKDF), with which
-- the answers on its lease are signed afterwards (RFC 9421 hmac-sha256) instead of with Ed25519. Gone with the use's row.
-- Sealed with FLOATD_KEY_ENCRYPTION_KEY on PostgreSQL, like the signing keys.
ALTER TABLE instances ADD COLUMN session_key TEXT;
`,
  },
  {
    version: 12,
    name: 'sweep indexes',
    sql: `
-- The reclaimer finds the dead by range scans of these indexes (issue #17): in order of expiry, then license and lease
-- (or lease and use), the order its cursor pages in, so a sweep costs what it frees whatever the number of leases
-- stored. They replace leases_expiry and instances_expiry (their leading column).
CREATE INDEX leases_sweep ON leases(expires_at, license_id, id) WHERE expires_at IS NOT NULL;
DROP INDEX leases_expiry;
CREATE INDEX instances_sweep ON instances(expires_at, lease_id, instance_id) WHERE expires_at IS NOT NULL;
DROP INDEX instances_expiry;
`,
  },
  {
    version: 13,
    name: 'lease tally',
    sql: `
-- Each license's seats as its lease rows hold them, kept by the database itself (issue #17): a seat transaction
-- checks the license's counters against this row instead of counting every lease row of the license under its lock
-- (4-8 ms at 10,000 leases, in every turn). The triggers follow every write to the rows, floatd's or anyone's;
-- floatd still counts the rows themselves every so often (store.ts, recountEvery) and on-premise every time.
CREATE TABLE lease_tally (
  license_id TEXT PRIMARY KEY,
  used INTEGER NOT NULL,
  offline INTEGER NOT NULL
);
INSERT INTO lease_tally (license_id, used, offline)
  SELECT license_id, COUNT(*) FILTER (WHERE base), COUNT(*) FILTER (WHERE base AND offline) FROM leases GROUP BY license_id;
CREATE FUNCTION lease_tally_add(d_license TEXT, d_used INTEGER, d_offline INTEGER) RETURNS void LANGUAGE sql AS $$
  INSERT INTO lease_tally AS t (license_id, used, offline) VALUES (d_license, d_used, d_offline)
    ON CONFLICT (license_id) DO UPDATE SET used = t.used + EXCLUDED.used, offline = t.offline + EXCLUDED.offline
$$;
-- Inserts and deletes in bulk (a sweep deletes thousands in one statement): once per statement, by license.
CREATE FUNCTION lease_tally_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM lease_tally_add(license_id, used, offline) FROM (
    SELECT license_id, (COUNT(*) FILTER (WHERE base))::int AS used, (COUNT(*) FILTER (WHERE base AND offline))::int AS offline
    FROM tally_new GROUP BY license_id) d WHERE used <> 0 OR offline <> 0;
  RETURN NULL;
END $$;
CREATE FUNCTION lease_tally_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM lease_tally_add(license_id, -used, -offline) FROM (
    SELECT license_id, (COUNT(*) FILTER (WHERE base))::int AS used, (COUNT(*) FILTER (WHERE base AND offline))::int AS offline
    FROM tally_old GROUP BY license_id) d WHERE used <> 0 OR offline <> 0;
  RETURN NULL;
END $$;
-- Updates one row at a time, and only those that move a seat (a renewal does not: the WHEN skips it without a call).
CREATE FUNCTION lease_tally_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM lease_tally_add(OLD.license_id, -(OLD.base::int), -((OLD.base AND OLD.offline)::int));
  PERFORM lease_tally_add(NEW.license_id, NEW.base::int, (NEW.base AND NEW.offline)::int);
  RETURN NULL;
END $$;
CREATE TRIGGER lease_tally_insert AFTER INSERT ON leases REFERENCING NEW TABLE AS tally_new
  FOR EACH STATEMENT EXECUTE FUNCTION lease_tally_inserted();
CREATE TRIGGER lease_tally_delete AFTER DELETE ON leases REFERENCING OLD TABLE AS tally_old
  FOR EACH STATEMENT EXECUTE FUNCTION lease_tally_deleted();
CREATE TRIGGER lease_tally_update AFTER UPDATE ON leases FOR EACH ROW
  WHEN (OLD.base IS DISTINCT FROM NEW.base OR OLD.offline IS DISTINCT FROM NEW.offline OR OLD.license_id IS DISTINCT FROM NEW.license_id)
  EXECUTE FUNCTION lease_tally_updated();
CREATE FUNCTION lease_tally_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM lease_tally;
  RETURN NULL;
END $$;
CREATE TRIGGER lease_tally_truncate AFTER TRUNCATE ON leases FOR EACH STATEMENT EXECUTE FUNCTION lease_tally_truncated();
`,
  },
];
