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
import { Type, type Static } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { KeyObject } from 'node:crypto';
import * as W from '@floatd/protocol';
import { normalizeKey } from '@floatd/protocol';
import { checkPolicy, policyFromCreate } from '../domain/policy.js';
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
export const FileLicense = W.Obj({
  id: W.LicenseId,
  productId: W.ProductId,
  key: Key,
  seats: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  model: W.LicenseModel,
  expiresAt: Nullable(W.Timestamp),
  trialDays: Nullable(Type.Integer({ minimum: 1, maximum: 3650 })),
  leaseTtlSeconds: Nullable(Type.Integer({ minimum: 10, maximum: 10 * 365 * 86400 })),
  heartbeatIntervalSeconds: Type.Integer({ minimum: 1, maximum: 10 * 365 * 86400 }),
  maxOfflineSeconds: Type.Integer({ minimum: 0, maximum: 10 * 365 * 86400 }),
  maxOfflineSeats: Nullable(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  maxInstancesPerDevice: Type.Integer({ minimum: 1, maximum: 10_000 }),
  counting: W.CountingMode,
});
export type FileLicense = Static<typeof FileLicense>;

export const LicenseFilePayload = W.Obj({
  serial: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  issuedAt: W.Timestamp,
  notBefore: W.Timestamp,
  notAfter: Nullable(W.Timestamp),
  customer: W.Obj({ name: Name, id: Type.Optional(Type.String({ maxLength: 100 })) }),
  /** the vendor's deployment this file belongs to (online activation and usage upload) */
  deploymentId: Nullable(Type.String({ maxLength: 100 })),
  /** where the vendor's hosted floatd answers (usage reports online); null for air-gapped sites */
  vendorUrl: Nullable(Type.String({ maxLength: 500 })),
  /** the one server this file is for; null = any server */
  server: Nullable(
    W.Obj({ fingerprint: Type.String({ minLength: 8, maxLength: 128 }), publicKey: Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' }) }),
  ),
  products: Type.Array(W.Obj({ id: W.ProductId, name: Name }), { maxItems: 1000 }),
  licenses: Type.Array(FileLicense, { maxItems: 10_000 }),
});
export type LicenseFilePayload = Static<typeof LicenseFilePayload>;
export type LicenseFile = Envelope<LicenseFilePayload>;

/** What the vendor writes to issue a file: products by name, keys with their policy; ids and keys are filled in when missing. */
export const LicenseSpec = W.Obj({
  customer: W.Obj({ name: Name, id: Type.Optional(Type.String({ maxLength: 100 })) }),
  notBefore: Type.Optional(W.Timestamp),
  notAfter: Type.Optional(Nullable(W.Timestamp)),
  /** validity from the issue date, when notAfter is not given (default 365) */
  validDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
  vendorUrl: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  products: Type.Array(W.Obj({ id: Type.Optional(W.ProductId), name: Name }), { minItems: 1, maxItems: 1000 }),
  licenses: Type.Array(
    W.Obj({
      id: Type.Optional(W.LicenseId),
      key: Type.Optional(Type.String({ maxLength: 64 })),
      /** product name (or id) from `products` */
      product: Type.String({ minLength: 1, maxLength: 200 }),
      seats: FileLicense.properties.seats,
      model: Type.Optional(W.LicenseModel),
      expiresAt: Type.Optional(Nullable(W.Timestamp)),
      trialDays: Type.Optional(FileLicense.properties.trialDays),
      leaseTtlSeconds: Type.Optional(FileLicense.properties.leaseTtlSeconds),
      heartbeatIntervalSeconds: Type.Optional(FileLicense.properties.heartbeatIntervalSeconds),
      maxOfflineSeconds: Type.Optional(FileLicense.properties.maxOfflineSeconds),
      maxOfflineSeats: Type.Optional(FileLicense.properties.maxOfflineSeats),
      maxInstancesPerDevice: Type.Optional(FileLicense.properties.maxInstancesPerDevice),
      counting: Type.Optional(W.CountingMode),
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
  const e = errors?.[0];
  return e ? `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}` : 'invalid';
}

/**
 * Completes a spec in place (ids and keys for the entries that have none), so the
 * vendor keeps the completed spec and every renewal names the same keys.
 * Returns a problem description when the spec is not usable.
 */
export function completeSpec(spec: unknown): Result<LicenseSpec> {
  if (!checkSpec(spec)) return fail('VALIDATION_FAILED', `spec: ${schemaProblem(checkSpec.errors)}`);
  const s = spec as LicenseSpec;
  for (const p of s.products) p.id ??= newId('prd');
  const names = new Map(s.products.flatMap((p) => [[p.name, p.id!] as const, [p.id!, p.id!] as const]));
  for (const l of s.licenses) {
    if (!names.has(l.product)) return fail('VALIDATION_FAILED', `spec: license for "${l.product}" names no product in products`);
    l.id ??= newId('lic');
    if (l.key === undefined) l.key = newLicenseKey();
    const key = normalizeKey(l.key);
    if (!key) return fail('VALIDATION_FAILED', `spec: "${l.key}" is not a well-formed license key`);
    l.key = key;
  }
  return ok(s);
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
  const productOf = new Map(spec.products.flatMap((p) => [[p.name, p.id!] as const, [p.id!, p.id!] as const]));
  const licenses: FileLicense[] = [];
  for (const l of spec.licenses) {
    const productId = productOf.get(l.product);
    if (!productId || !l.id || !l.key) return fail('VALIDATION_FAILED', 'spec: complete the spec first (ids and keys)');
    const policy = checkPolicy(policyFromCreate({ ...l, productId }));
    if (!policy.ok) return fail('INVALID_POLICY', `license ${l.key}: ${policy.error.message}`);
    licenses.push(fileLicense(l.id, productId, l.key, policy.value));
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
    products: spec.products.map((p) => ({ id: p.id!, name: p.name })),
    licenses,
  };
  const problem = consistency(payload);
  return problem ? fail('VALIDATION_FAILED', problem) : ok(payload);
}

function fileLicense(id: string, productId: string, key: string, p: LicensePolicy): FileLicense {
  return {
    id,
    productId,
    key,
    seats: p.seats,
    model: p.model,
    expiresAt: p.expiresAt === null ? null : new Date(p.expiresAt).toISOString(),
    trialDays: p.trialDays,
    leaseTtlSeconds: p.leaseTtlSeconds,
    heartbeatIntervalSeconds: p.heartbeatIntervalSeconds,
    maxOfflineSeconds: p.maxOfflineSeconds,
    maxOfflineSeats: p.maxOfflineSeats,
    maxInstancesPerDevice: p.maxInstancesPerDevice,
    counting: p.counting,
  };
}

export function issueLicenseFile(payload: LicenseFilePayload, signer: Signer): LicenseFile {
  return signDocument(LICENSE_FILE_FORMAT, payload, signer);
}

/** Rules across fields that the schema cannot say: unique ids and keys, products exist, policies hold, window in order. */
function consistency(p: LicenseFilePayload): string | undefined {
  const products = new Set(p.products.map((x) => x.id));
  if (products.size !== p.products.length) return 'two products have the same id';
  const ids = new Set<string>();
  const keys = new Set<string>();
  for (const l of p.licenses) {
    if (!products.has(l.productId)) return `license ${l.id} names product ${l.productId}, which is not in the file`;
    if (ids.has(l.id) || keys.has(l.key)) return `license ${l.id} appears twice`;
    if (normalizeKey(l.key) !== l.key) return `license ${l.id} has a malformed key`;
    ids.add(l.id);
    keys.add(l.key);
    const policy = checkPolicy({ ...policyOf(l), suspended: false, metadata: {} });
    if (!policy.ok) return `license ${l.id}: ${policy.error.message}`;
  }
  if (p.notAfter !== null && Date.parse(p.notAfter) <= Date.parse(p.notBefore)) return 'notAfter is not after notBefore';
  return undefined;
}

/** The vendor-decided policy of one file entry, as the domain knows it. */
export function policyOf(l: FileLicense): Omit<LicensePolicy, 'suspended' | 'metadata'> {
  return {
    seats: l.seats,
    model: l.model,
    expiresAt: l.expiresAt === null ? null : Date.parse(l.expiresAt),
    trialDays: l.trialDays,
    leaseTtlSeconds: l.leaseTtlSeconds,
    heartbeatIntervalSeconds: l.heartbeatIntervalSeconds,
    maxOfflineSeconds: l.maxOfflineSeconds,
    maxOfflineSeats: l.maxOfflineSeats,
    maxInstancesPerDevice: l.maxInstancesPerDevice,
    counting: l.counting,
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
  const v = verifyDocument<LicenseFilePayload>(LICENSE_FILE_FORMAT, parsed.doc, vendorKeys);
  if (!v.ok) return invalid(v.reason);
  if (!checkPayload(v.payload)) return invalid(`payload ${schemaProblem(checkPayload.errors)}`);
  const problem = consistency(v.payload);
  if (problem) return invalid(problem);
  const p = v.payload;
  if (p.server && opts.fingerprint !== undefined && p.server.fingerprint !== opts.fingerprint) {
    return invalid(`it is bound to server ${p.server.fingerprint}, and this server is ${opts.fingerprint}`);
  }
  if (opts.checkWindow !== false) {
    if (Date.parse(p.notBefore) > opts.now) return invalid(`it is valid only from ${p.notBefore}`);
    if (p.notAfter !== null && Date.parse(p.notAfter) <= opts.now) return invalid(`it expired at ${p.notAfter}`);
  }
  return ok({ payload: p, envelope: parsed.doc as LicenseFile });
}
