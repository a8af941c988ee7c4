/**
 * Which server keys the SDK trusts, and verification of lease tokens with them.
 *
 * - With `serverPublicKeys` the SDK trusts exactly those keys, nothing fetched.
 * - Without, it fetches `/.well-known/jwks.json` on first contact and pins it in
 *   the state directory (trust on first use). A token signed by a key it has not
 *   pinned makes it fetch the JWKS again; the new keys are accepted only if that
 *   JWKS still publishes a pinned key (the server keeps old keys published across
 *   a rotation), so a different server with its own keys is refused.
 */
import { createPublicKey, verify as verifyEd25519, type KeyObject } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { TOKEN_ALG, TOKEN_ISSUER, type LeaseTokenClaims } from '@floatd/protocol';
import { FloatingLicenseError } from './errors.js';
import { fingerprintHash } from '@floatd/protocol/fingerprint';
import type { StateDir } from './state.js';

/** An Ed25519 public key as published in floatd's JWKS. @example const key: ServerPublicKey = { kty: 'OKP', crv: 'Ed25519', x: '…', kid: 'Zk3…' }; */
export interface ServerPublicKey {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg?: string;
  use?: string;
}

/**
 * The server's public keys: a JWKS document (`{ keys: [...] }`, e.g. the saved `/.well-known/jwks.json`) or its key array.
 *
 * @example new FloatingLicense({ serverUrl, licenseKey, serverPublicKeys: JSON.parse(readFileSync('floatd-jwks.json', 'utf8')) })
 */
export type ServerPublicKeys = { keys: readonly object[] } | readonly object[];

const JWKS_FILE = 'jwks.json';

function invalid(message: string, cause?: unknown): FloatingLicenseError {
  return new FloatingLicenseError('INVALID_SIGNATURE', message, cause !== undefined ? { cause } : {});
}

/** Keeps only well-formed Ed25519 public keys (private parts, if any, are dropped). */
export function parseKeys(input: unknown): ServerPublicKey[] {
  const list = Array.isArray(input)
    ? input
    : input && typeof input === 'object' && Array.isArray((input as { keys?: unknown }).keys)
      ? (input as { keys: unknown[] }).keys
      : [];
  const out: ServerPublicKey[] = [];
  for (const k of list as Record<string, unknown>[]) {
    if (!k || typeof k !== 'object') continue;
    if (k.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string' || typeof k.kid !== 'string') continue;
    if (k.alg !== undefined && k.alg !== TOKEN_ALG && k.alg !== 'Ed25519') continue;
    out.push({ kty: 'OKP', crv: 'Ed25519', x: k.x, kid: k.kid });
  }
  return out;
}

/** What a token must say to be accepted for this client. */
export interface TokenExpectations {
  fingerprint: string;
  /** the instance it was issued to (omit for a stored token of an earlier process) */
  instanceId?: string;
  /** the lease it must be for */
  leaseId?: string;
  offline?: boolean;
}

export class KeyTrust {
  private pinned: ServerPublicKey[] | undefined;
  private readonly imported = new Map<string, unknown>();
  private readonly publicKeys = new Map<string, KeyObject>();

  constructor(
    private readonly state: StateDir,
    private readonly fixed: ServerPublicKey[] | undefined,
    private readonly fetchJwks: () => Promise<unknown>,
  ) {
    if (fixed) this.pinned = fixed;
  }

  /** True when the SDK has keys to verify with without the network. */
  async haveKeys(): Promise<boolean> {
    return (await this.load()).length > 0;
  }

  private async load(): Promise<ServerPublicKey[]> {
    if (this.pinned) return this.pinned;
    const r = await this.state.readSealed<ServerPublicKey[]>(JWKS_FILE);
    if (r.kind === 'ok') this.pinned = parseKeys(r.data);
    // a tampered pin is not trusted: it is as if nothing was pinned (and the next contact pins again)
    return this.pinned ?? [];
  }

  /** Fetches and pins the JWKS (first contact), or returns the pinned keys. */
  async ensure(): Promise<ServerPublicKey[]> {
    const keys = await this.load();
    if (keys.length > 0 || this.fixed) return keys;
    const fetched = parseKeys(await this.fetchJwks());
    if (fetched.length === 0)
      throw new FloatingLicenseError('BAD_RESPONSE', 'the server published no Ed25519 key at /.well-known/jwks.json');
    await this.pin(fetched);
    return fetched;
  }

  private async pin(keys: ServerPublicKey[]): Promise<void> {
    this.pinned = keys;
    await this.state.writeSealed(JWKS_FILE, keys);
  }

  private async keyFor(kid: string, mayFetch: boolean, what = 'token'): Promise<ServerPublicKey> {
    const keys = await (mayFetch ? this.ensure() : this.load());
    const found = keys.find((k) => k.kid === kid);
    if (found) return found;
    if (this.fixed || !mayFetch || keys.length === 0)
      throw invalid(`the ${what} is signed by key "${kid}", which this client does not trust`);
    // A rotation: accept the new keys only if the server still vouches for one we pinned.
    const fresh = parseKeys(await this.fetchJwks());
    const continuous = fresh.some((f) => keys.some((k) => k.kid === f.kid && k.x === f.x));
    const next = fresh.find((k) => k.kid === kid);
    if (!continuous || !next) throw invalid(`the ${what} is signed by key "${kid}", which is not a rotation of the pinned server keys`);
    await this.pin([...keys, ...fresh.filter((f) => !keys.some((k) => k.kid === f.kid))]);
    return next;
  }

  /**
   * Verifies the detached signature of a client API answer (`Floatd-Signature`) with a
   * trusted key, fetching the JWKS on first contact or after a rotation like a token
   * would. Rejects with INVALID_SIGNATURE.
   */
  async verifySignature(kid: string, data: string, sig: string): Promise<void> {
    const jwk = await this.keyFor(kid, true, 'answer');
    const cacheKey = `${jwk.kid}:${jwk.x}`;
    let key = this.publicKeys.get(cacheKey);
    if (!key) {
      try {
        key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
      } catch (err) {
        throw invalid(`the trusted key "${kid}" is not a usable Ed25519 key`, err);
      }
      this.publicKeys.set(cacheKey, key);
    }
    if (!verifyEd25519(null, Buffer.from(data), key, Buffer.from(sig, 'base64url')))
      throw invalid("the answer's signature does not verify (forged, altered or replayed)");
  }

  /**
   * Verifies a lease token's signature (EdDSA only, a trusted `kid`) and its claims;
   * returns the claims. Rejects with INVALID_SIGNATURE (forged, tampered, unknown key,
   * malformed) or TOKEN_MISMATCH (well signed, but for another device/instance/lease).
   *
   * `mayFetch` allows fetching the JWKS (first contact, rotation); a token read from
   * disk with no network is verified with the pinned keys only.
   */
  async verify(token: string, expect: TokenExpectations, mayFetch = true): Promise<LeaseTokenClaims> {
    if (typeof token !== 'string' || token.split('.').length !== 3) throw invalid('the lease token is not a compact JWS');
    let header: { alg?: unknown; kid?: unknown; crit?: unknown };
    try {
      header = decodeProtectedHeader(token);
    } catch (err) {
      throw invalid('the lease token header is unreadable', err);
    }
    if (header.alg !== TOKEN_ALG) throw invalid(`the lease token uses algorithm ${String(header.alg)}, not ${TOKEN_ALG}`);
    if (typeof header.kid !== 'string') throw invalid('the lease token names no key (kid)');
    const jwk = await this.keyFor(header.kid, mayFetch);
    let payload: Uint8Array;
    try {
      const cacheKey = `${jwk.kid}:${jwk.x}`;
      let key = this.imported.get(cacheKey);
      if (!key) {
        key = await importJWK(jwk as JWK, TOKEN_ALG);
        this.imported.set(cacheKey, key);
      }
      ({ payload } = await compactVerify(token, key as Parameters<typeof compactVerify>[1], { algorithms: [TOKEN_ALG] }));
    } catch (err) {
      throw invalid('the lease token signature does not verify', err);
    }
    let claims: LeaseTokenClaims;
    try {
      claims = JSON.parse(new TextDecoder().decode(payload)) as LeaseTokenClaims;
    } catch (err) {
      throw invalid('the lease token payload is not JSON', err);
    }
    checkClaims(claims, expect);
    return claims;
  }
}

function checkClaims(claims: LeaseTokenClaims, expect: TokenExpectations): void {
  const str = (v: unknown) => typeof v === 'string' && v.length > 0;
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  if (!claims || typeof claims !== 'object' || claims.iss !== TOKEN_ISSUER) throw invalid('the lease token is not a floatd token');
  if (
    !str(claims.sub) ||
    !str(claims.lse) ||
    claims.sub !== claims.lse ||
    !str(claims.lic) ||
    !str(claims.dev) ||
    !str(claims.fph) ||
    !str(claims.ins)
  )
    throw invalid('the lease token lacks required claims');
  if (!num(claims.iat) || !num(claims.hbi) || typeof claims.offline !== 'boolean') throw invalid('the lease token lacks required claims');
  if (claims.exp !== undefined && (!num(claims.exp) || claims.exp < claims.iat)) throw invalid('the lease token has an invalid expiry');
  if (claims.offline && (!num(claims.oed) || claims.oed! < claims.iat))
    throw invalid('the offline lease token has no valid Offline Expiry Date');
  const mismatch = (what: string) => new FloatingLicenseError('TOKEN_MISMATCH', `the lease token was issued to another ${what}`);
  if (claims.fph !== fingerprintHash(expect.fingerprint)) throw mismatch('device');
  if (expect.instanceId !== undefined && claims.ins !== expect.instanceId) throw mismatch('instance');
  if (expect.leaseId !== undefined && claims.lse !== expect.leaseId) throw mismatch('lease');
  if (expect.offline !== undefined && claims.offline !== expect.offline)
    throw mismatch(expect.offline ? 'online lease (expected offline)' : 'offline lease (expected online)');
}
