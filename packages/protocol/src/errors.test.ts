import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERRORS } from './errors.js';

test('docs/errors.md lists every error code with its HTTP status', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  for (const [code, { status }] of Object.entries(ERRORS)) {
    const row = new RegExp(`^\\|\\s*\`${code}\`\\s*\\|\\s*${status}\\s*\\|`, 'm');
    assert.match(doc, row, `${code} (${status}) is missing from docs/errors.md or has another status`);
  }
});

test('codes are SCREAMING_SNAKE and statuses are 4xx or 5xx', () => {
  for (const [code, { status, meaning }] of Object.entries(ERRORS)) {
    assert.match(code, /^[A-Z][A-Z0-9_]+$/);
    assert.ok(status >= 400 && status < 600, code);
    assert.ok(meaning.length > 10, code);
  }
});
