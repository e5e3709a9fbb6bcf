import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVAL_FILES_MISSING, hasEvalFiles, PDFS } from '../helpers/eval.js';
import { BACKENDS } from '../helpers/backends.js';
import { body, expectProblem, multipart, served, waitForJob, type Served } from './setup.js';

interface Session {
  id: string;
  title: string | null;
  messageCount: number;
  lastMessagePreview: string | null;
  trashedAt: string | null;
}
interface Message {
  id: string;
  content: string;
  role: string;
}
interface MessagePage {
  messages: Message[];
  total: number;
  nextCursor: string | null;
  prevCursor: string | null;
}

describe.each(BACKENDS)('HTTP routes (inject) on %s', (backend) => {
  let s: Served;
  beforeAll(async () => {
    s = await served({ backend });
  });
  afterAll(async () => {
    await s.close();
  });

  it('answers health, readiness and the OpenAPI document without a key', async () => {
    expect(body(await s.app.inject({ url: '/v1/health' }), 200)).toEqual({ status: 'ok' });
    const ready = body<{ ready: boolean; model: { id: string; dimension: number } }>(await s.app.inject({ url: '/v1/ready' }), 200);
    expect(ready.ready).toBe(true);
    expect(ready.model.dimension).toBeGreaterThan(0);
    const doc = body<{ openapi: string; paths: Record<string, Record<string, { requestBody?: unknown; parameters?: { name: string }[] }>>; components: { securitySchemes: Record<string, unknown> } }>(
      await s.app.inject({ url: '/v1/openapi.json' }),
      200,
    );
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/sessions', '/v1/sessions/{sessionId}/messages', '/v1/search', '/v1/sessions/{sessionId}/context', '/v1/jobs/{jobId}/events']));
    // The library's schemas made it: the message body documents its roles, the list its cursors.
    expect(JSON.stringify(doc.paths['/v1/sessions/{sessionId}/messages']?.post?.requestBody)).toContain('assistant');
    expect(doc.paths['/v1/sessions/{sessionId}/messages']?.get?.parameters?.map((p) => p.name)).toEqual(expect.arrayContaining(['after', 'before', 'latest', 'limit']));
    expect(doc.components.securitySchemes).toHaveProperty('apiKey');
  });

  it('shows and updates the calling user', async () => {
    const response = await s.app.inject({ url: '/v1/me', headers: s.alice });
    const me = body<{ id: string }>(response, 200);
    expect(me.id).toBe('alice');
    expect(response.headers['x-memex-key-id']).toMatch(/^[0-9a-z]{12}$/);
    const updated = body<{ name: string }>(await s.app.inject({ method: 'PATCH', url: '/v1/me', headers: s.alice, payload: { name: 'Alice A.' } }), 200);
    expect(updated.name).toBe('Alice A.');
  });

  it('creates, lists (cursor, title search, counts, previews), gets, renames and deletes sessions', async () => {
    const created: Session[] = [];
    for (const title of ['Lisbon trip', 'Taxes 2026', 'Lisbon flat hunt']) {
      const response = await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: { title } });
      const session = body<Session>(response, 201);
      expect(response.headers.location).toBe(`/v1/sessions/${session.id}`);
      created.push(session);
    }
    const untitled = body<Session>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice }), 201);
    expect(untitled.title).toBeNull();
    body(await s.app.inject({ method: 'POST', url: `/v1/sessions/${created[0]!.id}/messages`, headers: s.alice, payload: { role: 'user', content: 'Flights to   Lisbon in May?' } }), 201);

    const seen: Session[] = [];
    let cursor: string | null = null;
    do {
      const page: { sessions: Session[]; total: number; nextCursor: string | null } = body(await s.app.inject({ url: `/v1/sessions?limit=3${cursor ? `&cursor=${cursor}` : ''}`, headers: s.alice }), 200);
      seen.push(...page.sessions);
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen.map((x) => x.id).sort()).toEqual([...created, untitled].map((x) => x.id).sort());
    expect(seen[0]).toMatchObject({ id: created[0]!.id, messageCount: 1, lastMessagePreview: 'Flights to Lisbon in May?' });

    const lisbon = body<{ sessions: Session[]; total: number }>(await s.app.inject({ url: '/v1/sessions?title=lisbon', headers: s.alice }), 200);
    expect(lisbon.sessions.map((x) => x.title).sort()).toEqual(['Lisbon flat hunt', 'Lisbon trip']);

    expect(body<Session>(await s.app.inject({ url: `/v1/sessions/${created[1]!.id}`, headers: s.alice }), 200).title).toBe('Taxes 2026');
    const renamed = body<Session>(await s.app.inject({ method: 'PATCH', url: `/v1/sessions/${created[1]!.id}`, headers: s.alice, payload: { title: 'Taxes, filed' } }), 200);
    expect(renamed.title).toBe('Taxes, filed');
    // Deleting moves to the trash: still readable by id, marked; purge deletes it for good.
    expect((await s.app.inject({ method: 'DELETE', url: `/v1/sessions/${created[1]!.id}`, headers: s.alice })).statusCode).toBe(204);
    expect(body<Session>(await s.app.inject({ url: `/v1/sessions/${created[1]!.id}`, headers: s.alice }), 200).trashedAt).not.toBeNull();
    expect((await s.app.inject({ method: 'DELETE', url: `/v1/sessions/${created[1]!.id}?purge=true`, headers: s.alice })).statusCode).toBe(204);
    expectProblem(await s.app.inject({ url: `/v1/sessions/${created[1]!.id}`, headers: s.alice }), 404, 'MEMEX_SESSION_NOT_FOUND');
  });

  it('appends messages and pages them forwards (after) and backwards (latest, before)', async () => {
    const session = body<Session>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: { title: 'Paging' } }), 201);
    const url = `/v1/sessions/${session.id}/messages`;
    const written: Message[] = [];
    for (let i = 0; i < 12; i++) {
      written.push(body<Message>(await s.app.inject({ method: 'POST', url, headers: s.alice, payload: { role: i % 2 ? 'assistant' : 'user', content: `turn ${i}` } }), 201));
    }
    const forward: string[] = [];
    let after: string | null = null;
    do {
      const page: MessagePage = body(await s.app.inject({ url: `${url}?limit=5${after ? `&after=${after}` : ''}`, headers: s.alice }), 200);
      forward.push(...page.messages.map((m) => m.id));
      after = page.nextCursor;
    } while (after);
    expect(forward).toEqual(written.map((m) => m.id));

    const latest = body<MessagePage>(await s.app.inject({ url: `${url}?latest=true&limit=5`, headers: s.alice }), 200);
    expect(latest.messages.map((m) => m.content)).toEqual(['turn 7', 'turn 8', 'turn 9', 'turn 10', 'turn 11']);
    expect(latest.nextCursor).toBeNull();
    const earlier = body<MessagePage>(await s.app.inject({ url: `${url}?before=${latest.prevCursor}&limit=5`, headers: s.alice }), 200);
    expect(earlier.messages.map((m) => m.content)).toEqual(['turn 2', 'turn 3', 'turn 4', 'turn 5', 'turn 6']);

    const one = written[3]!;
    expect(body<Message>(await s.app.inject({ url: `${url}/${one.id}`, headers: s.alice }), 200).content).toBe('turn 3');
    expect((await s.app.inject({ method: 'DELETE', url: `${url}/${one.id}`, headers: s.alice })).statusCode).toBe(204);
    expectProblem(await s.app.inject({ url: `${url}/${one.id}`, headers: s.alice }), 404, 'MEMEX_MESSAGE_NOT_FOUND');
    expect(body<MessagePage>(await s.app.inject({ url, headers: s.alice }), 200).total).toBe(11);
  });

  it('recalls an appended message by meaning, and builds a context window within its budget', async () => {
    const old = body<Session>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: { title: 'Pets' } }), 201);
    await s.app.inject({ method: 'POST', url: `/v1/sessions/${old.id}/messages`, headers: s.alice, payload: { role: 'user', content: 'My dog Biscuit is a golden retriever who loves swimming.' } });
    const now = body<Session>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: { title: 'Weekend' } }), 201);
    await s.app.inject({ method: 'POST', url: `/v1/sessions/${now.id}/messages`, headers: s.alice, payload: { role: 'user', content: 'Which lake should I take Biscuit to this weekend?' } });

    const search = body<{ hits: { sessionId: string; text: string }[] }>(
      await s.app.inject({ method: 'POST', url: '/v1/search', headers: s.alice, payload: { query: 'what breed is my dog', k: 3, sessionIds: [old.id] } }),
      200,
    );
    expect(search.hits[0]).toMatchObject({ sessionId: old.id, text: expect.stringContaining('golden retriever') });

    const window = body<{ messages: { role: string; content: string }[]; report: { tokens: number; budget: number; reserve: number } }>(
      await s.app.inject({ method: 'POST', url: `/v1/sessions/${now.id}/context`, headers: s.alice, payload: { budget: 600, reserve: 100, system: 'You are a helpful assistant.' } }),
      200,
    );
    expect(window.report.tokens).toBeLessThanOrEqual(500);
    expect(window.messages[0]).toMatchObject({ role: 'system', content: expect.stringContaining('helpful assistant') });
    expect(window.messages.at(-1)).toMatchObject({ role: 'user', content: expect.stringContaining('Which lake') });
    expect(JSON.stringify(window.messages)).toContain('golden retriever');
    expectProblem(
      await s.app.inject({ method: 'POST', url: `/v1/sessions/${now.id}/context`, headers: s.alice, payload: { budget: 20, reserve: 10 } }),
      422,
      'MEMEX_CONTEXT_BUDGET_TOO_SMALL',
    );
  });

  it('exports a session as JSON and as Markdown, streamed', async () => {
    const session = body<Session>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: { title: 'Export me' } }), 201);
    await s.app.inject({ method: 'POST', url: `/v1/sessions/${session.id}/messages`, headers: s.alice, payload: { role: 'user', content: 'Remember the milk' } });
    const json = await s.app.inject({ url: `/v1/sessions/${session.id}/export`, headers: s.alice });
    expect(json.statusCode).toBe(200);
    expect(json.headers['content-disposition']).toContain(`${session.id}.json`);
    const doc = JSON.parse(json.body) as { session: { title: string }; messages: { content: string }[] };
    expect(doc.session.title).toBe('Export me');
    expect(doc.messages.map((m) => m.content)).toEqual(['Remember the milk']);
    const md = await s.app.inject({ url: `/v1/sessions/${session.id}/export?format=md`, headers: s.alice });
    expect(md.headers['content-type']).toMatch(/^text\/markdown/);
    expect(md.body).toMatch(/^# Export me/);
    expect(md.body).toContain('Remember the milk');
    expectProblem(await s.app.inject({ url: '/v1/sessions/20990101-000000-nosuch/export', headers: s.alice }), 404, 'MEMEX_SESSION_NOT_FOUND');
    expectProblem(await s.app.inject({ url: `/v1/sessions/${session.id}/export?format=pdf`, headers: s.alice }), 400, 'MEMEX_INVALID_INPUT');
  });

  it.skipIf(!hasEvalFiles)('uploads a PDF, follows its ingest job by polling and by server-sent events, and finds its text', async () => {
    const session = body<Session>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: { title: 'Papers' } }), 201);
    const bytes = await readFile(join(PDFS, 'TAMReview.pdf'));
    const upload = multipart({ name: 'TAMReview.pdf', bytes }, { name: 'review.pdf' });
    const response = await s.app.inject({ method: 'POST', url: `/v1/sessions/${session.id}/files`, headers: { ...s.alice, ...upload.headers }, payload: upload.payload });
    const accepted = body<{ file: { id: string; name: string; size: number; mimeType: string }; job: { id: string; state: string } }>(response, 202);
    expect(accepted.file).toMatchObject({ name: 'review.pdf', size: bytes.length, mimeType: 'application/pdf' });
    expect(response.headers.location).toBe(`/v1/jobs/${accepted.job.id}`);

    const events = await s.app.inject({ url: `/v1/jobs/${accepted.job.id}/events`, headers: s.alice });
    expect(events.headers['content-type']).toMatch(/^text\/event-stream/);
    const names = [...events.body.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(names.at(-1)).toBe('done');
    const job = await waitForJob(s.app, s.alice, accepted.job.id);
    expect(job).toMatchObject({ state: 'done', result: { kind: 'pdf', ingested: true } });
    expect((job.result as { chunks: number }).chunks).toBeGreaterThan(0);

    const file = body<{ content: { chunks: number } }>(await s.app.inject({ url: `/v1/sessions/${session.id}/files/${accepted.file.id}`, headers: s.alice }), 200);
    expect(file.content.chunks).toBe((job.result as { chunks: number }).chunks);
    expect(body<{ files: unknown[] }>(await s.app.inject({ url: `/v1/sessions/${session.id}/files`, headers: s.alice }), 200).files).toHaveLength(1);
    const content = await s.app.inject({ url: `/v1/sessions/${session.id}/files/${accepted.file.id}/content`, headers: s.alice });
    expect(content.rawPayload.equals(bytes)).toBe(true);

    const text = JSON.parse((await s.memex.files.artifact('alice', session.id, accepted.file.id, 'text.json')).toString()) as { units: { text: string }[] };
    const phrase = text.units.map((u) => u.text).join(' ').split(/\s+/).slice(20, 32).join(' ');
    const hits = body<{ hits: { source: { kind: string } }[] }>(await s.app.inject({ method: 'POST', url: '/v1/search', headers: s.alice, payload: { query: phrase, sources: ['file'], k: 3 } }), 200);
    expect(hits.hits[0]?.source.kind).toBe('file');

    // The same bytes again: stored once, and the job ends at once with nothing new to ingest.
    const again = body<{ job: { id: string } }>(await s.app.inject({ method: 'POST', url: `/v1/sessions/${session.id}/files`, headers: { ...s.alice, ...upload.headers }, payload: upload.payload }), 202);
    expect(await waitForJob(s.app, s.alice, again.job.id)).toMatchObject({ state: 'done', result: { ingested: false } });

    expect((await s.app.inject({ method: 'DELETE', url: `/v1/sessions/${session.id}/files/${accepted.file.id}`, headers: s.alice })).statusCode).toBe(204);
    expectProblem(await s.app.inject({ url: `/v1/sessions/${session.id}/files/${accepted.file.id}`, headers: s.alice }), 404, 'MEMEX_FILE_NOT_FOUND');
  }, 90_000);

  it.skipIf(!hasEvalFiles)('ends the job of an encrypted PDF as failed with its code, and keeps none of it', async () => {
    const session = body<Session>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: {} }), 201);
    const upload = multipart({ name: 'locked.pdf', bytes: await readFile(join(PDFS, 'issue6010_1.pdf')) });
    const accepted = body<{ job: { id: string } }>(await s.app.inject({ method: 'POST', url: `/v1/sessions/${session.id}/files`, headers: { ...s.alice, ...upload.headers }, payload: upload.payload }), 202);
    const job = await waitForJob(s.app, s.alice, accepted.job.id);
    expect(job).toMatchObject({ state: 'failed', error: { code: 'MEMEX_PDF_ENCRYPTED' } });
    expect(body<{ files: unknown[] }>(await s.app.inject({ url: `/v1/sessions/${session.id}/files`, headers: s.alice }), 200).files).toEqual([]);
    // Following a finished job sends its end at once.
    const events = await s.app.inject({ url: `/v1/jobs/${accepted.job.id}/events`, headers: s.alice });
    expect(events.body).toMatch(/^event: failed$/m);
  });

  it('refuses uploads that are not files Memex ingests, and keeps nothing of them', async () => {
    const session = body<Session>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: {} }), 201);
    const url = `/v1/sessions/${session.id}/files`;
    const binary = multipart({ name: 'notes.pdf', bytes: Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x13, 0x37, 0x00, 0x42]) });
    expectProblem(await s.app.inject({ method: 'POST', url, headers: { ...s.alice, ...binary.headers }, payload: binary.payload }), 415, 'MEMEX_FILE_TYPE_UNSUPPORTED');
    const misnamed = multipart({ name: 'a.pdf', bytes: Buffer.from('%PDF-1.4'), field: 'upload' });
    expectProblem(await s.app.inject({ method: 'POST', url, headers: { ...s.alice, ...misnamed.headers }, payload: misnamed.payload }), 400, 'MEMEX_INVALID_INPUT');
    expectProblem(await s.app.inject({ method: 'POST', url, headers: s.alice, payload: { file: 'not multipart' } }), 415, 'MEMEX_CONTENT_TYPE_UNSUPPORTED');
    expect(await s.memex.files.list('alice', session.id)).toEqual([]);
  });

  it('ingests an uploaded Markdown document like a PDF (text documents were refused with 415)', async () => {
    const session = body<Session>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: {} }), 201);
    const upload = multipart({ name: 'notes.md', bytes: Buffer.from('# Packing list\n\n- passport\n- rain jacket\n') });
    const accepted = body<{ job: { id: string } }>(await s.app.inject({ method: 'POST', url: `/v1/sessions/${session.id}/files`, headers: { ...s.alice, ...upload.headers }, payload: upload.payload }), 202);
    expect(await waitForJob(s.app, s.alice, accepted.job.id)).toMatchObject({ state: 'done', result: { kind: 'text' } });
  });

  it('cancels a queued job', async () => {
    const session = body<Session>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: {} }), 201);
    const png = await import('sharp').then(({ default: sharp }) => sharp({ create: { width: 64, height: 64, channels: 3, background: '#fff' } }).png().toBuffer());
    const first = multipart({ name: 'a.png', bytes: png });
    const accepted = body<{ job: { id: string } }>(await s.app.inject({ method: 'POST', url: `/v1/sessions/${session.id}/files`, headers: { ...s.alice, ...first.headers }, payload: first.payload }), 202);
    const cancelled = body<{ state: string }>(await s.app.inject({ method: 'DELETE', url: `/v1/jobs/${accepted.job.id}`, headers: s.alice }), 200);
    // Whether it was still queued or already running, a cancelled job ends cancelled (or done, if it won the race).
    expect(['cancelled', 'done']).toContain(cancelled.state);
    expect(['cancelled', 'done']).toContain((await waitForJob(s.app, s.alice, accepted.job.id)).state);
    expectProblem(await s.app.inject({ url: '/v1/jobs/job_nosuch', headers: s.alice }), 404, 'MEMEX_JOB_NOT_FOUND');
  });
  it.skipIf(hasEvalFiles)(EVAL_FILES_MISSING, () => undefined);
});
