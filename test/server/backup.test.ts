import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyBackup } from '../../src/backup/index.js';
import { BACKENDS } from '../helpers/backends.js';
import { tempDir } from '../helpers/tmp.js';
import { buildZip } from '../helpers/zip.js';
import { readEntries } from '../backup/helpers.js';
import { body, expectProblem, multipart, served, type Served } from './setup.js';

describe.each(BACKENDS)('GET /v1/backup and POST /v1/restore on %s', (backend) => {
  let s: Served;
  let sessionId: string;
  beforeAll(async () => {
    s = await served({ backend, config: { limits: { maxImportBytes: 2 * 1024 ** 2 } } });
    const session = body<{ id: string }>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: { title: 'Tides <script>' } }), 201);
    sessionId = session.id;
    for (const content of ['The tide turns at noon.', 'Bring the <script>alert(1)</script> boat.']) {
      body(await s.app.inject({ method: 'POST', url: `/v1/sessions/${sessionId}/messages`, headers: s.alice, payload: { role: 'user', content } }), 201);
    }
    await s.memex.flush();
    await s.memex.notes.add('bob', { text: "bob's own note" }).catch(() => undefined);
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  async function backupOf(headers: Record<string, string>): Promise<Buffer> {
    const response = await s.app.inject({ url: '/v1/backup', headers });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers['content-type']).toBe('application/zip');
    return response.rawPayload;
  }

  it("backs up only the caller's own data, verified by its manifest", async () => {
    const dir = await tempDir();
    const path = join(dir, 'alice.zip');
    await writeFile(path, await backupOf(s.alice));
    const { manifest } = await verifyBackup(path);
    expect(manifest.scope).toEqual({ kind: 'user', userId: 'alice' });
    expect(manifest.users.map((u) => u.id)).toEqual(['alice']);
    expect(manifest.counts).toMatchObject({ users: 1, sessions: 1, messages: 2 });
    expect(manifest.counts.vectorRows).toBeGreaterThan(0);
    const doc = body<{ paths: Record<string, unknown> }>(await s.app.inject({ url: '/v1/openapi.json' }), 200);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/backup', '/v1/restore']));
  });

  it('restores into the caller: refused over data it holds, replaced when asked; the restored session is searchable', async () => {
    const zip = await backupOf(s.alice);
    const upload = multipart({ name: 'b.zip', bytes: zip });
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/restore', headers: { ...s.alice, ...upload.headers }, payload: upload.payload }), 409, 'MEMEX_BACKUP_CONFLICT');
    const replaced = body<{ users: string[]; replaced: string[]; counts: { messages: number } }>(
      await s.app.inject({ method: 'POST', url: '/v1/restore?replace=true', headers: { ...s.alice, ...upload.headers }, payload: upload.payload }),
      200,
    );
    expect(replaced).toMatchObject({ users: ['alice'], replaced: ['alice'], counts: { messages: 2 } });
    const messages = body<{ messages: { content: string }[] }>(await s.app.inject({ url: `/v1/sessions/${sessionId}/messages`, headers: s.alice }), 200);
    expect(messages.messages.map((m) => m.content)).toEqual(['The tide turns at noon.', 'Bring the <script>alert(1)</script> boat.']);
    const hits = body<{ hits: { text: string }[] }>(await s.app.inject({ method: 'POST', url: '/v1/search', headers: s.alice, payload: { query: 'tide noon', k: 3 } }), 200);
    expect(hits.hits.map((h) => h.text).join(' ')).toContain('tide');
  });

  it("a one-user backup restores as the caller, whoever made it; bob's data stays bob's", async () => {
    const zip = await backupOf(s.alice);
    const fresh = await s.keys.create('carol', 'test');
    await s.memex.users.create({ id: 'carol' }).catch(() => undefined);
    const carol = { authorization: `Bearer ${fresh.key}` };
    const upload = multipart({ name: 'b.zip', bytes: zip });
    body(await s.app.inject({ method: 'POST', url: '/v1/restore', headers: { ...carol, ...upload.headers }, payload: upload.payload }), 200);
    const listed = body<{ sessions: { id: string; title: string }[] }>(await s.app.inject({ url: '/v1/sessions', headers: carol }), 200);
    expect(listed.sessions.map((x) => x.title)).toEqual(['Tides <script>']);
  });

  it('a tampered backup, a path outside the archive, a ZIP bomb, an upload over the limit: coded errors', async () => {
    const dir = await tempDir();
    const good = join(dir, 'good.zip');
    await writeFile(good, await backupOf(s.alice));
    const entries = await readEntries(good);
    const tampered = buildZip(entries.map((e) => (e.name.endsWith('messages.jsonl') ? { name: e.name, data: Buffer.from(e.data.toString().replace('noon', 'moon')) } : e)));
    const send = async (bytes: Buffer, url = '/v1/restore?replace=true') => {
      const upload = multipart({ name: 'b.zip', bytes });
      return s.app.inject({ method: 'POST', url, headers: { ...s.alice, ...upload.headers }, payload: upload.payload });
    };
    expectProblem(await send(tampered), 422, 'MEMEX_BACKUP_INVALID');
    expectProblem(await send(buildZip([{ name: '../../../etc/passwd', data: 'x' }])), 422, 'MEMEX_ARCHIVE_UNSAFE');
    expectProblem(await send(buildZip([{ name: 'manifest.json', data: Buffer.alloc(20 * 1024 ** 2) }])), 422, 'MEMEX_ARCHIVE_UNSAFE');
    expectProblem(await send(Buffer.alloc(3 * 1024 ** 2, 1)), 413, 'MEMEX_FILE_TOO_LARGE');
    // Nothing of the refused uploads was written.
    const messages = body<{ messages: { content: string }[] }>(await s.app.inject({ url: `/v1/sessions/${sessionId}/messages`, headers: s.alice }), 200);
    expect(messages.messages.map((m) => m.content)[0]).toBe('The tide turns at noon.');
  });

  it('GET /v1/sessions/:id/export?format=html: one escaped, self-contained page', async () => {
    const response = await s.app.inject({ url: `/v1/sessions/${sessionId}/export?format=html`, headers: s.alice });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.body).not.toContain('<script>');
    expect(response.body).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
  });
});
