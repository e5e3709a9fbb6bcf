import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import type { Chunk, FileRecord, ImportRecord } from '../../src/core/index.js';
import { writeBackup, type BackupManifest } from '../../src/backup/index.js';
import { ZipArchive } from '../../src/import/index.js';
import type { Store } from '../../src/store/index.js';
import { buildZip } from '../helpers/zip.js';
import { snapshot } from '../store/migrate-helpers.js';

export const DIM = 8;
export const MODEL = { model: 'test-model', dimension: DIM };

/** Rows made up by the test: what is compared is that they come back bit for bit. */
const row = (seed: number): Float32Array => Float32Array.from({ length: DIM }, (_, i) => Math.sin(seed * 31 + i) / 3);

const text = fc.string({ minLength: 1, maxLength: 60, unit: fc.constantFrom(...Array.from('abc xyz<>&"\'é漢😀\n')) });
const ids = (prefix: string, max: number) => fc.uniqueArray(fc.integer({ min: 0, max: 50 }), { maxLength: max }).map((ns) => ns.map((n) => `${prefix}${n}`));

export const DataArb = fc.record({
  users: fc.uniqueArray(
    fc.record({
      id: fc.constantFrom('alice', 'bob', 'carol'),
      name: text,
      personas: ids('p', 2),
      // A note is trimmed and must keep some text.
      notes: fc.array(text.filter((t) => t.trim().length > 0), { maxLength: 3 }),
      sessions: fc.array(
        fc.record({
          title: fc.option(text.filter((t) => t.trim().length > 0), { nil: undefined }),
          metadata: fc.dictionary(fc.constantFrom('a', 'b', 'project'), fc.oneof(fc.integer(), text)),
          messages: fc.array(fc.record({ role: fc.constantFrom('user', 'assistant', 'system'), content: text.map((s) => `m ${s}`) }), { maxLength: 6 }),
          files: fc.uniqueArray(text, { maxLength: 2 }),
          embedded: fc.nat(8),
          summary: fc.boolean(),
          imported: fc.boolean(),
          archived: fc.boolean(),
          trashed: fc.boolean(),
          // Its second message moved to the message trash (with its row when it has one).
          trashMessage: fc.boolean(),
          tags: fc.uniqueArray(fc.constantFrom('work', 'home', 'later'), { maxLength: 2 }),
        }),
        { minLength: 1, maxLength: 2 },
      ),
      imports: fc.boolean(),
    }),
    { minLength: 1, maxLength: 2, selector: (u) => u.id },
  ),
});
export type Data = typeof DataArb extends fc.Arbitrary<infer T> ? T : never;

const t = (n: number): string => new Date(Date.UTC(2024, 0, 1) + n * 1000).toISOString();

/** Writes generated data through the Store contract: every kind of record a backup carries. */
export async function fill(store: Store, data: Data): Promise<void> {
  await store.setEmbeddingModel(MODEL);
  let clock = 0;
  let seed = 0;
  for (const user of data.users) {
    await store.createUser({ id: user.id, name: user.name, metadata: { plan: 'x' } });
    for (const [i, persona] of user.personas.entries()) await store.createPersona(user.id, { id: persona, name: `${persona} ${i}`, instructions: `be ${persona}` });
    for (const note of user.notes) await store.addNote(user.id, { text: note });
    for (const [si, spec] of user.sessions.entries()) {
      const session = await store.createSession(user.id, {
        ...(spec.title !== undefined ? { title: spec.title } : {}),
        metadata: spec.metadata,
        createdAt: t(clock++),
        ...(user.personas[0] && si === 0 ? { personaId: user.personas[0] } : {}),
        ...(spec.imported ? { origin: { kind: 'imported' as const, source: 'chatgpt' as const, conversationId: `conv-${si}` } } : {}),
      });
      const files: FileRecord[] = [];
      for (const content of spec.files) {
        const { file } = await store.putFile(user.id, session.id, { source: { bytes: Buffer.from(`${content}\n`) }, name: `${content.slice(0, 10)}.txt`, metadata: { k: 1 } });
        await store.writeFileArtifact(user.id, session.id, file.id, 'text.json', JSON.stringify({ units: [content] }));
        files.push(file);
      }
      const messages = spec.messages.length === 0 ? [] : await store.appendMessages(user.id, session.id, spec.messages.map((m, i) => ({ ...m, createdAt: t(clock++), metadata: { i }, ...(i === 0 && files[0] ? { attachments: [{ fileId: files[0].id }] } : {}) })));
      const embedded = messages.slice(0, spec.embedded);
      if (embedded.length > 0) {
        const chunks: Chunk[] = embedded.map((m) => ({ chunkId: `${m.id}:0`, source: { kind: 'message', messageId: m.id, role: m.role, createdAt: m.createdAt }, part: { index: 0, count: 1 }, span: { start: 0, end: m.content.length }, text: m.content, tokens: 2 }));
        await store.appendVectors(user.id, session.id, { model: MODEL.model, chunks, vectors: chunks.map(() => row(seed++)) });
      }
      if (files[0]) {
        const fid = files[0].id;
        const chunks: Chunk[] = [{ chunkId: `${fid}:1:0`, source: { kind: 'file', fileId: fid, page: 1 }, part: { index: 0, count: 1 }, span: { start: 0, end: 3 }, text: 'abc', tokens: 1 }];
        await store.appendVectors(user.id, session.id, { model: MODEL.model, chunks, vectors: [row(seed++)] });
      }
      if (spec.summary && messages[0]) {
        await store.setSummary(user.id, session.id, { v: 1, sessionId: session.id, text: 'They talked.', coversThroughMessageId: messages[0].id, coveredMessages: 1, method: 'model', tokens: 3, updatedAt: t(clock++) });
      }
      if (spec.trashMessage && messages[1]) await store.trashMessage(user.id, session.id, messages[1].id, { at: t(clock++) });
      if (spec.tags.length > 0) await store.updateSession(user.id, session.id, { addTags: spec.tags });
      if (spec.archived) await store.archiveSession(user.id, session.id, { now: new Date(t(clock++)) });
      if (spec.trashed) await store.trashSession(user.id, session.id, { at: t(clock++) });
    }
    if (user.imports) await store.saveImport(user.id, importRecord());
  }
}

export function importRecord(): ImportRecord {
  return {
    v: 1,
    id: 'imp_01jz0000000000000000000001',
    source: 'chatgpt',
    files: [{ name: 'export.zip', sha256: 'a'.repeat(64), bytes: 10 }],
    startedAt: t(0),
    finishedAt: t(1),
    state: 'done',
    account: null,
    counts: {
      conversations: { added: 1, updated: 0, unchanged: 0, skipped: 0 },
      messages: { added: 1, unchanged: 0 },
      documents: { added: 0, unchanged: 0 },
      notes: { added: 0, unchanged: 0 },
      attachments: { stored: 0, ingested: 0, missing: 0 },
    },
    sessions: [],
    notes: [],
    skipped: [],
    skippedTotal: 0,
  };
}

/** The snapshot of migrate's tests plus each user's import records. */
export async function fullSnapshot(store: Store): Promise<unknown> {
  const imports: Record<string, unknown> = {};
  for (const user of await store.listUsers()) imports[user.id] = await store.listImports(user.id);
  return { base: await snapshot(store), imports };
}

export async function backupTo(store: Store, path: string, userId?: string): Promise<BackupManifest> {
  const writer = writeBackup(store, userId !== undefined ? { userId } : {});
  await pipeline(writer.stream, createWriteStream(path));
  return writer.manifest;
}

/** Every entry of a ZIP, in order (test backups are small). */
export async function readEntries(path: string): Promise<{ name: string; data: Buffer }[]> {
  const archive = await ZipArchive.open(path);
  try {
    const out: { name: string; data: Buffer }[] = [];
    for (const name of archive.entries.keys()) {
      const pieces: Buffer[] = [];
      for await (const piece of await archive.openEntry(name)) pieces.push(piece as Buffer);
      out.push({ name, data: Buffer.concat(pieces) });
    }
    return out;
  } finally {
    await archive.close();
  }
}

/** A copy of a backup with its entries changed by `edit` (null drops an entry). */
export async function tamper(from: string, to: string, edit: (name: string, data: Buffer) => Buffer | null): Promise<void> {
  const entries = [];
  for (const entry of await readEntries(from)) {
    const data = edit(entry.name, entry.data);
    if (data !== null) entries.push({ name: entry.name, data });
  }
  await writeFile(to, buildZip(entries));
}
