/** Shared by the admin route files. */
import type { Store } from '../../../store/port.js';
import type { License } from '../../../domain/types.js';
import { ErrorReply } from '../../errors.js';

/** The actor an admin request's changes are audited as. */
export const actor = (req: { admin: { id: string } }): string => `admin:${req.admin.id}`;

/** The license, or the LICENSE_NOT_FOUND answer. */
export async function existingLicense(store: Store, id: string): Promise<License> {
  const license = await store.getLicense(id);
  if (!license) throw new ErrorReply('LICENSE_NOT_FOUND', `no license ${id}`);
  return license;
}
