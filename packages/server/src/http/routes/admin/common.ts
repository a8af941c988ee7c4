/** Shared by the admin route files. */
import type { Store } from '../../../store/port.js';
import type { License } from '../../../domain/types.js';
import type * as wire from '@floatd/protocol';
import { ErrorReply } from '../../errors.js';
import { licenseView } from '../../views.js';
import { featureCounts } from '../../../domain/features.js';

/** The actor an admin request's changes are audited as. */
export const actor = (req: { admin: { id: string } }): string => `admin:${req.admin.id}`;

/** A customer's own administrator's request: that customer (routes of scope `own` narrow what they read to it). */
export const ownCustomer = (req: { admin: { customerId: string | null } }): string | undefined => req.admin.customerId ?? undefined;

/** The license, or the LICENSE_NOT_FOUND answer. */
export async function existingLicense(store: Store, id: string): Promise<License> {
  const license = await store.getLicense(id);
  if (!license) throw new ErrorReply('LICENSE_NOT_FOUND', `no license ${id}`);
  return license;
}

/**
 * The license as the admin API shows it, with the seats held per feature pool (counted from the lease rows) and the
 * checkouts waiting in its queues (`waiting`: `Store.waitingCounts`, read once for a whole list).
 */
export async function licenseOut(store: Store, license: License, waiting: ReadonlyMap<string, number>): Promise<wire.License> {
  return licenseView(license, await featureLevels(store, license), waiting.get(license.id) ?? 0);
}

/** Seats held per feature: from the lease rows' feature lists, or, with a feature counted per instance, from the uses. */
async function featureLevels(store: Store, license: License): Promise<Record<string, number>> {
  if (!license.features.length) return {};
  if (!license.features.some((f) => f.counting === 'instance')) return store.featureSeats(license.id);
  return Object.fromEntries(featureCounts(await store.listLeases(license.id), new Set(), license));
}
