/**
 * The server's Ed25519 signing keys and the lease tokens they sign.
 *
 * Keys are parsed once into `KeyObject`s (parsing a PEM/JWK per signature costs
 * ~13x the signature). The newest key signs; older keys stay published in the
 * JWKS until `publishUntil`, so tokens they signed keep verifying after a rotation.
 *
 * The signing-key code lives in `keys/`: this ring (lease tokens), `sealing.ts`
 * (private keys encrypted at rest) and `documents.ts` (Ed25519 signed documents:
 * license files, reports, trusted time). Where the ring is kept is a port
 * (`KeyPersistence`, store/cluster.ts): a file in the data directory here, the
 * database in a cluster (store/postgres/keys.ts).
 */
import { createPrivateKey, createPublicKey, type KeyObject, createHash, randomBytes, sign } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { TOKEN_ALG, TOKEN_ISSUER, type LeaseTokenClaims } from '@floatd/protocol';
import type { KeyPersistence, StoredSigningKey } from '../store/cluster.js';

export type { KeyPersistence, StoredSigningKey };

interface LoadedKey {
  stored: StoredSigningKey;
  privateKey: KeyObject;
  publicJwk: JWK;
  encodedHeader?: string;
}

const b64json = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

export class KeyRing {
  private keys: LoadedKey[] = [];
  /** Bumped by every local change, so a reload that read the database before it cannot put back an older ring. */
  private generation = 0;

  private constructor(private readonly persistence: KeyPersistence) {}

  /** Loads the ring, creating the first key on first start. */
  static async open(persistence: KeyPersistence, now: number): Promise<KeyRing> {
    const ring = new KeyRing(persistence);
    ring.keys = (await persistence.update((keys) => (keys.length ? keys : [generate(now)]))).map(load);
    // A reload that fails (the database connection cut at that moment) must not end the process; the next change or reconnection reloads.
    persistence.onChange?.(() => void ring.reload().catch(() => undefined));
    return ring;
  }

  /** Re-reads the keys (another node rotated them). */
  async reload(): Promise<void> {
    const started = this.generation;
    const stored = await this.persistence.update((keys) => keys);
    if (this.generation !== started) return;
    this.generation++;
    const known = new Map(this.keys.map((k) => [k.stored.kid, k]));
    this.keys = stored.map((s) => {
      const k = known.get(s.kid);
      return k ? { ...k, stored: s } : load(s);
    });
  }

  /** The signing key: the one not retired (not "the last one": stored order may tie on creation time). */
  private get current(): LoadedKey {
    return this.keys.find((k) => k.stored.retiredAt === null) ?? this.keys[this.keys.length - 1]!;
  }

  get currentKid(): string {
    return this.current.stored.kid;
  }

  private published(k: LoadedKey, now: number): boolean {
    return k.stored.publishUntil === null || k.stored.publishUntil > now;
  }

  /** Public keys to publish at /.well-known/jwks.json: the signing key first, then retired keys still needed. */
  jwks(now: number): { keys: JWK[] } {
    const current = this.current;
    return { keys: [current, ...this.keys.filter((k) => k !== current && this.published(k, now)).reverse()].map((k) => k.publicJwk) };
  }

  /**
   * Starts signing with a new key. The old key stays published for `keepOldSeconds`
   * — the longest a token it signed can live — or for good when that is `null`
   * (tokens without expiry exist, e.g. on licenses without a lease TTL).
   */
  async rotate(now: number, keepOldSeconds: number | null): Promise<string> {
    const next = generate(now);
    const stored = await this.persistence.update((keys) => {
      const kept = keys
        .map((k) =>
          k.retiredAt === null ? { ...k, retiredAt: now, publishUntil: keepOldSeconds === null ? null : now + keepOldSeconds * 1000 } : k,
        )
        .filter((k) => k.publishUntil === null || k.publishUntil > now);
      return [...kept, next];
    });
    this.generation++;
    const known = new Map(this.keys.map((k) => [k.stored.kid, k]));
    this.keys = stored.map((s) => known.get(s.kid) ?? load(s));
    for (const k of this.keys) k.stored = stored.find((s) => s.kid === k.stored.kid)!;
    return next.kid;
  }

  /**
   * Signs lease-token claims with the current key: a compact JWS (RFC 7515) with
   * EdDSA over `base64url(header).base64url(payload)`, exactly what jose's SignJWT
   * produces and what jose's jwtVerify checks. Signed with node:crypto directly
   * because jose signs through WebCrypto's thread pool: ~175 µs a token against
   * ~50 µs here, on the path of every checkout and heartbeat.
   */
  async sign(claims: Omit<LeaseTokenClaims, 'iss'>): Promise<string> {
    const key = this.current;
    const header = (key.encodedHeader ??= b64json({ alg: TOKEN_ALG, kid: key.stored.kid, typ: 'JWT' }));
    const input = `${header}.${b64json({ iss: TOKEN_ISSUER, ...claims })}`;
    return `${input}.${sign(null, Buffer.from(input), key.privateKey).toString('base64url')}`;
  }

  /**
   * A detached Ed25519 signature of `data` by the current key, as the value of the
   * `Floatd-Signature` header: `kid=<kid>;sig=<base64url>` (signed responses; see
   * `@floatd/protocol` responseSignature). Uses the parsed KeyObject: one signature, no parsing.
   */
  signatureHeader(data: string): string {
    const key = this.current;
    return `kid=${key.stored.kid};sig=${sign(null, Buffer.from(data), key.privateKey).toString('base64url')}`;
  }

  /**
   * An Ed25519 signature (base64) by the current key over the text `build` makes with its kid (an RFC 9421
   * signature base names its key: see http/security.ts).
   */
  signNamed(build: (kid: string) => string): string {
    const key = this.current;
    return sign(null, Buffer.from(build(key.stored.kid)), key.privateKey).toString('base64');
  }
}

/** PKCS#8 DER of an Ed25519 private key, before its 32-byte seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function generate(now: number): StoredSigningKey {
  // Imported from random bytes, not `generateKeyPairSync`: on Node 20 a GC that finalises a key-generation job
  // while a key is exported can deadlock the process (see @floatd/protocol/sessionKeys).
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, randomBytes(32)]), format: 'der', type: 'pkcs8' });
  const privateJwk = privateKey.export({ format: 'jwk' }) as JWK;
  const kid = createHash('sha256').update(String(privateJwk.x)).update(randomBytes(8)).digest('base64url').slice(0, 16);
  return { kid, createdAt: now, retiredAt: null, publishUntil: null, privateJwk };
}

function load(stored: StoredSigningKey): LoadedKey {
  const privateKey = createPrivateKey({ key: stored.privateJwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  const pub = createPublicKey(privateKey).export({ format: 'jwk' }) as JWK;
  return { stored, privateKey, publicJwk: { ...pub, kid: stored.kid, alg: TOKEN_ALG, use: 'sig' } };
}

/** The key ring as a file in the data directory, mode 0600, replaced atomically. */
export function fileKeyPersistence(dataDir: string): KeyPersistence {
  const file = join(dataDir, 'signing-keys.json');
  const load = async (): Promise<StoredSigningKey[]> => {
    try {
      return JSON.parse(await readFile(file, 'utf8')) as StoredSigningKey[];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new Error(`cannot read the signing keys at ${file}: ${(err as Error).message}`);
    }
  };
  // One server process owns a data directory, so read-modify-write needs no lock beyond this process — but within
  // it, updates run one at a time: two concurrent rotations used to share one temporary file (ENOENT, a 500) and
  // the later write could drop the key the earlier one had just started signing with.
  let queue: Promise<unknown> = Promise.resolve();
  const update = async (change: (keys: StoredSigningKey[]) => StoredSigningKey[]): Promise<StoredSigningKey[]> => {
    const before = await load();
    const after = change(before);
    if (after === before) return before;
    await mkdir(dataDir, { recursive: true });
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, JSON.stringify(after, null, 2), { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, file);
    return after;
  };
  return {
    update(change) {
      const next = queue.then(() => update(change));
      queue = next.catch(() => undefined);
      return next;
    },
  };
}

/** Keys held only in memory (tests). */
export function memoryKeyPersistence(): KeyPersistence {
  let keys: StoredSigningKey[] = [];
  return {
    update: async (change) => (keys = change(keys)),
  };
}
