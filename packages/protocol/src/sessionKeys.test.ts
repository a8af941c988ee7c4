/**
 * The session-key exchange's key pairs (`sessionKeys.ts`) on the Node running the tests: the import chosen for this
 * Node (a JWK on Node 20 and 22, PKCS#8 on Node 24, which refuses the JWK) gives RFC 7748's keys and secret.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sharedSecret, sessionKeyOf, x25519Pair, x25519PairOf } from './sessionKeys.js';

// RFC 7748 §6.1: Alice's and Bob's private keys, their public keys, and the secret they share.
const ALICE = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
const ALICE_PUBLIC = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
const BOB = '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb';
const BOB_PUBLIC = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
const SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';

const hex = (b64url: string) => Buffer.from(b64url, 'base64url').toString('hex');

test('x25519PairOf: the public half of a known private key is the RFC 7748 one, and both sides share its secret', () => {
  const alice = x25519PairOf(Buffer.from(ALICE, 'hex'));
  const bob = x25519PairOf(Buffer.from(BOB, 'hex'));
  assert.equal(hex(alice.x25519), ALICE_PUBLIC);
  assert.equal(hex(bob.x25519), BOB_PUBLIC);
  const a = sharedSecret(alice.privateKey, bob.x25519);
  const b = sharedSecret(bob.privateKey, alice.x25519);
  assert.ok(a && b);
  assert.equal(a.toString('hex'), SHARED);
  assert.equal(b.toString('hex'), SHARED);
});

test('x25519Pair: fresh pairs, each with its own public half, agree pairwise on one session key', () => {
  const pairs = Array.from({ length: 20 }, () => x25519Pair());
  assert.equal(new Set(pairs.map((p) => p.x25519)).size, 20);
  for (const p of pairs) assert.match(p.x25519, /^[A-Za-z0-9_-]{43}$/);
  for (let i = 1; i < pairs.length; i++) {
    const [a, b] = [pairs[i - 1]!, pairs[i]!];
    const ab = sharedSecret(a.privateKey, b.x25519)!;
    const ba = sharedSecret(b.privateKey, a.x25519)!;
    assert.deepEqual(sessionKeyOf(ab, 'lse_x'), sessionKeyOf(ba, 'lse_x'));
  }
});

test('sharedSecret: a low-order point or a malformed key gives no secret', () => {
  const pair = x25519Pair();
  assert.equal(sharedSecret(pair.privateKey, Buffer.alloc(32).toString('base64url')), undefined, 'the zero point');
  assert.equal(sharedSecret(pair.privateKey, 'not-a-key'), undefined);
});
