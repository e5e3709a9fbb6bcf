import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { json, memex, spawnMemex } from '../helpers/cli.js';
import { textPdf } from '../helpers/pdf.js';
import { tempDir } from '../helpers/tmp.js';

const running = new Set<ChildProcessWithoutNullStreams>();

afterEach(async () => {
  for (const child of running) {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  running.clear();
});

/** `memex serve` on a free port, as a child; resolves with its URL and everything it said on stderr so far. */
async function startServer(env: NodeJS.ProcessEnv, cwd?: string, expectKey = false): Promise<{ child: ChildProcessWithoutNullStreams; url: string; stderr: () => string }> {
  const child = spawnMemex(['serve', '--port', '0', '--log-level', 'silent'], { env, ...(cwd ? { cwd } : {}) });
  running.add(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const url = await new Promise<string>((resolve, reject) => {
    const look = (): void => {
      const found = /listening on (http:\/\/\S+) /.exec(stderr)?.[1];
      // The key notice (on a first start) follows the listening line; wait for the whole of it.
      if (found && (!expectKey || stderr.includes('/v1/me'))) {
        child.stderr.off('data', look);
        resolve(found);
      }
    };
    child.stderr.on('data', look);
    child.once('exit', (code) => reject(new Error(`memex serve exited with ${code}: ${stderr}`)));
  });
  return { child, url, stderr: () => stderr };
}

async function stop(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

describe('the CLI beside a running memex serve', () => {
  it('32 concurrent `memex add` processes all succeed while the server owns the data dir', async () => {
    const dataDir = join(await tempDir(), 'data');
    const env = { MEMEX_DATA_DIR: dataDir };
    const { child } = await startServer(env);
    // The server announces itself to the data dir's owner only.
    expect((await stat(join(dataDir, 'server.json'))).mode & 0o777).toBe(0o600);

    const { id } = await json<{ id: string }>(['session', 'new', '--title', 'Beside the server'], { env });
    const runs = await Promise.all(Array.from({ length: 32 }, (_, i) => memex(['add', '-s', id, `from process ${i}`], { env, child: true })));
    expect(runs.filter((r) => r.code !== 0).map((r) => r.stderr)).toEqual([]);
    const page = await json<{ messages: { content: string }[]; total: number }>(['messages', '-s', id, '--limit', '100'], { env });
    expect(page.total).toBe(32);
    expect(page.messages.map((m) => m.content).sort()).toEqual(Array.from({ length: 32 }, (_, i) => `from process ${i}`).sort());

    // Stopped gracefully, the server takes its server.json along; the CLI then opens the data dir itself.
    expect(await stop(child)).toBe(0);
    expect(existsSync(join(dataDir, 'server.json'))).toBe(false);
    expect((await json<{ total: number }>(['messages', '-s', id], { env })).total).toBe(32);
  }, 300_000);

  it('runs every command over HTTP while the server runs, with the same results and error codes', async () => {
    const dir = await tempDir();
    const dataDir = join(dir, 'data');
    const env = { MEMEX_DATA_DIR: dataDir };
    const { child } = await startServer(env);

    const added = await json<{ id: string; sessionId: string }>(['add', 'My cat is called Miso and she loves tuna.'], { env });
    await json(['add', '-', '-s', added.sessionId], { env, input: 'The invoice for the roof repair is 4471.\n' });
    const session = await json<{ id: string; title: string }>(['session', 'rename', added.sessionId, 'Home'], { env });
    expect(session.title).toBe('Home');
    expect((await json<{ id: string }>(['session', 'show', added.sessionId], { env })).id).toBe(added.sessionId);
    expect((await json<{ total: number }>(['session', 'list'], { env })).total).toBe(1);
    const offset = await json<{ messages: { content: string }[]; offset: number }>(['messages', '--offset', '1', '--limit', '1'], { env });
    expect(offset.messages.map((m) => m.content)).toEqual(['The invoice for the roof repair is 4471.']);

    const pdf = join(dir, 'roof-invoice.pdf');
    await writeFile(pdf, textPdf('Roof repair invoice number 4471 from the Lisbon builder'));
    const ingested = await json<{ files: { ok: boolean; result: { chunks: number; file: { id: string; name: string } } }[] }>(['ingest', pdf], { env });
    expect(ingested.files[0]?.result.chunks).toBeGreaterThan(0);
    const files = await json<{ files: { id: string; name: string }[] }>(['file', 'list'], { env });
    expect(files.files.map((f) => f.name)).toEqual(['roof-invoice.pdf']);
    const note = join(dir, 'receipt.pdf');
    await writeFile(note, textPdf('Receipt for the tuna'));
    const withFile = await json<{ attachments: { name: string }[] }>(['add', '--attach', note, 'here is the receipt'], { env });
    expect(withFile.attachments.map((a) => a.name)).toEqual(['receipt.pdf']);
    expect((await memex(['messages'], { env })).stdout).toContain('attached: receipt.pdf (application/pdf)');

    const found = await memex(['search', '--mode', 'lexical', 'builder'], { env });
    expect(found.stdout).toContain('roof-invoice.pdf');
    const hits = await json<{ hits: { text: string }[] }>(['search', 'Miso', 'tuna'], { env });
    expect(hits.hits.length).toBeGreaterThan(0);
    const window = await json<{ role: string; content: string }[]>(['context', '--budget', '2000'], { env });
    expect(window.at(-1)?.content).toBe('here is the receipt');
    const exported = await memex(['export', '--format', 'md'], { env });
    expect(exported.stdout).toMatch(/^# Home\n/);
    expect(exported.stdout).toContain('My cat is called Miso');

    await json(['file', 'rm', files.files[0]!.id.slice(0, 12)], { env });
    expect((await json<{ files: unknown[] }>(['file', 'list'], { env })).files).toHaveLength(1);
    expect(await json(['message', 'rm', added.id, '-s', added.sessionId], { env })).toMatchObject({ deleted: true });
    // The trash, tags, sorted listing and session search go through their routes.
    expect((await json<{ messages: { message: { id: string } }[] }>(['trash', 'list'], { env })).messages.map((m) => m.message.id)).toEqual([added.id]);
    expect(await json(['trash', 'restore', added.id], { env })).toMatchObject({ id: added.id });
    await json(['message', 'rm', added.id, '-s', added.sessionId, '--purge'], { env });
    expect((await json<{ tags: string[] }>(['session', 'tag', added.sessionId, 'pets', 'home'], { env })).tags).toEqual(['home', 'pets']);
    expect(await json(['session', 'tags'], { env })).toEqual({ tags: [{ tag: 'home', sessions: 1 }, { tag: 'pets', sessions: 1 }] });
    expect((await json<{ sessions: { id: string }[] }>(['session', 'list', '--tag', 'pets', '--sort', 'title', '--asc'], { env })).sessions.map((x) => x.id)).toEqual([added.sessionId]);
    expect((await json<{ sessions: { session: { id: string } }[] }>(['session', 'search', 'Miso'], { env })).sessions.map((m) => m.session.id)).toContain(added.sessionId);
    expect(await json(['reindex'], { env })).toMatchObject({ sessionsTotal: 1 });
    expect(await json(['doctor'], { env })).toMatchObject({ ok: true, sessions: 1 });

    // Personas, notes and users go through their routes too.
    const persona = await json<{ id: string; name: string }>(['persona', 'add', 'Chef', '--instructions', 'Answer as a chef.'], { env });
    expect((await json<{ name: string }[]>(['persona', 'list'], { env })).map((p) => p.name)).toEqual(['Chef']);
    expect(await json(['session', 'new', '--persona', 'chef', '--title', 'Cooking'], { env })).toMatchObject({ personaId: persona.id });
    const allergy = await json<{ id: string }>(['note', 'add', 'Allergic to peanuts'], { env });
    expect((await json<{ id: string }[]>(['note', 'list'], { env })).map((n) => n.id)).toEqual([allergy.id]);
    await json(['note', 'rm', allergy.id], { env });
    expect(await json(['note', 'list'], { env })).toEqual([]);
    await json(['user', 'add', 'bob', '--name', 'Bob'], { env });
    expect((await json<{ id: string }[]>(['user', 'list'], { env })).map((u) => u.id).sort()).toEqual(['bob', 'default']);
    await json(['user', 'rm', 'bob', '--yes'], { env });
    expect((await json<{ id: string }[]>(['user', 'list'], { env })).map((u) => u.id)).toEqual(['default']);

    // Chat exports go up to the server and its job is followed; listed and removed the same way.
    const chats = join(dir, 'conversations.json');
    await writeFile(chats, JSON.stringify([{ id: 'c1', title: 'Trip', current_node: 'n1', mapping: { root: { id: 'root', parent: null, children: ['n1'], message: null }, n1: { id: 'n1', parent: 'root', children: [], message: { id: 'm1', author: { role: 'user' }, create_time: 1700000000, content: { content_type: 'text', parts: ['Plan the Lisbon trip'] } } } } }]));
    const report = await json<{ saved: boolean; record: { id: string; sessions: string[] } }>(['import', chats], { env });
    expect(report.saved).toBe(true);
    expect((await json<{ sessions: { id: string }[] }>(['session', 'list', '--origin', 'imported'], { env })).sessions.map((s) => s.id)).toEqual(report.record.sessions);
    expect((await json<{ id: string }[]>(['import', 'list'], { env })).map((r) => r.id)).toEqual([report.record.id]);
    await json(['import', 'rm', report.record.id], { env });
    expect(await json(['import', 'list'], { env })).toEqual([]);

    // Errors keep their codes; a user that does not exist is not created by asking for it.
    const ghost = await memex(['--user', 'ghost', 'session', 'list', '--json'], { env });
    expect(ghost.code).toBe(1);
    expect(JSON.parse(ghost.stderr).error.code).toBe('MEMEX_USER_NOT_FOUND');
    const missing = await memex(['messages', '-s', 'no-such-session', '--json'], { env });
    expect(JSON.parse(missing.stderr).error.code).toBe('MEMEX_SESSION_NOT_FOUND');
    const piped = await memex(['export'], { env, closeStdout: true });
    expect(piped).toMatchObject({ code: 0, stderr: '' });
    expect(await stop(child)).toBe(0);
  }, 300_000);

  it('ignores a server.json left by a server that is gone', async () => {
    const dataDir = join(await tempDir(), 'data');
    const env = { MEMEX_DATA_DIR: dataDir };
    await json(['init'], { env });
    const dead = spawn(process.execPath, ['-e', '']);
    await once(dead, 'exit');
    const stale = { v: 1, url: 'http://127.0.0.1:9', pid: dead.pid, hostname: hostname(), secret: 'x'.repeat(40), startedAt: new Date().toISOString() };
    await writeFile(join(dataDir, 'server.json'), JSON.stringify(stale), { mode: 0o600 });
    expect(await json(['add', 'still works'], { env })).toMatchObject({ content: 'still works' });
    // A live pid with a port that refuses is stale too.
    await writeFile(join(dataDir, 'server.json'), JSON.stringify({ ...stale, pid: process.pid }), { mode: 0o600 });
    expect((await json<{ total: number }>(['messages'], { env })).total).toBe(1);
  });
});

describe('npm start on a fresh data dir', () => {
  it('makes a key for the default user on the first start and prints it once: enough to make a call', async () => {
    const cwd = await tempDir();
    const first = await startServer({}, cwd, true);
    const key = /\n {2}(mx_\S+)\n/.exec(first.stderr())?.[1];
    expect(key).toBeDefined();
    const created = await fetch(`${first.url}/v1/sessions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"title":"Trip"}' });
    expect(created.status).toBe(201);
    const me = (await (await fetch(`${first.url}/v1/me`, { headers: { authorization: `Bearer ${key}` } })).json()) as { id: string };
    expect(me.id).toBe('default');
    expect(await stop(first.child)).toBe(0);

    const again = await startServer({}, cwd);
    expect(again.stderr()).not.toContain('mx_');
    expect(await stop(again.child)).toBe(0);
    const keys = await json<{ userId: string }[]>(['keys', 'list', '--all'], { cwd });
    expect(keys.map((k) => k.userId)).toEqual(['default']);
  }, 120_000);
});
