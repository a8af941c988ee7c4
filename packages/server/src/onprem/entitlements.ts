/**
 * On-premise enforcement: the verified license file, held in memory, is the only
 * source of seats, models, expiry and offline limits.
 *
 * The database is the customer's: it may be edited. So the file is verified at
 * start and on every load, kept in memory, and every seat decision takes its
 * license policy from it (`admit`), not from the database row. The database gets
 * a copy of the catalogue (so leases, devices, audit and the console work as in
 * the hosted role) and the highest serial loaded, written under a lock so a file
 * never goes back. The file on disk (`--license-file`) and the copy in the store
 * are polled, so a renewal is picked up without a restart, on every node.
 */
import { DEFAULT_CUSTOMER_ID, OPEN_ACCESS } from '@floatd/protocol';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import type { Effect } from '../domain/effects.js';
import { fail, ok, type Result } from '../domain/result.js';
import type { License } from '../domain/types.js';
import type { Store } from '../store/port.js';
import type { Metrics } from '../service/metrics.js';
import type { ServerClockGuard } from '../service/serverClock.js';
import { INVALID_KEY_MESSAGE } from '../domain/policy.js';
import type { ServerIdentity } from './identity.js';
import type { SealedState } from './sealedState.js';
import { policyOf, readLicenseFile, type FileLicense, type LicenseFilePayload, type VerifiedLicenseFile } from './licenseFile.js';

export const LICENSE_FILE_KV = 'onprem/license-file';

interface InForce {
  payload: LicenseFilePayload;
  text: string;
  signature: string;
  byKey: Map<string, FileLicense>;
  notBefore: number;
  notAfter: number | null;
}

export interface EntitlementSummary {
  serial: number;
  issuedAt: string;
  notBefore: string;
  notAfter: string | null;
  customer: { name: string; id?: string | undefined };
  deploymentId: string | null;
  vendorUrl: string | null;
  boundTo: string | null;
  licenses: {
    id: string;
    productId: string;
    key: string;
    seats: number;
    model: string;
    expiresAt: string | null;
    maxOfflineSeconds: number;
  }[];
}

export interface EntitlementOptions {
  vendorKeys: readonly KeyObject[];
  identity: ServerIdentity;
  clockGuard: ServerClockGuard;
  /** the file the server reads at start and polls; loads through the API are written back to it */
  licenseFile?: string | undefined;
  /** the sealed state: the highest serial ever loaded, which no copy of the file can go below */
  seal?: SealedState | undefined;
  logger?: Logger | false | undefined;
}

export class EntitlementService {
  private current: InForce | undefined;
  private lastDiskText: string | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly opts: EntitlementOptions,
  ) {}

  get fingerprint(): string {
    return this.opts.identity.fingerprint;
  }

  /** Adopts the stored file, then the file on disk if it is newer. A bad file is logged; the server still starts (to be activated). */
  async start(): Promise<void> {
    await this.adoptStored();
    const seal = this.opts.seal?.state();
    if (seal && seal.highestSerial > 0 && !(await this.store.getKv(LICENSE_FILE_KV))) {
      await this.opts.seal!.tamper([`the license file (serial ${seal.highestSerial}) was deleted from the database`]);
    }
    await this.pollDisk();
    if (!this.current) this.log('warn', 'no valid license file is loaded: nothing will be granted until one is loaded or activated');
  }

  /** The periodic check: another node loaded a newer file (store), or the administrator replaced the file on disk. */
  async poll(): Promise<void> {
    await this.adoptStored();
    await this.pollDisk();
  }

  /**
   * Verifies and loads a license file: signature, shape, binding to this server,
   * validity window at the trusted time, and a serial above the one in force
   * (checked and raised under a lock in the store). Writes the catalogue copy,
   * audits, and — when it came through the API — writes the file to disk.
   */
  async load(
    text: string,
    actor: string,
    source: 'api' | 'file' | 'activation' = 'api',
  ): Promise<Result<{ summary: EntitlementSummary; unchanged: boolean }>> {
    const now = Math.max(this.clock.now(), this.opts.clockGuard.state().trustedTime);
    const verified = readLicenseFile(text, this.opts.vendorKeys, { fingerprint: this.fingerprint, now });
    if (!verified.ok) return verified;
    const file = verified.value;
    const sealed = this.opts.seal?.allows(file.payload.serial, file.envelope.signature.value);
    if (sealed && !sealed.ok)
      return fail('ENTITLEMENT_ROLLBACK', `the license file is refused: ${sealed.reason}; files never go back`, {
        serial: file.payload.serial,
        current: this.opts.seal!.state()!.highestSerial,
      });
    const stored = JSON.stringify(file.envelope);
    const result = await this.store.transaction(async (tx): Promise<Result<boolean>> => {
      const held = await tx.lockKv(LICENSE_FILE_KV);
      const heldFile = held
        ? readLicenseFile(held.value, this.opts.vendorKeys, { fingerprint: undefined, now, checkWindow: false })
        : undefined;
      const inForce = this.current?.payload.serial ?? 0;
      if (file.payload.serial < inForce) {
        return fail(
          'ENTITLEMENT_ROLLBACK',
          `the license file has serial ${file.payload.serial}, lower than serial ${inForce} in force: files never go back`,
          { serial: file.payload.serial, current: inForce },
        );
      }
      if (heldFile?.ok) {
        const was = heldFile.value.payload.serial;
        if (file.payload.serial < was)
          return fail(
            'ENTITLEMENT_ROLLBACK',
            `the license file has serial ${file.payload.serial}, lower than serial ${was} already loaded: files never go back`,
            { serial: file.payload.serial, current: was },
          );
        if (file.payload.serial === was) {
          if (heldFile.value.envelope.signature.value === file.envelope.signature.value) return ok(true);
          return fail('ENTITLEMENT_ROLLBACK', `serial ${was} is already loaded with different content`, {
            serial: file.payload.serial,
            current: was,
          });
        }
      }
      const effects = await catalogueEffects(tx, file.payload, now);
      if (!effects.ok) return effects;
      await tx.apply([
        ...effects.value,
        { type: 'kv.put', name: LICENSE_FILE_KV, value: stored, at: this.clock.now() },
        {
          type: 'audit',
          entry: {
            at: this.clock.now(),
            type: 'entitlements.loaded',
            actor,
            licenseId: null,
            deviceId: null,
            leaseId: null,
            reason: source,
            data: {
              serial: file.payload.serial,
              previousSerial: heldFile?.ok ? heldFile.value.payload.serial : null,
              licenses: file.payload.licenses.length,
              notAfter: file.payload.notAfter,
            },
          },
        },
      ]);
      return ok(false);
    });
    if (!result.ok) return result;
    this.adopt(file, stored);
    if (!result.value) await this.opts.seal?.fileLoaded(file.payload.serial, file.envelope.signature.value);
    await this.opts.clockGuard.vouch(Date.parse(file.payload.issuedAt), !result.value);
    if (source !== 'file' && this.opts.licenseFile && !result.value) await this.writeDisk(text);
    if (!result.value)
      this.log('info', `license file serial ${file.payload.serial} loaded (${source}): ${file.payload.licenses.length} license key(s)`);
    return ok({ summary: summarize(file.payload), unchanged: result.value });
  }

  /**
   * The license as the file says it is: seats, model, expiry, trial length, TTL,
   * offline limits and counting from the file; suspension, metadata, the trial's
   * start and the seat counters from the store. A key that is not in the file
   * (say, inserted into the database by hand) is unknown.
   */
  admit(license: License): Result<License> {
    const inForce = this.current;
    if (!inForce)
      return fail('ENTITLEMENT_MISSING', 'this on-premise server has no valid license file; an administrator must load or activate one');
    const entry = inForce.byKey.get(license.key);
    if (!entry || entry.id !== license.id || entry.productId !== license.productId) return fail('INVALID_LICENSE_KEY', INVALID_KEY_MESSAGE);
    if (this.clock.now() < inForce.notBefore)
      return fail('ENTITLEMENT_EXPIRED', `the on-premise license file is valid only from ${inForce.payload.notBefore}`);
    return ok({ ...license, ...policyOf(entry), entitlementEndsAt: inForce.notAfter });
  }

  /** Whether the license file in force sets this license's access policy (the site's own otherwise). */
  setsAccess(licenseId: string): boolean {
    return this.current?.payload.licenses.some((l) => l.id === licenseId && l.access !== undefined) ?? false;
  }

  summary(): EntitlementSummary | undefined {
    return this.current && summarize(this.current.payload);
  }

  /** The license file in force, exactly as verified (for a usage report and the status route). */
  payload(): LicenseFilePayload | undefined {
    return this.current?.payload;
  }

  // -------------------------------------------------------------------------

  private adopt(file: VerifiedLicenseFile, text: string): void {
    const payload = file.payload;
    this.current = {
      payload: payload,
      text,
      signature: file.envelope.signature.value,
      byKey: new Map(payload.licenses.map((entry) => [entry.key, entry])),
      notBefore: Date.parse(payload.notBefore),
      notAfter: payload.notAfter === null ? null : Date.parse(payload.notAfter),
    };
    this.metrics.entitlementSerial.set(payload.serial);
    this.metrics.entitlementNotAfter.set(payload.notAfter === null ? 0 : Math.floor(Date.parse(payload.notAfter) / 1000));
  }

  /** The store's copy (loaded by this or another node), if it verifies and is newer than what is in force. */
  private async adoptStored(): Promise<void> {
    const held = await this.store.getKv(LICENSE_FILE_KV);
    if (!held || held.value === this.current?.text) return;
    const stored = readLicenseFile(held.value, this.opts.vendorKeys, {
      fingerprint: this.fingerprint,
      now: this.clock.now(),
      checkWindow: false,
    });
    if (!stored.ok) {
      this.log('error', `the license file stored in the database does not verify (${stored.error.message}); keeping the one in force`);
      return;
    }
    if (this.current && stored.value.payload.serial <= this.current.payload.serial) return;
    const sealed = this.opts.seal?.allows(stored.value.payload.serial, stored.value.envelope.signature.value);
    if (sealed && !sealed.ok) {
      this.log('error', `the license file stored in the database is refused: ${sealed.reason}`);
      await this.opts.seal!.tamper([`the license file in the database goes back: ${sealed.reason}`]);
      return;
    }
    this.adopt(stored.value, held.value);
  }

  private async pollDisk(): Promise<void> {
    const path = this.opts.licenseFile;
    if (!path) return;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.log('error', `cannot read the license file ${path}: ${(err as Error).message}`);
      return;
    }
    if (text === this.lastDiskText) return;
    this.lastDiskText = text;
    const loaded = await this.load(text, 'server', 'file');
    if (!loaded.ok)
      this.log('error', `license file ${path} refused (${loaded.error.code}): ${loaded.error.message}; the file in force stays in force`);
  }

  private async writeDisk(text: string): Promise<void> {
    const path = this.opts.licenseFile!;
    const tmp = `${path}.${process.pid}.tmp`;
    try {
      // Written indented: the file is for people to read too (the signature covers the canonical payload, not the layout).
      await writeFile(tmp, JSON.stringify(JSON.parse(text), null, 2) + '\n', { mode: 0o644 });
      await chmod(tmp, 0o644);
      await rename(tmp, path);
      this.lastDiskText = await readFile(path, 'utf8');
    } catch (err) {
      this.log('error', `could not write the license file to ${path}: ${(err as Error).message} (it is kept in the database)`);
    }
  }

  private log(level: 'info' | 'warn' | 'error', msg: string): void {
    if (this.opts.logger) this.opts.logger[level](msg);
  }
}

/** Writes the file's products and keys into the store's catalogue (policy from the file; suspension and metadata kept). */
async function catalogueEffects(
  tx: import('../store/port.js').StoreTx,
  payload: LicenseFilePayload,
  now: number,
): Promise<Result<Effect[]>> {
  const effects: Effect[] = [];
  for (const product of payload.products) {
    const existing = await tx.product(product.id);
    effects.push(
      existing
        ? { type: 'product.update', product: { ...existing, name: product.name, updatedAt: now } }
        : { type: 'product.insert', product: { id: product.id, name: product.name, metadata: {}, createdAt: now, updatedAt: now } },
    );
  }
  for (const entry of payload.licenses) {
    const existing = await tx.lockLicense(entry.id);
    // Another license under this key is locked too: this transaction is about to write the key's row either way.
    const byKey = existing ? undefined : await tx.lockLicenseByKey(entry.key);
    if (byKey)
      return fail('ENTITLEMENT_INVALID', `the database holds key ${entry.key} under another id (${byKey.id}); remove that license first`);
    const policy = policyOf(entry);
    effects.push(
      existing
        ? { type: 'license.update', license: { ...existing, ...policy, productId: entry.productId, updatedAt: now } }
        : {
            type: 'license.insert',
            license: {
              ...policy,
              id: entry.id,
              productId: entry.productId,
              // On-premise the site is the one customer: its licenses are the built-in customer's (renamable by its admin).
              customerId: DEFAULT_CUSTOMER_ID,
              key: entry.key,
              suspended: false,
              metadata: {},
              access: OPEN_ACCESS,
              trialStartedAt: null,
              seatsUsed: 0,
              seatsOffline: 0,
              createdAt: now,
              updatedAt: now,
            },
          },
    );
  }
  return ok(effects);
}

function summarize(payload: LicenseFilePayload): EntitlementSummary {
  return {
    serial: payload.serial,
    issuedAt: payload.issuedAt,
    notBefore: payload.notBefore,
    notAfter: payload.notAfter,
    customer: payload.customer,
    deploymentId: payload.deploymentId,
    vendorUrl: payload.vendorUrl,
    boundTo: payload.server?.fingerprint ?? null,
    licenses: payload.licenses.map((entry) => ({
      id: entry.id,
      productId: entry.productId,
      key: entry.key,
      seats: entry.seats,
      model: entry.model,
      expiresAt: entry.expiresAt,
      maxOfflineSeconds: entry.maxOfflineSeconds,
    })),
  };
}
