/** Random identifiers (`newId`): their form, no repeats, and every base62 character about equally likely (the redraw above 247). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newId } from './ids.js';

test('newId: prefix, underscore and 20 base62 characters; 20,000 draws, no repeat, characters evenly spread', () => {
  const seen = new Set<string>();
  const counts = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    const id = newId(i % 2 ? 'lse' : 'dev');
    assert.match(id, /^(lse|dev)_[0-9A-Za-z]{20}$/);
    seen.add(id);
    for (const c of id.slice(4)) counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  assert.equal(seen.size, 20_000);
  assert.equal(counts.size, 62, 'every character appears');
  // 400,000 characters: each about 6,452 times; a bias of the modulo (no redraw above 247) would put the first 8 at 1.25×.
  for (const [c, n] of counts) assert.ok(n > 6_000 && n < 6_900, `${c}: ${n}`);
});
