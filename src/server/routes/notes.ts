import { z } from 'zod';
import { NewNoteSchema, NoteIdSchema, NotePatchSchema, NoteSchema } from '../../core/index.js';
import { userOf, type App, type ServerContext } from '../app.js';
import { MetadataPatchSchema, mergeMetadata } from '../merge-patch.js';
import { PageQuery, pageOf } from '../paging.js';

const NoteParams = z.strictObject({ noteId: NoteIdSchema });
const NotePatchBody = NotePatchSchema.extend({ metadata: MetadataPatchSchema });
const NotePageSchema = z.object({ notes: z.array(NoteSchema), total: z.number(), nextCursor: z.string().nullable() });

/** The caller's long-term notes (facts, preferences, instructions) that context windows include. */
export function noteRoutes(app: App, { memex, patches }: ServerContext): void {
  const tags = ['notes'];

  app.get('/notes', { schema: { summary: 'Notes, oldest first', tags, querystring: PageQuery, response: { 200: NotePageSchema } } }, async (request) => {
    const page = pageOf(await memex.notes.list(userOf(request)), request.query);
    return { notes: page.items, total: page.total, nextCursor: page.nextCursor };
  });

  app.post('/notes', { schema: { summary: 'Add a note', tags, body: NewNoteSchema, response: { 201: NoteSchema } } }, async (request, reply) => {
    const note = await memex.notes.add(userOf(request), request.body);
    return reply.code(201).header('location', `/v1/notes/${note.id}`).send(note);
  });

  app.patch(
    '/notes/:noteId',
    { schema: { summary: "Change a note's text, kind or pin; `metadata` is a JSON merge patch (null deletes a key)", tags, params: NoteParams, body: NotePatchBody, response: { 200: NoteSchema } } },
    async (request) => {
      const userId = userOf(request);
      const { noteId } = request.params;
      const { metadata, ...rest } = request.body;
      return patches.run(`${userId}/notes`, async () => {
        let next = {};
        if (metadata !== undefined) {
          const current = (await memex.notes.list(userId)).find((note) => note.id === noteId);
          // A missing note: the update below answers MEMEX_NOTE_NOT_FOUND.
          next = { metadata: mergeMetadata(current?.metadata ?? {}, metadata) };
        }
        return memex.notes.update(userId, noteId, { ...rest, ...next });
      });
    },
  );

  app.delete('/notes/:noteId', { schema: { summary: 'Delete a note', tags, params: NoteParams } }, async (request, reply) => {
    await memex.notes.delete(userOf(request), request.params.noteId);
    return reply.code(204).send();
  });
}
