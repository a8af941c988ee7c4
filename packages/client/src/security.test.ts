/**
 * What the SDK refuses to trust: forged and tampered tokens, a forged JWKS
 * (trust on first use and pinned keys), tokens of another device, edited state
 * files; and clock tampering, set back and forward with the injected clock.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, createHmac, KeyObject, randomBytes, sign } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { acceptedKeyId, digestHeader, signatureBase, signatureHeaders, signatureParams, signingInput, splitTarget } from '@floatd/protocol';
import { FloatingLicenseError } from './index.js';
import { StateDir } from './state.js';
import { autoAdvance, record, type World, closeSharedServer, withWorld } from './testsupport.js';

const POLICY = { seats: 2, leaseTtlSeconds: 60, heartbeatIntervalSeconds: 20, maxOfflineSeconds: 7 * 86400 };

after(() => closeSharedServer());

/** An attacker's Ed25519 key, and tokens it signs. */
async function attacker(kid = 'attacker-key') {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
  return {
    jwks: { keys: [jwk] },
    /** the claims of `real`, changed by `patch`, signed by the attacker under `headerKid` */
    forge: (real: string, patch: Record<string, unknown> = {}, headerKid = kid) =>
      new SignJWT({ ...decodeJwt(real), ...patch }).setProtectedHeader({ alg: 'EdDSA', kid: headerKid, typ: 'JWT' }).sign(privateKey),
    /**
     * A whole impostor answer: `body`, signed the way floatd signs answers (RFC 9421 when the request asked for it,
     * Ed25519 by default or HMAC-SHA256 under a `sessionKey` it guesses; today's `Floatd-Signature` otherwise), but
     * with the attacker's key.
     */
    answer(
      req: { method: string; path: string; headers: Record<string, string> },
      status: number,
      body: unknown,
      opts: { sessionKey?: { keyid: string; key: Buffer } } = {},
    ): { status: number; body: string; headers: Record<string, string | null> } {
      const text = JSON.stringify(body);
      const date = new Date().toISOString();
      const digest = digestHeader(createHash('sha256').update(text).digest('base64'));
      if (req.headers['accept-signature'] !== undefined) {
        const nonce = req.headers['floatd-nonce'];
        const created = Math.floor(Date.parse(date) / 1000);
        const s = opts.sessionKey;
        const params = signatureParams({ created, keyid: s ? s.keyid : kid, alg: s ? 'hmac-sha256' : 'ed25519', nonce });
        const base = signatureBase({ status, method: req.method, ...splitTarget(req.path), digest, date }, params);
        const signature = s
          ? createHmac('sha256', s.key).update(base).digest('base64')
          : sign(null, Buffer.from(base), KeyObject.from(privateKey as Parameters<typeof KeyObject.from>[0])).toString('base64');
        const h = signatureHeaders(params, signature);
        return {
          status,
          body: text,
          headers: {
            'floatd-date': date,
            'content-digest': digest,
            'signature-input': h.input,
            signature: h.signature,
            'floatd-signature': null,
          },
        };
      }
      const input = signingInput(status, req.method, req.path, req.headers['floatd-nonce'] ?? '', date, digest);
      const sig = sign(null, Buffer.from(input), KeyObject.from(privateKey as Parameters<typeof KeyObject.from>[0])).toString('base64url');
      return {
        status,
        body: text,
        headers: { 'floatd-date': date, 'content-digest': digest, 'floatd-signature': `kid=${kid};sig=${sig}` },
      };
    },
  };
}

const rejectsWith = (code: string) => (e: unknown) => {
  assert.ok(e instanceof FloatingLicenseError, String(e));
  assert.equal(e.code, code, e.message);
  return true;
};

async function realJwks(w: World): Promise<{ keys: { kid: string }[] }> {
  return (await (await fetch(w.ts.url + '/.well-known/jwks.json')).json()) as { keys: { kid: string }[] };
}

test("a token signed by another key under the server's kid is rejected with INVALID_SIGNATURE", { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license(POLICY);
    const evil = await attacker();
    const realKid = (await realJwks(w)).keys[0]!.kid;
    let forged = 0;
    // the proxy's rewrite is synchronous: sign first, then swap
    const tokens: string[] = [];
    w.proxy.rewrite = (req, res) => {
      if (!req.path.endsWith('/checkout') || res.status >= 300) return undefined;
      forged++;
      return { status: res.status, body: { ...res.body, token: tokens.shift() ?? 'x.y.z' } };
    };
    const probe = await w.ts.client(l.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-test-device-0001', instanceId: 'probe' });
    tokens.push(await evil.forge(probe.body.token, {}, realKid));
    const lic = w.client({ licenseKey: l.key, instanceId: 'probe' });
    await assert.rejects(lic.checkout(), rejectsWith('INVALID_SIGNATURE'));
    assert.equal(forged, 1, 'a forged answer is not retried');
    assert.equal(lic.status().state, 'idle');
  }),
);

test('a genuine token whose payload was altered (a later expiry) is rejected with INVALID_SIGNATURE', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license(POLICY);
    w.proxy.rewrite = (req, res) => {
      if (!req.path.endsWith('/checkout') || res.status >= 300) return undefined;
      const [h, p, s] = (res.body.token as string).split('.');
      const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
      claims.exp += 86400;
      return { status: res.status, body: { ...res.body, token: `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}` } };
    };
    const lic = w.client({ licenseKey: l.key });
    await assert.rejects(lic.checkout(), rejectsWith('INVALID_SIGNATURE'));
    // and an unsigned token (alg "none")
    w.proxy.rewrite = (req, res) => {
      if (!req.path.endsWith('/checkout') || res.status >= 300) return undefined;
      const p = (res.body.token as string).split('.')[1];
      return { status: res.status, body: { ...res.body, token: `${Buffer.from('{"alg":"none","kid":"x"}').toString('base64url')}.${p}.` } };
    };
    await assert.rejects(lic.checkout(), rejectsWith('INVALID_SIGNATURE'));
  }),
);

test(
  'a genuine token issued to another device, swapped into the answer, is refused: the answer no longer matches its signature',
  { timeout: 30_000 },
  () =>
    withWorld(async (w) => {
      const l = await w.license(POLICY);
      const other = await w.ts.client(l.key, 'POST', '/v1/client/checkout', { fingerprint: 'another-device-01', instanceId: 'i-other' });
      w.proxy.rewrite = (req, res) =>
        req.path.endsWith('/checkout') && res.status < 300
          ? { status: res.status, body: { ...res.body, token: other.body.token } }
          : undefined;
      const lic = w.client({ licenseKey: l.key });
      // (the token itself would fail with TOKEN_MISMATCH; the signed answer is refused before the token is read)
      await assert.rejects(lic.checkout(), rejectsWith('INVALID_SIGNATURE'));
      assert.equal(lic.status().state, 'idle');
    }),
);

test(
  'forged JWKS after trust on first use: renewals from the impostor are refused, the pinned keys stay, the app ends with SERVER_UNREACHABLE',
  { timeout: 30_000 },
  () =>
    withWorld(async (w) => {
      const l = await w.license(POLICY);
      const lic = w.client({ licenseKey: l.key });
      const log = record(lic);
      assert.ok((await lic.checkout()).ok);
      assert.equal(w.proxy.count('/.well-known/jwks.json'), 1, 'fetched once and pinned');
      const good = lic.status().token;

      // From now on an impostor answers: its own JWKS, its own signatures.
      const evil = await attacker();
      let forgedNow = await evil.forge(good!);
      // (a full impostor: it signs its answers too, with its own key)
      w.proxy.rewrite = (req, res) => {
        if (req.path.endsWith('/.well-known/jwks.json')) return { status: 200, body: evil.jwks };
        if (req.path.endsWith('/heartbeat') && res.status < 300) return evil.answer(req, res.status, { ...res.body, token: forgedNow });
        return undefined;
      };
      await w.clock.advance(20_000);
      assert.equal(log.renewed, 0);
      assert.ok(log.events.includes('retry:heartbeat:INVALID_SIGNATURE'), log.events.join());
      assert.equal(lic.status().token, good, 'the trusted token is kept');
      assert.ok(w.proxy.count('/.well-known/jwks.json') >= 2, 'the unknown key made it look again');
      // the impostor never becomes trusted: the token runs out and the app is told
      forgedNow = await evil.forge(good!, { exp: Math.floor(w.t0 / 1000) + 86400 });
      await w.clock.advance(60_000);
      assert.deepEqual(
        log.violations.map((v) => [v.code, v.cause]),
        [['SERVER_UNREACHABLE', 'INVALID_SIGNATURE']],
      );

      // a new process with the same state dir still trusts only the pinned keys
      const again = w.client({ licenseKey: l.key });
      w.proxy.rewrite = (req, res) => {
        if (req.path.endsWith('/.well-known/jwks.json')) return { status: 200, body: evil.jwks };
        if (req.path.endsWith('/checkout') && res.status < 300) return evil.answer(req, res.status, { ...res.body, token: forgedNow });
        return undefined;
      };
      forgedNow = await evil.forge(good!, { ins: again.instanceId });
      await assert.rejects(again.checkout(), rejectsWith('INVALID_SIGNATURE'));
    }),
);

test(
  'an impostor without the session key cannot renew or end the lease: HMAC answers under a guessed key, or naming another lease, are refused',
  {
    timeout: 30_000,
  },
  () =>
    withWorld(async (w) => {
      const l = await w.license(POLICY);
      const lic = w.client({ licenseKey: l.key });
      const log = record(lic);
      assert.ok((await lic.checkout()).ok);
      const good = lic.status();
      const evil = await attacker();
      // 1. a renewal that extends the lease by a day, under a key the impostor made up, named as the one the client
      // holds (its keyid is in the request's Accept-Signature)
      const guessed = randomBytes(32);
      let keyid = '';
      w.proxy.rewrite = (req, res) => {
        if (!req.path.endsWith('/heartbeat') || res.status >= 300) return undefined;
        keyid = acceptedKeyId(req.headers['accept-signature']) ?? '';
        const body = { ...res.body, lease: { ...res.body.lease, expiresAt: new Date(w.t0 + 86_400_000).toISOString() } };
        return evil.answer(req, res.status, body, { sessionKey: { keyid, key: guessed } });
      };
      await w.clock.advance(20_000);
      assert.equal(log.renewed, 0);
      assert.match(keyid, /^ses_/, 'the client named its key');
      assert.ok(log.events.includes('retry:heartbeat:INVALID_SIGNATURE'), log.events.join());
      assert.equal(lic.status().leaseExpiresAt?.getTime(), good.leaseExpiresAt?.getTime(), 'the lease end is the genuine one');
      // 2. an HMAC answer under a key of the impostor's own, named as such
      w.proxy.rewrite = (req, res) =>
        req.path.endsWith('/heartbeat') && res.status < 300
          ? evil.answer(req, res.status, res.body, { sessionKey: { keyid: 'ses_AAAAAAAAAAAAAAAAAAAAAA', key: randomBytes(32) } })
          : undefined;
      const before = log.events.length;
      await w.clock.advance(20_000);
      assert.ok(log.events.slice(before).includes('retry:heartbeat:INVALID_SIGNATURE'), log.events.join());
      // 3. a forged "released" check-in answer under a guessed key: not believed; the genuine server still holds the seat
      w.proxy.rewrite = (req, res) =>
        req.path.endsWith('/checkin')
          ? evil.answer(req, 200, { released: true, instances: 0 }, { sessionKey: { keyid, key: guessed } })
          : undefined;
      assert.deepEqual(await lic.checkin(), { released: false, instances: null, reachedServer: false });
      w.proxy.rewrite = undefined;
      // the real server went on renewing (the answers were swapped on the way back); the SDK renews again once the network heals
      const again = w.client({ licenseKey: l.key });
      assert.ok((await again.checkout()).ok);
      assert.equal(await w.seatsUsed(l.id), 1, 'one device, one seat: the forged check-in released nothing on the client side either');
    }),
);

test('with serverPublicKeys the SDK never fetches a JWKS and refuses a forged one from the first contact', { timeout: 30_000 }, () =>
  withWorld(async (w) => {
    const l = await w.license(POLICY);
    const pinned = await realJwks(w);
    const evil = await attacker();
    let forged = '';
    w.proxy.rewrite = (req, res) => {
      if (req.path.endsWith('/.well-known/jwks.json')) return { status: 200, body: evil.jwks };
      if (req.path.endsWith('/checkout') && res.status < 300 && forged) return { status: res.status, body: { ...res.body, token: forged } };
      return undefined;
    };
    const lic = w.client({ licenseKey: l.key, serverPublicKeys: pinned });
    // genuine answers verify with the given keys, without any JWKS request
    assert.ok((await lic.checkout()).ok);
    await lic.checkin();
    forged = await evil.forge(
      lic.status().token ??
        (await w.ts.client(l.key, 'POST', '/v1/client/checkout', { fingerprint: 'fp-test-device-0001', instanceId: lic.instanceId })).body
          .token,
    );
    await assert.rejects(lic.checkout(), rejectsWith('INVALID_SIGNATURE'));
    assert.equal(w.proxy.count('/.well-known/jwks.json'), 0);
    // a key set without any usable key is refused up front
    assert.throws(
      () => w.client({ licenseKey: l.key, serverPublicKeys: { keys: [{ kty: 'RSA', n: 'x', e: 'AQAB', kid: 'k' }] } }),
      rejectsWith('INVALID_SIGNATURE'),
    );
  }),
);

test(
  'a stored offline token that was forged or edited is rejected with INVALID_SIGNATURE when the app starts offline',
  { timeout: 30_000 },
  () =>
    withWorld(async (w) => {
      const l = await w.license(POLICY);
      const app = w.client({ licenseKey: l.key });
      await app.checkoutOffline({ durationSeconds: 3600 });
      await app.close({ checkin: false });
      const ns = (await readdir(w.stateDir)).find((n) => !n.startsWith('device-id'))!;
      const file = join(w.stateDir, ns, 'offline.json');
      const original = await readFile(file, 'utf8');

      // 1. re-signed by an attacker who also re-seals the file correctly (the seal is not a secret): the signature catches it
      const evil = await attacker();
      const state = new StateDir(w.stateDir, w.proxy.url, l.key, 'fp-test-device-0001');
      const body = JSON.parse(JSON.parse(original).body) as { token: string; receivedAt: number };
      await state.writeSealed('offline.json', {
        ...body,
        token: await evil.forge(body.token, { oed: Math.floor(w.t0 / 1000) + 365 * 86400 }),
      });
      assert.equal(state.dir, join(w.stateDir, ns));
      w.proxy.down();
      const a = w.client({ licenseKey: l.key });
      autoAdvance(a, w.clock); // the server is down too: retried, then the stored token's own error surfaces
      await assert.rejects(a.checkout(), rejectsWith('INVALID_SIGNATURE'));

      // 2. edited by hand (the seal breaks)
      const edited = original.replace(/"receivedAt\\":\d+/, '"receivedAt\\":9999999999999');
      assert.notEqual(edited, original);
      await writeFile(file, edited);
      const b = w.client({ licenseKey: l.key });
      autoAdvance(b, w.clock);
      await assert.rejects(b.checkout(), rejectsWith('INVALID_SIGNATURE'));

      // 3. the genuine file still works
      await writeFile(file, original);
      const c = w.client({ licenseKey: l.key });
      const r = await c.checkout();
      assert.ok(r.ok);
      assert.equal(r.source, 'offline-token');
    }),
);

test(
  'clock set back beyond the tolerance: CLOCK_TAMPERED; within it: nothing; set right again: cleared; and setting it back buys no time',
  { timeout: 30_000 },
  () =>
    withWorld(async (w) => {
      const l = await w.license(POLICY);
      const lic = w.client({ licenseKey: l.key, clockToleranceSeconds: 600 });
      const log = record(lic);
      assert.ok((await lic.checkout()).ok);
      await w.clock.advance(60_000);

      w.clock.shiftWall(-5 * 60_000); // within the tolerance (NTP corrections, a sloppy clock)
      await w.clock.advance(60_000);
      assert.equal(log.violations.length, 0);
      w.clock.shiftWall(5 * 60_000);

      w.clock.shiftWall(-2 * 3600_000); // two hours back
      await w.clock.advance(60_000);
      assert.deepEqual(
        log.violations.map((v) => v.code),
        ['CLOCK_TAMPERED'],
      );
      assert.deepEqual(lic.status().violations, ['CLOCK_TAMPERED']);
      await w.clock.advance(120_000);
      assert.equal(log.violations.length, 1, 'reported once');

      w.clock.shiftWall(2 * 3600_000); // set right again
      await w.clock.advance(60_000);
      assert.deepEqual(lic.status().violations, []);
      w.clock.shiftWall(-3600_000); // and back once more
      await w.clock.advance(60_000);
      assert.deepEqual(
        log.violations.map((v) => v.code),
        ['CLOCK_TAMPERED', 'CLOCK_TAMPERED'],
      );
      w.clock.shiftWall(3600_000);
      await w.clock.advance(60_000);

      // With the server down and the clock set back a day, the token still runs out on time.
      const expiresAt = lic.status().leaseExpiresAt!.getTime();
      const left = expiresAt - w.clock.now();
      w.proxy.down();
      w.clock.shiftWall(-86400_000);
      await w.clock.advance(left + 1000);
      assert.equal(lic.status().valid, false);
      assert.ok(log.violations.some((v) => v.code === 'SERVER_UNREACHABLE'));
    }),
);

test(
  'clock tampering across restarts: the trusted time is kept in the state dir; set back before an offline start is refused; an edited record is detected',
  { timeout: 30_000 },
  () =>
    withWorld(async (w) => {
      const l = await w.license(POLICY);
      const app = w.client({ licenseKey: l.key });
      await app.checkoutOffline({ durationSeconds: 86400 });
      await w.clock.advance(3 * 3600_000);
      await app.close({ checkin: false });

      // The user sets the clock back a day and starts the app offline, hoping to stretch the borrowed period.
      w.proxy.down();
      w.clock.shiftWall(-86400_000);
      const b = w.client({ licenseKey: l.key });
      const log = record(b);
      await assert.rejects(b.checkout(), rejectsWith('CLOCK_TAMPERED'));
      assert.deepEqual(
        log.violations.map((v) => v.code),
        ['CLOCK_TAMPERED'],
      );
      w.clock.shiftWall(86400_000);

      // Editing the trusted-time record is detected too.
      const ns = (await readdir(w.stateDir)).find((n) => !n.startsWith('device-id'))!;
      const clockFile = join(w.stateDir, ns, 'clock.json');
      const rec = JSON.parse(await readFile(clockFile, 'utf8'));
      rec.body = JSON.stringify({ t: w.t0 - 86400_000 * 30 });
      await writeFile(clockFile, JSON.stringify(rec));
      const c = w.client({ licenseKey: l.key });
      const logC = record(c);
      const r = await c.checkout(); // the clock itself is right: the offline seat is usable
      assert.ok(r.ok);
      assert.deepEqual(
        logC.violations.map((v) => v.code),
        ['CLOCK_TAMPERED'],
      );
      assert.match(logC.violations[0]!.message, /edited/);
    }),
);
