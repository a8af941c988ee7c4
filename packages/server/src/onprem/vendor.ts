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
    const deployment: Deployment = {
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
        { type: 'kv.put', name: DEPLOYMENT(deployment.id), value: JSON.stringify(deployment), at: now },
        { type: 'kv.put', name: ACTIVATION(deployment.activationKeyHash), value: deployment.id, at: now },
        audit(now, 'deployment.created', actor, { deploymentId: deployment.id, name, licenses: spec.value.licenses.length }),
      ]),
    );
    return ok({ deployment: view(deployment), activationKey });
  }

  async list(): Promise<DeploymentView[]> {
    return (await this.store.listKv('vendor/deployment/')).map((row) => view(JSON.parse(row.value) as Deployment));
  }

  async get(id: string): Promise<Result<DeploymentView>> {
    const row = await this.store.getKv(DEPLOYMENT(id));
    return row ? ok(view(JSON.parse(row.value) as Deployment)) : fail('DEPLOYMENT_NOT_FOUND', `no deployment ${id}`);
  }

  /** Replaces the spec (a renewal: more seats, a later end); the next file issued carries it with a higher serial. */
  async updateSpec(id: string, specInput: unknown, actor: string): Promise<Result<DeploymentView>> {
    const spec = completeSpec(structuredClone(specInput));
    if (!spec.ok) return spec;
    const check = payloadFromSpec(spec.value, { serial: 1, now: this.clock.now() });
    if (!check.ok) return check;
    return this.change(id, actor, (deployment) => ok({ ...deployment, spec: spec.value }), 'spec-updated');
  }

  /**
   * Issues the next license file of a deployment (serial + 1). With an activation
   * request, the file is bound to that server; a deployment already bound to
   * another server refuses (`FINGERPRINT_MISMATCH`).
   */
  async issue(id: string, request: unknown, actor: string): Promise<Result<LicenseFile>> {
    let server: { fingerprint: string; publicKey: string } | null = null;
    if (request !== undefined && request !== null) {
      const verified = verifyActivationRequest(request);
      if (!verified.ok) return verified;
      server = { fingerprint: verified.value.fingerprint, publicKey: verified.value.publicKey };
    }
    let file: LicenseFile | undefined;
    const changed = await this.change(
      id,
      actor,
      (deployment) => {
        if (server && deployment.fingerprint && deployment.fingerprint !== server.fingerprint) {
          return fail('FINGERPRINT_MISMATCH', `deployment ${id} is bound to server ${deployment.fingerprint}, not ${server.fingerprint}`);
        }
        const bound =
          server ??
          (deployment.fingerprint && deployment.publicKey
            ? { fingerprint: deployment.fingerprint, publicKey: deployment.publicKey }
            : null);
        const now = this.clock.now();
        const payload = payloadFromSpec(deployment.spec, {
          serial: deployment.serial + 1,
          now,
          deploymentId: deployment.id,
          server: bound,
        });
        if (!payload.ok) return payload;
        file = issueLicenseFile(payload.value, this.signer);
        return ok({
          ...deployment,
          serial: deployment.serial + 1,
          fingerprint: bound?.fingerprint ?? null,
          publicKey: bound?.publicKey ?? null,
          activatedAt: server ? now : deployment.activatedAt,
        });
      },
      'issued',
    );
    return changed.ok ? ok(file!) : changed;
  }

  /** Online activation: the on-premise server sends its activation key and its signed request, and gets its file. */
  async activate(activationKey: string, request: unknown): Promise<Result<LicenseFile>> {
    const activation = await this.store.getKv(ACTIVATION(hash(activationKey)));
    if (!activation) return fail('ACTIVATION_KEY_INVALID', 'the activation key is unknown');
    const row = await this.store.getKv(DEPLOYMENT(activation.value));
    const stored = row && (JSON.parse(row.value) as Deployment);
    if (!stored || !timingSafeEqual(Buffer.from(stored.activationKeyHash), Buffer.from(hash(activationKey))))
      return fail('ACTIVATION_KEY_INVALID', 'the activation key is unknown');
    return this.issue(stored.id, request, 'activation');
  }

  /** Verifies a usage report against the server key recorded at activation, and keeps it. */
  async importUsage(doc: unknown, via: 'online' | 'file', actor: string): Promise<Result<StoredUsageReport>> {
    const claimed = (doc as { payload?: { deploymentId?: unknown } } | null)?.payload?.deploymentId;
    if (typeof claimed !== 'string')
      return fail('USAGE_REPORT_INVALID', 'the usage report names no deployment (was its license file issued by a deployment?)');
    const row = await this.store.getKv(DEPLOYMENT(claimed));
    const deployment = row && (JSON.parse(row.value) as Deployment);
    if (!deployment) return fail('USAGE_REPORT_INVALID', `the usage report names deployment ${claimed}, which does not exist here`);
    if (!deployment.publicKey)
      return fail('USAGE_REPORT_INVALID', `deployment ${deployment.id} is not bound to a server yet: no key to verify the report with`);
    const report = verifyUsageReport(doc, deployment.publicKey);
    if (!report.ok) return report;
    const now = this.clock.now();
    const hash = reportHash(doc);
    const stored = await this.store.transaction(async (tx) => {
      // Under the deployment's lock: two imports at once see each other.
      await tx.lockKv(DEPLOYMENT(deployment.id));
      const before = (await this.store.listKv(USAGE(deployment.id)))
        .map((row) => JSON.parse(row.value) as StoredUsageReport)
        .filter((row) => typeof row.report.sequence === 'number');
      const last = before.sort((a, b) => b.report.sequence! - a.report.sequence!)[0];
      const sequence = report.value.sequence;
      const continuity: StoredUsageReport['continuity'] =
        sequence === undefined
          ? 'unsequenced'
          : !last
            ? 'first'
            : sequence <= last.report.sequence!
              ? 'rollback'
              : sequence > last.report.sequence! + 1
                ? 'gap'
                : report.value.previousReportHash === last.hash
                  ? 'ok'
                  : 'fork';
      const stored: StoredUsageReport = { deploymentId: deployment.id, importedAt: now, via, report: report.value, continuity, hash };
      await tx.apply([
        { type: 'kv.put', name: `${USAGE(deployment.id)}${report.value.generatedAt}`, value: JSON.stringify(stored), at: now },
        audit(now, 'usage-report.imported', actor, {
          deploymentId: deployment.id,
          via,
          from: report.value.from,
          to: report.value.to,
          licenseFileSerial: report.value.licenseFileSerial,
          sequence: sequence ?? null,
          continuity,
          tampered: report.value.integrity?.tampered ?? null,
        }),
      ]);
      return stored;
    });
    return ok(stored);
  }

  async usageReports(id: string): Promise<Result<StoredUsageReport[]>> {
    const deployment = await this.get(id);
    if (!deployment.ok) return deployment;
    return ok((await this.store.listKv(USAGE(id))).map((row) => JSON.parse(row.value) as StoredUsageReport));
  }

  /** Read-change-write of one deployment under its lock. */
  private async change(
    id: string,
    actor: string,
    update: (deployment: Deployment) => Result<Deployment>,
    what: string,
  ): Promise<Result<DeploymentView>> {
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const row = await tx.lockKv(DEPLOYMENT(id));
      if (!row) return fail('DEPLOYMENT_NOT_FOUND', `no deployment ${id}`);
      const next = update(JSON.parse(row.value) as Deployment);
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

function view(deployment: Deployment): DeploymentView {
  const { activationKeyHash: _, ...rest } = deployment;
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
