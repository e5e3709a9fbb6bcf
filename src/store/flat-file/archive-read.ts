import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { extract as extractTar } from 'tar';
import { FileRecordSchema, isMemexError, MemexError, type FileRecord, type Message, type SessionId, SummarySchema, type UserId } from '../../core/index.js';
import { Durability, exists, isNotFound, readJsonRecord, wrapIo } from '../durable.js';
import { FILE_ARTIFACTS, type ArchivedFile, type ArchivedSessionContent } from '../store.js';
import { readArchivedMeta } from './archive.js';
import { type FlatFileContext, listDir, sessionKey, summaryOf } from './context.js';
import { Layout } from './layout.js';
import { MessageLog } from './message-log.js';
import { SessionVectors } from './session-vectors.js';
import { trashedCopiesAt } from './trashed-messages.js';
import { requireUser } from './users.js';

/**
 * Reads an archived session's content out of its `archived/<id>.tar.gz` without touching the
 * archive: the tar is extracted into a folder under the data dir's `.trash/` (same disk; the
 * folder is removed when the read ends, and a crash leaves it where the next open sweeps it), laid
 * out like a data dir, so the same readers that read a live session (message log, vector files,
 * file records) read the copy. Nothing of the copy is kept; the session stays archived.
 */
export async function readArchivedSession(ctx: FlatFileContext, userId: string, sessionId: string): Promise<ArchivedSessionContent> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  await requireUser(ctx, uid);
  // The session's turn: an unarchive or delete waits, so the tar stays whole while it is read.
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    // A folder that exists is the session (archive.ts's crash rule), whatever archive files lie beside it.
    const live = await exists(ctx.layout.session(uid, sid));
    const meta = live ? null : await readArchivedMeta(ctx, uid, sid);
    if (!meta) {
      if (live) throw new MemexError('MEMEX_SESSION_NOT_ARCHIVED', `session ${sid} is not archived`, { details: { sessionId: sid } });
      throw new MemexError('MEMEX_SESSION_NOT_FOUND', `session ${sid} does not exist for user ${uid}`, { details: { userId: uid, sessionId: sid } });
    }
    const archive = ctx.layout.archive(uid, sid);
    const root = join(ctx.layout.trash, `read-${Date.now()}-${randomBytes(4).toString('hex')}`);
    const copy = new Layout(root);
    const folder = copy.session(uid, sid);
    try {
      await ctx.durability.mkdirp(folder);
      try {
        await extractTar({ file: archive, cwd: folder, strict: true });
      } catch (cause) {
        throw new MemexError('MEMEX_SESSION_CORRUPT', `cannot read the archive of session ${sid} (${archive})`, { cause, details: { sessionId: sid, path: archive } });
      }
      // Nothing is written to the copy that must survive: no fsync.
      const durability = new Durability('none');
      const { log } = await MessageLog.open(copy.messages(uid, sid), sid, durability);
      const messages: Message[] = [];
      for await (const message of log.stream()) messages.push(message);
      const { vectors } = await SessionVectors.open(
        { index: copy.sessionFile(uid, sid, 'vector_index.jsonl'), npy: copy.sessionFile(uid, sid, 'embeddings.npy'), journal: copy.sessionFile(uid, sid, 'vectors.swap.json') },
        durability,
      );
      const summary = await readJsonRecord(copy.sessionFile(uid, sid, 'summary.json'), SummarySchema, (reason, cause) => corrupt(sid, `its summary ${reason}`, cause));
      return {
        session: summaryOf(meta),
        messages,
        vectors: await vectors.read(),
        files: await readFiles(copy, uid, sid),
        summary: summary && summary.sessionId === sid ? summary : null,
        trashedMessages: await trashedCopiesAt(copy.sessionFile(uid, sid, 'trashed_messages.json'), sid),
      };
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
}

/** The files of the extracted copy, in `listFiles`'s order (by creation time). */
async function readFiles(copy: Layout, uid: UserId, sid: SessionId): Promise<ArchivedFile[]> {
  const records: FileRecord[] = [];
  for (const name of await listDir(copy.files(uid, sid))) {
    if (!/^[0-9a-f]{64}\.json$/.test(name)) continue;
    const record = await readJsonRecord(join(copy.files(uid, sid), name), FileRecordSchema, (reason, cause) => corrupt(sid, `file record ${name} ${reason}`, cause));
    if (record) records.push(record);
  }
  records.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  const out: ArchivedFile[] = [];
  for (const record of records) {
    const bytes = await readFile(copy.fileBlob(uid, sid, record.id, record.ext)).catch((cause: unknown) => {
      throw isNotFound(cause) ? corrupt(sid, `file ${record.id} has lost its bytes`, cause) : wrapIo(cause, `cannot read file ${record.id} of archived session ${sid}`);
    });
    const artifacts: ArchivedFile['artifacts'] = {};
    for (const name of FILE_ARTIFACTS) {
      const data = await readFile(copy.fileArtifact(uid, sid, record.id, name)).catch((cause: unknown) => {
        if (isNotFound(cause)) return null;
        throw wrapIo(cause, `cannot read the ${name} of file ${record.id}`);
      });
      if (data) artifacts[name] = data;
    }
    out.push({ record, bytes, artifacts });
  }
  return out;
}

function corrupt(sessionId: SessionId, what: string, cause: unknown): MemexError {
  return isMemexError(cause) && cause.code === 'MEMEX_SESSION_CORRUPT' ? cause : new MemexError('MEMEX_SESSION_CORRUPT', `archived session ${sessionId}: ${what}`, { cause, details: { sessionId } });
}
