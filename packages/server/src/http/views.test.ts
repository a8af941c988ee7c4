import assert from 'node:assert/strict';
import { test } from 'node:test';
import { iso } from './views.js';

test('iso writes every time exactly as Date#toISOString does (minute boundaries, old and far dates, the same minute again)', () => {
  const fixed = [
    0,
    1,
    999,
    1000,
    59_999,
    60_000,
    60_001,
    -1,
    -999,
    -1000,
    -59_999,
    -60_000,
    -60_001,
    Date.UTC(2026, 11, 6, 5, 31, 7, 42),
    Date.UTC(1999, 11, 31, 23, 59, 59, 999),
    Date.UTC(2000, 0, 1),
    Date.UTC(2024, 1, 29, 12, 0, 0, 5),
    Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    Date.UTC(10000, 0, 1),
    Date.UTC(-1, 0, 1, 0, 0, 1, 1),
    8.64e15,
    -8.64e15,
    8.64e15 - 1,
  ];
  const random: number[] = [];
  const base = Date.now();
  for (let i = 0; i < 20_000; i++) random.push(base + Math.floor((Math.random() - 0.5) * 2 * 86_400_000 * (i % 3 === 0 ? 36_500 : 1)));
  // each twice: the first fills a minute's prefix, the second uses it
  for (const ms of [...fixed, ...random, ...fixed, ...random]) assert.equal(iso(ms), new Date(ms).toISOString(), String(ms));
  // more minutes than the cache keeps, then the first ones again
  for (let i = 0; i < 1000; i++) assert.equal(iso(base + i * 60_000 + 7), new Date(base + i * 60_000 + 7).toISOString());
  for (let i = 0; i < 10; i++) assert.equal(iso(base + i * 60_000 + 59_999), new Date(base + i * 60_000 + 59_999).toISOString());
});

test('iso of a value toISOString refuses throws the same error; a fraction of a ms is written as toISOString writes it', () => {
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 8.64e15 + 1, -8.64e15 - 1])
    assert.throws(
      () => iso(bad),
      (err: unknown) => err instanceof RangeError,
    );
  for (const v of [1.5, -1.5, 1_700_000_000_000.9]) assert.equal(iso(v), new Date(v).toISOString());
});
