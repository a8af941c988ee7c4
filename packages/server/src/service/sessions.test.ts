/**
 * The cache of open session keys (service/sessions.ts) holds the live uses' keys: a checkout puts its use's key in,
 * a check-in takes it out. Before, a check-in left it there until 100,000 newer keys pushed it out, so a node that
 * churned checkouts held 100,000 dead keys (heap after GC: 54.7 MB after 100,000 checkout-checkin pairs, flat from
 * then on) and pushed its live uses' keys out with them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { sessionKeyOf, sharedSecret, x25519Pair } from '@floatd/protocol/sessionKeys';
import { sqliteWorld } from '../testing/sqliteWorld.js';
import { SERVER_HALF_MS, SERVER_HALF_USES, SessionKeys } from './sessions.js';

test('a checkout puts its use key in the cache, its check-in takes it out; other uses keep theirs', async () => {
  const sessions = new SessionKeys();
  const { dir, store, clock, licensing, key } = await sqliteWorld({ prefix: 'floatd-sessions-', seats: 5, leaseTtlSeconds: 600, sessions });
  try {
    const offer = () => ({ x25519: x25519Pair().x25519 });

    const a = await licensing.checkout(key, { fingerprint: 'device-a', instanceId: 'app', session: offer() } as never);
    const b = await licensing.checkout(key, { fingerprint: 'device-b', instanceId: 'app', session: offer() } as never);
    assert.ok(a.ok && b.ok);
    assert.equal(sessions.size, 2);
    // The keys as stored with the uses (opening them answers from the cache: nothing is added).
    const keyOf = async (leaseId: string) => sessions.open((await store.leaseOfKey(key, leaseId, 'app'))?.lease?.instances[0]?.sessionKey);
    const keyA = await keyOf(a.value.granted.lease.id);
    const keyB = await keyOf(b.value.granted.lease.id);
    assert.ok(keyA && keyB);
    assert.equal(sessions.size, 2);

    // A's heartbeat names its key: answered with it, from the cache.
    clock.advance(60_000);
    const beat = await licensing.heartbeat(key, a.value.granted.lease.id, 'app', { token: false, keyid: keyA.keyid });
    assert.ok(beat.ok);
    assert.equal(beat.value.answerKey?.keyid, keyA.keyid);

    // A checks in: its answer is still signed with its key, and the key leaves the cache.
    const done = await licensing.checkin(key, a.value.granted.lease.id, 'app', keyA.keyid);
    assert.ok(done.ok);
    assert.equal(done.value.answerKey?.keyid, keyA.keyid);
    assert.equal(sessions.size, 1, "only B's key is left");
    // B is untouched: its heartbeat is still answered with its key.
    const beatB = await licensing.heartbeat(key, b.value.granted.lease.id, 'app', { token: false, keyid: keyB.keyid });
    assert.ok(beatB.ok);
    assert.equal(beatB.value.answerKey?.keyid, keyB.keyid);

    // A refused check-in (A's lease is gone) forgets nothing.
    const again = await licensing.checkin(key, a.value.granted.lease.id, 'app', keyA.keyid);
    assert.equal(again.ok, false);
    assert.equal(sessions.size, 1);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("the reclaimer takes a freed lease's use keys out of the cache, and leaves a live use's", async () => {
  const sessions = new SessionKeys();
  const { dir, store, clock, licensing, reclaim, key } = await sqliteWorld({
    prefix: 'floatd-sessions-',
    seats: 5,
    leaseTtlSeconds: 60,
    heartbeatIntervalSeconds: 20,
    sessions,
  });
  try {
    const offer = () => ({ x25519: x25519Pair().x25519 });
    const grants = [];
    for (const d of ['device-a', 'device-b', 'device-c'])
      grants.push(await licensing.checkout(key, { fingerprint: d, instanceId: 'app', session: offer() } as never));
    const [a, b, c] = grants.map((g) => (g.ok ? g.value.granted.lease.id : assert.fail('checkout failed')));
    assert.equal(sessions.size, 3);
    const keyOfC = sessions.open((await store.leaseOfKey(key, c!, 'app'))?.lease?.instances[0]?.sessionKey);
    assert.ok(keyOfC);
    // C heartbeats; A and B go silent past their TTL.
    clock.advanceSeconds(40);
    assert.ok((await licensing.heartbeat(key, c!, 'app', { token: false, keyid: keyOfC.keyid })).ok);
    clock.advanceSeconds(30);
    const swept = await reclaim.sweep('reclaimer');
    assert.deepEqual(new Set(swept.freed.map((f) => f.leaseId)), new Set([a, b]));
    assert.equal(sessions.size, 1, "only C's key is left");
    const beat = await licensing.heartbeat(key, c!, 'app', { token: false, keyid: keyOfC.keyid });
    assert.ok(beat.ok);
    assert.equal(beat.value.answerKey?.keyid, keyOfC.keyid);
    assert.equal(sessions.size, 1);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("the server's half serves SERVER_HALF_USES agreements or SERVER_HALF_MS, each use's key its own; then a new half", () => {
  let now = 1_000;
  const sessions = new SessionKeys(undefined, () => now);
  /** An agreement as the client sees it: the key it derives from the server's half, and the key the server keeps. */
  const agreeOnce = (leaseId: string) => {
    const client = x25519Pair();
    const agreed = sessions.agree(client.x25519);
    assert.ok(agreed.ok);
    const theirs = sessionKeyOf(sharedSecret(client.privateKey, agreed.value.x25519)!, leaseId);
    const ours = agreed.value.derive(leaseId).key;
    assert.deepEqual(theirs, ours, 'both sides derive the same key');
    return { half: agreed.value.x25519, key: ours.toString('hex') };
  };
  const first = agreeOnce('lease-0');
  const seen = new Set([first.key]);
  for (let i = 1; i < SERVER_HALF_USES; i++) {
    const a = agreeOnce(`lease-${i}`);
    assert.equal(a.half, first.half);
    seen.add(a.key);
  }
  assert.equal(seen.size, SERVER_HALF_USES, 'one half, every use a key of its own');
  // The next agreement, on the first one's lease id: a new half, and another key (the client's half is new too).
  const next = agreeOnce('lease-0');
  assert.notEqual(next.half, first.half, 'a new half after SERVER_HALF_USES agreements');
  assert.notEqual(next.key, first.key);

  // Time: the half is replaced once SERVER_HALF_MS have passed since it was made, whatever its uses.
  now += SERVER_HALF_MS - 1;
  assert.equal(agreeOnce('lease-x').half, next.half);
  now += 1;
  assert.notEqual(agreeOnce('lease-y').half, next.half);
  // A refused offer (a low-order point) is refused with any half.
  assert.equal(sessions.agree('A'.repeat(43)).ok, false);
});
