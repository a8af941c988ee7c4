/**
 * The vendor's key files. The private key never leaves the vendor: a file of
 * mode 0600 (refused if group or others can read it), never logged, never sent.
 * The public key goes to every on-premise server, by flag or baked into the
 * vendor's own build as `vendor-public-key.pem` beside the server's package.json.
 */
import { constants } from 'node:fs';
import { access, readFile, stat, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { KeyObject } from 'node:crypto';
import { generateSigningKey, keyId, privateKeyFrom, publicKeyFrom } from './documents.js';

/** Where a vendor's build puts its public key so its on-premise servers need no flag. */
export const BAKED_VENDOR_KEY = fileURLToPath(new URL('../../vendor-public-key.pem', import.meta.url));

export async function readVendorPublicKeys(file: string | undefined): Promise<KeyObject[]> {
  const path = file ?? BAKED_VENDOR_KEY;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (!file && (err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('on-prem mode needs the vendor public key: pass --vendor-public-key FILE (or FLOATD_VENDOR_PUBLIC_KEY)');
    }
    throw new Error(`cannot read the vendor public key ${path}: ${(err as Error).message}`);
  }
  // One key per PEM block, so a vendor can publish its next key before rotating.
  const blocks = text.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [text];
  try {
    return blocks.map((b) => publicKeyFrom(b));
  } catch (err) {
    throw new Error(`the vendor public key ${path} is not usable: ${(err as Error).message}`);
  }
}

/** Reads the vendor private key, refusing a file that others can read. The error never contains the key. */
export async function readPrivateKeyFile(path: string): Promise<KeyObject> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (err) {
    throw new Error(`cannot read the vendor private key ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new Error(
      `the vendor private key ${path} has mode ${(mode & 0o777).toString(8)}: it must be readable by its owner only (chmod 600 ${path})`,
    );
  }
  try {
    return privateKeyFrom(await readFile(path, 'utf8'));
  } catch {
    throw new Error(`the vendor private key ${path} is not an Ed25519 private key (PEM PKCS#8 or JWK)`);
  }
}

/** Writes a new vendor key pair: `<prefix>.key` (mode 0600) and `<prefix>.pub`. Never overwrites. */
export async function writeKeyPair(prefix: string): Promise<{ privateFile: string; publicFile: string; kid: string }> {
  const privateFile = `${prefix}.key`;
  const publicFile = `${prefix}.pub`;
  for (const f of [privateFile, publicFile]) {
    const exists = await access(f, constants.F_OK).then(
      () => true,
      () => false,
    );
    if (exists) throw new Error(`${f} exists already: keys are never overwritten`);
  }
  const { privateKey, publicKey } = generateSigningKey();
  await writeFile(privateFile, privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600, flag: 'wx' });
  await writeFile(publicFile, publicKey.export({ format: 'pem', type: 'spki' }) as string, { mode: 0o644, flag: 'wx' });
  return { privateFile, publicFile, kid: keyId(publicKey) };
}
