/**
 * The signing key ring in PostgreSQL, shared by every node so a token from one
 * node verifies everywhere. Private keys are encrypted (AES-256-GCM) with a key
 * from the environment (FLOATD_KEY_ENCRYPTION_KEY): a copy of the database alone
 * cannot mint tokens. Changes take an advisory lock and NOTIFY the other nodes,
 * which reload their ring at once.
 */
import type postgres from 'postgres';
import { decrypt, encrypt } from '../../keys/sealing.js';
import type { KeyPersistence, StoredSigningKey } from '../cluster.js';

const CHANNEL = 'floatd_keys';

export function pgKeyPersistence(sql: postgres.Sql, encryptionKey: Buffer): KeyPersistence {
  return {
    async update(change) {
      return (await sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(hashtext('floatd:signing-keys'))`;
        const rows = await tx`SELECT * FROM signing_keys ORDER BY created_at, kid`;
        const before: StoredSigningKey[] = rows.map((r) => ({
          kid: String(r.kid),
          createdAt: Number(r.created_at),
          retiredAt: r.retired_at === null ? null : Number(r.retired_at),
          publishUntil: r.publish_until === null ? null : Number(r.publish_until),
          privateJwk: JSON.parse(decrypt(String(r.private_jwk_encrypted), encryptionKey)),
        }));
        const after = change(before);
        if (after === before) return before;
        await tx`DELETE FROM signing_keys`;
        for (const k of after) {
          await tx`INSERT INTO signing_keys (kid, created_at, retired_at, publish_until, private_jwk_encrypted)
            VALUES (${k.kid}, ${k.createdAt}, ${k.retiredAt}, ${k.publishUntil}, ${encrypt(JSON.stringify(k.privateJwk), encryptionKey)})`;
        }
        await tx`SELECT pg_notify(${CHANNEL}, ${String(after.length)})`;
        return after;
      })) as StoredSigningKey[];
    },
    onChange(listener) {
      // Also on every (re)connection of the LISTEN connection: a rotation announced while it was cut is not missed.
      sql
        .listen(
          CHANNEL,
          () => listener(),
          () => listener(),
        )
        .catch(() => undefined);
    },
  };
}
