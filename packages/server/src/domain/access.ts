/**
 * Who may take seats of a license, and how many: allow and deny lists, per-principal maxima and
 * reservations (FlexNet's options file INCLUDE / EXCLUDE, MAX, RESERVE; RLM's options).
 *
 * A use's principals are `user:<its user>`, `host:<its host name>` (as its client sent them) and
 * `group:<name>` for every admin-managed group that lists that user or host. A seat counts for a
 * principal when one of its live uses has that principal. Pure: the caller passes the groups and,
 * when the policy has maxima or reservations, every lease of the license, read under its lock.
 */
import { OPEN_ACCESS, type AccessPolicy } from '@floatd/protocol';
import type { DomainError } from './result.js';
import { groupValues } from './sharing.js';
import type { Lease, UseMeta } from './types.js';

export type { AccessPolicy };
export { OPEN_ACCESS };

/** The groups a policy may name: group name → its users and hosts. */
export type Groups = ReadonlyMap<string, { users: ReadonlySet<string>; hosts: ReadonlySet<string> }>;

export function isOpen(a: AccessPolicy): boolean {
  return a.allow === null && a.deny.length === 0 && a.limits.length === 0 && a.reservations.length === 0;
}

/** Whether deciding a new seat needs every lease of the license (maxima or reservations). */
export function countsSeats(a: AccessPolicy): boolean {
  return a.limits.length > 0 || a.reservations.length > 0;
}

/** The groups a policy names (to load before deciding). */
export function groupsNamed(a: AccessPolicy): string[] {
  const all = [...(a.allow ?? []), ...a.deny, ...a.limits.map((l) => l.principal), ...a.reservations.map((r) => r.principal)];
  return [...new Set(all.filter((p) => p.startsWith('group:')).map((p) => p.slice('group:'.length)))];
}

export function principalsOf(meta: Pick<UseMeta, 'user' | 'hostname'>, groups: Groups): Set<string> {
  const out = new Set<string>();
  if (meta.user) out.add(`user:${meta.user}`);
  if (meta.hostname) out.add(`host:${meta.hostname}`);
  for (const [name, g] of groups) {
    if ((meta.user && g.users.has(meta.user)) || (meta.hostname && g.hosts.has(meta.hostname))) out.add(`group:${name}`);
  }
  return out;
}

/** Why these principals may not use the license at all (deny list, then allow list), if so. */
export function accessRefusal(a: AccessPolicy, principals: ReadonlySet<string>): DomainError | undefined {
  const denied = a.deny.find((p) => principals.has(p));
  if (denied)
    return { code: 'CHECKOUT_NOT_ALLOWED', message: `${denied} may not use this license (its deny list)`, details: { principal: denied } };
  if (a.allow !== null && !a.allow.some((p) => principals.has(p))) {
    return {
      code: 'CHECKOUT_NOT_ALLOWED',
      message: 'this user and host are not on the allow list of this license',
      details: { principals: [...principals] },
    };
  }
  return undefined;
}

/**
 * Why a use with these principals may not take a NEW seat now (joining a seat its group holds takes
 * none), if so: a maximum of one of its principals reached, or every free seat reserved for others.
 * `held` are the license's live leases (after any dead lease freed in the same decision); `capacity`
 * is the seats the pool may hold now (its count, plus its overdraft).
 */
export function newSeatRefusal(
  a: AccessPolicy,
  principals: ReadonlySet<string>,
  held: readonly Lease[],
  groups: Groups,
  capacity: number,
): DomainError | undefined {
  if (!countsSeats(a)) return undefined;
  const seatsOf = (principal: string) => held.filter((l) => countsFor(l, principal, groups)).length;
  for (const limit of a.limits) {
    if (!principals.has(limit.principal)) continue;
    if (seatsOf(limit.principal) >= limit.max) {
      return {
        code: 'SEAT_LIMIT_REACHED',
        message: `${limit.principal} already holds ${limit.max} seat(s), the most this license allows it`,
        details: { principal: limit.principal, max: limit.max },
      };
    }
  }
  // Seats reserved for others and not yet taken by them stay free for them.
  let reservedForOthers = 0;
  for (const r of a.reservations) {
    if (principals.has(r.principal)) continue;
    reservedForOthers += Math.max(0, r.seats - seatsOf(r.principal));
  }
  if (reservedForOthers > 0 && held.length + reservedForOthers >= capacity) {
    return {
      code: 'RESERVED_FOR_OTHERS',
      message: `the ${Math.max(0, capacity - held.length)} seat(s) still free are reserved for others`,
      details: { seatsReserved: reservedForOthers },
    };
  }
  return undefined;
}

/**
 * Why a use with these principals may not join `seat` (a seat of its share group, which takes no new
 * seat from the pool), if so: the seat does not count for one of its limited principals yet, and that
 * principal already holds its maximum (under a rule that shares across users, joining a seat makes it
 * one of the principal's seats; found by the property test).
 */
export function joinRefusal(
  a: AccessPolicy,
  principals: ReadonlySet<string>,
  seat: Lease,
  held: readonly Lease[],
  groups: Groups,
): DomainError | undefined {
  for (const limit of a.limits) {
    if (!principals.has(limit.principal) || countsFor(seat, limit.principal, groups)) continue;
    if (held.filter((l) => countsFor(l, limit.principal, groups)).length >= limit.max) {
      return {
        code: 'SEAT_LIMIT_REACHED',
        message: `${limit.principal} already holds ${limit.max} seat(s), the most this license allows it`,
        details: { principal: limit.principal, max: limit.max },
      };
    }
  }
  return undefined;
}

/** Whether a seat counts for a principal: one of its uses has it (a seat with no use: by its share group). */
export function countsFor(lease: Lease, principal: string, groups: Groups): boolean {
  return lease.instances.some((u) => principalsOf(u.meta, groups).has(principal)) || ownerless(lease, principal, groups);
}

/**
 * A seat with no live use (lingering, or borrowed offline with the application closed) still counts for
 * the principals of the uses it had: it is read from the seat's share group (`user=…`, `host=…`).
 */
function ownerless(lease: Lease, principal: string, groups: Groups): boolean {
  if (lease.instances.length > 0) return false;
  const values = groupValues(lease.shareGroup);
  return principalsOf({ user: values.get('user') ?? null, hostname: values.get('host') ?? null }, groups).has(principal);
}
