import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { MemexError } from '../../core/index.js';
import { saveUploadPart } from '../upload.js';
import { signalOf, userOf, type App, type ServerContext } from '../app.js';

const RestoreQuery = z.strictObject({
  replace: z.enum(['true', 'false']).default('false').describe("replace the caller's sessions, personas, notes and import records when it already holds some (else MEMEX_BACKUP_CONFLICT)"),
});

/**
 * Over HTTP a caller backs up and restores only its own user. An uploaded backup is a stranger's
 * ZIP until checked: the upload is capped at limits.maxImportBytes, and reading it is bounded by
 * the chat-export ZIP limits (total inflated bytes, ratio, names), with room for a backup's entries.
 */
const HTTP_ZIP_LIMITS = { maxEntries: 200_000, maxTotalBytes: 4 * 1024 ** 3 };

export function backupRoutes(app: App, { memex }: ServerContext): void {
  const tags = ['backup'];

  app.get('/backup', { schema: { summary: "The caller's own data as a backup ZIP (manifest with sha256 checksums and counts), streamed as it is made", tags } }, async (request, reply) => {
    const userId = userOf(request);
    await memex.users.get(userId);
    const writer = memex.backups.write({ userId, signal: signalOf(reply) });
    // A failure part-way cuts the stream; the manifest's rejection is carried by it, not unhandled.
    writer.manifest.catch(() => undefined);
    return reply
      .type('application/zip')
      .header('content-disposition', `attachment; filename="memex-backup-${userId}.zip"`)
      .send(writer.stream);
  });

  app.post(
    '/restore',
    {
      schema: {
        summary:
          "Restore a backup ZIP into the caller's own user: multipart/form-data with one part named `file`. Every checksum is verified before anything is written; a one-user backup of any id restores as the caller",
        tags,
        consumes: ['multipart/form-data'],
        querystring: RestoreQuery,
      },
    },
    async (request, reply) => {
      const userId = userOf(request);
      if (!request.isMultipart()) throw new MemexError('MEMEX_CONTENT_TYPE_UNSUPPORTED', 'upload the backup as multipart/form-data in a part named "file"');
      await memex.users.get(userId);
      const limit = memex.config.limits.maxImportBytes;
      const dir = await mkdtemp(join(tmpdir(), 'memex-restore-'));
      try {
        const path = join(dir, 'backup.zip');
        let received = false;
        for await (const part of request.parts({ limits: { files: 1, fileSize: limit + 1, fields: 0 } })) {
          if (part.type === 'field') continue;
          if (part.fieldname !== 'file') {
            part.file.resume();
            throw new MemexError('MEMEX_INVALID_INPUT', `the file part is named "${part.fieldname}"; name it "file"`);
          }
          await saveUploadPart(part.file, path, { total: 0, limit });
          received = true;
        }
        if (!received) throw new MemexError('MEMEX_INVALID_INPUT', 'the form has no file part; send the backup in a part named "file"');
        const result = await memex.backups.restore(path, { asUser: userId, replace: request.query.replace === 'true', limits: HTTP_ZIP_LIMITS, signal: signalOf(reply) });
        return { users: result.users, replaced: result.replaced, counts: result.counts, seconds: result.seconds, model: result.manifest.model, backupCreatedAt: result.manifest.createdAt };
      } catch (cause) {
        if (cause instanceof Error && !(cause instanceof MemexError) && !('code' in cause)) throw new MemexError('MEMEX_INVALID_INPUT', `the multipart body cannot be read: ${cause.message}`, { cause });
        throw cause;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
}
