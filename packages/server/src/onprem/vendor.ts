/**
 * The vendor's side, on a hosted floatd started with `--vendor-private-key`:
 * on-premise deployments (one per customer server), each with a license spec,
 * an activation key (stored hashed), the server it is bound to and the last
 * serial issued; issuing signed license files (online activation or from a
 * request file); verifying and keeping the usage reports customers send back.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import type { Effect } from '../domain/effects.js';
import { fail, ok, type Result } from '../domain/result.js';
import { newId } from '../ids.js';
import type { Store } from '../store/port.js';
import { completeSpec, issueLicenseFile, payloadFromSpec, type LicenseFile, type LicenseSpec } from './licenseFile.js';
import { reportHash, verifyActivationRequest, verifyUsageReport, type UsageReportPayload } from './reports.js';
import type { Signer } from '../keys/documents.js';

export interface Deployment {
  id: string;
  name: string;
  spec: LicenseSpec;
  activationKeyHash: string;
  /** the on-premise server it is bound to (set by the first activation or request file) */
  fingerprint: string | null;
  publicKey: string | null;
  /** the last serial issued (0: none yet) */
  serial: number;
  createdAt: number;
  activatedAt: number | null;
}

export type DeploymentView = Omit<Deployment, 'activationKeyHash'>;

export interface StoredUsageReport {
  deploymentId: string;
  importedAt: number;
  via: 'online' | 'file';
  report: UsageReportPayload;
  /**
   * How this report follows the ones received before from the deployment: `first`, `ok`
   * (next sequence, previous hash matches), `gap` (reports missing in between), `rollback`
   * (a sequence already received, or lower: the server's state went back), `fork` (next
   * sequence but another previous report), `unsequenced` (a server from before sequences).
   */
  continuity?: 'first' | 'ok' | 'gap' | 'rollback' | 'fork' | 'unsequenced';
  /** the hash the next report must name as its previous one */
  hash?: string;
}

const DEPLOYMENT = (id: string) => `vendor/deployment/${id}`;
const ACTIVATION = (hash: string) => `vendor/activation/${hash}`;
const USAGE = (id: string) => `vendor/usage/${id}/`;
const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');

export class VendorService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly signer: Signer,
  ) {}

  async create(name: string, specInput: unknown, actor: string): Promise<Result<{ deployment: DeploymentView; activationKey: string }>> {
    const spec = completeSpec(structuredClone(specInput));
    if (!spec.ok) return spec;
    const check = payloadFromSpec(spec.value, { serial: 1, now: this.clock.now() });
    if (!check.ok) return check;
    const now = this.clock.now();
    const activationKey = `fak_${randomBytes(30).toString('base64url')}`;
    const d: Deployment = {
      id: newId('dpl'),
      name,
      spec: spec.value,
      activationKeyHash: hash(activationKey),
      fingerprint: null,
      publicKey: null,
      serial: 0,
      createdAt: now,
      activatedAt: null,
    };
    await this.store.transaction((tx) =>
      tx.apply([
        { type: 'kv.put', name: DEPLOYMENT(d.id), value: JSON.stringify(d), at: now },
        { type: 'kv.put', name: ACTIVATION(d.activationKeyHash), value: d.id, at: now },
        audit(now, 'deployment.created', actor, { deploymentId: d.id, name, licenses: spec.value.licenses.length }),
      ]),
    );
    return ok({ deployment: view(d), activationKey });
  }

  async list(): Promise<DeploymentView[]> {
    return (await this.store.listKv('vendor/deployment/')).map((r) => view(JSON.parse(r.value) as Deployment));
  }

  async get(id: string): Promise<Result<DeploymentView>> {
    const r = await this.store.getKv(DEPLOYMENT(id));
    return r ? ok(view(JSON.parse(r.value) as Deployment)) : fail('DEPLOYMENT_NOT_FOUND', `no deployment ${id}`);
  }

  /** Replaces the spec (a renewal: more seats, a later end); the next file issued carries it with a higher serial. */
  async updateSpec(id: string, specInput: unknown, actor: string): Promise<Result<DeploymentView>> {
    const spec = completeSpec(structuredClone(specInput));
    if (!spec.ok) return spec;
    const check = payloadFromSpec(spec.value, { serial: 1, now: this.clock.now() });
    if (!check.ok) return check;
    return this.change(id, actor, (d) => ok({ ...d, spec: spec.value }), 'spec-updated');
  }

  /**
   * Issues the next license file of a deployment (serial + 1). With an activation
   * request, the file is bound to that server; a deployment already bound to
   * another server refuses (`FINGERPRINT_MISMATCH`).
   */
  async issue(id: string, request: unknown, actor: string): Promise<Result<LicenseFile>> {
    let server: { fingerprint: string; publicKey: string } | null = null;
    if (request !== undefined && request !== null) {
      const r = verifyActivationRequest(request);
      if (!r.ok) return r;
      server = { fingerprint: r.value.fingerprint, publicKey: r.value.publicKey };
    }
    let file: LicenseFile | undefined;
    const changed = await this.change(
      id,
      actor,
      (d) => {
        if (server && d.fingerprint && d.fingerprint !== server.fingerprint) {
          return fail('FINGERPRINT_MISMATCH', `deployment ${id} is bound to server ${d.fingerprint}, not ${server.fingerprint}`);
        }
        const bound = server ?? (d.fingerprint && d.publicKey ? { fingerprint: d.fingerprint, publicKey: d.publicKey } : null);
        const now = this.clock.now();
        const payload = payloadFromSpec(d.spec, { serial: d.serial + 1, now, deploymentId: d.id, server: bound });
        if (!payload.ok) return payload;
        file = issueLicenseFile(payload.value, this.signer);
        return ok({
          ...d,
          serial: d.serial + 1,
          fingerprint: bound?.fingerprint ?? null,
          publicKey: bound?.publicKey ?? null,
          activatedAt: server ? now : d.activatedAt,
        });
      },
      'issued',
    );
    return changed.ok ? ok(file!) : changed;
  }

  /** Online activation: the on-premise server sends its activation key and its signed request, and gets its file. */
  async activate(activationKey: string, request: unknown): Promise<Result<LicenseFile>> {
    const r = await this.store.getKv(ACTIVATION(hash(activationKey)));
    if (!r) return fail('ACTIVATION_KEY_INVALID', 'the activation key is unknown');
    const d = await this.store.getKv(DEPLOYMENT(r.value));
    const stored = d && (JSON.parse(d.value) as Deployment);
    if (!stored || !timingSafeEqual(Buffer.from(stored.activationKeyHash), Buffer.from(hash(activationKey))))
      return fail('ACTIVATION_KEY_INVALID', 'the activation key is unknown');
    return this.issue(stored.id, request, 'activation');
  }

  /** Verifies a usage report against the server key recorded at activation, and keeps it. */
  async importUsage(doc: unknown, via: 'online' | 'file', actor: string): Promise<Result<StoredUsageReport>> {
    const claimed = (doc as { payload?: { deploymentId?: unknown } } | null)?.payload?.deploymentId;
    if (typeof claimed !== 'string')
      return fail('USAGE_REPORT_INVALID', 'the usage report names no deployment (was its license file issued by a deployment?)');
    const d = await this.store.getKv(DEPLOYMENT(claimed));
    const dep = d && (JSON.parse(d.value) as Deployment);
    if (!dep) return fail('USAGE_REPORT_INVALID', `the usage report names deployment ${claimed}, which does not exist here`);
    if (!dep.publicKey)
      return fail('USAGE_REPORT_INVALID', `deployment ${dep.id} is not bound to a server yet: no key to verify the report with`);
    const v = verifyUsageReport(doc, dep.publicKey);
    if (!v.ok) return v;
    const now = this.clock.now();
    const hash = reportHash(doc);
    const stored = await this.store.transaction(async (tx) => {
      // Under the deployment's lock: two imports at once see each other.
      await tx.lockKv(DEPLOYMENT(dep.id));
      const before = (await this.store.listKv(USAGE(dep.id)))
        .map((r) => JSON.parse(r.value) as StoredUsageReport)
        .filter((r) => typeof r.report.sequence === 'number');
      const last = before.sort((a, b) => b.report.sequence! - a.report.sequence!)[0];
      const seq = v.value.sequence;
      const continuity: StoredUsageReport['continuity'] =
        seq === undefined
          ? 'unsequenced'
          : !last
            ? 'first'
            : seq <= last.report.sequence!
              ? 'rollback'
              : seq > last.report.sequence! + 1
                ? 'gap'
                : v.value.previousReportHash === last.hash
                  ? 'ok'
                  : 'fork';
      const stored: StoredUsageReport = { deploymentId: dep.id, importedAt: now, via, report: v.value, continuity, hash };
      await tx.apply([
        { type: 'kv.put', name: `${USAGE(dep.id)}${v.value.generatedAt}`, value: JSON.stringify(stored), at: now },
        audit(now, 'usage-report.imported', actor, {
          deploymentId: dep.id,
          via,
          from: v.value.from,
          to: v.value.to,
          licenseFileSerial: v.value.licenseFileSerial,
          sequence: seq ?? null,
          continuity,
          tampered: v.value.integrity?.tampered ?? null,
        }),
      ]);
      return stored;
    });
    return ok(stored);
  }

  async usageReports(id: string): Promise<Result<StoredUsageReport[]>> {
    const d = await this.get(id);
    if (!d.ok) return d;
    return ok((await this.store.listKv(USAGE(id))).map((r) => JSON.parse(r.value) as StoredUsageReport));
  }

  /** Read-change-write of one deployment under its lock. */
  private async change(
    id: string,
    actor: string,
    fn: (d: Deployment) => Result<Deployment>,
    what: string,
  ): Promise<Result<DeploymentView>> {
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const r = await tx.lockKv(DEPLOYMENT(id));
      if (!r) return fail('DEPLOYMENT_NOT_FOUND', `no deployment ${id}`);
      const next = fn(JSON.parse(r.value) as Deployment);
      if (!next.ok) return next;
      const effects: Effect[] = [{ type: 'kv.put', name: DEPLOYMENT(id), value: JSON.stringify(next.value), at: now }];
      if (what === 'issued' && next.value.activatedAt === now) {
        effects.push(
          audit(now, 'deployment.activated', actor, { deploymentId: id, fingerprint: next.value.fingerprint, serial: next.value.serial }),
        );
      }
      await tx.apply(effects);
      return ok(view(next.value));
    });
  }
}

function view(d: Deployment): DeploymentView {
  const { activationKeyHash: _, ...rest } = d;
  return rest;
}

function audit(
  at: number,
  type: 'deployment.created' | 'deployment.activated' | 'usage-report.imported',
  actor: string,
  data: Record<string, unknown>,
): Effect {
  return { type: 'audit', entry: { at, type, actor, licenseId: null, deviceId: null, leaseId: null, reason: null, data } };
}
