export * from './errors.js';
export * from './ids.js';
export * from './schemas.js';
export * from './inputs.js';
export * from './config.js';
export * from './where.js';
export * from './terms.js';
export * from './version.js';
