/**
 * Admin tokens: `fdt_<token id>_<secret>`. The id part finds the stored record;
 * the secret is kept only as its SHA-256 (a 256-bit random secret needs no slow
 * hash) and compared in constant time, so neither a lookup nor a comparison
 * leaks how much of a guessed secret was right.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AdminToken, Role } from '../domain/types.js';
import { newId } from '../ids.js';
import type { Store } from '../store/port.js';

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();
const FORMAT = /^fdt_([0-9A-Za-z]{20})_([A-Za-z0-9_-]{43})$/;

export class AdminAuth {
  constructor(private readonly store: Store) {}

  /** Creates a token and returns its secret (the only time it exists in clear). */
  async create(name: string, role: Role, now: number): Promise<{ token: AdminToken; secret: string }> {
    const id = newId('tok');
    const secret = randomBytes(32).toString('base64url');
    const token: AdminToken = { id, name, role, tokenHash: sha256(secret).toString('hex'), createdAt: now, lastUsedAt: null, revokedAt: null };
    await this.store.insertAdminToken(token);
    return { token, secret: `fdt_${id.slice(4)}_${secret}` };
  }

  /** The token a bearer value belongs to, if it is valid and not revoked. */
  async verify(bearer: string): Promise<AdminToken | undefined> {
    const m = FORMAT.exec(bearer);
    if (!m) return undefined;
    const token = await this.store.adminTokenById(`tok_${m[1]}`);
    // Without a record, compare against a dummy so a miss costs what a hit costs.
    const expected = token ? Buffer.from(token.tokenHash, 'hex') : DUMMY;
    const match = timingSafeEqual(expected, sha256(m[2]!));
    return token && match && token.revokedAt === null ? token : undefined;
  }
}

const DUMMY = sha256('no such token');
