import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BACKENDS, type Backend } from '../helpers/backends.js';
import { BIN, json, memex, spawnMemex } from '../helpers/cli.js';
import { modelEnv } from '../helpers/model.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { exited, startServer } from '../server/setup.js';
import { ok, toolError } from './client.js';

// `memex mcp` as an MCP client runs it: the built bin (`npm run build` first) in a child process,
// spoken to over its stdin/stdout by the SDK's own client.

let database: Promise<TestDatabase> | null = null;
afterAll(async () => {
  if (database) await (await database).stop();
});

/** The CLI's flags that put a fresh data dir on `backend`. */
async function storeFlags(backend: Backend): Promise<string[]> {
  const dataDir = join(await tempDir(), 'data');
  if (backend === 'flat') return ['--data-dir', dataDir];
  database ??= startTestDatabase();
  const { url } = await database;
  await resetMemexSchema(url);
  return ['--data-dir', dataDir, '--database-url', url];
}

const env = { ...process.env, MEMEX_DATA_DIR: '', MEMEX_CONFIG: '', ...modelEnv } as Record<string, string>;
const open: { client: Client; errors: Error[] }[] = [];
afterEach(async () => {
  for (const { client, errors } of open.splice(0)) {
    await client.close();
    // Anything but protocol on stdout would have been a parse error here.
    expect(errors).toEqual([]);
  }
});

async function connect(args: string[], extraEnv: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'memex-test', version: '1.0.0' });
  const errors: Error[] = [];
  client.onerror = (error) => errors.push(error);
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [BIN, ...args, 'mcp'], env: { ...env, ...extraEnv }, stderr: 'ignore' }));
  open.push({ client, errors });
  return client;
}

describe.each(BACKENDS)('memex mcp (stdio) on %s', (backend) => {
  it('remembers and recalls, ingests a file by path, reads sessions as resources', async () => {
    const flags = await storeFlags(backend);
    const home = await tempDir();
    const client = await connect(flags, { HOME: home });
    const names = (await client.listTools()).tools.map((tool) => tool.name);
    expect(names.sort()).toEqual(['build_context', 'ingest_file', 'list_sessions', 'read_session', 'recall', 'remember']);

    const remembered = await ok<{ sessionId: string; created: boolean }>(client, 'remember', { message: { role: 'user', content: 'My cat is called Miso and she loves tuna.' } });
    expect(remembered.created).toBe(true);
    const found = await ok<{ hits: { sessionId: string; text: string }[] }>(client, 'recall', { query: 'what is the cat called', k: 3 });
    expect(found.hits[0]).toMatchObject({ sessionId: remembered.sessionId, text: expect.stringContaining('Miso') });

    const notes = join(home, 'boat-notes.md');
    await writeFile(notes, '# Boat\n\nThe sailing boat is moored at pier 7 in Porto and is called Gaivota.\n');
    const progress: { progress: number; message?: string | undefined }[] = [];
    const result = await client.callTool({ name: 'ingest_file', arguments: { path: '~/boat-notes.md' } }, undefined, { onprogress: (p) => progress.push(p) });
    const ingested = result.structuredContent as { sessionId: string; ingested: boolean; chunks: number };
    expect(ingested).toMatchObject({ ingested: true });
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.map((p) => p.progress)).toEqual(progress.map((_, i) => i + 1));
    expect(ingested.chunks).toBeGreaterThan(0);
    const boat = await ok<{ hits: { sessionId: string; text: string }[] }>(client, 'recall', { query: 'where is the sailing boat moored', sessionId: ingested.sessionId });
    expect(boat.hits[0]?.text).toContain('pier 7');
    await toolError(client, 'ingest_file', { path: join(notes, '..', 'missing.pdf') }, 'MEMEX_PATH_NOT_FOUND');

    const uri = `memex://sessions/${remembered.sessionId}`;
    expect((await client.listResources()).resources.map((r) => r.uri)).toContain(uri);
    const read = await client.readResource({ uri });
    expect((read.contents[0] as { text: string }).text).toContain('My cat is called Miso');
    await expect(client.readResource({ uri: 'memex://sessions/nope' })).rejects.toThrow(/MEMEX_SESSION_NOT_FOUND/);

    // What the server stored is the data dir's, seen by the next process (the default user's).
    await client.close();
    const listed = await json<{ sessions: { id: string }[] }>([...flags, 'session', 'list'], { env });
    expect(listed.sessions.map((s) => s.id)).toEqual(expect.arrayContaining([remembered.sessionId, ingested.sessionId]));
  }, 120_000);

  it('bad tool input is a coded tool error and the server goes on answering', async () => {
    const client = await connect(await storeFlags(backend));
    await toolError(client, 'remember', {}, 'MEMEX_INVALID_INPUT');
    await toolError(client, 'recall', { query: '' }, 'MEMEX_INVALID_INPUT');
    await toolError(client, 'build_context', { sessionId: 'a/b', budget: 100 }, 'MEMEX_INVALID_ID');
    await toolError(client, 'build_context', { sessionId: 'none-such', budget: 1000 }, 'MEMEX_SESSION_NOT_FOUND');
    await toolError(client, 'ingest_file', { path: 42 }, 'MEMEX_INVALID_INPUT');
    expect(await ok(client, 'list_sessions', {})).toMatchObject({ total: 0 });
  }, 60_000);
});

describe('memex mcp on stdio', () => {
  it('writes nothing but JSON-RPC to stdout, and exits 0 with what it stored once the client closes stdin', async () => {
    const flags = await storeFlags('flat');
    const child = spawnMemex([...flags, 'mcp'], { env: modelEnv });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const waiting = new Map<number, () => void>();
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      for (const [id, resolve] of waiting) if (stdout.includes(`"id":${id}`)) resolve();
    });
    // Requests are answered concurrently: each waits for the one before, as the recall needs the remember.
    const request = (id: number, method: string, params: object): Promise<void> =>
      new Promise((resolve) => {
        waiting.set(id, resolve);
        child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
      });
    await request(1, 'initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } });
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
    await request(2, 'tools/call', { name: 'remember', arguments: { message: { role: 'user', content: 'The spare key is under the blue flowerpot.' } } });
    await request(3, 'tools/call', { name: 'recall', arguments: { query: 'where is the spare key' } });
    child.stdin.end();
    expect(await exited, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: '2.0' });
    const recall = JSON.parse(lines[2] as string) as { id: number; result: { structuredContent: { hits: { text: string }[] } } };
    expect(recall.result.structuredContent.hits[0]?.text).toContain('blue flowerpot');
    // Embedded before the process ended: a search in the next process finds it without catching up.
    const again = await json<{ hits: { text: string }[] }>([...flags, 'search', 'spare key'], { env });
    expect(again.hits[0]?.text).toContain('blue flowerpot');
  }, 60_000);

  it('works through the `memex serve` that owns the data dir, instead of waiting for its lock', async () => {
    const dataDir = join(await tempDir(), 'data');
    const server = await startServer(dataDir);
    try {
      const client = await connect(['--data-dir', dataDir]);
      const remembered = await ok<{ sessionId: string }>(client, 'remember', { message: { role: 'user', content: 'The wifi password at the cabin is heron-42.' } });
      const found = await ok<{ hits: { text: string }[] }>(client, 'recall', { query: 'cabin wifi password' });
      expect(found.hits[0]?.text).toContain('heron-42');
      const read = await client.readResource({ uri: `memex://sessions/${remembered.sessionId}` });
      expect((read.contents[0] as { text: string }).text).toContain('heron-42');
      await client.close();
    } finally {
      server.child.kill('SIGTERM');
      await exited(server.child);
    }
  }, 60_000);

  it('refuses an unknown --user with its code on stderr, before speaking', async () => {
    const run = await memex([...(await storeFlags('flat')), '--user', 'nobody', 'mcp'], { env: modelEnv });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('MEMEX_USER_NOT_FOUND');
  });
});
