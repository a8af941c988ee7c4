/** The random pool (`random.ts`): lengths, no byte handed out twice across refills, and evenly spread bytes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBase64url, randomBuffer, randomChars } from './random.js';

test('random pool: draws of every size across many refills never repeat and decode to their length', () => {
  const seen = new Set<string>();
  // 3,000 draws of 1–64 bytes: about 100 KiB, so the 4 KiB pool is refilled about 24 times, at every offset.
  for (let i = 0; i < 3_000; i++) {
    const n = 16 + (i % 49);
    const b64 = randomBase64url(n);
    assert.equal(Buffer.from(b64, 'base64url').length, n);
    const buf = randomBuffer(n);
    assert.equal(buf.length, n);
    seen.add(b64);
    seen.add(buf.toString('base64url'));
  }
  assert.equal(seen.size, 6_000, 'two draws of 16 bytes or more alike would mean bytes handed out twice');
  assert.throws(() => randomBuffer(4097), RangeError);
});

test('random pool: a buffer handed out is its own copy (the pool refilling does not change it)', () => {
  const a = randomBuffer(32);
  const copy = Buffer.from(a);
  for (let i = 0; i < 300; i++) randomBuffer(64);
  assert.deepEqual(a, copy);
});

test('random pool: bytes and characters evenly spread', () => {
  const bytes = new Array<number>(256).fill(0);
  for (let i = 0; i < 2_000; i++) for (const b of randomBuffer(128)) bytes[b] = (bytes[b] as number) + 1;
  // 256,000 bytes: each value about 1,000 times (a few standard deviations either side).
  for (const [v, n] of bytes.entries()) assert.ok(n > 850 && n < 1_150, `byte ${v}: ${n}`);
  // An alphabet of 200: without the redraw of bytes 200–255, its first 56 characters would come twice as often.
  const alphabet = Array.from({ length: 200 }, (_, i) => String.fromCharCode(0x100 + i)).join('');
  const chars = new Map<string, number>();
  for (const c of randomChars(alphabet, 200_000)) chars.set(c, (chars.get(c) ?? 0) + 1);
  assert.equal(chars.size, 200);
  for (const [c, n] of chars) assert.ok(n > 850 && n < 1_150, `${c.charCodeAt(0) - 0x100}: ${n}`);
});
