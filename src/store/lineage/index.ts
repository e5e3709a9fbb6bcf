export { forkSession, type ForkOptions, type ForkResult } from './fork.js';
export { mergeSessions, MergeOptionsSchema, MergeSessionIdsSchema, MERGED_FROM_KEY, type MergeOptions, type MergeResult } from './merge.js';
