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
];
