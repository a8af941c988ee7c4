/**
 * Option value parsers of the admin commands: a bad value is commander's error, exit code 2,
 * before any request is sent.
 */
import { InvalidArgumentError } from 'commander';
import * as protocol from '@floatd/protocol';

export function wholeNumber(what: string, min = 0) {
  return (v: string): number => {
    if (!/^\d{1,15}$/.test(v.trim())) throw new InvalidArgumentError(`${what} must be a whole number.`);
    const n = Number(v.trim());
    if (n < min) throw new InvalidArgumentError(`${what} must be at least ${min}.`);
    return n;
  };
}
/** `none` clears a nullable field. Commander turns a parser's `null` into '', hence a marker, mapped to null in policyBody. */
export const NONE = Symbol('none');
export function orNone<T>(parse: (v: string) => T) {
  return (v: string): T | typeof NONE => (v.trim().toLowerCase() === 'none' ? NONE : parse(v));
}
export function timestamp(v: string): string {
  const s = v.trim();
  // A date alone (2027-01-31) is taken as midnight UTC; a date-time needs a zone (Z or +02:00).
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/i.test(s) || Number.isNaN(Date.parse(s))) {
    throw new InvalidArgumentError('expected an ISO 8601 time with a zone, e.g. 2027-01-31T00:00:00Z, or a date 2027-01-31 (UTC).');
  }
  return new Date(s).toISOString();
}
export function jsonObject(v: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    throw new InvalidArgumentError('expected a JSON object, e.g. \'{"customer":"ACME"}\'.');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidArgumentError('expected a JSON object.');
  return parsed as Record<string, unknown>;
}

/** The license sharing rule's attributes, as the protocol declares them. */
const SHARE_ATTRIBUTES = ['device', 'user', 'host', 'display', 'key', 'instance', 'site'] as const;
export type ShareAttributeName = (typeof SHARE_ATTRIBUTES)[number];

/** `--share-by user,host`: a comma list of sharing attributes (`instance` and `site` stand alone: the server says so). */
export function shareAttributes(v: string): ShareAttributeName[] {
  const parts = v
    .split(/[,+]/)
    .map((p) => p.trim().toLowerCase())
    .filter(Boolean);
  if (parts.length === 0) throw new InvalidArgumentError(`expected one or more of ${SHARE_ATTRIBUTES.join(', ')}, separated by commas.`);
  for (const p of parts)
    if (!(SHARE_ATTRIBUTES as readonly string[]).includes(p))
      throw new InvalidArgumentError(`unknown sharing attribute "${p}": expected ${SHARE_ATTRIBUTES.join(', ')}.`);
  if (new Set(parts).size !== parts.length) throw new InvalidArgumentError('an attribute is named twice.');
  return parts as ShareAttributeName[];
}

/** `user:ann,group:cad`: a comma list of principals (user:, host: or group:). */
export function principals(v: string): string[] {
  const parts = v
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of parts)
    if (!/^(user|host|group):.+$/.test(p)) throw new InvalidArgumentError(`"${p}" is not user:<name>, host:<name> or group:<name>.`);
  return parts;
}

/** `user:ann=2` (repeatable): a principal and a number. */
type FeatureAccess = {
  allow: string[] | null;
  deny: string[];
  limits: { principal: string; max: number }[];
  reservations: { principal: string; seats: number }[];
};
type FeatureFlag = { name: string; seats: number; counting?: 'seat' | 'instance'; leaseTtlSeconds?: number; access?: FeatureAccess };

/**
 * `--feature "render=5"` (repeatable): a feature pool and its seats, then optionally `instance` (one seat per running
 * instance that needs it) and `ttl=<s>` (its own lease lifetime): `--feature "render=5 instance ttl=120"`.
 */
export function featurePool(v: string, previous: FeatureFlag[] = []): FeatureFlag[] {
  const [head = '', ...opts] = v.trim().split(/\s+/);
  const eq = head.indexOf('=');
  const name = head.slice(0, eq);
  const n = head.slice(eq + 1);
  const usage =
    '--feature takes "<name>=<seats> [instance] [ttl=<seconds>] [allow=<principals>] [deny=<principals>] [limit=<principal>=<n>] [reserve=<principal>=<n>]", e.g. "render=5 instance ttl=120 allow=group:render limit=user:ann=1"';
  if (eq < 0 || !/^[a-z0-9][a-z0-9_.-]{0,63}$/.test(name) || !/^\d{1,7}$/.test(n) || Number(n) < 1)
    throw new InvalidArgumentError(`${usage} (names: a-z, 0-9, _ . -; seats at least 1).`);
  const pool: FeatureFlag = { name, seats: Number(n) };
  const access = (): FeatureAccess => (pool.access ??= { allow: null, deny: [], limits: [], reservations: [] });
  const counted = (v: string) => {
    const eq = v.lastIndexOf('=');
    if (eq < 0 || !/^(user|host|group):.+$/.test(v.slice(0, eq)) || !/^\d{1,7}$/.test(v.slice(eq + 1)))
      throw new InvalidArgumentError(`${usage}; "${v}" is not <user|host|group>:<name>=<number>.`);
    return { principal: v.slice(0, eq), n: Number(v.slice(eq + 1)) };
  };
  for (const o of opts) {
    if (o === 'instance' || o === 'seat') pool.counting = o;
    else if (/^ttl=\d{1,9}$/.test(o)) pool.leaseTtlSeconds = Number(o.slice(4));
    else if (o.startsWith('allow=')) access().allow = principals(o.slice(6));
    else if (o.startsWith('deny=')) access().deny = principals(o.slice(5));
    else if (o.startsWith('limit=')) {
      const { principal, n } = counted(o.slice(6));
      access().limits.push({ principal, max: n });
    } else if (o.startsWith('reserve=')) {
      const { principal, n } = counted(o.slice(8));
      access().reservations.push({ principal, seats: n });
    } else throw new InvalidArgumentError(`${usage}; "${o}" is not one of them.`);
  }
  return [...previous, pool];
}

export function principalCount(what: string) {
  return (v: string, previous: { principal: string; n: number }[] = []): { principal: string; n: number }[] => {
    const eq = v.lastIndexOf('=');
    const principal = v.slice(0, eq).trim();
    const n = v.slice(eq + 1).trim();
    if (eq < 0 || !/^(user|host|group):.+$/.test(principal) || !/^\d{1,7}$/.test(n))
      throw new InvalidArgumentError(`${what} takes <user|host|group>:<name>=<number>, e.g. group:cad=2.`);
    return [...previous, { principal, n: Number(n) }];
  };
}

/**
 * `--meta key=value` (repeatable): one metadata entry, its value a string. The first `=` splits, so a value may hold `=`.
 * Keys are 1-64 characters, as the wire schema says.
 */
export function metaPair(v: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = v.indexOf('=');
  const key = eq < 0 ? '' : v.slice(0, eq).trim();
  if (eq < 0 || key === '') throw new InvalidArgumentError('expected key=value, e.g. crm=4711.');
  if (key.length > 64) throw new InvalidArgumentError('a metadata key is at most 64 characters.');
  return { ...previous, [key]: v.slice(eq + 1) };
}

/** `--unset-meta key` (repeatable). */
export function metaKey(v: string, previous: string[] = []): string[] {
  if (v.trim() === '') throw new InvalidArgumentError('expected a metadata key.');
  return [...previous, v.trim()];
}

/**
 * A customer's contact email or phone, checked against the wire schema's own pattern and length (so the CLI never
 * refuses what the server takes), before any request.
 */
export function contactField(field: 'email' | 'phone', example: string) {
  const schema = protocol.CustomerContact.properties[field];
  const pattern = new RegExp(schema.pattern ?? '');
  return (v: string): string => {
    const s = v.trim();
    if (s.length < (schema.minLength ?? 0) || s.length > (schema.maxLength ?? Number.POSITIVE_INFINITY) || !pattern.test(s))
      throw new InvalidArgumentError(
        `expected ${field === 'email' ? 'an email address' : 'a phone number'}, e.g. ${example} (at most ${schema.maxLength} characters).`,
      );
    return s;
  };
}
