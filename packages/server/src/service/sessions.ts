/**
 * Per-use session keys (issue #17): the server's half of the X25519 exchange a checkout (or a heartbeat
 * that lost its key) offers, the HKDF derivation both sides make, and the key at rest.
 *
 * The derived key signs the answers on the use with HMAC-SHA256 (RFC 9421; http/security.ts) instead of
 * Ed25519. It is stored with the use's row (`instances.session_key`), so any node serves the use: sealed with
 * FLOATD_KEY_ENCRYPTION_KEY on PostgreSQL (like the signing keys), as is on SQLite (its data directory holds
 * the signing key files too). Opened keys are cached by their stored text, so a heartbeat decrypts nothing.
 */
import { sessionKeyId, sessionKeyOf, sharedSecret, type X25519Pair, x25519Pair } from '@floatd/protocol/sessionKeys';
import { SESSION_KDF } from '@floatd/protocol';
import { fail, ok, type Result } from '../domain/result.js';
import { decrypt, encrypt } from '../keys/sealing.js';

/** An accepted offer: the server's public half, and the derivation once the lease is known. */
export interface SessionAgreement {
  /** the server's X25519 public key, base64url (goes in the signed answer) */
  x25519: string;
  /** the use's session key for `leaseId`, and its text at rest */
  derive(leaseId: string): { key: Buffer; stored: string };
}

/** A use's session key, opened, with its `keyid` (`SESSION_KEYID_PREFIX`). */
export interface SessionKey {
  key: Buffer;
  keyid: string;
}

/** Cached open keys at most (a node's live uses; beyond it, the oldest go; a check-in forgets its use's). */
const CACHE = 100_000;
/**
 * The server's half of the exchange serves this many agreements at most, and for this long (ms), before a new pair is
 * made. Making a pair (an X25519 key from random bytes and its public half) was 60-70 µs of each checkout's server
 * time on this machine, as much as the agreement itself (docs/performance.md). Reusing it costs no secrecy the
 * server keeps: each use's key still comes from the client's fresh half (and is salted with the lease id), and the
 * server's private half lives only in this process's memory, where the derived keys are held anyway (and, on
 * PostgreSQL, the key that seals them at rest). A client's low-order key is refused whatever the half (`sharedSecret`).
 */
export const SERVER_HALF_USES = 1000;
export const SERVER_HALF_MS = 60_000;

export class SessionKeys {
  private readonly opened = new Map<string, SessionKey>();

  /** The server's current half (`SERVER_HALF_USES`, `SERVER_HALF_MS`). */
  private half: { pair: X25519Pair; uses: number; until: number } | undefined;

  /**
   * `sealWith`: the key sealing session keys at rest (PostgreSQL), none on SQLite. `now`: a monotonic clock in ms
   * (when the server's half is replaced; tests move it).
   */
  constructor(
    private readonly sealWith?: Buffer,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The server's half of an exchange the client offered; refused (400) for a key that is not a usable X25519 point. */
  agree(clientX25519: string): Result<SessionAgreement> {
    const pair = this.serverHalf();
    const shared = sharedSecret(pair.privateKey, clientX25519);
    if (!shared) return fail('VALIDATION_FAILED', 'session.x25519 is not a usable X25519 public key (not a key, or a low-order point)');
    return ok({
      x25519: pair.x25519,
      derive: (leaseId: string) => {
        const key = sessionKeyOf(shared, leaseId);
        const stored = this.sealWith ? encrypt(key.toString('base64url'), this.sealWith) : key.toString('base64url');
        this.remember(stored, key);
        return { key, stored };
      },
    });
  }

  private serverHalf(): X25519Pair {
    const now = this.now();
    if (!this.half || this.half.uses >= SERVER_HALF_USES || now >= this.half.until)
      this.half = { pair: x25519Pair(), uses: 0, until: now + SERVER_HALF_MS };
    this.half.uses++;
    return this.half.pair;
  }

  /** A stored key, opened (undefined when there is none or it cannot be opened: the answer is then Ed25519-signed). */
  open(stored: string | null | undefined): SessionKey | undefined {
    if (!stored) return undefined;
    const cached = this.opened.get(stored);
    if (cached) return cached;
    let key: Buffer;
    try {
      key = Buffer.from(this.sealWith ? decrypt(stored, this.sealWith) : stored, 'base64url');
    } catch {
      return undefined;
    }
    if (key.length !== SESSION_KDF.length) return undefined;
    return this.remember(stored, key);
  }

  /** A use's key is no longer needed (its use was checked in): the cache keeps the live uses' keys, not the ended ones'. */
  forget(stored: string | null | undefined): void {
    if (stored) this.opened.delete(stored);
  }

  /** Keys held open (tests). */
  get size(): number {
    return this.opened.size;
  }

  private remember(stored: string, key: Buffer): SessionKey {
    if (this.opened.size >= CACHE) this.opened.delete(this.opened.keys().next().value!);
    const opened = { key, keyid: sessionKeyId(key) };
    this.opened.set(stored, opened);
    return opened;
  }
}
