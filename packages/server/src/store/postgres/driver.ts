/**
 * postgres.js as floatd uses it: patched at install (packages/server/scripts/patch-postgres.mjs)
 * against the driver bugs that end the process or wedge a connection when a database
 * connection is cut (porsager/postgres#1208) and that run a transaction's BEGIN on a
 * connection the pool still shares (UNSAFE_TRANSACTION, porsager/postgres#823). An
 * unpatched driver is refused: it would end the process at the first cut connection.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DRIVER_PATCH_MARKER = '/* floatd-patch-1 */';
/** The second patch: the silence bound on half-open connections. */
export const DRIVER_PATCH_MARKER_2 = '/* floatd-patch-2 */';
/** The third: target_session_attrs=read-write refuses a hot standby (libpq's rule). */
export const DRIVER_PATCH_MARKER_3 = '/* floatd-patch-3 */';
/** The fourth: a close fails every query in flight, even after an error (no answer taken for another query's). */
export const DRIVER_PATCH_MARKER_4 = '/* floatd-patch-4 */';
/** The fifth: a transaction's held-back queries are sent until the pipeline is full again, not one per round trip. */
export const DRIVER_PATCH_MARKER_5 = '/* floatd-patch-5 */';

let checked: boolean | undefined;

/** Whether the installed postgres.js carries floatd's patch (all three of its builds are patched together). */
export function driverPatched(): boolean {
  if (checked === undefined) {
    try {
      const [connection, index] = ['./connection.js', './index.js'].map((f) =>
        readFileSync(fileURLToPath(new URL(f, import.meta.resolve('postgres'))), 'utf8'),
      );
      checked =
        [DRIVER_PATCH_MARKER, DRIVER_PATCH_MARKER_2].every((m) => connection!.includes(m) && index!.includes(m)) &&
        connection!.includes(DRIVER_PATCH_MARKER_3) &&
        connection!.includes(DRIVER_PATCH_MARKER_4) &&
        index!.includes(DRIVER_PATCH_MARKER_5);
    } catch {
      checked = false;
    }
  }
  return checked;
}

export function assertDriverPatched(): void {
  if (!driverPatched())
    throw new Error(
      "the installed postgres.js driver lacks floatd's fixes for cut connections (porsager/postgres#1208, #823): " +
        'run `npm install` (or `node node_modules/@floatd/server/scripts/patch-postgres.mjs`, in this repository `npm run postinstall -w @floatd/server`)',
    );
}

/**
 * Seconds before a pool connection tries again after its connection failed: short and bounded, so
 * a node is serving again well within 1 s of its database (postgres.js's default grows to 20 s).
 */
export function reconnectBackoff(retries: number): number {
  return Math.min(0.02 * 2 ** retries, 0.25) * (0.75 + Math.random() / 4);
}
