/**
 * RFC 9421 answers and session keys (issue #17), against a real server on the configured store: a checkout that
 * offers an X25519 key gets the server's in its Ed25519-signed answer; the answers on the use afterwards are signed
 * with HMAC-SHA256 under the derived key. Every signature is checked twice: by `http-message-signatures` (an RFC 9421
 * library from npm, which knows nothing of floatd) and by the byte-exact text docs/api.md gives. Clients that do not
 * ask (`Accept-Signature`) keep today's `Floatd-Signature` and a token on every renewal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, createPublicKey, verify } from 'node:crypto';
import { sessionKeyId, sessionKeyOf, sharedSecret, x25519Pair, type X25519Pair } from '@floatd/protocol/sessionKeys';
import { httpbis, createVerifier } from 'http-message-signatures';
import { acceptSignature, parseSignatureHeader, parseSignatureInput, signatureBase, splitTarget } from '@floatd/protocol';
import { startTestServer, type TestServer } from '../testing/harness.js';

const POLICY = { seats: 2, leaseTtlSeconds: 120, heartbeatIntervalSeconds: 30, maxOfflineSeconds: 3600 };

type Offer = X25519Pair;
const offer = (): Offer => x25519Pair();
function derive(o: Offer, serverX25519: string, leaseId: string): Buffer {
  const shared = sharedSecret(o.privateKey, serverX25519);
  assert.ok(shared, "the server's half is a usable X25519 key");
  return sessionKeyOf(shared, leaseId);
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: any;
  nonce: string;
  method: string;
  path: string;
}

/**
 * A client call as the SDK makes it: key, nonce and (unless `legacy`) `Accept-Signature`, naming the session key
 * `holds` when given.
 */
async function call(
  ts: TestServer,
  key: string,
  method: string,
  path: string,
  body?: unknown,
  legacy = false,
  holds?: Buffer,
): Promise<Answer> {
  const nonce = 'n' + Math.random().toString(36).slice(2);
  const headers: Record<string, string> = { authorization: `License ${key}`, 'floatd-nonce': nonce };
  if (!legacy) headers['accept-signature'] = acceptSignature(holds && sessionKeyId(holds));
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(ts.url + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : undefined, nonce, method, path };
}

async function jwks(ts: TestServer): Promise<{ kid: string; x: string }[]> {
  return ((await (await fetch(ts.url + '/.well-known/jwks.json')).json()) as { keys: { kid: string; x: string }[] }).keys;
}

/**
 * Verifies an answer with the npm library: Ed25519 with the published key `keyid` names, HMAC-SHA256 with `session`.
 * Resolves to the library's verdict (true, or false/null/throw for a bad one).
 */
async function libraryVerifies(ts: TestServer, a: Answer, session?: Buffer, alter?: (h: Record<string, string>) => void): Promise<boolean> {
  const headers: Record<string, string> = {};
  a.headers.forEach((v, k) => {
    headers[k] = v;
  });
  alter?.(headers);
  const keys = await jwks(ts);
  try {
    const verdict = await httpbis.verifyMessage(
      {
        keyLookup: async (params) => {
          if (params.alg === 'hmac-sha256')
            return session ? { id: String(params.keyid), algs: ['hmac-sha256'], verify: createVerifier(session, 'hmac-sha256') } : null;
          const jwk = keys.find((k) => k.kid === params.keyid);
          if (!jwk) return null;
          const pub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
          return { id: jwk.kid, algs: ['ed25519'], verify: createVerifier(pub, 'ed25519') };
        },
      },
      { status: Number(headers[':status'] ?? a.status), headers },
      { method: a.method, url: ts.url + a.path, headers: { 'floatd-nonce': a.nonce } },
    );
    return verdict === true;
  } catch {
    return false;
  }
}

/** The byte-exact check docs/api.md describes: digest, nonce, created = date, then the signature over the base. */
async function ownVerifies(ts: TestServer, a: Answer, session?: Buffer): Promise<{ alg: string; keyid: string }> {
  const input = parseSignatureInput(a.headers.get('signature-input'));
  assert.ok(input, `${a.path}: Signature-Input is floatd's (${a.headers.get('signature-input')})`);
  const sig = /^floatd=:([A-Za-z0-9+/=]+):$/.exec(a.headers.get('signature') ?? '')?.[1];
  assert.ok(sig, 'Signature present');
  const digest = a.headers.get('content-digest')!;
  const date = a.headers.get('floatd-date')!;
  assert.equal(digest, `sha-256=:${createHash('sha256').update(a.text).digest('base64')}:`);
  assert.equal(input.nonce, a.nonce, 'the request nonce is a signature parameter');
  assert.equal(input.created, Math.floor(Date.parse(date) / 1000));
  assert.equal(a.headers.get('floatd-signature'), null, 'no Floatd-Signature besides');
  const base = signatureBase({ status: a.status, method: a.method, ...splitTarget(a.path), digest, date }, input.params);
  if (input.alg === 'hmac-sha256') {
    assert.ok(session, 'an HMAC answer only where a session key was agreed');
    assert.equal(createHmac('sha256', session).update(base).digest('base64'), sig, 'HMAC verifies');
  } else {
    const jwk = (await jwks(ts)).find((k) => k.kid === input.keyid);
    assert.ok(jwk, 'signed by a published key');
    const pub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' });
    assert.ok(verify(null, Buffer.from(base), pub, Buffer.from(sig, 'base64')), 'Ed25519 verifies');
  }
  return { alg: input.alg, keyid: input.keyid };
}

test('RFC 9421 answers: checkout Ed25519 with a session exchange; heartbeat, check-in and features HMAC-SHA256 under the derived key; a library from npm verifies each', {
  timeout: 60_000,
}, async () => {
  const ts = await startTestServer();
  try {
    const l = await ts.license(POLICY);
    const o = offer();
    const co = await call(ts, l.key, 'POST', '/v1/client/checkout', {
      fingerprint: 'fp-rfc9421-0001',
      instanceId: 'i-1',
      session: { x25519: o.x25519 },
    });
    assert.equal(co.status, 201, co.text);
    assert.deepEqual(await ownVerifies(ts, co), { alg: 'ed25519', keyid: (await jwks(ts))[0]!.kid });
    assert.equal(await libraryVerifies(ts, co), true, 'the library verifies the checkout answer');
    assert.match(co.body.session?.x25519 ?? '', /^[A-Za-z0-9_-]{43}$/, "the server's half");
    assert.equal(typeof co.body.token, 'string');
    const leaseId: string = co.body.lease.id;
    const key = derive(o, co.body.session.x25519, leaseId);

    // a heartbeat naming the key: HMAC under it, keyid = its id; no new token unless asked
    const hbPath = `/v1/client/leases/${leaseId}/heartbeat`;
    ts.clock.advance(30_000);
    const hb = await call(ts, l.key, 'POST', hbPath, { instanceId: 'i-1' }, false, key);
    assert.equal(hb.status, 200, hb.text);
    assert.deepEqual(await ownVerifies(ts, hb, key), { alg: 'hmac-sha256', keyid: sessionKeyId(key) });
    assert.equal(await libraryVerifies(ts, hb, key), true, 'the library verifies the HMAC');
    assert.equal(hb.body.token, undefined, 'no token asked, none signed');
    assert.equal(hb.body.lease.expiresAt, new Date(ts.clock.now() + 120_000).toISOString(), 'the lease renewed');
    // the library refuses it with another key, another status, another nonce or another body
    assert.equal(await libraryVerifies(ts, hb, Buffer.alloc(32, 7)), false);
    assert.equal(await libraryVerifies(ts, { ...hb, status: 404 }, key), false);
    // (the nonce is the client's own check: the library verifies what the parameters say, floatd's SDK and ownVerifies
    // also require it to be the request's)
    await assert.rejects(ownVerifies(ts, { ...hb, nonce: hb.nonce + 'x' }, key));
    assert.equal(
      await libraryVerifies(ts, hb, key, (h) => {
        h['content-digest'] = `sha-256=:${createHash('sha256').update('{}').digest('base64')}:`;
      }),
      false,
    );

    const renewed = await call(ts, l.key, 'POST', hbPath, { instanceId: 'i-1', renewToken: true }, false, key);
    assert.equal(renewed.status, 200, renewed.text);
    assert.equal((await ownVerifies(ts, renewed, key)).alg, 'hmac-sha256');
    assert.equal(typeof renewed.body.token, 'string', 'a token when asked');

    // features: HMAC too (its answer carries the new token)
    const ft = await call(
      ts,
      l.key,
      'POST',
      `/v1/client/leases/${leaseId}/features`,
      { instanceId: 'i-1', features: ['base'] },
      false,
      key,
    );
    assert.equal(ft.status, 200, ft.text);
    assert.equal((await ownVerifies(ts, ft, key)).alg, 'hmac-sha256');

    // an error on the use: Ed25519 (an error carries nothing the key must vouch for)
    const bad = await call(ts, l.key, 'POST', '/v1/client/leases/lse_00000000000000000000/heartbeat', { instanceId: 'i-1' });
    assert.equal(bad.status, 404);
    assert.equal((await ownVerifies(ts, bad)).alg, 'ed25519');
    assert.equal(await libraryVerifies(ts, bad), true);

    // check-in: HMAC; the use and its key are gone
    // another process's request on the use (a crashed use checked in by the next start) does not name its key: Ed25519
    const other = await call(ts, l.key, 'POST', hbPath, { instanceId: 'i-1' }, false, Buffer.alloc(32, 1));
    assert.equal((await ownVerifies(ts, other)).alg, 'ed25519');
    assert.equal(typeof other.body.token, 'string', 'a renewal not HMAC-signed carries a token');
    const ci = await call(ts, l.key, 'POST', `/v1/client/leases/${leaseId}/checkin`, { instanceId: 'i-1' }, false, key);
    assert.equal(ci.status, 200, ci.text);
    assert.equal((await ownVerifies(ts, ci, key)).alg, 'hmac-sha256');
    assert.equal(await libraryVerifies(ts, ci, key), true);
    assert.deepEqual(await ts.rows('SELECT session_key FROM instances'), []);
  } finally {
    await ts.close();
  }
});

test('a client that lost its key re-keys with a signed exchange; the old key signs nothing more; the key at rest is sealed on PostgreSQL', {
  timeout: 60_000,
}, async () => {
  const ts = await startTestServer();
  try {
    const l = await ts.license(POLICY);
    const o1 = offer();
    const co = await call(ts, l.key, 'POST', '/v1/client/checkout', {
      fingerprint: 'fp-rekey-00001',
      instanceId: 'i-1',
      session: { x25519: o1.x25519 },
    });
    const leaseId: string = co.body.lease.id;
    const k1 = derive(o1, co.body.session.x25519, leaseId);
    const [stored] = await ts.rows('SELECT session_key FROM instances WHERE lease_id = ?', leaseId);
    const atRest = String(stored!.session_key);
    if (ts.store === 'postgres') {
      assert.match(atRest, /^v1\./, 'sealed (AES-256-GCM under FLOATD_KEY_ENCRYPTION_KEY)');
      assert.ok(!atRest.includes(k1.toString('base64url')), 'the key is not in the row');
    } else assert.equal(atRest, k1.toString('base64url'));

    const o2 = offer();
    const rk = await call(ts, l.key, 'POST', `/v1/client/leases/${leaseId}/heartbeat`, {
      instanceId: 'i-1',
      session: { x25519: o2.x25519 },
    });
    assert.equal(rk.status, 200, rk.text);
    assert.equal((await ownVerifies(ts, rk)).alg, 'ed25519', "the exchange's answer is Ed25519-signed");
    assert.equal(typeof rk.body.token, 'string');
    const k2 = derive(o2, rk.body.session.x25519, leaseId);
    assert.notDeepEqual(k2, k1);
    const hb = await call(ts, l.key, 'POST', `/v1/client/leases/${leaseId}/heartbeat`, { instanceId: 'i-1' }, false, k2);
    assert.equal((await ownVerifies(ts, hb, k2)).alg, 'hmac-sha256');
    const stale = await call(ts, l.key, 'POST', `/v1/client/leases/${leaseId}/heartbeat`, { instanceId: 'i-1' }, false, k1);
    assert.equal((await ownVerifies(ts, stale)).alg, 'ed25519', 'a request naming the old key gets Ed25519 (and a token)');
    assert.equal(typeof stale.body.token, 'string');
    assert.equal(await libraryVerifies(ts, hb, k1), false, 'the old key signs nothing more');

    // a bad offer: 400, nothing stored (low-order points: 0 and 1, whose shared secret is all zeros)
    const before = await ts.snapshot();
    for (const x25519 of ['A'.repeat(43), `AQ${'A'.repeat(41)}`]) {
      for (const [path, body] of [
        ['/v1/client/checkout', { fingerprint: 'fp-rekey-00002', instanceId: 'i-2', session: { x25519 } }],
        [`/v1/client/leases/${leaseId}/heartbeat`, { instanceId: 'i-1', session: { x25519 } }],
      ] as const) {
        const a = await call(ts, l.key, 'POST', path, body);
        assert.equal(a.status, 400, `${path} ${x25519}: ${a.text}`);
        assert.equal(a.body.error.code, 'VALIDATION_FAILED');
      }
    }
    assert.deepEqual(await ts.snapshot(), before, 'refused offers change nothing');
  } finally {
    await ts.close();
  }
});

test('clients that do not ask for RFC 9421 answers keep Floatd-Signature and a token on every renewal (deployed SDKs)', {
  timeout: 60_000,
}, async () => {
  const ts = await startTestServer();
  try {
    const l = await ts.license(POLICY);
    const co = await call(ts, l.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-legacy-0001', instanceId: 'i-1' }, true);
    assert.equal(co.status, 201);
    assert.equal(co.body.session, undefined, 'no exchange offered, none answered');
    const leaseId: string = co.body.lease.id;
    for (const path of [`/v1/client/leases/${leaseId}/heartbeat`, `/v1/client/leases/${leaseId}/checkin`]) {
      const a = await call(ts, l.key, 'POST', path, { instanceId: 'i-1' }, true);
      assert.equal(a.status, 200, a.text);
      assert.ok(parseSignatureHeader(a.headers.get('floatd-signature')), `${path}: Floatd-Signature`);
      assert.equal(a.headers.get('signature-input'), null);
      if (path.endsWith('heartbeat')) assert.equal(typeof a.body.token, 'string', 'a token on every renewal');
    }
    // a use with a session key, renewed by a client that does not ask: Floatd-Signature, token (a proxy that strips the header downgrades cost, not trust)
    const o = offer();
    const co2 = await call(ts, l.key, 'POST', '/v1/client/checkout', {
      fingerprint: 'fp-legacy-0002',
      instanceId: 'i-2',
      session: { x25519: o.x25519 },
    });
    const hb = await call(ts, l.key, 'POST', `/v1/client/leases/${co2.body.lease.id}/heartbeat`, { instanceId: 'i-2' }, true);
    assert.ok(parseSignatureHeader(hb.headers.get('floatd-signature')));
    assert.equal(typeof hb.body.token, 'string');
  } finally {
    await ts.close();
  }
});
