/**
 * What an on-premise server sends to its vendor, signed with its identity key:
 * the activation request (who it is: fingerprint and public key) and the usage
 * report (peak concurrency, grants and denials per key and day, for true-up billing).
 */
import { hostname } from 'node:os';
import { Type, type Static } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import * as wire from '@floatd/protocol';
import { fail, ok, type Result } from '../domain/result.js';
import type { Store } from '../store/port.js';
import type { ServerIdentity } from './identity.js';
import type { LicenseFilePayload } from './licenseFile.js';
import { canonical } from '../keys/documents.js';
import { sha, type SealedState } from './sealedState.js';
import { publicKeyFrom, signDocument, verifyDocument, type Envelope } from '../keys/documents.js';

const DAY_MS = 86_400_000;
const PublicKey = Type.String({ pattern: '^[A-Za-z0-9_-]{43}$' });

export const ActivationRequestPayload = wire.Obj({
  fingerprint: Type.String({ minLength: 8, maxLength: 128 }),
  publicKey: PublicKey,
  createdAt: wire.Timestamp,
  hostname: Type.String({ maxLength: 255 }),
  version: Type.String({ maxLength: 50 }),
});
export type ActivationRequestPayload = Static<typeof ActivationRequestPayload>;

const Counts = { peakSeats: Type.Integer({ minimum: 0 }), checkouts: Type.Integer({ minimum: 0 }), denials: Type.Integer({ minimum: 0 }) };
/**
 * Overdraft for the vendor's true-up (absent in reports from before overdraft): the most seats held beyond the count
 * at once (also never below the sealed peak's excess over the count) and the seats granted beyond it.
 */
const OverdraftCounts = {
  peakOverdraft: Type.Optional(Type.Integer({ minimum: 0 })),
  overdraftCheckouts: Type.Optional(Type.Integer({ minimum: 0 })),
};
export const UsageReportPayload = wire.Obj({
  deploymentId: Type.Union([Type.String({ maxLength: 100 }), Type.Null()]),
  customer: wire.Obj({ name: Type.String(), id: Type.Optional(Type.String()) }),
  fingerprint: Type.String({ minLength: 8, maxLength: 128 }),
  publicKey: PublicKey,
  licenseFileSerial: Type.Integer({ minimum: 1 }),
  generatedAt: wire.Timestamp,
  from: wire.Timestamp,
  to: wire.Timestamp,
  licenses: Type.Array(
    wire.Obj({
      licenseId: wire.LicenseId,
      key: Type.String(),
      seats: Type.Integer({ minimum: 1 }),
      ...Counts,
      ...OverdraftCounts,
      days: Type.Array(wire.Obj({ day: Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$' }), ...Counts, ...OverdraftCounts })),
    }),
  ),
  /** the report's place in this server's sequence, and the hash of the report before it (the vendor checks continuity) */
  sequence: Type.Optional(Type.Integer({ minimum: 1 })),
  previousReportHash: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
  /** what the server's sealed state says about its own integrity since the last report */
  integrity: Type.Optional(
    wire.Obj({
      tampered: Type.Boolean(),
      tamperedSince: Type.Union([wire.Timestamp, Type.Null()]),
      events: Type.Array(
        wire.Obj({
          at: wire.Timestamp,
          event: Type.Union([Type.Literal('tampered'), Type.Literal('repaired')]),
          reason: Type.String({ maxLength: 2000 }),
        }),
      ),
      /** days whose stored hourly usage was below the sealed usage (the report shows the sealed figures) */
      usageBelowSeal: Type.Array(wire.Obj({ licenseId: wire.LicenseId, day: Type.String() })),
    }),
  ),
});
export type UsageReportPayload = Static<typeof UsageReportPayload>;

type AddFormats = (ajv: Ajv) => Ajv;
const addFormats: AddFormats =
  (addFormatsModule as unknown as { default?: AddFormats }).default ?? (addFormatsModule as unknown as AddFormats);
const ajv = addFormats(new Ajv({ strict: false }));
const checkRequest = ajv.compile(ActivationRequestPayload);
const checkReport = ajv.compile(UsageReportPayload);

export function activationRequest(identity: ServerIdentity, now: number, version: string): Envelope<ActivationRequestPayload> {
  return signDocument(
    'floatd-activation-request/1',
    {
      fingerprint: identity.fingerprint,
      publicKey: identity.publicKey,
      createdAt: new Date(now).toISOString(),
      hostname: hostname().slice(0, 255),
      version,
    },
    identity.signer,
  );
}

/** An activation request is signed by the key it carries: proof that the sender holds it. */
export function verifyActivationRequest(doc: unknown): Result<ActivationRequestPayload> {
  const claimed = (doc as { payload?: { publicKey?: unknown } } | null)?.payload?.publicKey;
  if (typeof claimed !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(claimed))
    return fail('VALIDATION_FAILED', 'the activation request carries no server public key');
  let key: ReturnType<typeof publicKeyFrom>;
  try {
    key = publicKeyFrom(claimed);
  } catch {
    return fail('VALIDATION_FAILED', 'the activation request carries a public key that is not an Ed25519 key');
  }
  const verified = verifyDocument<ActivationRequestPayload>('floatd-activation-request/1', doc, [key]);
  if (!verified.ok) return fail('VALIDATION_FAILED', `the activation request does not verify: ${verified.reason}`);
  if (!checkRequest(verified.payload))
    return fail(
      'VALIDATION_FAILED',
      `the activation request is malformed: ${checkRequest.errors?.[0]?.instancePath} ${checkRequest.errors?.[0]?.message}`,
    );
  return ok(verified.payload);
}

/**
 * The usage of every key of the license file in force, per UTC day, from the
 * hourly usage the store keeps: the day's peak is the highest hourly peak.
 */
export async function usageReport(
  store: Store,
  file: LicenseFilePayload,
  identity: ServerIdentity,
  range: { from: number; to: number },
  now: number,
  seal?: SealedState,
): Promise<Envelope<UsageReportPayload>> {
  const licenses: UsageReportPayload['licenses'] = [];
  // The hourly rows are the customer's to edit; the sealed usage is not: a day is reported at the higher of the two.
  const sealed = seal ? await seal.forReport() : undefined;
  const below: { licenseId: string; day: string }[] = [];
  for (const license of file.licenses) {
    const hours = await store.usage(license.id, range.from, range.to);
    type DayCounts = { peakSeats: number; checkouts: number; denials: number; peakOverdraft: number; overdraftCheckouts: number };
    const zero = (): DayCounts => ({ peakSeats: 0, checkouts: 0, denials: 0, peakOverdraft: 0, overdraftCheckouts: 0 });
    const byDay = new Map<string, DayCounts>();
    for (const hour of hours) {
      const day = new Date(hour.hour - (hour.hour % DAY_MS)).toISOString().slice(0, 10);
      const counts = byDay.get(day) ?? zero();
      counts.peakSeats = Math.max(counts.peakSeats, hour.peakSeats);
      counts.checkouts += hour.checkouts;
      counts.denials += hour.denials;
      counts.peakOverdraft = Math.max(counts.peakOverdraft, hour.peakOverdraft);
      counts.overdraftCheckouts += hour.overdraftCheckouts;
      byDay.set(day, counts);
    }
    for (const [day, [peak, checkouts, denials]] of Object.entries(sealed?.usage[license.id] ?? {})) {
      const start = Date.parse(day);
      if (start + DAY_MS <= range.from || start >= range.to) continue;
      const counts = byDay.get(day) ?? zero();
      if (counts.peakSeats < peak || counts.checkouts < checkouts || counts.denials < denials) below.push({ licenseId: license.id, day });
      byDay.set(day, {
        peakSeats: Math.max(counts.peakSeats, peak),
        checkouts: Math.max(counts.checkouts, checkouts),
        denials: Math.max(counts.denials, denials),
        // the sealed peak is the customer's to keep: its excess over the count is overdraft whatever the hourly rows say
        peakOverdraft: Math.max(counts.peakOverdraft, peak - license.seats),
        overdraftCheckouts: counts.overdraftCheckouts,
      });
    }
    // Days with no seat held and nothing asked are left out; a day a seat was merely held (no event) still counts.
    const days = [...byDay.entries()]
      .filter(([, counts]) => counts.peakSeats > 0 || counts.checkouts > 0 || counts.denials > 0)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([day, counts]) => ({ day, ...counts }));
    licenses.push({
      licenseId: license.id,
      key: license.key,
      seats: license.seats,
      peakSeats: Math.max(0, ...days.map((counts) => counts.peakSeats)),
      checkouts: days.reduce((n, counts) => n + counts.checkouts, 0),
      denials: days.reduce((n, counts) => n + counts.denials, 0),
      peakOverdraft: Math.max(0, ...days.map((counts) => counts.peakOverdraft)),
      overdraftCheckouts: days.reduce((n, counts) => n + counts.overdraftCheckouts, 0),
      days,
    });
  }
  const events = sealed ? [...sealed.events] : [];
  if (below.length)
    events.push({
      at: new Date(now).toISOString(),
      event: 'tampered',
      reason: `stored hourly usage below the sealed usage on ${below.length} key-day(s)`,
    });
  const doc = signDocument(
    'floatd-usage-report/1',
    {
      deploymentId: file.deploymentId,
      customer: file.customer,
      fingerprint: identity.fingerprint,
      publicKey: identity.publicKey,
      licenseFileSerial: file.serial,
      generatedAt: new Date(now).toISOString(),
      from: new Date(range.from).toISOString(),
      to: new Date(range.to).toISOString(),
      licenses,
      ...(sealed
        ? {
            sequence: sealed.seq,
            previousReportHash: sealed.previous,
            integrity: { tampered: sealed.tampered !== null, tamperedSince: sealed.tampered?.since ?? null, events, usageBelowSeal: below },
          }
        : {}),
    },
    identity.signer,
  );
  if (seal && sealed) await seal.reported(sealed.seq, reportHash(doc), sealed.events.length);
  return doc;
}

/** The hash that chains reports: SHA-256 of the canonical document (both sides compute it from the parsed document). */
export function reportHash(doc: unknown): string {
  return sha(canonical(doc));
}

/** Checks a usage report against the server key the vendor recorded for the deployment. */
export function verifyUsageReport(doc: unknown, serverPublicKey: string): Result<UsageReportPayload> {
  const verified = verifyDocument<UsageReportPayload>('floatd-usage-report/1', doc, [publicKeyFrom(serverPublicKey)]);
  if (!verified.ok) return fail('USAGE_REPORT_INVALID', `the usage report does not verify: ${verified.reason}`);
  if (!checkReport(verified.payload))
    return fail(
      'USAGE_REPORT_INVALID',
      `the usage report is malformed: ${checkReport.errors?.[0]?.instancePath} ${checkReport.errors?.[0]?.message}`,
    );
  return ok(verified.payload);
}
