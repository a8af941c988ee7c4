/**
 * Opens the store the configuration names, with the cluster ports that go with it
 * (store/cluster.ts): where the signing keys are kept, who runs the background
 * jobs, and (PostgreSQL) this node's entry in the node registry.
 */
import type { Config } from '../config.js';
import { fileKeyPersistence } from '../keys/ring.js';
import { alwaysLeader, type KeyPersistence, type Leadership, type Membership } from './cluster.js';
import type { Store } from './port.js';
import { PostgresStore } from './postgres/store.js';
import { SqliteStore } from './sqlite/store.js';

export interface OpenedStore {
  store: Store;
  keyPersistence: KeyPersistence;
  leadership: Leadership;
  membership?: Membership;
}

export async function openStore(
  config: Config,
  /** this floatd's version, recorded in the node registry */
  version: string,
  /** each clock-offset measurement against the database (the clock fence's input) */
  onClockOffset?: (offsetMs: number, rttMs: number) => void,
): Promise<OpenedStore> {
  if (config.database.kind === 'sqlite') {
    const store = new SqliteStore({ path: config.database.path, synchronous: config.sqliteSynchronous });
    return { store, keyPersistence: fileKeyPersistence(config.dataDir), leadership: alwaysLeader };
  }
  const store = await PostgresStore.open({
    url: config.database.url,
    max: config.database.poolSize,
    groupCommit: config.groupCommit,
    // On-premise the customer owns the database and could write past its triggers: every seat transaction counts the rows.
    recountEvery: config.mode === 'on-prem' ? 1 : undefined,
  });
  const leadership = PostgresStore.leadership(config.database.url, 'floatd:jobs');
  return {
    store,
    keyPersistence: store.keyPersistence(config.database.keyEncryptionKey),
    leadership,
    membership: store.reportNode(version, () => leadership.isLeader(), 5000, onClockOffset),
  };
}
