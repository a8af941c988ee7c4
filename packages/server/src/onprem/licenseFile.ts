/**
 * The on-premise license file: which products and keys one customer's floatd may
 * serve, with their seats, models, expiry and offline limits, the file's own
 * validity window, an optional binding to one server, and a serial that only
 * goes up. The vendor signs it (see `keys/documents.ts`); the on-premise server trusts
 * nothing else for seats.
 *
 * Everything here is pure (no I/O): issuing takes a spec and a signer, reading
 * takes the text, the vendor's public keys, the server's fingerprint and "now".
 */
import { isOpen } from '../domain/access.js';
import { Type, type Static } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { KeyObject } from 'node:crypto';
import * as wire from '@floatd/protocol';
import { normalizeKey } from '@floatd/protocol';
import { checkPolicy, policyFromCreate } from '../domain/policy.js';
import { countingOf } from '../domain/sharing.js';
import { fail, ok, type Result } from '../domain/result.js';
import type { LicensePolicy } from '../domain/types.js';
import { newId, newLicenseKey } from '../ids.js';
import { parseDocument, signDocument, verifyDocument, type Envelope, type Signer } from '../keys/documents.js';

export const LICENSE_FILE_FORMAT = 'floatd-license-file/1' as const;
const DAY_MS = 86_400_000;

const Nullable = <T extends import('@sinclair/typebox').TSchema>(t: T) => Type.Union([t, Type.Null()]);
const Name = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000]*$' });
const Key = Type.String({ pattern: '^[0-9A-Z]{5}(-[0-9A-Z]{5}){4}$' });

/** One license key in the file: the policy fields the vendor decides (suspension and metadata stay local). */
export const FileLicense = wire.Obj({
  id: wire.LicenseId,
  productId: wire.ProductId,
  key: Key,
  seats: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  model: wire.LicenseModel,
  expiresAt: Nullable(wire.Timestamp),
  trialDays: Nullable(Type.Integer({ minimum: 1, maximum: 3650 })),
  leaseTtlSeconds: Nullable(Type.Integer({ minimum: 10, maximum: 10 * 365 * 86400 })),
  heartbeatIntervalSeconds: Type.Integer({ minimum: 1, maximum: 10 * 365 * 86400 }),
  maxOfflineSeconds: Type.Integer({ minimum: 0, maximum: 10 * 365 * 86400 }),
  maxOfflineSeats: Nullable(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  maxInstancesPerDevice: Type.Integer({ minimum: 1, maximum: 10_000 }),
  /** the classic mode; a file with `sharing` says the same or, for a rule that is neither, `per-device` (what older servers apply) */
  counting: wire.CountingMode,
  /** absent in files from before sharing rules: the rule of `counting` */
  sharing: Type.Optional(wire.SharingRule),
  clonePolicy: Type.Optional(wire.ClonePolicy),
  vmPolicy: Type.Optional(wire.VmPolicy),
  /** absent in files from before linger and overdraft: none */
  lingerSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400 })),
  overdraftSeats: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  /** absent in files from before feature pools: none */
  features: Type.Optional(Type.Array(wire.FeaturePool, { maxItems: 64 })),
  /** who may take seats, and how many: when present the vendor decides it (the site cannot change it); absent: the site's own */
  access: Type.Optional(wire.AccessPolicy),
});
export type FileLicense = Static<typeof FileLicense>;

export const LicenseFilePayload = wire.Obj({
  serial: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  issuedAt: wire.Timestamp,
  notBefore: wire.Timestamp,
  notAfter: Nullable(wire.Timestamp),
  customer: wire.Obj({ name: Name, id: Type.Optional(Type.String({ maxLength: 100 })) }),
  /** the vendor's deployment this file belongs to (online activation and usage upload) */
  deploymentId: Nullable(Type.String({ maxLength: 100 })),
  /** where the vendor's hosted floatd answers (usage reports online); null for air-gapped sites */
  vendorUrl: Nullable(Type.String({ maxLength: 500 })),
  /** the one server this file is for; null = any server */
  server: Nullable(
    wire.Obj({ fingerprint: Type.String({ minLength: 8, maxLength: 128 }), publicKey: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }) }),
  ),
  products: Type.Array(wire.Obj({ id: wire.ProductId, name: Name }), { maxItems: 1000 }),
  licenses: Type.Array(FileLicense, { maxItems: 10_000 }),
});
export type LicenseFilePayload = Static<typeof LicenseFilePayload>;
export type LicenseFile = Envelope<LicenseFilePayload>;

/** What the vendor writes to issue a file: products by name, keys with their policy; ids and keys are filled in when missing. */
export const LicenseSpec = wire.Obj({
  customer: wire.Obj({ name: Name, id: Type.Optional(Type.String({ maxLength: 100 })) }),
  notBefore: Type.Optional(wire.Timestamp),
  notAfter: Type.Optional(Nullable(wire.Timestamp)),
  /** validity from the issue date, when notAfter is not given (default 365) */
  validDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
  vendorUrl: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  products: Type.Array(wire.Obj({ id: Type.Optional(wire.ProductId), name: Name }), { minItems: 1, maxItems: 1000 }),
  licenses: Type.Array(
    wire.Obj({
      id: Type.Optional(wire.LicenseId),
      key: Type.Optional(Type.String({ maxLength: 64 })),
      /** product name (or id) from `products` */
      product: Type.String({ minLength: 1, maxLength: 200 }),
      seats: FileLicense.properties.seats,
      model: Type.Optional(wire.LicenseModel),
      expiresAt: Type.Optional(Nullable(wire.Timestamp)),
      trialDays: Type.Optional(FileLicense.properties.trialDays),
      leaseTtlSeconds: Type.Optional(FileLicense.properties.leaseTtlSeconds),
      heartbeatIntervalSeconds: Type.Optional(FileLicense.properties.heartbeatIntervalSeconds),
      maxOfflineSeconds: Type.Optional(FileLicense.properties.maxOfflineSeconds),
      maxOfflineSeats: Type.Optional(FileLicense.properties.maxOfflineSeats),
      maxInstancesPerDevice: Type.Optional(FileLicense.properties.maxInstancesPerDevice),
      counting: Type.Optional(wire.CountingMode),
      sharing: Type.Optional(wire.SharingRule),
      clonePolicy: Type.Optional(wire.ClonePolicy),
      vmPolicy: Type.Optional(wire.VmPolicy),
      lingerSeconds: Type.Optional(FileLicense.properties.lingerSeconds),
      overdraftSeats: Type.Optional(FileLicense.properties.overdraftSeats),
      features: Type.Optional(FileLicense.properties.features),
      access: Type.Optional(FileLicense.properties.access),
    }),
    { minItems: 1, maxItems: 10_000 },
  ),
});
export type LicenseSpec = Static<typeof LicenseSpec>;

type AddFormats = (ajv: Ajv) => Ajv;
const addFormats: AddFormats =
  (addFormatsModule as unknown as { default?: AddFormats }).default ?? (addFormatsModule as unknown as AddFormats);
const ajv = addFormats(new Ajv({ strict: false, allErrors: false }));
const checkPayload = ajv.compile(LicenseFilePayload);
const checkSpec = ajv.compile(LicenseSpec);

function schemaProblem(errors: typeof checkPayload.errors): string {
  const first = errors?.[0];
  return first ? `${first.instancePath || '(root)'} ${first.message ?? 'is invalid'}` : 'invalid';
}

/**
 * Completes a spec in place (ids and keys for the entries that have none), so the
 * vendor keeps the completed spec and every renewal names the same keys.
 * Returns a problem description when the spec is not usable.
 */
export function completeSpec(spec: unknown): Result<LicenseSpec> {
  if (!checkSpec(spec)) return fail('VALIDATION_FAILED', `spec: ${schemaProblem(checkSpec.errors)}`);
  const completed = spec as LicenseSpec;
  for (const product of completed.products) product.id ??= newId('prd');
  const names = new Map(
    completed.products.flatMap((product) => [[product.name, product.id!] as const, [product.id!, product.id!] as const]),
  );
  for (const license of completed.licenses) {
    if (!names.has(license.product))
      return fail('VALIDATION_FAILED', `spec: license for "${license.product}" names no product in products`);
    license.id ??= newId('lic');
    if (license.key === undefined) license.key = newLicenseKey();
    const key = normalizeKey(license.key);
    if (!key) return fail('VALIDATION_FAILED', `spec: "${license.key}" is not a well-formed license key`);
    license.key = key;
  }
  return ok(completed);
}

/** The payload of a license file from a completed spec. */
export function payloadFromSpec(
  spec: LicenseSpec,
  opts: { serial: number; now: number; deploymentId?: string | null; server?: { fingerprint: string; publicKey: string } | null },
): Result<LicenseFilePayload> {
  const iso = (ms: number) => new Date(ms).toISOString();
  // By default valid from a day before the issue time: a customer clock a little behind the vendor's must not refuse a fresh file.
  const notBefore = spec.notBefore ?? iso(opts.now - DAY_MS);
  const notAfter = spec.notAfter !== undefined ? spec.notAfter : iso(opts.now + (spec.validDays ?? 365) * DAY_MS);
  const productOf = new Map(
    spec.products.flatMap((product) => [[product.name, product.id!] as const, [product.id!, product.id!] as const]),
  );
  const licenses: FileLicense[] = [];
  for (const license of spec.licenses) {
    const productId = productOf.get(license.product);
    if (!productId || !license.id || !license.key) return fail('VALIDATION_FAILED', 'spec: complete the spec first (ids and keys)');
    const policy = checkPolicy(policyFromCreate({ ...license, productId }));
    if (!policy.ok) return fail('INVALID_POLICY', `license ${license.key}: ${policy.error.message}`);
    licenses.push(fileLicense(license.id, productId, license.key, policy.value));
  }
  const payload: LicenseFilePayload = {
    serial: opts.serial,
    issuedAt: iso(opts.now),
    notBefore,
    notAfter,
    customer: spec.customer,
    deploymentId: opts.deploymentId ?? null,
    vendorUrl: spec.vendorUrl ?? null,
    server: opts.server ?? null,
    products: spec.products.map((product) => ({ id: product.id!, name: product.name })),
    licenses,
  };
  const problem = consistency(payload);
  return problem ? fail('VALIDATION_FAILED', problem) : ok(payload);
}

function fileLicense(id: string, productId: string, key: string, policy: LicensePolicy): FileLicense {
  return {
    id,
    productId,
    key,
    seats: policy.seats,
    model: policy.model,
    expiresAt: policy.expiresAt === null ? null : new Date(policy.expiresAt).toISOString(),
    trialDays: policy.trialDays,
    leaseTtlSeconds: policy.leaseTtlSeconds,
    heartbeatIntervalSeconds: policy.heartbeatIntervalSeconds,
    maxOfflineSeconds: policy.maxOfflineSeconds,
    maxOfflineSeats: policy.maxOfflineSeats,
    maxInstancesPerDevice: policy.maxInstancesPerDevice,
    counting: countingOf(policy.sharing) === 'per-instance' ? 'per-instance' : 'per-device',
    sharing: policy.sharing,
    clonePolicy: policy.clonePolicy,
    vmPolicy: policy.vmPolicy,
    lingerSeconds: policy.lingerSeconds,
    overdraftSeats: policy.overdraftSeats,
    // only when there are some: a file without features stays readable by servers from before them
    ...(policy.features.length ? { features: policy.features } : {}),
    // only when the vendor sets one: otherwise the access policy is the site's own
    ...(isOpen(policy.access) ? {} : { access: policy.access }),
  };
}

export function issueLicenseFile(payload: LicenseFilePayload, signer: Signer): LicenseFile {
  return signDocument(LICENSE_FILE_FORMAT, payload, signer);
}

/** Rules across fields that the schema cannot say: unique ids and keys, products exist, policies hold, window in order. */
function consistency(payload: LicenseFilePayload): string | undefined {
  const products = new Set(payload.products.map((product) => product.id));
  if (products.size !== payload.products.length) return 'two products have the same id';
  const ids = new Set<string>();
  const keys = new Set<string>();
  for (const license of payload.licenses) {
    if (!products.has(license.productId)) return `license ${license.id} names product ${license.productId}, which is not in the file`;
    if (ids.has(license.id) || keys.has(license.key)) return `license ${license.id} appears twice`;
    if (normalizeKey(license.key) !== license.key) return `license ${license.id} has a malformed key`;
    ids.add(license.id);
    keys.add(license.key);
    const policy = checkPolicy({ access: wire.OPEN_ACCESS, ...policyOf(license), suspended: false, metadata: {} });
    if (!policy.ok) return `license ${license.id}: ${policy.error.message}`;
  }
  if (payload.notAfter !== null && Date.parse(payload.notAfter) <= Date.parse(payload.notBefore)) return 'notAfter is not after notBefore';
  return undefined;
}

/**
 * The vendor-decided policy of one file entry, as the domain knows it. The access policy is the site's own unless the
 * file carries one (then the file decides it too).
 */
export function policyOf(entry: FileLicense): Omit<LicensePolicy, 'suspended' | 'metadata' | 'access'> & { access?: wire.AccessPolicy } {
  return {
    seats: entry.seats,
    model: entry.model,
    expiresAt: entry.expiresAt === null ? null : Date.parse(entry.expiresAt),
    trialDays: entry.trialDays,
    leaseTtlSeconds: entry.leaseTtlSeconds,
    heartbeatIntervalSeconds: entry.heartbeatIntervalSeconds,
    maxOfflineSeconds: entry.maxOfflineSeconds,
    maxOfflineSeats: entry.maxOfflineSeats,
    maxInstancesPerDevice: entry.maxInstancesPerDevice,
    sharing: entry.sharing ?? wire.SHARING_OF_COUNTING[entry.counting],
    clonePolicy: entry.clonePolicy ?? 'separate',
    vmPolicy: entry.vmPolicy ?? 'allow',
    lingerSeconds: entry.lingerSeconds ?? 0,
    overdraftSeats: entry.overdraftSeats ?? 0,
    features: entry.features ?? [],
    ...(entry.access ? { access: entry.access } : {}),
  };
}

export interface VerifiedLicenseFile {
  payload: LicenseFilePayload;
  /** the envelope as it was verified (stored as is, so it verifies again) */
  envelope: LicenseFile;
}

/**
 * Verifies a license file's text: signature by one of the vendor keys, payload
 * shape and consistency, binding to this server, validity window at `now`
 * (the server's trusted time). Every problem is `ENTITLEMENT_INVALID` with a reason.
 */
export function readLicenseFile(
  text: string,
  vendorKeys: readonly KeyObject[],
  opts: { fingerprint: string | undefined; now: number; checkWindow?: boolean },
): Result<VerifiedLicenseFile> {
  const invalid = (reason: string) => fail('ENTITLEMENT_INVALID', `the license file is not valid: ${reason}`);
  const parsed = parseDocument(text);
  if (!parsed.ok) return invalid(parsed.reason);
  const verified = verifyDocument<LicenseFilePayload>(LICENSE_FILE_FORMAT, parsed.doc, vendorKeys);
  if (!verified.ok) return invalid(verified.reason);
  if (!checkPayload(verified.payload)) return invalid(`payload ${schemaProblem(checkPayload.errors)}`);
  const problem = consistency(verified.payload);
  if (problem) return invalid(problem);
  const payload = verified.payload;
  if (payload.server && opts.fingerprint !== undefined && payload.server.fingerprint !== opts.fingerprint) {
    return invalid(`it is bound to server ${payload.server.fingerprint}, and this server is ${opts.fingerprint}`);
  }
  if (opts.checkWindow !== false) {
    if (Date.parse(payload.notBefore) > opts.now) return invalid(`it is valid only from ${payload.notBefore}`);
    if (payload.notAfter !== null && Date.parse(payload.notAfter) <= opts.now) return invalid(`it expired at ${payload.notAfter}`);
  }
  return ok({ payload: payload, envelope: parsed.doc as LicenseFile });
}
