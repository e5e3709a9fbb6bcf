import { z } from 'zod';
import { NewPersonaSchema, PersonaIdSchema, PersonaPatchSchema, PersonaSchema, type Persona } from '../../core/index.js';
import { userOf, type App, type ServerContext } from '../app.js';
import { MetadataPatchSchema, mergeMetadata } from '../merge-patch.js';
import { PageQuery, pageOf } from '../paging.js';

const PersonaParams = z.strictObject({ personaId: PersonaIdSchema });
const PersonaOut = PersonaSchema.omit({ v: true });
const PersonaPatchBody = PersonaPatchSchema.extend({ metadata: MetadataPatchSchema });
const PersonaPageSchema = z.object({ personas: z.array(PersonaOut), total: z.number(), nextCursor: z.string().nullable() });

function publicPersona(persona: Persona): Omit<Persona, 'v'> {
  const { v: _v, ...rest } = persona;
  return rest;
}

/** The caller's personas: named system prompts a session (or one context window) can use. */
export function personaRoutes(app: App, { memex, patches }: ServerContext): void {
  const tags = ['personas'];

  app.get('/personas', { schema: { summary: 'Personas, oldest first', tags, querystring: PageQuery, response: { 200: PersonaPageSchema } } }, async (request) => {
    const page = pageOf(await memex.personas.list(userOf(request)), request.query);
    return { personas: page.items.map(publicPersona), total: page.total, nextCursor: page.nextCursor };
  });

  app.post('/personas', { schema: { summary: 'Create a persona', tags, body: NewPersonaSchema, response: { 201: PersonaOut } } }, async (request, reply) => {
    const persona = await memex.personas.create(userOf(request), request.body);
    return reply.code(201).header('location', `/v1/personas/${persona.id}`).send(publicPersona(persona));
  });

  app.get('/personas/:personaId', { schema: { summary: 'A persona', tags, params: PersonaParams, response: { 200: PersonaOut } } }, async (request) =>
    publicPersona(await memex.personas.get(userOf(request), request.params.personaId)),
  );

  app.patch(
    '/personas/:personaId',
    { schema: { summary: "Change a persona's name or instructions; `metadata` is a JSON merge patch (null deletes a key)", tags, params: PersonaParams, body: PersonaPatchBody, response: { 200: PersonaOut } } },
    async (request) => {
      const userId = userOf(request);
      const { personaId } = request.params;
      const { metadata, ...rest } = request.body;
      return patches.run(`${userId}/persona/${personaId}`, async () => {
        const next = metadata === undefined ? {} : { metadata: mergeMetadata((await memex.personas.get(userId, personaId)).metadata, metadata) };
        return publicPersona(await memex.personas.update(userId, personaId, { ...rest, ...next }));
      });
    },
  );

  app.delete('/personas/:personaId', { schema: { summary: 'Delete a persona (sessions that used it keep their messages and lose the link)', tags, params: PersonaParams } }, async (request, reply) => {
    await memex.personas.delete(userOf(request), request.params.personaId);
    return reply.code(204).send();
  });
}
