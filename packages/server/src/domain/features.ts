/**
 * Feature pools: named pools of a license beside its base pool (FlexNet FEATURE lines, Cryptlex floating
 * features), each with its own seat count — `core` 40 as the base pool, `render` 5 as a feature.
 *
 * A use asks for pools by name (`base` and feature names; `base` alone by default) and gets all of them or
 * none. A seat holds one seat of each pool its uses asked for: whether it holds a base seat is fixed when it
 * is taken (a use joins only a seat of its group with the same answer), and its features are its uses'
 * features together, so they grow when a use that needs more joins (each added feature must have room) and
 * shrink when the last use that needed one leaves. A feature's seats in use are the license's seats that
 * hold it, counted from the rows under the license lock: there is no counter to drift or to edit.
 */
import { BASE_POOL } from '@floatd/protocol';
import { fail, ok, type DomainError, type Result } from './result.js';
import type { Instance, Lease, License } from './types.js';
import { accessRefusal, groupsNamed, isOpen, joinRefusal, newSeatRefusal, type Groups } from './access.js';

/** What a use asks for: a base seat or not, and feature pools (sorted names). */
export interface PoolRequest {
  base: boolean;
  features: string[];
}

export const BASE_ONLY: PoolRequest = { base: true, features: [] };

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The pools a checkout names, checked against the license's features; none named: the base pool. */
export function poolRequest(license: License, names: readonly string[] | undefined): Result<PoolRequest> {
  if (names === undefined) return ok(BASE_ONLY);
  const known = new Set(license.features.map((f) => f.name));
  const unknown = names.find((n) => n !== BASE_POOL && !known.has(n));
  if (unknown !== undefined) {
    return fail('UNKNOWN_FEATURE', `this license has no feature ${unknown} (it has: ${[BASE_POOL, ...known].join(', ')})`, {
      feature: unknown,
      features: [BASE_POOL, ...known],
    });
  }
  return ok({ base: names.includes(BASE_POOL), features: names.filter((n) => n !== BASE_POOL).sort(byName) });
}

/** The pools as the wire lists them: `base` first when held, then the features. */
export function poolsOf(base: boolean, features: readonly string[]): string[] {
  return base ? [BASE_POOL, ...features] : [...features];
}

/** The features a seat holds for these uses: theirs together, sorted. */
export function featuresOf(instances: readonly Pick<Instance, 'features'>[]): string[] {
  const all = new Set<string>();
  for (const i of instances) for (const f of i.features) all.add(f);
  return [...all].sort(byName);
}

/** A seat's features after its uses changed: a seat without uses (lingering, borrowed) keeps what it held. */
export function refit(lease: Lease, instances: readonly Instance[]): Lease {
  return instances.length === 0
    ? { ...lease, instances: [...instances] }
    : { ...lease, instances: [...instances], features: featuresOf(instances) };
}

/**
 * A seat's lease lifetime without a heartbeat: the shortest of its pools' (the base pool's and a feature's without one
 * of its own: the license's `leaseTtlSeconds`); null when none of them has one.
 */
export function seatTtlSeconds(license: License, base: boolean, features: readonly string[]): number | null {
  const ttls: (number | null)[] = base || features.length === 0 ? [license.leaseTtlSeconds] : [];
  for (const name of features) ttls.push(license.features.find((f) => f.name === name)?.leaseTtlSeconds ?? license.leaseTtlSeconds);
  const set = ttls.filter((t): t is number => t !== null);
  return set.length ? Math.min(...set) : null;
}

/** The longest lease lifetime of any pool of the license (a restart's reclamation grace must cover every seat's). */
export function longestTtlSeconds(license: License): number | null {
  const set = [license.leaseTtlSeconds, ...license.features.map((f) => f.leaseTtlSeconds ?? null)].filter((t): t is number => t !== null);
  return set.length ? Math.max(...set) : null;
}

export interface FeatureShortfall {
  feature: string;
  seatsTotal: number;
  seatsUsed: number;
}

/** Whether a feature counts one seat per running instance that needs it (`counting: instance`), not one per seat. */
export function perInstance(license: License, feature: string): boolean {
  return license.features.some((f) => f.name === feature && f.counting === 'instance');
}

/**
 * Seats of each feature held by `leases`, but those in `skip`: a seat holds one of each of its features, or, for a
 * feature counted per instance, one per use on it that needs it (at least one while the seat holds it: a lingering or
 * borrowed seat without uses keeps what it held).
 */
export function featureCounts(leases: readonly Lease[], skip: ReadonlySet<string> = new Set(), license?: License): Map<string, number> {
  const counts = new Map<string, number>();
  for (const l of leases) {
    if (skip.has(l.id)) continue;
    for (const f of l.features) {
      const n = license && perInstance(license, f) ? Math.max(1, l.instances.filter((i) => i.features.includes(f)).length) : 1;
      counts.set(f, (counts.get(f) ?? 0) + n);
    }
  }
  return counts;
}

/**
 * The first of `wanted` that `seat` (null: a new seat) does not hold yet and whose pool has no seat left, counting
 * every row of `leases` (the license's seats holding the features asked for, dead or not: a dead seat's holder may
 * still revive it) but those in `freed`.
 */
export function featureShortfall(
  license: License,
  leases: readonly Lease[],
  seat: Lease | null,
  wanted: readonly string[],
  freed: ReadonlySet<string>,
  /** live waiters before this checkout in a feature's queue: that many free seats are theirs (`domain/queue.ts`) */
  ahead: (feature: string) => number = () => 0,
  /** the features the asking use holds already (a feature change): they need no new seat */
  useHas: readonly string[] = [],
): FeatureShortfall | undefined {
  const counts = featureCounts(leases, freed, license);
  for (const name of wanted) {
    if (useHas.includes(name)) continue;
    // A feature counted per seat that the seat holds costs nothing more; one counted per instance costs one per use.
    if (seat?.features.includes(name) && !perInstance(license, name)) continue;
    const pool = license.features.find((f) => f.name === name);
    if (!pool) continue; // a feature dropped from the license since: held uses keep it, no new seat of it
    const used = counts.get(name) ?? 0;
    if (used + ahead(name) >= pool.seats) return { feature: name, seatsTotal: pool.seats, seatsUsed: used };
  }
  return undefined;
}

/**
 * Why a use with these principals may not have one of the features it `wants`, by that feature's own access policy,
 * if so: its allow and deny lists (whether the use takes a new seat of the feature or shares one its seat holds),
 * and its maxima and reservations, counted in the feature's seats (`held`: the license's seats that hold a feature):
 * for the features it `takes` a new seat of, as for a new seat; for the others, joining `seat` must not take a
 * limited principal past its maximum. The refusal names the feature.
 */
export function featureAccessRefusal(
  license: License,
  wants: readonly string[],
  takes: readonly string[],
  principals: ReadonlySet<string>,
  held: readonly Lease[],
  groups: Groups,
  seat: Lease | null,
): DomainError | undefined {
  for (const name of wants) {
    const pool = license.features.find((f) => f.name === name);
    if (!pool?.access || isOpen(pool.access)) continue;
    const holding = held.filter((l) => l.features.includes(name));
    const refusal =
      accessRefusal(pool.access, principals) ??
      (takes.includes(name)
        ? newSeatRefusal(pool.access, principals, holding, groups, pool.seats)
        : seat
          ? joinRefusal(pool.access, principals, seat, holding, groups)
          : undefined);
    if (refusal) return { ...refusal, message: `feature ${name}: ${refusal.message}`, details: { ...refusal.details, feature: name } };
  }
  return undefined;
}

/** The groups the features' access policies name (to load before deciding). */
export function featureGroupsNamed(license: License): string[] {
  return license.features.flatMap((f) => (f.access ? groupsNamed(f.access) : []));
}

/** Whether any feature has an access policy that is not open. */
export function featuresGuarded(license: License): boolean {
  return license.features.some((f) => f.access !== undefined && !isOpen(f.access));
}

export function featureRefusal(short: FeatureShortfall): DomainError {
  return {
    code: 'NO_FEATURE_SEATS_AVAILABLE',
    message: `all ${short.seatsTotal} seats of feature ${short.feature} are in use`,
    details: { ...short },
  };
}
