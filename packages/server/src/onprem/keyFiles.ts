/**
 * The vendor's key files moved to keys/files.ts (the signing-key code in one place).
 * This path is kept only because the admin CLI (admin-cli/onprem.ts) still imports it;
 * server code imports keys/files.ts.
 */
export * from '../keys/files.js';
