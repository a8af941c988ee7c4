/**
 * Admin tokens: random secrets shown once, stored as SHA-256 (a high-entropy
 * secret needs no slow hash), compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AdminToken, Role } from '../domain/types.js';
import { newAdminSecret, newId } from '../ids.js';
import type { Store } from '../store/port.js';

export const hashToken = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export class AdminAuth {
  constructor(private readonly store: Store) {}

  /** Creates a token and returns its secret (the only time it exists in clear). */
  async create(name: string, role: Role, now: number): Promise<{ token: AdminToken; secret: string }> {
    const secret = newAdminSecret();
    const token: AdminToken = { id: newId('tok'), name, role, tokenHash: hashToken(secret), createdAt: now, lastUsedAt: null, revokedAt: null };
    await this.store.insertAdminToken(token);
    return { token, secret };
  }

  /** The token a bearer secret belongs to, if it is valid and not revoked. */
  async verify(secret: string): Promise<AdminToken | undefined> {
    if (secret.length < 8 || secret.length > 200) return undefined;
    const hash = hashToken(secret);
    const token = await this.store.adminTokenByHash(hash);
    if (!token || token.revokedAt !== null) return undefined;
    return timingSafeEqual(Buffer.from(token.tokenHash, 'hex'), Buffer.from(hash, 'hex')) ? token : undefined;
  }
}
