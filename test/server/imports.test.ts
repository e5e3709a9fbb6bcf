import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { CHAT_EXPORTS, hasChatExports } from '../helpers/export-samples.js';
import { buildZip } from '../helpers/zip.js';
import { body, expectProblem, multipart, served, type Served } from './setup.js';

interface ImportJob {
  id: string;
  state: string;
  progress: { phase: string } | null;
  report: { record: { id: string; sessions: string[]; counts: { conversations: { added: number; unchanged: number }; attachments: { stored: number; ingested: number; missing: number } } } } | null;
  error: { code: string } | null;
}

/** Several files in one multipart body, each a part named "file". */
function files(parts: { name: string; bytes: Buffer }[], fields: Record<string, string> = {}): { payload: Buffer; headers: Record<string, string> } {
  const boundary = `----memex${Math.random().toString(16).slice(2)}`;
  const pieces: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) pieces.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  for (const part of parts) {
    pieces.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${part.name}"\r\nContent-Type: application/json\r\n\r\n`), part.bytes, Buffer.from('\r\n'));
  }
  pieces.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(pieces), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

describe.skipIf(!hasChatExports).each(BACKENDS)('POST /v1/imports on %s', (backend) => {
  let s: Served;
  beforeAll(async () => {
    s = await served({ backend });
  });
  afterAll(async () => {
    await s.close();
  });

  async function finished(jobId: string, headers: Record<string, string>): Promise<ImportJob> {
    for (const deadline = Date.now() + 120_000; ; ) {
      const job = body<ImportJob>(await s.app.inject({ url: `/v1/imports/jobs/${jobId}`, headers }), 200);
      if (job.state !== 'running') return job;
      if (Date.now() > deadline) throw new Error(`import job ${jobId} still running`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it("uploads Claude's four files as one import, followed by polling and as events; listed, imported sessions apart; deleted", async () => {
    const parts = await Promise.all(['conversations', 'projects', 'memories', 'users'].map(async (name) => ({ name: `${name}.json`, bytes: await readFile(join(CHAT_EXPORTS, 'claude', `yaleman_${name}.json`)) })));
    const upload = files(parts);
    const started = await s.app.inject({ method: 'POST', url: '/v1/imports', headers: { ...s.alice, ...upload.headers }, payload: upload.payload });
    const { job } = body<{ job: ImportJob }>(started, 202);
    expect(started.headers.location).toBe(`/v1/imports/jobs/${job.id}`);
    const done = await finished(job.id, s.alice);
    expect(done.state, JSON.stringify(done.error)).toBe('done');
    expect(done.report?.record.counts.conversations.added).toBe(1);
    // The events of a finished job: its end.
    const events = await s.app.inject({ url: `/v1/imports/jobs/${job.id}/events`, headers: s.alice });
    expect(events.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(events.body).toContain('event: done');

    const listed = body<{ imports: { id: string }[] }>(await s.app.inject({ url: '/v1/imports', headers: s.alice }), 200);
    expect(listed.imports.map((i) => i.id)).toEqual([done.report?.record.id]);
    expect(body<{ total: number }>(await s.app.inject({ url: '/v1/sessions', headers: s.alice }), 200).total).toBe(0);
    const imported = body<{ sessions: { id: string; origin: { kind: string } }[] }>(await s.app.inject({ url: '/v1/sessions?origin=imported', headers: s.alice }), 200);
    expect(imported.sessions).toHaveLength(2);
    // Read-only over HTTP too.
    const chat = imported.sessions[0]?.id as string;
    expectProblem(await s.app.inject({ method: 'POST', url: `/v1/sessions/${chat}/messages`, headers: s.alice, payload: { role: 'user', content: 'more' } }), 409, 'MEMEX_SESSION_READ_ONLY');
    // Another user sees neither the job nor the import.
    expectProblem(await s.app.inject({ url: `/v1/imports/jobs/${job.id}`, headers: s.bob }), 404, 'MEMEX_JOB_NOT_FOUND');
    expect(body<{ imports: unknown[] }>(await s.app.inject({ url: '/v1/imports', headers: s.bob }), 200).imports).toEqual([]);

    // The same upload again adds nothing.
    const again = body<{ job: ImportJob }>(await s.app.inject({ method: 'POST', url: '/v1/imports', headers: { ...s.alice, ...upload.headers }, payload: upload.payload }), 202);
    expect((await finished(again.job.id, s.alice)).report?.record.counts.conversations).toMatchObject({ added: 0, unchanged: 1 });

    expectProblem(await s.app.inject({ method: 'DELETE', url: `/v1/imports/${done.report?.record.id}`, headers: s.bob }), 404, 'MEMEX_IMPORT_NOT_FOUND');
    body(await s.app.inject({ method: 'DELETE', url: `/v1/imports/${done.report?.record.id}`, headers: s.alice }), 200);
    expect(body<{ total: number }>(await s.app.inject({ url: '/v1/sessions?origin=imported', headers: s.alice }), 200).total).toBe(0);
  }, 120_000);

  it('the attachments field: store keeps an export\'s files without reading them; another value is refused', async () => {
    const cases = JSON.parse(await readFile(join(CHAT_EXPORTS, 'chatgpt', 'pulsar_hardening_by_name.json'), 'utf8')) as Record<string, unknown>;
    const zip = buildZip([
      { name: 'conversations.json', data: JSON.stringify([cases.knownImage]) },
      { name: 'image_456-photo.png', data: await sharp({ create: { width: 40, height: 20, channels: 3, background: '#ffffff' } }).png().toBuffer(), method: 'store' },
    ]);
    const upload = files([{ name: 'export.zip', bytes: zip }], { attachments: 'store' });
    const { job } = body<{ job: ImportJob }>(await s.app.inject({ method: 'POST', url: '/v1/imports', headers: { ...s.bob, ...upload.headers }, payload: upload.payload }), 202);
    const done = await finished(job.id, s.bob);
    expect(done.state, JSON.stringify(done.error)).toBe('done');
    expect(done.report?.record.counts.attachments).toEqual({ stored: 1, ingested: 0, missing: 0 });
    const wrong = files([{ name: 'export.zip', bytes: zip }], { attachments: 'ocr' });
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/imports', headers: { ...s.bob, ...wrong.headers }, payload: wrong.payload }), 400, 'MEMEX_INVALID_INPUT');
  }, 120_000);

  it('a bad export ends its job failed with the coded error; a body with no file part is refused at once', async () => {
    const upload = multipart({ name: 'conversations.json', bytes: Buffer.from('[{"title": "cut off", "mapping": {') });
    const { job } = body<{ job: ImportJob }>(await s.app.inject({ method: 'POST', url: '/v1/imports', headers: { ...s.alice, ...upload.headers }, payload: upload.payload }), 202);
    const done = await finished(job.id, s.alice);
    expect(done).toMatchObject({ state: 'failed', error: { code: 'MEMEX_IMPORT_INVALID' } });
    const empty = files([], { source: 'chatgpt' });
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/imports', headers: { ...s.alice, ...empty.headers }, payload: empty.payload }), 400, 'MEMEX_INVALID_INPUT');
    const wrong = multipart({ name: 'a.json', bytes: Buffer.from('[]') }, { source: 'myspace' });
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/imports', headers: { ...s.alice, ...wrong.headers }, payload: wrong.payload }), 400, 'MEMEX_INVALID_INPUT');
  }, 120_000);
});
