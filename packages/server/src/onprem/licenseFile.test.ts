/**
 * License files: issuing and verifying, in process and through the vendor's
 * commands (`floatd entitlements keygen | issue | verify`) as real child processes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPairSync } from 'node:crypto';
import { testVendor } from '../testing/onprem.js';
import { readLicenseFile } from './licenseFile.js';
import { readPrivateKeyFile, readVendorPublicKeys } from '../keys/files.js';
import { canonical } from '../keys/documents.js';

const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));
const NOW = Date.parse('2026-03-02T09:00:00Z');
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function floatd(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a license file round trip: issued, readable, verified; any edit, another key or another format is refused', async () => {
  const v = await testVendor();
  dirs.push(v.dir);
  const keys = await readVendorPublicKeys(v.publicKeyFile);
  const spec = v.spec([{ seats: 20, model: 'subscription', expiresAt: '2027-03-01T00:00:00.000Z', maxOfflineSeconds: 7 * 86400 }], {
    validDays: 400,
  });
  const file = v.issue(spec, { serial: 7, now: NOW, server: null });
  const text = JSON.stringify(file, null, 2);

  // Readable by a person: the payload is plain JSON, not base64.
  assert.equal(file.format, 'floatd-license-file/1');
  assert.match(text, /"seats": 20/);
  assert.match(text, /"customer": \{\s+"name": "Customer Inc\."/);
  const ok = readLicenseFile(text, keys, { fingerprint: 'any-server-fp', now: NOW });
  assert.ok(ok.ok, JSON.stringify(ok));
  assert.equal(ok.value.payload.serial, 7);
  assert.equal(ok.value.payload.licenses[0]!.seats, 20);
  assert.equal(ok.value.payload.licenses[0]!.maxOfflineSeconds, 7 * 86400);
  assert.equal(ok.value.payload.notAfter, new Date(NOW + 400 * 86_400_000).toISOString());

  // The signature covers the canonical payload: key order and whitespace do not matter.
  const reordered = { signature: file.signature, payload: JSON.parse(canonical(file.payload)), format: file.format };
  assert.ok(readLicenseFile(JSON.stringify(reordered), keys, { fingerprint: undefined, now: NOW }).ok);

  const refused = (t: string, why: RegExp, opts: { fingerprint?: string; now?: number; keys?: typeof keys } = {}) => {
    const r = readLicenseFile(t, opts.keys ?? keys, { fingerprint: opts.fingerprint, now: opts.now ?? NOW });
    assert.equal(r.ok, false, `refused: ${why}`);
    if (!r.ok) {
      assert.equal(r.error.code, 'ENTITLEMENT_INVALID');
      assert.match(r.error.message, why);
    }
  };
  refused(text.replace('"seats": 20', '"seats": 200'), /signature does not match/);
  refused(text.replace('"serial": 7', '"serial": 8'), /signature does not match/);
  refused(text.replace('Customer Inc.', 'Other Inc.'), /signature does not match/);
  refused(JSON.stringify({ ...file, format: 'floatd-usage-report/1' }), /expected format floatd-license-file\/1/);
  refused(JSON.stringify({ ...file, signature: { ...file.signature, value: 'AAAA' } }), /signature does not match/);
  refused('{not json', /not JSON/);
  refused('[]', /not a signed floatd document/);
  const stranger = generateKeyPairSync('ed25519').publicKey;
  refused(text, /signature does not match/, { keys: [stranger] });
  // Validity window, at the server's (trusted) time.
  refused(text, /expired at/, { now: NOW + 401 * 86_400_000 });
  refused(text, /valid only from/, { now: NOW - 86_400_000 - 60_000 });
  assert.ok(
    readLicenseFile(text, keys, { fingerprint: undefined, now: NOW - 3_600_000 }).ok,
    "a customer clock an hour behind the vendor's loads a fresh file",
  );
});

test('a file bound to one server verifies there and nowhere else', async () => {
  const v = await testVendor();
  dirs.push(v.dir);
  const keys = await readVendorPublicKeys(v.publicKeyFile);
  const server = { fingerprint: 'fsv1-this-server-fingerprint-0001', publicKey: 'A'.repeat(43) };
  const text = JSON.stringify(v.issue(v.spec([{ seats: 3 }]), { serial: 1, now: NOW, server }));
  assert.ok(readLicenseFile(text, keys, { fingerprint: server.fingerprint, now: NOW }).ok);
  const other = readLicenseFile(text, keys, { fingerprint: 'fsv1-another-server-fingerprint-02', now: NOW });
  assert.ok(!other.ok && /bound to server fsv1-this-server/.test(other.error.message));
});

test('vendor commands: keygen writes a 0600 private key, issue signs from a spec (and completes it), verify checks; the private key is never printed', async () => {
  const v = await testVendor();
  dirs.push(v.dir);
  const cwd = v.dir;
  const gen = floatd(['entitlements', 'keygen', '--out', join(cwd, 'acme')], cwd);
  assert.equal(gen.code, 0, gen.stderr);
  assert.equal((await stat(join(cwd, 'acme.key'))).mode & 0o777, 0o600);
  const privatePem = await readFile(join(cwd, 'acme.key'), 'utf8');
  const secretLine = privatePem.split('\n')[1]!;
  assert.ok(!gen.stdout.includes(secretLine) && !gen.stderr.includes(secretLine), 'the private key is not printed');
  assert.equal(floatd(['entitlements', 'keygen', '--out', join(cwd, 'acme')], cwd).code, 1, 'never overwrites a key');

  const specFile = join(cwd, 'spec.json');
  await writeFile(
    specFile,
    JSON.stringify({
      customer: { name: 'Globex' },
      validDays: 30,
      products: [{ name: 'Globex CAD' }],
      licenses: [{ product: 'Globex CAD', seats: 12, maxOfflineSeconds: 86400 }],
    }),
  );
  const out = join(cwd, 'globex.license.json');
  const issued = floatd(
    ['entitlements', 'issue', '--spec', specFile, '--private-key', join(cwd, 'acme.key'), '--serial', '1', '--out', out],
    cwd,
  );
  assert.equal(issued.code, 0, issued.stderr);
  assert.ok(!issued.stdout.includes(secretLine) && !issued.stderr.includes(secretLine));
  const completed = JSON.parse(await readFile(specFile, 'utf8'));
  assert.match(completed.licenses[0].key, /^[0-9A-Z]{5}(-[0-9A-Z]{5}){4}$/, 'the spec now names the generated key, for renewals');
  assert.match(completed.products[0].id, /^prd_/);

  const ok = floatd(['entitlements', 'verify', out, '--vendor-public-key', join(cwd, 'acme.pub')], cwd);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /signature verified/);
  assert.match(ok.stdout, new RegExp(`${completed.licenses[0].key}\\s+12\\s+permanent`));

  // A renewal from the completed spec keeps the same key.
  const renewal = join(cwd, 'globex.2.json');
  assert.equal(
    floatd(['entitlements', 'issue', '--spec', specFile, '--private-key', join(cwd, 'acme.key'), '--serial', '2', '--out', renewal], cwd)
      .code,
    0,
  );
  assert.equal(JSON.parse(await readFile(renewal, 'utf8')).payload.licenses[0].key, completed.licenses[0].key);

  // Edited by hand: verify fails with exit code 1, and says why.
  await writeFile(out, (await readFile(out, 'utf8')).replace('"seats": 12', '"seats": 99'));
  const bad = floatd(['entitlements', 'verify', out, '--vendor-public-key', join(cwd, 'acme.pub')], cwd);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /signature does not match/);

  // A private key others can read is refused, naming the fix (and not the key).
  await chmod(join(cwd, 'acme.key'), 0o644);
  const loose = floatd(['entitlements', 'issue', '--spec', specFile, '--private-key', join(cwd, 'acme.key'), '--serial', '3'], cwd);
  assert.equal(loose.code, 1);
  assert.match(loose.stderr, /mode 644: it must be readable by its owner only \(chmod 600/);
  assert.ok(!loose.stderr.includes(secretLine));
  await assert.rejects(readPrivateKeyFile(join(cwd, 'acme.key')), /chmod 600/);

  // A bad spec is a usage error (exit 2) that names the problem.
  await writeFile(specFile, JSON.stringify({ customer: { name: 'x' }, products: [{ name: 'A' }], licenses: [{ product: 'B', seats: 1 }] }));
  await chmod(join(cwd, 'acme.key'), 0o600);
  const badSpec = floatd(['entitlements', 'issue', '--spec', specFile, '--private-key', join(cwd, 'acme.key'), '--serial', '3'], cwd);
  assert.equal(badSpec.code, 2);
  assert.match(badSpec.stderr, /names no product/);
});
