import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, expectProblem, multipart, served, waitForJob, type Served } from './setup.js';

interface Persona {
  id: string;
  name: string;
  instructions: string;
  metadata: Record<string, unknown>;
}
interface Note {
  id: string;
  text: string;
  pinned: boolean;
  metadata: Record<string, unknown>;
}

describe('personas and notes over HTTP', () => {
  let s: Served;
  beforeAll(async () => {
    s = await served();
  });
  afterAll(async () => {
    await s.close();
  });

  it('creates, lists (paged), gets, patches (metadata merge patch) and deletes personas, each user apart', async () => {
    const created = await s.app.inject({ method: 'POST', url: '/v1/personas', headers: s.alice, payload: { name: 'Chef', instructions: 'You cook.', metadata: { tone: 'warm', tags: ['a'], nested: { x: 1, y: 2 } } } });
    const chef = body<Persona>(created, 201);
    expect(created.headers.location).toBe(`/v1/personas/${chef.id}`);
    body(await s.app.inject({ method: 'POST', url: '/v1/personas', headers: s.alice, payload: { name: 'Tutor', instructions: 'You teach.' } }), 201);
    expect(body<Persona>(await s.app.inject({ url: `/v1/personas/${chef.id}`, headers: s.alice }), 200).name).toBe('Chef');

    const patched = body<Persona>(
      await s.app.inject({ method: 'PATCH', url: `/v1/personas/${chef.id}`, headers: { ...s.alice, 'content-type': 'application/merge-patch+json' }, payload: JSON.stringify({ instructions: 'You cook well.', metadata: { tone: null, tags: ['b'], nested: { y: null, z: 3 }, added: true } }) }),
      200,
    );
    expect(patched).toMatchObject({ instructions: 'You cook well.', metadata: { tags: ['b'], nested: { x: 1, z: 3 }, added: true } });
    expect(patched.metadata).not.toHaveProperty('tone');
    expect(body<Persona>(await s.app.inject({ method: 'PATCH', url: `/v1/personas/${chef.id}`, headers: s.alice, payload: { metadata: null } }), 200).metadata).toEqual({});

    const first = body<{ personas: Persona[]; total: number; nextCursor: string }>(await s.app.inject({ url: '/v1/personas?limit=1', headers: s.alice }), 200);
    expect(first.total).toBe(2);
    const second = body<{ personas: Persona[]; nextCursor: string | null }>(await s.app.inject({ url: `/v1/personas?limit=1&cursor=${first.nextCursor}`, headers: s.alice }), 200);
    expect(second.nextCursor).toBeNull();
    expect([...first.personas, ...second.personas].map((p) => p.name).sort()).toEqual(['Chef', 'Tutor']);
    expect(body<{ personas: Persona[] }>(await s.app.inject({ url: '/v1/personas?offset=1', headers: s.alice }), 200).personas).toEqual(second.personas);
    expectProblem(await s.app.inject({ url: '/v1/personas?offset=1&cursor=x', headers: s.alice }), 400, 'MEMEX_INVALID_INPUT');
    expectProblem(await s.app.inject({ url: '/v1/personas?cursor=nope', headers: s.alice }), 400, 'MEMEX_INVALID_CURSOR');

    expectProblem(await s.app.inject({ url: `/v1/personas/${chef.id}`, headers: s.bob }), 404, 'MEMEX_PERSONA_NOT_FOUND');
    expectProblem(await s.app.inject({ method: 'PATCH', url: `/v1/personas/${chef.id}`, headers: s.bob, payload: { metadata: { a: 1 } } }), 404, 'MEMEX_PERSONA_NOT_FOUND');
    expectProblem(await s.app.inject({ method: 'DELETE', url: `/v1/personas/${chef.id}`, headers: s.bob }), 404, 'MEMEX_PERSONA_NOT_FOUND');
    expect(body<{ total: number }>(await s.app.inject({ url: '/v1/personas', headers: s.bob }), 200).total).toBe(0);
    expect((await s.app.inject({ method: 'DELETE', url: `/v1/personas/${chef.id}`, headers: s.alice })).statusCode).toBe(204);
    expectProblem(await s.app.inject({ url: `/v1/personas/${chef.id}`, headers: s.alice }), 404, 'MEMEX_PERSONA_NOT_FOUND');
  });

  it('adds, lists, patches and deletes notes', async () => {
    const note = body<Note>(await s.app.inject({ method: 'POST', url: '/v1/notes', headers: s.alice, payload: { text: 'Allergic to peanuts', kind: 'fact', metadata: { source: 'chat', n: 1 } } }), 201);
    const patched = body<Note>(await s.app.inject({ method: 'PATCH', url: `/v1/notes/${note.id}`, headers: s.alice, payload: { pinned: false, metadata: { n: null, checked: true } } }), 200);
    expect(patched).toMatchObject({ pinned: false, metadata: { source: 'chat', checked: true } });
    expect(patched.metadata).not.toHaveProperty('n');
    expect(body<{ notes: Note[]; total: number }>(await s.app.inject({ url: '/v1/notes', headers: s.alice }), 200)).toMatchObject({ total: 1, notes: [{ id: note.id }] });
    expectProblem(await s.app.inject({ method: 'PATCH', url: `/v1/notes/${note.id}`, headers: s.bob, payload: { metadata: { a: 1 } } }), 404, 'MEMEX_NOTE_NOT_FOUND');
    expectProblem(await s.app.inject({ method: 'DELETE', url: `/v1/notes/${note.id}`, headers: s.bob }), 404, 'MEMEX_NOTE_NOT_FOUND');
    expect((await s.app.inject({ method: 'DELETE', url: `/v1/notes/${note.id}`, headers: s.alice })).statusCode).toBe(204);
    expect(body<{ total: number }>(await s.app.inject({ url: '/v1/notes', headers: s.alice }), 200).total).toBe(0);
  });

  it('patches session and profile metadata as merge patches', async () => {
    const session = body<{ id: string }>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: { metadata: { a: 1, b: { c: 2, d: 3 } } } }), 201).id;
    const patched = body<{ metadata: Record<string, unknown>; title: string }>(await s.app.inject({ method: 'PATCH', url: `/v1/sessions/${session}`, headers: s.alice, payload: { title: 'T', metadata: { a: null, b: { d: null, e: 4 } } } }), 200);
    expect(patched).toMatchObject({ title: 'T', metadata: { b: { c: 2, e: 4 } } });
    expect(patched.metadata).not.toHaveProperty('a');
    // Concurrent patches of different keys both land (each reads what the other wrote).
    await Promise.all(['x', 'y', 'z'].map((key) => s.app.inject({ method: 'PATCH', url: `/v1/sessions/${session}`, headers: s.alice, payload: { metadata: { [key]: true } } })));
    expect((await s.memex.sessions.get('alice', session)).metadata).toMatchObject({ x: true, y: true, z: true, b: { c: 2, e: 4 } });

    body(await s.app.inject({ method: 'PATCH', url: '/v1/me', headers: s.alice, payload: { metadata: { theme: 'dark', lang: 'en' } } }), 200);
    const me = body<{ metadata: Record<string, unknown> }>(await s.app.inject({ method: 'PATCH', url: '/v1/me', headers: s.alice, payload: { metadata: { theme: null } } }), 200);
    expect(me.metadata).toEqual({ lang: 'en' });
  });
});

describe('paging: offset next to cursors, and one cursor name', () => {
  let s: Served;
  let session = '';
  beforeAll(async () => {
    s = await served();
    session = body<{ id: string }>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: {} }), 201).id;
    for (let i = 0; i < 5; i++) await s.app.inject({ method: 'POST', url: `/v1/sessions/${session}/messages`, headers: s.alice, payload: { role: 'user', content: `m${i}` } });
    for (let i = 0; i < 3; i++) await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: { title: `s${i}` } });
  });
  afterAll(async () => {
    await s.close();
  });

  it('pages messages by `cursor` (and still by the deprecated `after`) and by offset', async () => {
    const M = `/v1/sessions/${session}/messages`;
    const contents = (page: { messages: { content: string }[] }): string[] => page.messages.map((m) => m.content);
    const first = body<{ messages: { content: string }[]; nextCursor: string }>(await s.app.inject({ url: `${M}?limit=2`, headers: s.alice }), 200);
    expect(contents(first)).toEqual(['m0', 'm1']);
    const byCursor = body<{ messages: { content: string }[] }>(await s.app.inject({ url: `${M}?limit=2&cursor=${first.nextCursor}`, headers: s.alice }), 200);
    expect(contents(byCursor)).toEqual(['m2', 'm3']);
    expect(contents(body(await s.app.inject({ url: `${M}?limit=2&after=${first.nextCursor}`, headers: s.alice }), 200))).toEqual(['m2', 'm3']);
    expect(contents(body(await s.app.inject({ url: `${M}?limit=2&offset=3`, headers: s.alice }), 200))).toEqual(['m3', 'm4']);
    expectProblem(await s.app.inject({ url: `${M}?cursor=${first.nextCursor}&after=${first.nextCursor}`, headers: s.alice }), 400, 'MEMEX_INVALID_INPUT');
  });

  it('pages sessions and files by offset as well as by cursor', async () => {
    const all = body<{ sessions: { id: string }[]; total: number }>(await s.app.inject({ url: '/v1/sessions', headers: s.alice }), 200);
    expect(all.total).toBe(4);
    const byOffset = body<{ sessions: { id: string }[] }>(await s.app.inject({ url: '/v1/sessions?offset=2&limit=10', headers: s.alice }), 200);
    expect(byOffset.sessions.map((x) => x.id)).toEqual(all.sessions.slice(2).map((x) => x.id));
    const files = body<{ files: unknown[]; total: number; nextCursor: null }>(await s.app.inject({ url: `/v1/sessions/${session}/files?limit=5`, headers: s.alice }), 200);
    expect(files).toEqual({ files: [], total: 0, nextCursor: null });
  });

  it('documents the same page parameters on every list route', async () => {
    const doc = body<{ paths: Record<string, { get?: { parameters?: { name: string }[] } }> }>(await s.app.inject({ url: '/v1/openapi.json' }), 200);
    for (const path of ['/v1/sessions', '/v1/sessions/{sessionId}/messages', '/v1/sessions/{sessionId}/files', '/v1/personas', '/v1/notes', '/v1/users']) {
      expect(doc.paths[path]?.get?.parameters?.map((p) => p.name), path).toEqual(expect.arrayContaining(['limit', 'offset', 'cursor']));
    }
  });
});

describe('files: downloads, thumbnails, the upload form, compression', () => {
  let s: Served;
  let session = '';
  let fileId = '';
  beforeAll(async () => {
    s = await served();
    session = body<{ id: string }>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: {} }), 201).id;
    const png = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#36c' } }).png().toBuffer();
    const upload = multipart({ name: 'Café "menu"\r\nX: y.png', bytes: png });
    const accepted = body<{ file: { id: string }; job: { id: string } }>(await s.app.inject({ method: 'POST', url: `/v1/sessions/${session}/files`, headers: { ...s.alice, ...upload.headers }, payload: upload.payload }), 202);
    fileId = accepted.file.id;
    await waitForJob(s.app, s.alice, accepted.job.id);
  });
  afterAll(async () => {
    await s.close();
  });

  it('names a download by the name it was uploaded under (RFC 5987 filename*), safely', async () => {
    const response = await s.app.inject({ url: `/v1/sessions/${session}/files/${fileId}/content`, headers: s.alice });
    expect(response.statusCode).toBe(200);
    const disposition = response.headers['content-disposition'] as string;
    expect(disposition).toMatch(/^attachment; filename="[\x20-\x7e]+"; filename\*=UTF-8''/);
    expect(disposition).not.toMatch(/[\r\n]/);
    const encoded = /filename\*=UTF-8''(.+)$/.exec(disposition)?.[1] ?? '';
    expect(decodeURIComponent(encoded)).toBe((await s.memex.files.get('alice', session, fileId)).name);
  });

  it('serves the thumbnail of an image, and a coded 404 where there is none', async () => {
    const response = await s.app.inject({ url: `/v1/sessions/${session}/files/${fileId}/thumbnail`, headers: s.alice });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers['content-type']).toBe('image/webp');
    const meta = await sharp(response.rawPayload).metadata();
    expect(meta.format).toBe('webp');
    expectProblem(await s.app.inject({ url: `/v1/sessions/${session}/files/${fileId}/thumbnail`, headers: s.bob }), 404, 'MEMEX_SESSION_NOT_FOUND');
    expectProblem(await s.app.inject({ url: `/v1/sessions/${session}/files/${'0'.repeat(64)}/thumbnail`, headers: s.alice }), 404, 'MEMEX_FILE_NOT_FOUND');
  });

  it('describes the upload form (multipart: name, password, file) in the OpenAPI document', async () => {
    const doc = body<{ paths: Record<string, { post?: { requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, { format?: string }> } }> } } }> }>(await s.app.inject({ url: '/v1/openapi.json' }), 200);
    const form = doc.paths['/v1/sessions/{sessionId}/files']?.post?.requestBody?.content?.['multipart/form-data']?.schema;
    expect(Object.keys(form?.properties ?? {})).toEqual(expect.arrayContaining(['file', 'name', 'password']));
    expect(form?.properties?.file?.format).toBe('binary');
  });

  it('compresses large JSON answers for clients that ask, and leaves small ones and event streams alone', async () => {
    for (let i = 0; i < 20; i++) await s.app.inject({ method: 'POST', url: `/v1/sessions/${session}/messages`, headers: s.alice, payload: { role: 'user', content: `message number ${i} about compression and paging` } });
    const big = await s.app.inject({ url: `/v1/sessions/${session}/messages?limit=100`, headers: { ...s.alice, 'accept-encoding': 'gzip' } });
    expect(big.statusCode).toBe(200);
    expect(big.headers['content-encoding']).toBe('gzip');
    expect((JSON.parse(gunzipSync(big.rawPayload).toString()) as { messages: unknown[] }).messages).toHaveLength(20);
    expect((await s.app.inject({ url: `/v1/sessions/${session}/messages?limit=100`, headers: { ...s.alice, 'accept-encoding': 'br' } })).headers['content-encoding']).toBe('br');
    const small = await s.app.inject({ url: '/v1/me', headers: { ...s.alice, 'accept-encoding': 'gzip' } });
    expect(small.headers['content-encoding']).toBeUndefined();
    const plain = await s.app.inject({ url: `/v1/sessions/${session}/messages?limit=100`, headers: s.alice });
    expect(plain.headers['content-encoding']).toBeUndefined();
  });
});
