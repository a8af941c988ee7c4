/**
 * Option value parsers of the admin commands: a bad value is commander's error, exit code 2,
 * before any request is sent.
 */
import { InvalidArgumentError } from 'commander';

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
