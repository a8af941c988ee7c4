/**
 * The end user's key, asked once: validate it with the server (plain-language answer),
 * remember it (and the server) in the state directory with owner-only permissions, forget it.
 *
 *   <stateDir>/            mode 0700
 *   <stateDir>/remembered.json  mode 0600  { serverUrl, licenseKey, savedAt }
 */
import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FloatingLicense } from './license.js';
import { writeFileAtomic } from './state.js';
import { endUserCode, endUserMessage, explain, type EndUserCode } from './messages.js';

export interface RememberedKey {
  serverUrl: string;
  licenseKey: string;
  savedAt: string;
}

export type KeyCheck =
  | { ok: true; productId: string; seatsTotal: number; seatsUsed: number; expiresAt: string | null; message: string }
  | { ok: false; code: EndUserCode | string; message: string };

const FILE = 'remembered.json';

function root(stateDir?: string): string {
  return stateDir ?? join(homedir(), '.floatd');
}

/**
 * Asks the server whether `licenseKey` is usable, without taking a seat (GET the license's state).
 * `productId`, when given, must be the key's product (else WRONG_PRODUCT).
 *
 * @example const r = await validateKey({ serverUrl, licenseKey: input.value }); label.textContent = r.message;
 */
export async function validateKey(opts: {
  serverUrl: string;
  licenseKey: string;
  productId?: string;
  stateDir?: string;
  timeoutMs?: number;
}): Promise<KeyCheck> {
  let lic: FloatingLicense;
  try {
    lic = new FloatingLicense({
      serverUrl: opts.serverUrl,
      licenseKey: opts.licenseKey.trim(),
      stateDir: root(opts.stateDir),
      requestTimeoutMs: opts.timeoutMs ?? 5000,
    });
  } catch (err) {
    return {
      ok: false,
      code: endUserCode(err) ?? 'INVALID_LICENSE_KEY',
      message: endUserCode(err) ? explain(err) : endUserMessage('INVALID_LICENSE_KEY'),
    };
  }
  try {
    const { license, serverTime } = await lic.info();
    if (opts.productId && license.productId !== opts.productId)
      return { ok: false, code: 'WRONG_PRODUCT', message: endUserMessage('WRONG_PRODUCT') };
    if (license.suspended) return { ok: false, code: 'LICENSE_SUSPENDED', message: endUserMessage('LICENSE_SUSPENDED') };
    if (license.expiresAt && Date.parse(license.expiresAt) <= Date.parse(serverTime))
      return { ok: false, code: 'LICENSE_EXPIRED', message: endUserMessage('LICENSE_EXPIRED') };
    return {
      ok: true,
      productId: license.productId,
      seatsTotal: license.seatsTotal,
      seatsUsed: license.seatsUsed,
      expiresAt: license.expiresAt,
      message: `The license key is valid (${license.seatsUsed} of ${license.seatsTotal} seats in use).`,
    };
  } catch (err) {
    const code = endUserCode(err);
    return { ok: false, code: code ?? (err as { code?: string }).code ?? 'ERROR', message: explain(err) };
  } finally {
    await lic.close({ checkin: false }).catch(() => undefined);
  }
}

/** Stores the key and server, owner-only (dir 0700, file 0600). @example await rememberKey({ serverUrl, licenseKey }); */
export async function rememberKey(remembered: { serverUrl: string; licenseKey: string }, stateDir?: string): Promise<void> {
  const dir = root(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const doc: RememberedKey = {
    serverUrl: remembered.serverUrl,
    licenseKey: remembered.licenseKey.trim(),
    savedAt: new Date().toISOString(),
  };
  await writeFileAtomic(join(dir, FILE), JSON.stringify(doc, null, 2) + '\n');
}

/** The remembered key and server, or undefined. @example const k = await rememberedKey(); */
export async function rememberedKey(stateDir?: string): Promise<RememberedKey | undefined> {
  try {
    const doc = JSON.parse(await readFile(join(root(stateDir), FILE), 'utf8')) as Partial<RememberedKey>;
    if (typeof doc.serverUrl === 'string' && typeof doc.licenseKey === 'string') return doc as RememberedKey;
  } catch {
    /* none, or unreadable: ask again */
  }
  return undefined;
}

/** Forgets the remembered key and server. @example await forgetKey(); */
export async function forgetKey(stateDir?: string): Promise<void> {
  await rm(join(root(stateDir), FILE), { force: true });
}
