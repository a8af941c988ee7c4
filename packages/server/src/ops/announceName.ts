/** DNS-SD instance names (ops/announce.ts), apart so that reading the configuration loads no socket code. */
import { hostname } from 'node:os';

/** Checks an instance name. @example validInstanceName('floatd build-farm') // undefined (fine) */
export function validInstanceName(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty';
  if (Buffer.byteLength(name) > 63) return 'must be at most 63 bytes';
  if (name.includes('.')) return 'must not contain a dot';
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'must not contain control characters';
  return undefined;
}

/** The default instance name: `floatd on <host name>`. */
export function defaultInstanceName(): string {
  const host = hostname().split('.')[0] || 'localhost';
  return `floatd on ${host}`.slice(0, 63);
}
