/**
 * Administrators' operations on products and license keys, and admin seat
 * actions (force release). Writes go through a store transaction with an audit
 * entry naming the actor.
 */
import {
  DEFAULT_CUSTOMER_ID,
  RELEASE_REASONS,
  type CreateLicense,
  type CreateProduct,
  type PutGroup,
  type UpdateLicense,
  type UpdateProduct,
} from '@floatd/protocol';
import type { Groups } from '../domain/access.js';
import type { Clock } from '../domain/clock.js';
import type { Effect } from '../domain/effects.js';
import { checkPolicy, policyFromCreate, policyWithPatch } from '../domain/policy.js';
import { fail, ok, type Result } from '../domain/result.js';
import { decideRelease, decideReleaseAll } from '../domain/seats.js';
import type { AuditEntry, License, Product } from '../domain/types.js';
import { newId, newLicenseKey } from '../ids.js';
import type { KeyRing } from '../keys/ring.js';
import type { Store } from '../store/port.js';
import type { Metrics } from './metrics.js';
import { countedLicense } from './seatCounters.js';

export class CatalogueService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly keys: KeyRing,
    /** on-premise: the catalogue comes from the vendor-signed license file; only suspension and metadata stay local */
    private readonly managed = false,
    /** on-premise: whether the license file in force sets this license's access policy (then the site cannot) */
    private readonly fileSetsAccess: (licenseId: string) => boolean = () => false,
  ) {}

  private managedRefusal<T>(what: string): Result<T> {
    return fail(
      'ENTITLEMENT_MANAGED',
      `this is an on-premise server: ${what} come(s) from the vendor-signed license file; load a new file to change them`,
    );
  }

  /**
   * Starts signing lease tokens with a new key. The old key stays published as
   * long as a token it signed can live: the largest lease TTL or offline period
   * (at least a day), or for good if some license has no TTL (its tokens have no expiry).
   */
  async rotateSigningKey(actor: string): Promise<string> {
    let keep: number | null = 86_400;
    for (let cursor: string | undefined, first = true; first || cursor; first = false) {
      const page = await this.store.listLicenses({ limit: 500, cursor });
      for (const l of page.items) {
        keep = keep === null || l.leaseTtlSeconds === null ? null : Math.max(keep, l.leaseTtlSeconds, l.maxOfflineSeconds);
      }
      cursor = page.nextCursor ?? undefined;
    }
    const now = this.clock.now();
    const previous = this.keys.currentKid;
    const kid = await this.keys.rotate(now, keep);
    await this.store.transaction((tx) =>
      tx.apply([audit(now, 'signing-key.rotated', actor, null, { kid, previous, previousPublishedForSeconds: keep })]),
    );
    return kid;
  }

  async createProduct(input: CreateProduct, actor: string): Promise<Result<Product>> {
    if (this.managed) return this.managedRefusal('products');
    const now = this.clock.now();
    const product: Product = { id: newId('prd'), name: input.name, metadata: input.metadata ?? {}, createdAt: now, updatedAt: now };
    await this.store.transaction((tx) =>
      tx.apply([
        { type: 'product.insert', product },
        audit(now, 'product.created', actor, null, { productId: product.id, name: product.name }),
      ]),
    );
    return ok(product);
  }

  async updateProduct(id: string, patch: UpdateProduct, actor: string): Promise<Result<Product>> {
    if (this.managed) return this.managedRefusal('products');
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const current = await tx.product(id);
      if (!current) return fail('PRODUCT_NOT_FOUND', `no product ${id}`);
      const product: Product = {
        ...current,
        name: patch.name ?? current.name,
        metadata: patch.metadata ?? current.metadata,
        updatedAt: now,
      };
      await tx.apply([
        { type: 'product.update', product },
        audit(now, 'product.updated', actor, null, { productId: id, changed: Object.keys(patch) }),
      ]);
      return ok(product);
    });
  }

  async deleteProduct(id: string, actor: string): Promise<Result<{ deleted: true }>> {
    if (this.managed) return this.managedRefusal('products');
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      if (!(await tx.product(id))) return fail('PRODUCT_NOT_FOUND', `no product ${id}`);
      const licenses = await tx.licenseCountOfProduct(id);
      if (licenses > 0)
        return fail('PRODUCT_HAS_LICENSES', `product ${id} still owns ${licenses} license key(s); delete them first`, { licenses });
      await tx.apply([{ type: 'product.delete', productId: id }, audit(now, 'product.deleted', actor, null, { productId: id })]);
      return ok({ deleted: true as const });
    });
  }

  // --- groups of users and hosts (named in access policies as group:<name>); kept as server records ---

  async groups(): Promise<StoredGroup[]> {
    return (await this.store.listKv(GROUP_KV)).map((r) => groupOf(r.name.slice(GROUP_KV.length), r.value, r.updatedAt));
  }

  async group(name: string): Promise<Result<StoredGroup>> {
    const r = await this.store.getKv(GROUP_KV + name);
    return r ? ok(groupOf(name, r.value, r.updatedAt)) : fail('GROUP_NOT_FOUND', `no group ${name}`);
  }

  async putGroup(name: string, members: PutGroup, actor: string): Promise<StoredGroup> {
    const now = this.clock.now();
    const value = JSON.stringify({ users: members.users, hosts: members.hosts });
    await this.store.transaction(async (tx) => {
      await tx.lockKv(GROUP_KV + name);
      await tx.apply([
        { type: 'kv.put', name: GROUP_KV + name, value, at: now },
        audit(now, 'group.updated', actor, null, { group: name, users: members.users.length, hosts: members.hosts.length }),
      ]);
    });
    return groupOf(name, value, now);
  }

  async deleteGroup(name: string, actor: string): Promise<Result<{ deleted: string }>> {
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      if (!(await tx.lockKv(GROUP_KV + name))) return fail('GROUP_NOT_FOUND', `no group ${name}`);
      await tx.apply([{ type: 'kv.delete', name: GROUP_KV + name }, audit(now, 'group.deleted', actor, null, { group: name })]);
      return ok({ deleted: name });
    });
  }

  async createLicense(input: CreateLicense, actor: string): Promise<Result<License>> {
    if (this.managed) return this.managedRefusal('license keys');
    const now = this.clock.now();
    const policy = checkPolicy(policyFromCreate(input));
    if (!policy.ok) return policy;
    return this.store.transaction(async (tx) => {
      if (!(await tx.product(input.productId))) return fail('PRODUCT_NOT_FOUND', `no product ${input.productId}`);
      const customerId = input.customerId ?? DEFAULT_CUSTOMER_ID;
      if (!(await tx.customer(customerId))) return fail('CUSTOMER_NOT_FOUND', `no customer ${customerId}`);
      const license: License = {
        ...policy.value,
        id: newId('lic'),
        productId: input.productId,
        customerId,
        key: newLicenseKey(),
        trialStartedAt: null,
        seatsUsed: 0,
        seatsOffline: 0,
        createdAt: now,
        updatedAt: now,
      };
      await tx.apply([
        { type: 'license.insert', license },
        audit(now, 'license.created', actor, license.id, {
          productId: license.productId,
          customerId,
          seats: license.seats,
          model: license.model,
        }),
      ]);
      return ok(license);
    });
  }

  async updateLicense(id: string, patch: UpdateLicense, actor: string): Promise<Result<License>> {
    // Suspension, metadata and the access policy are the site's own (on-premise too); the rest is the vendor's.
    const vendorFields = Object.keys(patch).filter(
      (k) => k !== 'suspended' && k !== 'metadata' && (k !== 'access' || (this.managed && this.fileSetsAccess(id))),
    );
    if (this.managed && vendorFields.length) return this.managedRefusal(vendorFields.join(', '));
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const current = await tx.lockLicense(id);
      if (!current) return fail('LICENSE_NOT_FOUND', `no license ${id}`);
      if (patch.customerId !== undefined && !(await tx.customer(patch.customerId)))
        return fail('CUSTOMER_NOT_FOUND', `no customer ${patch.customerId}`);
      const policy = checkPolicy(policyWithPatch(current, patch));
      if (!policy.ok) return policy;
      const license: License = { ...current, ...policy.value, customerId: patch.customerId ?? current.customerId, updatedAt: now };
      const changed = Object.fromEntries(Object.entries(patch).filter(([k]) => k !== 'metadata'));
      await tx.apply([
        { type: 'license.update', license },
        audit(now, 'license.updated', actor, id, { changed, metadataChanged: patch.metadata !== undefined }),
      ]);
      return ok(license);
    });
  }

  /** Deletes a license key; refused while seats are held unless `force`, which releases them first (audited). */
  async deleteLicense(id: string, force: boolean, actor: string): Promise<Result<{ deleted: true; released: number }>> {
    if (this.managed) return this.managedRefusal('license keys');
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const license = await countedLicense(tx, await tx.lockLicense(id), now, this.metrics, actor);
      if (!license) return fail('LICENSE_NOT_FOUND', `no license ${id}`);
      if (license.seatsUsed > 0 && !force) {
        return fail('SEATS_HELD', `${license.seatsUsed} seat(s) are held on this license; pass force=true to release them and delete`, {
          seatsUsed: license.seatsUsed,
        });
      }
      const leases = await tx.leasesOfLicense(id);
      const effects: Effect[] = [
        ...decideReleaseAll(license, leases, now, actor),
        { type: 'license.delete', licenseId: id },
        audit(now, 'license.deleted', actor, id, { forced: force, released: leases.length }),
      ];
      await tx.apply(effects);
      return ok({ deleted: true as const, released: leases.length });
    });
  }

  /** Admin release of one lease (see `decideRelease` for the offline rule). */
  async releaseLease(leaseId: string, force: boolean, actor: string) {
    const now = this.clock.now();
    // The lease is found unlocked first: every seat transaction locks its license before its leases, and
    // locking the lease row here first deadlocked with a check-in of the same lease (PostgreSQL, found by the fuzzer).
    const seen = await this.store.getLease(leaseId);
    if (!seen) return fail('LEASE_NOT_FOUND', `no lease ${leaseId}`);
    const result = await this.store.transaction(async (tx) => {
      const license = await countedLicense(tx, await tx.lockLicense(seen.licenseId), now, this.metrics, actor);
      if (!license) return fail('LEASE_NOT_FOUND', `no lease ${leaseId}`);
      // Read again under the license lock: another node may have changed it in between.
      const decision = decideRelease({ license, lease: await tx.lease(leaseId) }, { leaseId, force, actor }, now);
      await tx.apply(decision.effects);
      return decision.result;
    });
    if (result.ok) this.metrics.released.inc({ reason: RELEASE_REASONS.FORCE_RELEASE });
    return result;
  }
}

function audit(at: number, type: AuditEntry['type'], actor: string, licenseId: string | null, data: Record<string, unknown>): Effect {
  return { type: 'audit', entry: { at, type, actor, licenseId, deviceId: null, leaseId: null, reason: null, data } };
}

/** Where groups are kept: one server record per group. */
export const GROUP_KV = 'group:';

/** A group as kept (its time in ms). */
export interface StoredGroup {
  name: string;
  users: string[];
  hosts: string[];
  updatedAt: number;
}

function groupOf(name: string, value: string, updatedAt: number): StoredGroup {
  const v = JSON.parse(value) as { users: string[]; hosts: string[] };
  return { name, users: v.users, hosts: v.hosts, updatedAt };
}

/** The groups an access policy names, as the domain wants them (a group that is gone matches no one). */
export async function loadGroups(store: Store, names: readonly string[]): Promise<Groups> {
  const out = new Map<string, { users: Set<string>; hosts: Set<string> }>();
  for (const name of names) {
    const r = await store.getKv(GROUP_KV + name);
    if (!r) continue;
    const g = groupOf(name, r.value, r.updatedAt);
    out.set(name, { users: new Set(g.users), hosts: new Set(g.hosts) });
  }
  return out;
}
