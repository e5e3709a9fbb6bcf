import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { IMPORT_SOURCES, ImportJobSchema, ImportRecordSchema, MemexError, type ImportSource } from '../../core/index.js';
import type { ImportJobEvent } from '../../import/index.js';
import { userOf, type App, type ServerContext } from '../app.js';
import { streamJob } from '../job-events.js';
import { saveUploadPart } from '../upload.js';

const ImportParams = z.strictObject({ importId: z.string().min(1).max(100) });
const ImportJobParams = z.strictObject({ jobId: z.string().min(1).max(100) });
/** Export files in one upload (Claude sends four). */
const MAX_FILES = 16;

/**
 * Chat-export imports over HTTP: upload the export (multipart, one or more `file` parts, optional
 * `source`, `dryRun` and `attachments` fields), follow the job by polling or as server-sent events, list and
 * delete imports.
 */
export function importRoutes(app: App, { memex, streams }: ServerContext): void {
  const importJobs = memex.importJobs;
  const tags = ['imports'];

  app.post(
    '/imports',
    {
      schema: {
        summary:
          'Import ChatGPT, Claude, Gemini (Takeout) or Memex exports: multipart/form-data with optional `source`, `dryRun` and `attachments` (`ingest`, the default: searchable, images OCRed; `store`: kept, not read) fields, then one or more `file` parts (JSON or the ZIP the service sent); answers once the upload is stored, with the job that imports it',
        tags,
        consumes: ['multipart/form-data'],
        response: { 202: z.object({ job: ImportJobSchema }) },
      },
    },
    async (request, reply) => {
      const userId = userOf(request);
      if (!request.isMultipart()) throw new MemexError('MEMEX_CONTENT_TYPE_UNSUPPORTED', 'upload exports as multipart/form-data with parts named "file"');
      await memex.users.get(userId);
      const limit = memex.config.limits.maxImportBytes;
      const dir = await mkdtemp(join(tmpdir(), 'memex-import-'));
      const paths: string[] = [];
      const names: string[] = [];
      const fields: Record<string, string> = {};
      // Counted across all the files, so the limit holds for the whole upload.
      const budget = { total: 0, limit };
      try {
        for await (const part of request.parts({ limits: { files: MAX_FILES, fileSize: limit + 1, fields: 8, fieldSize: 256 } })) {
          if (part.type === 'field') {
            if (typeof part.value === 'string') fields[part.fieldname] = part.value;
            continue;
          }
          if (part.fieldname !== 'file') {
            part.file.resume();
            throw new MemexError('MEMEX_INVALID_INPUT', `the file part is named "${part.fieldname}"; name each export part "file"`);
          }
          const path = join(dir, `${paths.length}.upload`);
          await saveUploadPart(part.file, path, budget);
          paths.push(path);
          names.push((part.filename ?? `file ${paths.length}`).slice(0, 255));
        }
      } catch (cause) {
        await rm(dir, { recursive: true, force: true });
        if (cause instanceof Error && !(cause instanceof MemexError) && !('code' in cause)) throw new MemexError('MEMEX_INVALID_INPUT', `the multipart body cannot be read: ${cause.message}`, { cause });
        throw cause;
      }
      if (paths.length === 0) {
        await rm(dir, { recursive: true, force: true });
        throw new MemexError('MEMEX_INVALID_INPUT', 'the form has no file part; send each export file in a part named "file"');
      }
      const source = fields.source;
      if (source !== undefined && source !== 'auto' && !(IMPORT_SOURCES as readonly string[]).includes(source)) {
        await rm(dir, { recursive: true, force: true });
        throw new MemexError('MEMEX_INVALID_INPUT', `source must be auto or one of ${IMPORT_SOURCES.join(', ')}`);
      }
      const attachments = fields.attachments;
      if (attachments !== undefined && attachments !== 'ingest' && attachments !== 'store') {
        await rm(dir, { recursive: true, force: true });
        throw new MemexError('MEMEX_INVALID_INPUT', 'attachments must be ingest or store');
      }
      const job = await importJobs
        .start(userId, paths, names, {
          ...(source !== undefined && source !== 'auto' ? { source: source as ImportSource } : {}),
          ...(attachments !== undefined ? { attachments } : {}),
          dryRun: fields.dryRun === 'true' || fields.dryRun === '1',
          onEnd: () => rm(dir, { recursive: true, force: true }),
        })
        .catch(async (cause: unknown) => {
          await rm(dir, { recursive: true, force: true });
          throw cause;
        });
      return reply.code(202).header('location', `/v1/imports/jobs/${job.id}`).send({ job });
    },
  );

  app.get('/imports', { schema: { summary: "The user's imports, oldest first", tags, response: { 200: z.object({ imports: z.array(ImportRecordSchema) }) } } }, async (request) => ({
    imports: await memex.imports.list(userOf(request)),
  }));

  app.delete(
    '/imports/:importId',
    { schema: { summary: 'Delete an import: the sessions and notes it added or changed, then its record', tags, params: ImportParams, response: { 200: ImportRecordSchema } } },
    async (request) => memex.imports.delete(userOf(request), request.params.importId),
  );

  app.get('/imports/jobs/:jobId', { schema: { summary: 'An import job: its state, progress, and report once done', tags, params: ImportJobParams, response: { 200: ImportJobSchema } } }, (request) =>
    importJobs.get(userOf(request), request.params.jobId),
  );

  app.delete('/imports/jobs/:jobId', { schema: { summary: 'Cancel an import job (what was imported is kept and recorded)', tags, params: ImportJobParams, response: { 200: ImportJobSchema } } }, (request) =>
    importJobs.cancel(userOf(request), request.params.jobId),
  );

  app.get(
    '/imports/jobs/:jobId/events',
    { schema: { summary: "An import job's progress as server-sent events: `progress` while it runs, then `done`, `failed` or `cancelled`", tags, params: ImportJobParams, produces: ['text/event-stream'] } },
    async (request, reply) => {
      const userId = userOf(request);
      const { jobId } = request.params;
      const current = await importJobs.get(userId, jobId); // a missing job is a 404 before the stream opens
      await streamJob(request, reply, streams, current, (listener: (event: ImportJobEvent) => void) => importJobs.follow(userId, jobId, listener));
    },
  );
}
