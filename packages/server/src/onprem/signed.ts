/**
 * Signed documents moved to keys/documents.ts (the signing-key code in one place).
 * This path is kept only because the admin CLI (admin-cli/onprem.ts) still imports it;
 * server code imports keys/documents.ts.
 */
export * from '../keys/documents.js';
