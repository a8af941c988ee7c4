/**
 * `@floatd/server/testing`: the in-process test server (harness.ts) and the
 * on-premise helpers built on it (onprem.ts). One entry point for both, so the
 * two files do not import each other.
 */
export * from './harness.js';
export { testVendor, startOnPremServer, type TestVendor } from './onprem.js';
