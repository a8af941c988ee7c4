/**
 * Test helpers for the on-premise role: a vendor key pair in real files, license
 * files issued with it, and an on-premise test server that trusts it.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ManualClock } from '../domain/clock.js';
import { readPrivateKeyFile, writeKeyPair } from '../keys/files.js';
import { completeSpec, issueLicenseFile, payloadFromSpec, type LicenseFile, type LicenseSpec } from '../onprem/licenseFile.js';
import { signerOf, type Signer } from '../keys/documents.js';
import { startTestServer, type TestServer } from './harness.js';

export interface TestVendor {
  dir: string;
  privateKeyFile: string;
  publicKeyFile: string;
  signer: Signer;
  /** A completed spec (ids and keys filled in) for one product and the given keys. */
  spec(licenses: Partial<LicenseSpec['licenses'][number]>[], extra?: Partial<LicenseSpec>): LicenseSpec;
  /** Signs a license file from a spec. */
  issue(
    spec: LicenseSpec,
    opts: { serial: number; now: number; server?: { fingerprint: string; publicKey: string } | null; deploymentId?: string | null },
  ): LicenseFile;
}

export async function testVendor(): Promise<TestVendor> {
  const dir = await mkdtemp(join(tmpdir(), 'floatd-vendor-'));
  const keys = await writeKeyPair(join(dir, 'vendor'));
  const signer = signerOf(await readPrivateKeyFile(keys.privateFile));
  return {
    dir,
    privateKeyFile: keys.privateFile,
    publicKeyFile: keys.publicFile,
    signer,
    spec(licenses, extra = {}) {
      const spec = completeSpec({
        customer: { name: 'Customer Inc.' },
        products: [{ name: 'Acme CAD' }],
        licenses: licenses.map((l) => ({ product: 'Acme CAD', seats: 2, ...l })),
        ...extra,
      });
      if (!spec.ok) throw new Error(spec.error.message);
      return spec.value;
    },
    issue(spec, opts) {
      const payload = payloadFromSpec(spec, {
        serial: opts.serial,
        now: opts.now,
        server: opts.server ?? null,
        deploymentId: opts.deploymentId ?? null,
      });
      if (!payload.ok) throw new Error(payload.error.message);
      return issueLicenseFile(payload.value, signer);
    },
  };
}

/** An on-premise test server trusting `vendor`'s key, its license file at `<dataDir>/license.json`. */
export function startOnPremServer(
  vendor: TestVendor,
  opts: { clock?: ManualClock; dataDir?: string; store?: 'sqlite' | 'postgres'; database?: import('./pg.js').TempDatabase } = {},
): Promise<TestServer> {
  return startTestServer({ ...opts, config: { mode: 'on-prem', vendorPublicKey: vendor.publicKeyFile, clockTolerance: '900' } });
}
