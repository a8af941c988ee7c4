/**
 * The on-premise server's identity: an Ed25519 key made on first start and kept
 * in the store (encrypted with FLOATD_KEY_ENCRYPTION_KEY on PostgreSQL), and the
 * fingerprint a license file can be bound to.
 *
 * The identity key signs what the server keeps or sends about itself: its
 * trusted time, activation requests and usage reports. The vendor learns its
 * public half at activation and puts it in the license file, so a usage report
 * verifies against the file the vendor issued.
 */
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Store } from '../store/port.js';
import { decrypt, encrypt } from '../keys/sealing.js';
import { generateSigningKey, publicKeyText, signerOf, type Signer } from '../keys/documents.js';

const NAME = 'server/identity';

export interface ServerIdentity {
  signer: Signer;
  publicKey: string;
  fingerprint: string;
  /** made on this start (a new server, with no state to protect yet) */
  created?: boolean;
}

/**
 * Loads the identity, creating it on first start. Several nodes starting at once
 * agree on one key (the record is read and written under its lock).
 */
export async function openIdentity(store: Store, now: number, encryptionKey: Buffer | undefined): Promise<ServerIdentity> {
  const seal = (jwk: string) => (encryptionKey ? encrypt(jwk, encryptionKey) : jwk);
  const open = (v: string) => (encryptionKey ? decrypt(v, encryptionKey) : v);
  let created = false;
  const value = await store.transaction(async (tx) => {
    const found = await tx.lockKv(NAME);
    if (found) return found.value;
    const jwk = JSON.stringify(generateSigningKey().privateKey.export({ format: 'jwk' }));
    await tx.apply([{ type: 'kv.put', name: NAME, value: seal(jwk), at: now }]);
    created = true;
    return seal(jwk);
  });
  const privateKey: KeyObject = createPrivateKey({ key: JSON.parse(open(value)) as import('node:crypto').JsonWebKey, format: 'jwk' });
  const publicKey = publicKeyText(privateKey);
  // One SQLite server is one machine: bind to it too. A PostgreSQL cluster spans machines: its identity is the database's.
  const machine = store.kind === 'sqlite' ? machineId() : '';
  const fingerprint = 'fsv1-' + createHash('sha256').update(`floatd-server\0${publicKey}\0${machine}`).digest('base64url').slice(0, 32);
  return { signer: signerOf(privateKey), publicKey, fingerprint, created };
}

function machineId(): string {
  for (const file of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(file, 'utf8').trim();
      if (id) return id;
    } catch {
      /* try the next */
    }
  }
  return process.platform;
}
