import { mkdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { json, memex } from '../helpers/cli.js';
import { hasSharedModel, modelEnv, SHARED_MODEL_ID } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';
import { hasEvalFiles, IMAGES, PDFS } from '../helpers/eval.js';

describe('memex CLI', () => {
  it('prints help and version', async () => {
    const help = await memex(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: memex');
    for (const command of ['init', 'user', 'session', 'add', 'messages', 'export']) expect(help.stdout).toContain(command);
    expect((await memex(['session', '--help'])).stdout).toContain('rename');
    // The bin itself, as a shell runs it.
    expect((await memex(['--version'], { child: true })).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('runs the main job with no flags, in ./memex-data', async () => {
    const cwd = await tempDir();
    expect((await memex(['init'], { cwd })).code).toBe(0);
    const added = await memex(['add', 'I', 'moved', 'to', 'Lisbon', 'in', 'May'], { cwd });
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^Added msg_\w+ to session \d{8}-\d{6}-\w{6}/);
    await memex(['add', '--role', 'assistant', 'Congratulations on the move!'], { cwd });
    const list = await memex(['session', 'list'], { cwd });
    expect(list.stdout).toContain('I moved to Lisbon in May');
    expect(list.stdout).toContain('Congratulations on the move!');
    const messages = await memex(['messages'], { cwd });
    expect(messages.stdout).toMatch(/user: I moved to Lisbon in May\n.*assistant: Congratulations/);
    expect(JSON.parse(await readFile(join(cwd, 'memex-data', 'memex.json'), 'utf8'))).toMatchObject({ kind: 'memex-data' });
  });

  it('takes global options before or after the subcommand, and prints ids with --json', async () => {
    const dataDir = join(await tempDir(), 'data');
    const user = await json<{ id: string }>(['--data-dir', dataDir, 'user', 'add', 'alice', '--name', 'Alice']);
    expect(user.id).toBe('alice');
    const session = await json<{ id: string; title: string }>(['session', 'new', '--title', 'Trip', '--user', 'alice', '--data-dir', dataDir]);
    expect(session).toMatchObject({ title: 'Trip' });
    const message = await json<{ id: string; sessionId: string }>(['--user', 'alice', 'add', '--session', session.id, 'hello', '--data-dir', dataDir]);
    expect(message.id).toMatch(/^msg_/);
    expect(message.sessionId).toBe(session.id);
    const page = await json<{ sessions: { id: string; messageCount: number }[] }>(['session', 'list', '-u', 'alice', '--data-dir', dataDir]);
    expect(page.sessions).toEqual([expect.objectContaining({ id: session.id, messageCount: 1 })]);
    // The default user is separate from alice.
    expect((await json<{ total: number }>(['session', 'list', '--data-dir', dataDir])).total).toBe(0);
  });

  it('pages messages, renames, exports and deletes', async () => {
    const dataDir = join(await tempDir(), 'data');
    // Each process loads the model while it holds the lock; a slow machine must not time the others out.
    const env = { MEMEX_DATA_DIR: dataDir, MEMEX_LOCK_TIMEOUT_MS: '60000' };
    const { id } = await json<{ id: string }>(['session', 'new'], { env });
    for (let i = 0; i < 5; i++) await memex(['add', '-s', id, `note ${i}`], { env });
    const page = await json<{ messages: { content: string }[]; total: number; nextCursor: string }>(['messages', '--session', id, '--limit', '2', '--offset', '1'], { env });
    expect(page.messages.map((m) => m.content)).toEqual(['note 1', 'note 2']);
    expect(page.total).toBe(5);
    const next = await json<{ messages: { content: string }[] }>(['messages', '-s', id, '--limit', '2', '--cursor', page.nextCursor], { env });
    expect(next.messages.map((m) => m.content)).toEqual(['note 3', 'note 4']);

    await memex(['session', 'rename', id, 'My notes'], { env });
    const md = await memex(['export', '--session', id, '--format', 'md'], { env });
    expect(md.stdout).toMatch(/^# My notes\n/);
    expect(md.stdout).toContain('## User · ');
    expect(md.stdout).toContain('note 4');
    const exported = JSON.parse((await memex(['export', '-s', id, '-f', 'json'], { env })).stdout);
    expect(exported).toMatchObject({ v: 1, format: 'memex-session', session: { id, title: 'My notes' } });
    expect(exported.messages.map((m: { content: string }) => m.content)).toEqual(['note 0', 'note 1', 'note 2', 'note 3', 'note 4']);

    expect((await memex(['session', 'rm', id, '--purge'], { env })).code).toBe(0);
    const gone = await memex(['messages', '-s', id, '--json'], { env });
    expect(gone.code).toBe(1);
    expect(JSON.parse(gone.stderr).error.code).toBe('MEMEX_SESSION_NOT_FOUND');
  });

  it('reads a message from stdin with "-"', async () => {
    const dataDir = join(await tempDir(), 'data');
    await memex(['add', '-'], { env: { MEMEX_DATA_DIR: dataDir }, input: 'line one\nline two\n' });
    const page = await json<{ messages: { content: string }[] }>(['messages'], { env: { MEMEX_DATA_DIR: dataDir } });
    expect(page.messages[0]!.content).toBe('line one\nline two');
  });

  it('answers bad input with a coded error and a hint, and a usage error with exit 2', async () => {
    const dataDir = join(await tempDir(), 'data');
    const traversal = await memex(['--data-dir', dataDir, '--user', '../etc', 'session', 'list']);
    expect(traversal.code).toBe(1);
    expect(traversal.stderr).toContain('MEMEX_INVALID_ID');
    const unknownUser = await memex(['--data-dir', dataDir, '--user', 'ghost', 'session', 'list', '--json']);
    expect(JSON.parse(unknownUser.stderr).error).toMatchObject({ code: 'MEMEX_USER_NOT_FOUND', hint: expect.stringContaining('memex user add') });
    const badSession = await memex(['--data-dir', dataDir, 'add', '--session', 'a/../../b', 'x']);
    expect(badSession.stderr).toContain('MEMEX_INVALID_ID');
    const badRole = await memex(['--data-dir', dataDir, 'add', '--role', 'wizard', 'x']);
    expect(badRole.code).toBe(2);
    expect(badRole.stderr).toContain('wizard');
    expect((await memex(['--data-dir', dataDir, 'frobnicate'])).code).toBe(2);
  });

  it('lets concurrent CLI processes take turns on one data dir without losing a message', async () => {
    const dataDir = join(await tempDir(), 'data');
    // No lock timeout set: by default CLI commands wait their turn long enough (each loads the model while it holds the lock).
    const env = { MEMEX_DATA_DIR: dataDir };
    const { id } = await json<{ id: string }>(['session', 'new'], { env });
    const runs = await Promise.all(Array.from({ length: 8 }, (_, i) => memex(['add', '-s', id, `from process ${i}`], { env, child: true })));
    expect(runs.map((r) => r.code)).toEqual(Array(8).fill(0));
    const page = await json<{ messages: { content: string }[] }>(['messages', '-s', id], { env });
    expect(page.messages.map((m) => m.content).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `from process ${i}`).sort());
  }, 60_000);

  it('embeds what it adds, deletes a message with its rows, and reindexes with --json', async () => {
    const dataDir = join(await tempDir(), 'data');
    const env = { MEMEX_DATA_DIR: dataDir };
    const added = await json<{ id: string; sessionId: string }>(['add', 'My cat is called Miso.'], { env });
    await json(['add', 'Remind me to water the plants.'], { env });
    const index = join(dataDir, 'users', 'default', 'sessions', added.sessionId, 'vector_index.jsonl');
    expect((await readFile(index, 'utf8')).trim().split('\n')).toHaveLength(2);
    expect(await json(['message', 'rm', added.id], { env })).toMatchObject({ deleted: true, messageId: added.id });
    const lines = (await readFile(index, 'utf8')).trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { text: string }).text)).toEqual(['Remind me to water the plants.']);
    const result = await json<{ sessionsTotal: number; sessionsSkipped: number }>(['reindex'], { env });
    expect(result).toMatchObject({ sessionsTotal: 1, sessionsSkipped: 1 });
    const forced = await json<{ sessionsEmbedded: number; chunks: number }>(['reindex', '--force'], { env });
    expect(forced).toMatchObject({ sessionsEmbedded: 1, chunks: 1 });
  });

  it('searches across sessions with a table, filters and --json, and doctor repairs what it can', async () => {
    const dataDir = join(await tempDir(), 'data');
    const env = { MEMEX_DATA_DIR: dataDir };
    const first = await json<{ sessionId: string }>(['add', 'My cat is called Miso and she loves tuna.'], { env });
    await json(['add', 'The invoice number for the roof repair is 4471.'], { env });
    const other = await json<{ id: string }>(['session', 'new', '--title', 'later'], { env });
    await json(['add', '-s', other.id, 'Book a vet appointment for Miso next week.'], { env });

    const table = await memex(['search', 'Miso', 'the', 'cat'], { env });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^#\s+SCORE\s+SESSION\s+ROLE\s+WHEN\s+TEXT/);
    expect(table.stdout).toContain('My cat is called Miso');
    expect(table.stdout).toMatch(/3 of 3 chunks, hybrid search in [\d.]+ ms/);

    // Query words after a filter flag stay query words.
    const filtered = await json<{ query: string; hits: { sessionId: string; text: string }[] }>(['search', '-s', other.id, '-k', '5', 'Miso', 'vet'], { env });
    expect(filtered.query).toBe('Miso vet');
    expect(filtered.hits.map((h) => h.sessionId)).toEqual([other.id]);
    const lexical = await json<{ hits: { text: string }[] }>(['search', '--mode', 'lexical', '4471'], { env });
    expect(lexical.hits.map((h) => h.text)).toEqual(['The invoice number for the roof repair is 4471.']);
    const excluded = await json<{ hits: { sessionId: string }[] }>(['search', '--exclude-session', first.sessionId, 'cat'], { env });
    expect(excluded.hits.every((h) => h.sessionId !== first.sessionId)).toBe(true);
    expect((await memex(['search', '--mode', 'fuzzy', 'x'], { env })).code).toBe(2);
    // A relevance floor leaves out what barely matches, keeping the strong match; feedback runs a second pass.
    const all = await json<{ hits: { text: string; relevance: number }[] }>(['search', '-k', '10', 'invoice', 'number', 'roof', 'cat'], { env });
    expect(all.hits.length).toBeGreaterThan(1);
    for (const hit of all.hits) expect(hit.relevance).toBeGreaterThanOrEqual(0);
    const strong = Math.max(...all.hits.map((h) => h.relevance));
    const floored = await json<{ hits: { text: string; relevance: number }[] }>(['search', '--min-relevance', String(strong), 'invoice', 'number', 'roof', 'cat'], { env });
    expect(floored.hits.map((h) => h.text)).toEqual(['The invoice number for the roof repair is 4471.']);
    expect((await memex(['search', '--min-relevance', '2', 'x'], { env })).code).toBe(2);
    const fed = await json<{ hits: { text: string }[] }>(['search', '--feedback', '--mode', 'lexical', 'roof', 'repair'], { env });
    expect(fed.hits.map((h) => h.text)).toContain('The invoice number for the roof repair is 4471.');

    // Lose the index and the last vector row of a session: doctor puts both back.
    await rm(join(dataDir, 'users', 'default', 'index'), { recursive: true });
    const npy = join(dataDir, 'users', 'default', 'sessions', other.id, 'embeddings.npy');
    await truncate(npy, (await stat(npy)).size - 8);
    const doctorRun = await memex(['doctor', '--json'], { env });
    expect(doctorRun.code).toBe(0);
    expect(doctorRun.stderr).toContain('reconciled'); // the repair made on open, also reported as a warning
    const doctor = JSON.parse(doctorRun.stdout) as { ok: boolean; rows: number; findings: { severity: string; what: string }[] };
    expect(doctor.ok).toBe(true);
    expect(doctor.rows).toBe(3);
    expect(doctor.findings.map((f) => f.severity)).toContain('repaired');
    expect(doctor.findings.some((f) => f.what.includes('embedded 1 messages'))).toBe(true);
    expect((await memex(['doctor'], { env })).stdout).toContain('Everything is in order.');
    expect((await json<{ hits: unknown[] }>(['search', 'vet appointment'], { env })).hits).toHaveLength(3);

    // What it cannot repair is a problem, with exit code 1 (a broken session meta it rebuilds).
    await writeFile(join(dataDir, 'users', 'default', 'sessions', other.id, 'session_meta.json'), '{ broken');
    const mendedRun = await memex(['doctor', '--json'], { env });
    expect(mendedRun.code).toBe(0);
    const mended = JSON.parse(mendedRun.stdout) as { ok: boolean; findings: { what: string }[] };
    expect(mended.ok).toBe(true);
    expect(mended.findings.some((f) => f.what.includes('rebuilt it from messages.jsonl'))).toBe(true);
    await mkdir(join(dataDir, 'users', 'not a user id'));
    const sick = await memex(['doctor'], { env });
    expect(sick.code).toBe(1);
    expect(sick.stdout).toContain('problem');
  }, 90_000);

  it.runIf(hasSharedModel)('refuses another model with a hint naming reindex, then switches after `memex reindex`', async () => {
    const dataDir = join(await tempDir(), 'data');
    const hashed = { MEMEX_DATA_DIR: dataDir, MEMEX_MODEL: 'hashed', MEMEX_MODEL_DIR: '' };
    await json(['add', 'Planning a trip to Lisbon in May.'], { env: hashed });
    const real = { ...modelEnv, MEMEX_DATA_DIR: dataDir };
    const refused = await memex(['add', 'another'], { env: real });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('MEMEX_MODEL_MISMATCH');
    expect(refused.stderr).toContain('memex reindex');
    expect(refused.stdout).toBe(''); // refused before anything was stored
    const result = await json<{ model: string; sessionsEmbedded: number }>(['reindex'], { env: real });
    expect(result).toMatchObject({ model: SHARED_MODEL_ID, sessionsEmbedded: 1 });
    expect((await memex(['add', 'another'], { env: real })).code).toBe(0);
    // The search index follows the switch (it was of the old model's rows).
    expect((await json<{ hits: unknown[] }>(['search', 'trip to Lisbon'], { env: real })).hits).toHaveLength(2);
    const manifest = JSON.parse(await readFile(join(dataDir, 'memex.json'), 'utf8')) as { embedding: { model: string; dimension: number } };
    expect(manifest.embedding).toEqual({ model: SHARED_MODEL_ID, dimension: 512 });
  });
});

describe('memex context and memex note', () => {
  it('prints the window and its report, the messages array with --json, and notes it includes', async () => {
    const dataDir = join(await tempDir(), 'data');
    const env = { MEMEX_DATA_DIR: dataDir, ...modelEnv };
    await json(['add', 'My hotel budget in Lisbon is 120 euros a night.'], { env });
    const now = await json<{ id: string }>(['session', 'new'], { env });
    await json(['add', '-s', now.id, 'What was my hotel budget?'], { env });
    const note = await json<{ id: string; kind: string }>(['note', 'add', '--kind', 'preference', 'Prefers', 'metric', 'units'], { env });
    expect(note.kind).toBe('preference');

    const human = await memex(['context', '--budget', '1000', '--system', 'You are a travel assistant.'], { env });
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('── system ──\nYou are a travel assistant.');
    expect(human.stdout).toMatch(/PART\s+TOKENS\s+ALLOTTED\s+ITEMS/);
    expect(human.stdout).toMatch(/\d+ of 488 tokens \(o200k_base; budget 1000 less 512 for the reply\)/);

    const messages = await json<{ role: string; content: string }[]>(['context', '-s', now.id, '--budget', '1000', '--encoding', 'cl100k_base'], { env });
    expect(messages.at(-1)).toEqual({ role: 'user', content: 'What was my hotel budget?' });
    expect(messages[0]!.content).toContain('(preference) Prefers metric units');
    expect(messages.some((m) => m.content.includes('120 euros'))).toBe(true);
    const withReport = await json<{ messages: unknown[]; report: { tokens: number; encoding: string } }>(['context', '--budget', '1000', '--no-notes', '--report'], { env });
    expect(withReport.report.encoding).toBe('o200k_base');
    expect(withReport.messages.length).toBe(messages.length - 1);

    const small = await memex(['context', '--budget', '100'], { env });
    expect(small.code).toBe(1);
    expect(small.stderr).toContain('MEMEX_CONTEXT_BUDGET_TOO_SMALL');

    expect((await json<{ id: string }[]>(['note', 'list'], { env })).map((n) => n.id)).toEqual([note.id]);
    await json(['note', 'rm', note.id], { env });
    const gone = await memex(['note', 'rm', note.id], { env });
    expect(gone.stderr).toContain('MEMEX_NOTE_NOT_FOUND');
  });
});

describe.skipIf(!hasEvalFiles)('memex ingest', () => {
  it('ingests what it can, reports each file, and exits 1 when one failed', async () => {
    const cwd = await tempDir();
    const env = modelEnv;
    const run = await memex(['--json', 'ingest', join(IMAGES, 'phototest.tif'), join(PDFS, 'issue6010_1.pdf'), join(IMAGES, 'reallybig.bmp')], { cwd, env });
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as { sessionId: string; files: { path: string; ok: boolean; result?: { chunks: number }; error?: { code: string } }[] };
    expect(report.files.map((f) => f.ok)).toEqual([true, false, false]);
    expect(report.files[0]?.result?.chunks).toBeGreaterThan(0);
    expect(report.files.map((f) => f.error?.code)).toEqual([undefined, 'MEMEX_PDF_ENCRYPTED', 'MEMEX_IMAGE_TOO_LARGE']);

    const again = await memex(['ingest', '--session', report.sessionId, '--password', 'abc', join(PDFS, 'issue6010_1.pdf'), join(IMAGES, 'phototest.tif')], { cwd, env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/issue6010_1\.pdf\s+pdf\s+1\s+1\s+\d+\s+0\s+ingested/);
    expect(again.stdout).toContain('already ingested');
    const found = await json<{ hits: { source: { kind: string } }[] }>(['search', '-k', '1', 'quick brown dog jumped over the lazy fox'], { cwd, env });
    expect(found.hits[0]?.source.kind).toBe('file');
  }, 60_000);
});

describe('memex keys', () => {
  it('creates a key printed once, lists it without its secret, and revokes it', async () => {
    const cwd = await tempDir();
    const created = await json<{ key: string; id: string; userId: string; name: string }>(['keys', 'create', '--user', 'alice', '--name', 'laptop'], { cwd });
    expect(created).toMatchObject({ userId: 'alice', name: 'laptop' });
    expect(created.key).toMatch(/^mx_[0-9a-z]{12}_[A-Za-z0-9_-]{43}$/);
    await json(['keys', 'create', '--user', 'bob'], { cwd });
    const listed = await json<{ id: string; revokedAt: string | null }[]>(['keys', 'list', '--user', 'alice'], { cwd });
    expect(listed.map((k) => k.id)).toEqual([created.id]);
    expect(JSON.stringify(listed)).not.toContain(created.key.slice(-43));
    expect(await json<unknown[]>(['keys', 'list', '--all'], { cwd })).toHaveLength(2);
    await json(['keys', 'revoke', created.id], { cwd });
    expect((await json<{ revokedAt: string | null }[]>(['keys', 'list', '--user', 'alice'], { cwd }))[0]?.revokedAt).not.toBeNull();
    const unknown = await memex(['keys', 'revoke', 'nosuchkey123'], { cwd });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('MEMEX_KEY_NOT_FOUND');
    const bad = await memex(['keys', 'create', '--user', '../x'], { cwd });
    expect(bad.stderr).toContain('MEMEX_INVALID_ID');
    const help = await memex(['serve', '--help'], { cwd });
    expect(help.stdout).toContain('--trust-user-header');
  });
});
