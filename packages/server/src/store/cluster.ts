/**
 * Ports for what a cluster shares besides the catalogue: who runs the background
 * jobs, which nodes are up, and where the signing keys are kept. Like the Store
 * port (port.ts), the server codes against these interfaces only; the
 * PostgreSQL implementations live in store/postgres/ (leadership.ts, nodes.ts,
 * keys.ts), the single-process ones beside the SQLite store (`alwaysLeader`
 * here, the key file in keys/ring.ts).
 */
import type { JWK } from 'jose';

/**
 * Which node runs the background jobs (reclaimer, retention). One process: always
 * this one. PostgreSQL: the node holding a session advisory lock; if that node dies,
 * its connection closes, the lock is released and another node takes it at its next try.
 */
export interface Leadership {
  isLeader(): boolean;
  /** Gives the lead up (if held) and stops trying; the node runs no job after it. */
  stop(): Promise<void>;
}

/** The one process is always the leader (SQLite). */
export const alwaysLeader: Leadership = { isLeader: () => true, stop: async () => undefined };

/** One node as it last recorded itself (for `floatd doctor`). */
export interface NodeRow {
  id: string;
  host: string;
  version: string;
  startedAt: number;
  lastSeenAt: number;
  /** this node's clock minus the database's, ms */
  clockOffsetMs: number;
  leader: boolean;
}

/**
 * This node's entry in the cluster's node registry, refreshed every few seconds with
 * its clock offset from the database (which also feeds the clock fence).
 */
export interface Membership {
  /** The first report (and offset measurement), for a start that waits for it. */
  first: Promise<unknown>;
  /** Stops reporting and removes this node's entry. */
  stop(): Promise<void>;
}

export interface StoredSigningKey {
  kid: string;
  createdAt: number;
  /** when a newer key took over signing; null for the signing key */
  retiredAt: number | null;
  /** when a retired key leaves the JWKS; null = published for as long as it is kept */
  publishUntil: number | null;
  privateJwk: JWK;
}

/** Where the key ring is kept (a file in the data directory; the database in a cluster). */
export interface KeyPersistence {
  /**
   * Atomically reads the stored keys, stores what `change` makes of them, and
   * returns that — so two nodes starting (or rotating) at once cannot lose a key.
   */
  update(change: (keys: StoredSigningKey[]) => StoredSigningKey[]): Promise<StoredSigningKey[]>;
  /** Tells this node when another node changed the keys (PostgreSQL NOTIFY). */
  onChange?(listener: () => void): void;
}
