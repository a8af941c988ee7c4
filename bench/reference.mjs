// Reference server (issue #17, "the limit in the benchmark"): a bare node:http process that does only the
// work a client request needs, so a floatd scenario can be compared with what the same requests cost at least.
// bench/run.mjs drives it with the same scenario code (same connections, duration, paths, headers and bodies).
// The wire helpers (key check symbol, RFC 9421 signature base, session-key exchange) are @floatd/protocol's, so
// the reference answers what floatd answers and does the same crypto.
//
// Every client request: read the body, JSON.parse it, check the `Authorization: License <key>` key (its
// normalisation and check symbol, as floatd does) and find the license by key in a Map. Every answer: JSON,
// a SHA-256 Content-Digest and a signature: RFC 9421 (`Signature-Input`/`Signature`) when the request sent
// `Accept-Signature`, HMAC-SHA256 under the use's session key when it named that key and the answer is 2xx,
// Ed25519 otherwise (or the older `Floatd-Signature`, Ed25519, without `Accept-Signature`).
//  - checkout (POST /v1/client/checkout): find the device's lease by fingerprint (same device: the same lease
//    again, 200), count seats (409 NO_SEATS_AVAILABLE when full), make a lease (random ids, expiry); when the
//    body offers `session.x25519`, agree the session key as floatd does (an X25519 pair from random bytes, the
//    DH, HKDF, the key id); sign a lease token (JWT, EdDSA/Ed25519, floatd's claims incl. the fingerprint's
//    SHA-256); answer floatd's grant body (with `session.x25519`), Ed25519-signed. Per grant: two Ed25519
//    signatures, one X25519 key pair and DH, HKDF, three SHA-256.
//  - heartbeat (POST /v1/client/leases/:id/heartbeat): find the lease by id in a Map, check it belongs to the
//    key's license and names the instance (as floatd's leaseOfKey does), move its expiry in memory, answer the
//    grant body, without a token unless asked (`renewToken`, or no `Accept-Signature`: then a new one is
//    signed): one SHA-256 + one HMAC in the bench.
//  - check-in (POST /v1/client/leases/:id/checkin): find and check as above, delete the lease, free its seat,
//    answer {"released":true,"instances":0}: one SHA-256 + one HMAC.
//  - license info (GET /v1/client/license, 5% of `mixed`): the license summary, Ed25519-signed (no use).
//  - POST /v1/admin/products and /v1/admin/licenses: setup only (any bearer), never measured.
// What it omits, on purpose: durability (nothing is written: no database, no fsync, no group commit; session
// keys are not stored or sealed), audit log, metrics, usage rollups, webhooks/outbox, reclamation, policies
// beyond the seat count (instances per device, sharing, features, offline, trial/expiry, suspension), schema
// validation beyond types, request ids, security headers, rate limits, tamper seals, fastify.
import { createHash, createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer } from 'node:http';
import {
  KEY_ALPHABET,
  acceptedKeyId,
  formatKey,
  normalizeKey,
  signableNonce,
  signatureBase,
  signatureHeaders,
  signatureParams,
  signingInput,
  splitTarget,
} from '../packages/protocol/dist/index.js';
import { sessionKeyId, sessionKeyOf, sharedSecret, x25519Pair } from '../packages/protocol/dist/sessionKeys.js';

// One key pair made at start and never exported (the Node 20 deadlock in @floatd/protocol/sessionKeys needs an export).
const { privateKey } = generateKeyPairSync('ed25519');
const KID = randomBytes(12).toString('base64url');
const b64json = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
const TOKEN_HEADER = b64json({ alg: 'EdDSA', kid: KID, typ: 'JWT' });
const id = (prefix) => prefix + randomBytes(15).toString('base64url');
const iso = (ms) => new Date(ms).toISOString();
const newKey = () => formatKey(Array.from(randomBytes(24), (b) => KEY_ALPHABET[b % 32]).join(''));

/** key → { id, productId, key, seats, used, ttl, hbi, devices: Map<fingerprint, lease> } */
const licenses = new Map();
/** lease id → { id, license, deviceId, fingerprint, instanceId, grantedAt, expiresAt, session: { key, keyid } | undefined, token } */
const leases = new Map();

const summary = (l) => ({
  id: l.id,
  productId: l.productId,
  model: 'permanent',
  expiresAt: null,
  seatsTotal: l.seats,
  seatsUsed: l.used,
  seatsOffline: 0,
  counting: 'per-device',
  sharing: { by: ['device'], cap: null },
  leaseTtlSeconds: l.ttl,
  heartbeatIntervalSeconds: l.hbi,
  maxOfflineSeconds: 0,
  features: [],
  waiting: 0,
  suspended: false,
});

const grant = (lease, now, token) => ({
  lease: {
    id: lease.id,
    deviceId: lease.deviceId,
    instanceId: lease.instanceId,
    offline: false,
    grantedAt: iso(lease.grantedAt),
    expiresAt: iso(lease.expiresAt),
    offlineExpiresAt: null,
    instances: 1,
    shareGroup: `device=${lease.deviceId}`,
    overdraft: false,
    features: ['base'],
  },
  ...(token !== undefined ? { token } : {}),
  heartbeatIntervalSeconds: lease.license.hbi,
  serverTime: iso(now),
  license: summary(lease.license),
});

function leaseToken(lease, now) {
  const l = lease.license;
  const claims = {
    iss: 'floatd',
    sub: lease.id,
    lic: l.id,
    prd: l.productId,
    dev: lease.deviceId,
    fph: createHash('sha256').update(lease.fingerprint).digest('base64url'),
    ins: lease.instanceId,
    lse: lease.id,
    iat: Math.floor(now / 1000),
    exp: Math.floor(lease.expiresAt / 1000),
    offline: false,
    hbi: l.hbi,
    shg: `device=${lease.deviceId}`,
    use: 1,
    fts: ['base'],
  };
  const input = `${TOKEN_HEADER}.${b64json(claims)}`;
  return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
}

/** Answers `value` as JSON with Content-Digest and a signature; HMAC-SHA256 under `session` when the request named its key. */
function answer(req, res, status, value, session) {
  const body = JSON.stringify(value);
  const digest = `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
  const now = Date.now();
  const date = iso(now);
  const headers = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'content-digest': digest,
    'floatd-date': date,
  };
  const nonce = req.headers['floatd-nonce'];
  const accept = req.headers['accept-signature'];
  if (accept !== undefined) {
    const { path, query } = splitTarget(req.url);
    const signed = { status, method: req.method, path, query, digest, date };
    const created = Math.floor(now / 1000);
    const hmac = status < 300 && session && acceptedKeyId(accept) === session.keyid;
    const params = signatureParams({
      created,
      keyid: hmac ? session.keyid : KID,
      alg: hmac ? 'hmac-sha256' : 'ed25519',
      nonce: signableNonce(typeof nonce === 'string' ? nonce : undefined),
    });
    const base = signatureBase(signed, params);
    const signature = hmac
      ? createHmac('sha256', session.key).update(base).digest('base64')
      : sign(null, Buffer.from(base), privateKey).toString('base64');
    const h = signatureHeaders(params, signature);
    headers['signature-input'] = h.input;
    headers.signature = h.signature;
  } else {
    const input = signingInput(status, req.method, req.url, typeof nonce === 'string' ? nonce.slice(0, 64) : '', date, digest);
    headers['floatd-signature'] = `kid=${KID};sig=${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
  }
  res.writeHead(status, headers);
  res.end(body);
}

const refuse = (req, res, status, code) => answer(req, res, status, { error: { code, message: code, requestId: '' } });

function licenseOf(req) {
  const m = /^License\s+(.+)$/i.exec(req.headers.authorization?.trim() ?? '');
  const key = m ? normalizeKey(m[1]) : undefined;
  return key === undefined ? undefined : licenses.get(key);
}

function checkout(req, res, body) {
  const license = licenseOf(req);
  if (!license) return refuse(req, res, 401, 'INVALID_LICENSE_KEY');
  if (typeof body.fingerprint !== 'string' || typeof body.instanceId !== 'string') return refuse(req, res, 400, 'INVALID_REQUEST');
  const now = Date.now();
  const held = license.devices.get(body.fingerprint);
  if (held) {
    held.expiresAt = now + license.ttl * 1000;
    return answer(req, res, 200, grant(held, now, held.token));
  }
  if (license.used >= license.seats) return refuse(req, res, 409, 'NO_SEATS_AVAILABLE');
  // The session key is agreed for a grant only (as floatd does): a denial makes no key pair.
  let pair;
  let shared;
  if (typeof body.session?.x25519 === 'string') {
    pair = x25519Pair();
    shared = sharedSecret(pair.privateKey, body.session.x25519);
    if (!shared) return refuse(req, res, 400, 'VALIDATION_FAILED');
  }
  license.used++;
  // One call to the random source for the lease id and the device id.
  const random = randomBytes(30);
  const lease = {
    id: `lse_${random.subarray(0, 15).toString('base64url')}`,
    license,
    deviceId: `dev_${random.subarray(15, 30).toString('base64url')}`,
    fingerprint: body.fingerprint,
    instanceId: body.instanceId,
    grantedAt: now,
    expiresAt: now + license.ttl * 1000,
    session: undefined,
    token: '',
  };
  if (shared) {
    const key = sessionKeyOf(shared, lease.id);
    lease.session = { key, keyid: sessionKeyId(key) };
  }
  lease.token = leaseToken(lease, now);
  leases.set(lease.id, lease);
  license.devices.set(lease.fingerprint, lease);
  answer(req, res, 201, { ...grant(lease, now, lease.token), ...(pair ? { session: { x25519: pair.x25519 } } : {}) });
}

/** The lease of the path, if it belongs to the request's license and names the body's instance. */
function heldLease(req, res, body, leaseId) {
  const license = licenseOf(req);
  if (!license) return refuse(req, res, 401, 'INVALID_LICENSE_KEY');
  if (typeof body.instanceId !== 'string') return refuse(req, res, 400, 'INVALID_REQUEST');
  const lease = leases.get(leaseId);
  if (!lease || lease.license !== license || lease.instanceId !== body.instanceId) return refuse(req, res, 404, 'LEASE_NOT_FOUND');
  return lease;
}

function heartbeat(req, res, body, leaseId) {
  const lease = heldLease(req, res, body, leaseId);
  if (!lease) return;
  const now = Date.now();
  lease.expiresAt = now + lease.license.ttl * 1000;
  // A client that asked for RFC 9421 answers gets a new token only when it asks (as floatd answers).
  const renew = req.headers['accept-signature'] === undefined || body.renewToken === true;
  if (renew) lease.token = leaseToken(lease, now);
  answer(req, res, 200, grant(lease, now, renew ? lease.token : undefined), lease.session);
}

function checkin(req, res, body, leaseId) {
  const lease = heldLease(req, res, body, leaseId);
  if (!lease) return;
  leases.delete(lease.id);
  lease.license.devices.delete(lease.fingerprint);
  lease.license.used--;
  answer(req, res, 200, { released: true, instances: 0 }, lease.session);
}

function info(req, res) {
  const license = licenseOf(req);
  if (!license) return refuse(req, res, 401, 'INVALID_LICENSE_KEY');
  answer(req, res, 200, { license: summary(license), lease: null, serverTime: iso(Date.now()) });
}

function admin(req, res, body) {
  const created = (v) => {
    const text = JSON.stringify(v);
    res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  if (req.url === '/v1/admin/products') return created({ id: id('prd_'), name: body.name });
  const license = {
    id: id('lic_'),
    productId: body.productId,
    key: newKey(),
    seats: body.seats,
    used: 0,
    ttl: body.leaseTtlSeconds ?? 3600,
    hbi: body.heartbeatIntervalSeconds ?? 600,
    devices: new Map(),
  };
  licenses.set(license.key, license);
  created({ id: license.id, key: license.key });
}

const LEASE_PATH = /^\/v1\/client\/leases\/([A-Za-z0-9_-]{1,64})\/(heartbeat|checkin)$/;

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body = {};
    if (chunks.length) {
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return refuse(req, res, 400, 'INVALID_REQUEST');
      }
      if (typeof body !== 'object' || body === null) return refuse(req, res, 400, 'INVALID_REQUEST');
    }
    if (req.method === 'POST') {
      const m = LEASE_PATH.exec(req.url);
      if (m) return m[2] === 'heartbeat' ? heartbeat(req, res, body, m[1]) : checkin(req, res, body, m[1]);
      if (req.url === '/v1/client/checkout') return checkout(req, res, body);
      if (req.url === '/v1/admin/products' || req.url === '/v1/admin/licenses') return admin(req, res, body);
    }
    if (req.method === 'GET' && req.url === '/v1/client/license') return info(req, res);
    refuse(req, res, 404, 'NOT_FOUND');
  });
});
server.listen(0, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
