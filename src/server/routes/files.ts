import { Readable } from 'node:stream';
import { z } from 'zod';
import { FileIdSchema, FileRecordSchema, MemexError, SessionIdSchema } from '../../core/index.js';
import { userOf, type App, type ServerContext } from '../app.js';
import { documentationOnly } from '../documentation-only.js';
import { JobSchema, type Job, type JobEvent } from '../jobs.js';
import { streamJob } from '../job-events.js';
import { PageQuery, pageOf } from '../paging.js';
import { SessionParams } from './sessions.js';

const FileParams = z.strictObject({ sessionId: SessionIdSchema, fileId: FileIdSchema });
const JobParams = z.strictObject({ jobId: z.string().min(1).max(100) });
const PublicJobSchema = JobSchema.omit({ v: true, created: true, needsPassword: true, attempts: true });
const UploadSchema = z.object({ file: FileRecordSchema, job: PublicJobSchema });
const FilePageSchema = z.object({ files: z.array(FileRecordSchema), total: z.number(), nextCursor: z.string().nullable() });
/**
 * The upload's form, for the OpenAPI document. The multipart parser reads the parts, so this is
 * never applied to a body (one that is not multipart is refused with 415 before it is read).
 */
const UploadForm = z.object({
  name: z.string().max(255).optional().describe('the name to keep for the file (default: the file part\'s filename)'),
  password: z.string().optional().describe("an encrypted PDF's password (kept in memory only, for this ingest)"),
  file: z.string().meta({ format: 'binary' }).describe('the bytes: a PDF or an image; the type is read from the bytes. Send it last, after the text fields'),
});
documentationOnly.add(UploadForm);

/**
 * `Content-Disposition` naming a download by the name it was uploaded under: an ASCII fallback in
 * `filename` and the exact name in `filename*` (RFC 6266 with RFC 5987 encoding).
 */
export function contentDisposition(name: string, fallback: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%;]/g, '_').trim() || fallback;
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return name === '' ? `attachment; filename="${fallback}"` : `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** How often an idle event stream says it is alive, so proxies keep it open. */

/** Ingest needs to read the file: a PDF or an image. Anything else is refused before a job starts. */
function ingestible(mimeType: string): boolean {
  return mimeType === 'application/pdf' || mimeType.startsWith('image/') || mimeType.startsWith('text/') || mimeType === 'application/json' || mimeType === 'application/jsonl';
}

function publicJob(job: Job): z.output<typeof PublicJobSchema> {
  const { v: _v, created: _created, needsPassword: _needsPassword, attempts: _attempts, ...rest } = job;
  return rest;
}

/** Uploads (stored, then ingested by a job), the session's files, and following a job. */
export function fileRoutes(app: App, context: ServerContext): void {
  const { memex, jobs, streams } = context;
  const tags = ['files'];

  app.post(
    '/sessions/:sessionId/files',
    {
      schema: {
        summary: 'Upload a PDF or image (multipart/form-data: optional `name` and `password` fields, then the `file` part); answers once it is stored, with the job that ingests it',
        tags,
        params: SessionParams,
        consumes: ['multipart/form-data'],
        body: UploadForm,
        response: { 202: UploadSchema },
      },
    },
    async (request, reply) => {
      const userId = userOf(request);
      const { sessionId } = request.params;
      if (!request.isMultipart()) throw new MemexError('MEMEX_CONTENT_TYPE_UNSUPPORTED', 'upload files as multipart/form-data with one part named "file"');
      // A missing session answers before a byte of the body is read.
      await memex.sessions.get(userId, sessionId);
      const part = await request.file().catch((cause: unknown) => {
        // The form itself is malformed (no boundary, cut off): the client's input, with the parser's words.
        if (cause instanceof Error && !('code' in cause)) throw new MemexError('MEMEX_INVALID_INPUT', `the multipart body cannot be read: ${cause.message}`, { cause });
        throw cause;
      });
      if (!part) throw new MemexError('MEMEX_INVALID_INPUT', 'the form has no file part; send the file in a part named "file"');
      if (part.fieldname !== 'file') {
        part.file.resume();
        throw new MemexError('MEMEX_INVALID_INPUT', `the file part is named "${part.fieldname}"; name it "file"`);
      }
      const field = (name: string): string | undefined => {
        const value = part.fields[name];
        return value && !Array.isArray(value) && value.type === 'field' && typeof value.value === 'string' && value.value !== '' ? value.value : undefined;
      };
      const name = (field('name') ?? part.filename ?? '').slice(0, 255);
      const password = field('password');
      // Streamed to a temp file beside the session's files (hashed and size-checked on the way),
      // renamed into place only when whole: an interrupted upload leaves nothing behind.
      const { file, created } = await memex.files.put(userId, sessionId, { source: { stream: part.file }, name });
      if (!ingestible(file.mimeType)) {
        if (created) await memex.files.delete(userId, sessionId, file.id);
        throw new MemexError('MEMEX_FILE_TYPE_UNSUPPORTED', `${name || 'the file'} is ${file.mimeType}; Memex ingests PDFs and images`, { details: { mimeType: file.mimeType } });
      }
      const job = await jobs.add({ userId, sessionId, fileId: file.id, name, created, ...(password !== undefined ? { password } : {}) });
      return reply.code(202).header('location', `/v1/jobs/${job.id}`).send({ file, job: publicJob(job) });
    },
  );

  app.get('/sessions/:sessionId/files', { schema: { summary: "The session's files", tags, params: SessionParams, querystring: PageQuery, response: { 200: FilePageSchema } } }, async (request) => {
    const page = pageOf(await memex.files.list(userOf(request), request.params.sessionId), request.query);
    return { files: page.items, total: page.total, nextCursor: page.nextCursor };
  });

  app.get('/sessions/:sessionId/files/:fileId', { schema: { summary: "A file's record (with what ingest learned, once done)", tags, params: FileParams, response: { 200: FileRecordSchema } } }, async (request) =>
    memex.files.get(userOf(request), request.params.sessionId, request.params.fileId),
  );

  app.get('/sessions/:sessionId/files/:fileId/content', { schema: { summary: "The file's bytes, as uploaded, named by the file's name", tags, params: FileParams } }, async (request, reply) => {
    const userId = userOf(request);
    const { sessionId, fileId } = request.params;
    const record = await memex.files.get(userId, sessionId, fileId);
    const bytes = await memex.files.read(userId, sessionId, fileId);
    return reply
      .type(record.mimeType)
      .header('content-length', String(record.size))
      .header('content-disposition', contentDisposition(record.name, `${record.id}.${record.ext}`))
      .send(Readable.from(bytes));
  });

  app.get(
    '/sessions/:sessionId/files/:fileId/thumbnail',
    { schema: { summary: "A small WebP preview of an ingested image (404 MEMEX_FILE_NOT_FOUND for files without one, such as PDFs, or before ingest ends)", tags, params: FileParams, produces: ['image/webp'] } },
    async (request, reply) => {
      const bytes = await memex.files.artifact(userOf(request), request.params.sessionId, request.params.fileId, 'thumb.webp');
      return reply.type('image/webp').header('cache-control', 'private, max-age=86400').send(bytes);
    },
  );

  app.delete('/sessions/:sessionId/files/:fileId', { schema: { summary: 'Delete a file, what was derived from it and its vectors', tags, params: FileParams } }, async (request, reply) => {
    await memex.files.delete(userOf(request), request.params.sessionId, request.params.fileId);
    return reply.code(204).send();
  });

  app.get('/jobs/:jobId', { schema: { summary: 'An ingest job: its state, progress, and result or error', tags: ['jobs'], params: JobParams, response: { 200: PublicJobSchema } } }, (request) =>
    jobs.get(userOf(request), request.params.jobId).then(publicJob),
  );

  app.delete('/jobs/:jobId', { schema: { summary: 'Cancel an ingest job (no rows of the file are kept)', tags: ['jobs'], params: JobParams, response: { 200: PublicJobSchema } } }, async (request) =>
    publicJob(await jobs.cancel(userOf(request), request.params.jobId)),
  );

  app.get(
    '/jobs/:jobId/events',
    { schema: { summary: "An ingest job's progress as server-sent events: `progress` while it runs, then `done`, `failed` or `cancelled`", tags: ['jobs'], params: JobParams, produces: ['text/event-stream'] } },
    async (request, reply) => {
      const userId = userOf(request);
      const { jobId } = request.params;
      const current = await jobs.get(userId, jobId); // a missing job is a 404 before the stream opens
      await streamJob(request, reply, streams, current, (listener: (event: JobEvent) => void) => jobs.follow(userId, jobId, listener), publicJob);
    },
  );
}
