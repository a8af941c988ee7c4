/**
 * The signing key ring in PostgreSQL, shared by every node so a token from one
 * node verifies everywhere. Private keys are encrypted (AES-256-GCM) with a key
 * from the environment (FLOATD_KEY_ENCRYPTION_KEY): a copy of the database alone
 * cannot mint tokens. Changes take an advisory lock and NOTIFY the other nodes,
 * which reload their ring at once.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type postgres from 'postgres';
import type { KeyPersistence, StoredSigningKey } from '../../keys.js';

const CHANNEL = 'floatd_keys';

export function encrypt(plain: string, key: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
}

export function decrypt(sealed: string, key: Buffer): string {
  const [v, iv, tag, data] = sealed.split('.');
  if (v !== 'v1' || !iv || !tag || !data) throw new Error('unknown signing-key encryption format');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  try {
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    throw new Error('cannot decrypt the signing keys: FLOATD_KEY_ENCRYPTION_KEY differs from the one they were stored with');
  }
}

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
      sql.listen(CHANNEL, () => listener(), () => listener()).catch(() => undefined);
    },
  };
}
