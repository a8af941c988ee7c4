/**
 * @floatd/client — the SDK an application embeds to hold a floating-license seat.
 *
 * @example
 * import { FloatingLicense } from '@floatd/client';
 * const lic = new FloatingLicense({ serverUrl: 'https://licenses.example.com', licenseKey: key, handleExit: true });
 * lic.on('violation', (v) => showBanner(v.code));
 * const seat = await lic.checkout();
 * if (!seat.ok) return quit(seat.message);
 */
export {
  FloatingLicense,
  type FloatingLicenseOptions,
  type FloatingLicenseEvents,
  type LicenseState,
  type LicenseStatus,
  type ViolationCode,
  type Violation,
  type CheckoutOptions,
  type CheckoutResult,
  type CheckoutGranted,
  type CheckoutDenied,
  type CheckinResult,
  type RetryInfo,
  type WaitingInfo,
} from './license.js';
export { detectEnvironment, machineEnvironment, type EnvironmentSources, type MachineEnvironment } from './environment.js';
export { FloatingLicenseError, CLIENT_ERROR_CODES, type ClientErrorCode, type FloatingLicenseErrorCode } from './errors.js';
export { systemClock, type Clock, type TimerHandle } from './clock.js';
export { deviceFingerprint, hashMachineId, osMachineId, FINGERPRINT_PATTERN, type FingerprintOptions } from './fingerprint.js';
export { DEFAULT_RETRY, backoff, type RetryPolicy } from './retry.js';
export type { ServerPublicKeys, ServerPublicKey } from './trust.js';
export type { FetchLike } from './http.js';
export type { LeaseTokenClaims, LicenseSummary, LicenseInfo, SyncResult } from '@floatd/protocol';
export { validateKey, rememberKey, rememberedKey, forgetKey, type KeyCheck, type RememberedKey } from './keyStore.js';
export { END_USER_MESSAGES, endUserMessage, explain, endUserCode, type EndUserCode } from './messages.js';
export {
  browseDnsSd,
  DNS_SD_TYPE,
  discoverServer,
  srvName,
  systemDomain,
  type BrowseOptions,
  type DiscoveryOptions,
  type DiscoveryResult,
  type DiscoverySource,
} from './discovery.js';
