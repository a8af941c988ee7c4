/**
 * Which console a server serves: in a clone, packages/console/dist, even while `npm pack` has put a copy beside the
 * server package (prepack; postpack removes it). A server started in that moment used to pick the copy and then
 * answer 404 once it was gone (seen in CI: the install test packs while the console tests run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONSOLE_DIR, consoleDir } from './console.js';

test("the clone's built console wins over a packed copy beside the package; the copy serves where there is no clone", () => {
  const root = mkdtempSync(join(tmpdir(), 'floatd-console-dir-'));
  try {
    const clone = join(root, 'console', 'dist') + '/';
    const packed = join(root, 'server', 'console') + '/';
    mkdirSync(packed, { recursive: true });
    writeFileSync(`${packed}index.html`, 'packed');
    assert.equal(consoleDir(clone, packed), packed, 'an installed package: its own copy');
    mkdirSync(clone, { recursive: true });
    writeFileSync(`${clone}index.html`, 'clone');
    assert.equal(consoleDir(clone, packed), clone, 'a clone mid-`npm pack`: its build, not the copy about to go');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  // This checkout is a clone.
  assert.equal(CONSOLE_DIR, fileURLToPath(new URL('../../../../console/dist/', import.meta.url)));
});
