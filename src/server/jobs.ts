// The server runs the library's job runner (src/ingest/jobs.ts) over the Memex's job queue; the
// names stay here for the routes and for callers that imported them from the server.
export { JobRunner as IngestJobs, type JobEvent } from '../ingest/index.js';
export { JOB_STATES, JobSchema, type Job, type JobState } from '../store/index.js';
