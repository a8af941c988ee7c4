export * from './errors.js';
export * from './schemas.js';
export * from './claims.js';
export * from './licenseKey.js';
export * from './responseSignature.js';
export * from './route.js';
export * from './call.js';
export * as routes from './routes/index.js';
export * from './text.js';
