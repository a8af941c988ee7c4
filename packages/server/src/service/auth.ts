/**
 * Admin tokens: `fdt_<token id>_<secret>`. The id part finds the stored record;
 * the secret is kept only as its SHA-256 (a 256-bit random secret needs no slow
 * hash) and compared in constant time, so neither a lookup nor a comparison
 * leaks how much of a guessed secret was right. Each token has a role, checked
 * on every admin route.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { fail, ok, type Result } from '../domain/result.js';
import type { AdminToken, Role } from '../domain/types.js';
import { newId } from '../ids.js';
import type { Store } from '../store/port.js';

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();
const FORMAT = /^fdt_([0-9A-Za-z]{20})_([A-Za-z0-9_-]{43})$/;
const DUMMY = sha256('no such token');
/** lastUsedAt is written at most this often per token, so admin reads stay reads. */
const TOUCH_EVERY_MS = 60_000;

/** What each role may do: viewer reads; operator also manages leases and reclamation; admin does everything. */
export const ROLE_RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
export const hasRole = (token: AdminToken, needed: Role): boolean => ROLE_RANK[token.role] >= ROLE_RANK[needed];

export class AdminAuth {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /**
   * Creates a token and returns its secret: the only time it exists in clear. With `customerId`, the token of
   * that customer's own administrator (it reaches only that customer's licenses; see protocol `CustomerScope`).
   */
  async create(
    name: string,
    role: Role,
    actor: string,
    customerId: string | null = null,
  ): Promise<Result<{ token: AdminToken; secret: string }>> {
    const now = this.clock.now();
    const id = newId('tok');
    const secret = randomBytes(32).toString('base64url');
    const token: AdminToken = {
      id,
      name,
      role,
      customerId,
      tokenHash: sha256(secret).toString('hex'),
      createdAt: now,
      lastUsedAt: null,
      revokedAt: null,
    };
    const made = await this.store.transaction(async (tx) => {
      if (customerId !== null && !(await tx.customer(customerId))) return false;
      await tx.apply([
        { type: 'adminToken.insert', token },
        {
          type: 'audit',
          entry: {
            at: now,
            type: 'token.created',
            actor,
            licenseId: null,
            deviceId: null,
            leaseId: null,
            reason: null,
            data: { tokenId: id, name, role, customerId },
          },
        },
      ]);
      return true;
    });
    if (!made) return fail('CUSTOMER_NOT_FOUND', `no customer ${customerId}`);
    return ok({ token, secret: `fdt_${id.slice(4)}_${secret}` });
  }

  /** On a fresh install, creates the first admin token; undefined when one exists (also when another node just made it). */
  async createFirst(): Promise<string | undefined> {
    const now = this.clock.now();
    const id = newId('tok');
    const secret = randomBytes(32).toString('base64url');
    const token: AdminToken = {
      id,
      name: 'initial',
      role: 'admin',
      customerId: null,
      tokenHash: sha256(secret).toString('hex'),
      createdAt: now,
      lastUsedAt: null,
      revokedAt: null,
    };
    return this.store.transaction(async (tx) => {
      await tx.lockAdminTokens();
      if ((await tx.activeAdminCount()) > 0) return undefined;
      await tx.apply([
        { type: 'adminToken.insert', token },
        {
          type: 'audit',
          entry: {
            at: now,
            type: 'token.created',
            actor: 'system:first-start',
            licenseId: null,
            deviceId: null,
            leaseId: null,
            reason: null,
            data: { tokenId: id, name: 'initial', role: 'admin' },
          },
        },
      ]);
      return `fdt_${id.slice(4)}_${secret}`;
    });
  }

  /** Revokes a token at once; the last active admin token cannot be revoked (nobody could administer the server). */
  async revoke(id: string, actor: string): Promise<Result<AdminToken>> {
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const token = await tx.adminToken(id);
      if (!token) return fail('ADMIN_TOKEN_NOT_FOUND', `no admin token ${id}`);
      if (token.revokedAt !== null) return ok(token);
      if (token.role === 'admin' && token.customerId === null && (await tx.activeAdminCount()) <= 1) {
        return fail('LAST_ADMIN_TOKEN', 'this is the last active admin token; create another admin token first');
      }
      await tx.apply([
        { type: 'adminToken.revoke', tokenId: id, at: now },
        {
          type: 'audit',
          entry: {
            at: now,
            type: 'token.revoked',
            actor,
            licenseId: null,
            deviceId: null,
            leaseId: null,
            reason: null,
            data: { tokenId: id, name: token.name },
          },
        },
      ]);
      return ok({ ...token, revokedAt: now });
    });
  }

  /** The token a bearer value belongs to, if it is valid and not revoked. */
  async verify(bearer: string): Promise<AdminToken | undefined> {
    const m = FORMAT.exec(bearer);
    if (!m) return undefined;
    const token = await this.store.adminTokenById(`tok_${m[1]}`);
    // Without a record, compare against a dummy so a miss costs what a hit costs.
    const match = timingSafeEqual(token ? Buffer.from(token.tokenHash, 'hex') : DUMMY, sha256(m[2]!));
    if (!token || !match || token.revokedAt !== null) return undefined;
    const now = this.clock.now();
    if (token.lastUsedAt === null || now - token.lastUsedAt >= TOUCH_EVERY_MS) await this.store.touchAdminToken(token.id, now);
    return token;
  }
}
