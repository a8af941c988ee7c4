// The Python SDK's tests (clients/python/tests) and the conformance suite's Python runner (conformance/python),
// with Debian's python3-pytest and python3-cryptography, against real floatd server processes: SQLite, or
// PostgreSQL with FLOATD_TEST_STORE=postgres (scripts/test.mjs runs this file on both stores).
// Without python3, pytest or cryptography the tests are skipped with a loud message; in CI (CI=true) that fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;
// Debian's python3 (where python3-pytest and python3-cryptography install) before whatever python3 PATH finds first.
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const probe = spawnSync(PYTHON, ['-c', 'import sys, pytest, cryptography; assert sys.version_info >= (3, 11)'], { encoding: 'utf8' });
const missing = probe.error
  ? 'python3 is not installed'
  : probe.status !== 0
    ? `python3 >= 3.11 with pytest and cryptography is missing: ${probe.stderr.trim().split('\n').pop()}`
    : undefined;
if (missing && process.env.CI === 'true')
  throw new Error(`${missing} (apt-get install python3-pytest python3-cryptography): required in CI`);
if (missing) console.warn(`\n!!! Python SDK tests SKIPPED: ${missing} (apt-get install python3-pytest python3-cryptography) !!!\n`);

test(`Python SDK tests and conformance suite (pytest, ${process.env.FLOATD_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite'})`, {
  skip: missing,
  timeout: 900_000,
}, () => {
  const r = spawnSync(
    PYTHON,
    ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', join(ROOT, 'clients/python/tests'), join(ROOT, 'conformance/python')],
    {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      timeout: 890_000,
    },
  );
  process.stdout.write(r.stdout.split('\n').slice(-40).join('\n'));
  assert.equal(r.status, 0, `pytest failed:\n${r.stdout.slice(-8000)}\n${r.stderr.slice(-2000)}`);
  assert.match(r.stdout, /\d+ passed/);
});
