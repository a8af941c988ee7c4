/**
 * Private keys at rest: sealed with AES-256-GCM under a key from the environment
 * (FLOATD_KEY_ENCRYPTION_KEY), so a copy of the database alone cannot mint tokens
 * or sign as the server. Used for the signing key ring in PostgreSQL
 * (store/postgres/keys.ts) and the on-premise server identity (onprem/identity.ts).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { randomBuffer } from '@floatd/protocol/random';

export function encrypt(plain: string, key: Buffer): string {
  const iv = randomBuffer(12);
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
