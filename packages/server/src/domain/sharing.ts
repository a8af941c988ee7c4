/**
 * Which uses share one seat: the license's sharing rule, the share group a use belongs to, and the
 * machine a use says it runs on (for the clone policy).
 *
 * A use (a running instance) belongs to the share group named by the values of the rule's attributes;
 * the uses of one group share a seat, up to the rule's cap (then the next use of the group takes another
 * seat). `instance` shares nothing; `site` puts every use of the license in one group. The classic
 * counting modes are two rules: per-device `{by: [device]}`, per-instance `{by: [instance]}`.
 */
import { SHARING_OF_COUNTING, type CountingView, type ShareAttribute } from '@floatd/protocol';
import { fail, ok, type Result } from './result.js';
import type { License, SharingRule, UseMeta } from './types.js';

export const PER_DEVICE: SharingRule = SHARING_OF_COUNTING['per-device'];
export const PER_INSTANCE: SharingRule = SHARING_OF_COUNTING['per-instance'];

/** Attributes in the order a share group names them. */
const ORDER: readonly ShareAttribute[] = ['device', 'user', 'host', 'display', 'key'];

/** The rule in its one spelling: attributes in a fixed order (so equal rules compare equal). */
export function normalRule(rule: SharingRule): SharingRule {
  const by = rule.by.includes('instance') || rule.by.includes('site') ? rule.by : ORDER.filter((a) => rule.by.includes(a));
  return { by: [...by], cap: rule.cap };
}

function sameRule(a: SharingRule, b: SharingRule): boolean {
  const x = normalRule(a);
  const y = normalRule(b);
  return x.cap === y.cap && x.by.length === y.by.length && x.by.every((v, i) => v === y.by[i]);
}

/** What `counting` shows for a rule: a classic mode where the rule is one, `shared` otherwise. */
export function countingOf(rule: SharingRule): CountingView {
  if (sameRule(rule, PER_DEVICE)) return 'per-device';
  if (sameRule(rule, PER_INSTANCE)) return 'per-instance';
  return 'shared';
}

function isUnshared(rule: SharingRule): boolean {
  return rule.by.includes('instance');
}

/** Rules the schema cannot state: `instance` and `site` stand alone; a cap on `instance` means nothing. */
export function checkRule(rule: SharingRule): Result<SharingRule> {
  const alone = rule.by.filter((a) => a === 'instance' || a === 'site');
  if (alone.length && rule.by.length > 1) {
    return fail(
      'INVALID_POLICY',
      `sharing by ${alone[0]} stands alone; it cannot be combined with ${rule.by.filter((a) => a !== alone[0]).join(', ')}`,
    );
  }
  if (rule.by.includes('instance') && rule.cap !== null)
    return fail('INVALID_POLICY', 'sharing by instance shares nothing: it takes no cap');
  return ok(normalRule(rule));
}

/** Readable one-line form: `user+host, cap 3`. */
export function describeRule(rule: SharingRule): string {
  return normalRule(rule).by.join('+') + (rule.cap === null ? '' : `, cap ${rule.cap}`);
}

/** What a checkout says about the use it asks a seat for (the command's client claims). */
export interface UseClaims {
  hostname?: string | undefined;
  user?: string | undefined;
  display?: string | undefined;
  shareKey?: string | undefined;
  bootId?: string | undefined;
  vm?: boolean | undefined;
  container?: boolean | undefined;
}

export function useMeta(claims: UseClaims, address: string | null): UseMeta {
  return {
    hostname: claims.hostname ?? null,
    user: claims.user ?? null,
    display: claims.display ?? null,
    shareKey: claims.shareKey ?? null,
    bootId: claims.bootId ?? null,
    address,
    vm: claims.vm ?? null,
    container: claims.container ?? null,
  };
}

export const EMPTY_META: UseMeta = useMeta({}, null);

/** The client says it runs in a virtual machine or a container (what the VM policy acts on). */
export function isVirtual(meta: UseMeta): boolean {
  return meta.vm === true || meta.container === true;
}

/**
 * The share group of a use, or null when the use shares with no one (sharing by instance; a VM use under
 * `count-per-instance`; a use that lacks one of the rule's attributes — its client did not send it, and an
 * absent value must never match another absent value, or leaving it out would be a free seat).
 */
export function shareGroupOf(license: Pick<License, 'sharing' | 'vmPolicy'>, deviceId: string, meta: UseMeta): string | null {
  const rule = normalRule(license.sharing);
  if (isUnshared(rule)) return null;
  if (license.vmPolicy === 'count-per-instance' && isVirtual(meta)) return null;
  if (rule.by.includes('site')) return 'site';
  const parts: string[] = [];
  for (const attr of rule.by) {
    const value = attributeValue(attr, deviceId, meta);
    if (value === null || value === '') return null;
    parts.push(`${attr}=${encodeURIComponent(value)}`);
  }
  return parts.join('&');
}

/** The share group of a seat no one shares: named after its lease. */
export function unsharedGroup(leaseId: string): string {
  return `instance=${leaseId}`;
}

export function isUnsharedGroup(group: string): boolean {
  return group.startsWith('instance=');
}

/** Whether a share group's seats are all among the device's leases (the group names the device), so need no read of their own. */
export function groupNamesDevice(group: string): boolean {
  return group.startsWith('device=');
}

/** The attribute values a share group names (`user=alice&host=ws%201` → user alice, host ws 1). */
export function groupValues(group: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of group.split('&')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq), decodeURIComponent(part.slice(eq + 1)));
  }
  return out;
}

function attributeValue(attr: ShareAttribute, deviceId: string, meta: UseMeta): string | null {
  switch (attr) {
    case 'device':
      return deviceId;
    case 'user':
      return meta.user;
    case 'host':
      return meta.hostname;
    case 'display':
      return meta.display;
    case 'key':
      return meta.shareKey;
    default:
      return null;
  }
}

/** Whether the rule shares uses by device fingerprint (the clone policy applies there). */
export function sharesByDevice(rule: SharingRule): boolean {
  return rule.by.includes('device');
}

/**
 * Whether two uses may run on one machine: every part known on both sides (host name, boot id, client
 * address) is equal. A part one side did not send proves nothing.
 */
export function sameMachine(a: UseMeta, b: UseMeta): boolean {
  const differs = (x: string | null, y: string | null) => x !== null && y !== null && x !== y;
  return !(differs(a.hostname, b.hostname) || differs(a.bootId, b.bootId) || differs(a.address, b.address));
}

/** A machine as the device view lists it: `host (boot …, address)`. */
export function machineLabel(meta: UseMeta): string {
  const extra = [meta.bootId ? `boot ${meta.bootId.slice(0, 8)}` : null, meta.address].filter((x): x is string => !!x);
  return `${meta.hostname ?? 'unknown host'}${extra.length ? ` (${extra.join(', ')})` : ''}`;
}

/** The machines kept on a device record. */
export const MACHINES_SEEN_MAX = 16;
