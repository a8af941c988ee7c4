/**
 * Claims of a lease token: a JWT signed by the server with EdDSA (Ed25519),
 * `kid` in the protected header. Clients verify it against the server's JWKS
 * (`/.well-known/jwks.json`) and may keep running on it while the server is unreachable.
 */
export interface LeaseTokenClaims {
  /** issuer: always "floatd" */
  iss: 'floatd';
  /** subject: the lease id */
  sub: string;
  /** license id */
  lic: string;
  /** product id */
  prd: string;
  /** device id */
  dev: string;
  /** base64url SHA-256 of the device fingerprint */
  fph: string;
  /** instance id the token was issued to */
  ins: string;
  /** lease id (same as sub, kept explicit for readers) */
  lse: string;
  /** issued at, server time, seconds since the epoch */
  iat: number;
  /** expiry in seconds since the epoch; absent when the lease has no TTL and the license no end date */
  exp?: number;
  /** true for an offline lease */
  offline: boolean;
  /** Offline Expiry Date (seconds since the epoch) for an offline lease */
  oed?: number;
  /** heartbeat interval the client should use, seconds */
  hbi: number;
  /** the share group whose uses the seat holds (absent in tokens from before sharing rules) */
  shg?: string;
  /** uses on the seat when the token was issued */
  use?: number;
  /** true when the seat was granted beyond the count (overdraft) */
  ovd?: boolean;
  /** the pools granted to this use (`base`, feature names); absent in tokens from before feature pools (read: base) */
  fts?: string[];
}

export const TOKEN_ISSUER = 'floatd' as const;
export const TOKEN_ALG = 'EdDSA' as const;
