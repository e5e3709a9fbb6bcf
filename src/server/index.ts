export { buildApp, type App, type AppOptions } from './app.js';
export { serve, type RunningServer, type ServeOptions } from './serve.js';
export { KeyStore, type ApiKeyStore, type ApiKeyInfo, type Caller } from '../store/index.js';
export type { Job, JobState } from './jobs.js';
