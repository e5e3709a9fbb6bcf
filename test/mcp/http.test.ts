import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { tempDir } from '../helpers/tmp.js';
import { served, type Served } from '../server/setup.js';
import { ok, toolError } from './client.js';

interface Remembered {
  sessionId: string;
  created: boolean;
  message: { id: string; content: string };
}

describe.each(BACKENDS)('the MCP server over Streamable HTTP (/mcp) on %s', (backend) => {
  let server: Served;
  let url: URL;
  const clients: Client[] = [];

  beforeAll(async () => {
    server = await served({ backend });
    const address = await server.app.listen({ port: 0, host: '127.0.0.1' });
    url = new URL('/mcp', address);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await server?.close();
  });

  async function connect(headers: Record<string, string>): Promise<Client> {
    const client = new Client({ name: 'memex-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
    clients.push(client);
    return client;
  }

  it('offers the tools (no ingest_file: a path would reach the server disk) and answers remember → recall', async () => {
    const alice = await connect(server.alice);
    const names = (await alice.listTools()).tools.map((tool) => tool.name);
    expect(names.sort()).toEqual(['build_context', 'list_sessions', 'read_session', 'recall', 'remember']);
    const recallTool = (await alice.listTools()).tools.find((tool) => tool.name === 'recall');
    // The advertised input schema is the library's search options (plus the query).
    expect(Object.keys(recallTool?.inputSchema.properties ?? {})).toEqual(expect.arrayContaining(['query', 'k', 'sessionId', 'sessionIds', 'origin', 'after', 'before']));

    const first = await ok<Remembered>(alice, 'remember', { message: { role: 'user', content: 'My cat is called Miso and she loves tuna.' }, title: 'Pets' });
    expect(first.created).toBe(true);
    await ok(alice, 'remember', { sessionId: first.sessionId, message: { role: 'assistant', content: 'Noted: Miso the cat, a tuna fan.' } });
    const other = await ok<Remembered>(alice, 'remember', { message: { role: 'user', content: 'The invoice number for the roof repair is 4471.' } });
    const note = await ok<{ note: { id: string; text: string } }>(alice, 'remember', { note: { text: 'Alice prefers short answers.', kind: 'preference' } });
    expect(note.note.text).toBe('Alice prefers short answers.');

    const found = await ok<{ hits: { sessionId: string; text: string }[] }>(alice, 'recall', { query: 'what is the cat called', k: 3 });
    expect(found.hits[0]?.text).toContain('Miso');
    const inOther = await ok<{ hits: { sessionId: string }[] }>(alice, 'recall', { query: 'what is the cat called', sessionId: other.sessionId });
    expect(inOther.hits.every((hit) => hit.sessionId === other.sessionId)).toBe(true);
    const later = await ok<{ hits: unknown[] }>(alice, 'recall', { query: 'cat', after: '2999-01-01T00:00:00Z' });
    expect(later.hits).toEqual([]);

    const listed = await ok<{ sessions: { id: string; title: string | null }[]; total: number }>(alice, 'list_sessions', {});
    expect(listed.sessions.map((s) => s.id).sort()).toEqual([first.sessionId, other.sessionId].sort());
    const page = await ok<{ messages: { content: string }[]; total: number; nextCursor: string | null }>(alice, 'read_session', { sessionId: first.sessionId, limit: 1 });
    expect(page).toMatchObject({ total: 2, messages: [{ content: 'My cat is called Miso and she loves tuna.' }] });
    const next = await ok<{ messages: { content: string }[] }>(alice, 'read_session', { sessionId: first.sessionId, cursor: page.nextCursor });
    expect(next.messages.map((m) => m.content)).toEqual(['Noted: Miso the cat, a tuna fan.']);
  });

  it('builds a context window within its budget, with the note and the recalled memory', async () => {
    const alice = await connect(server.alice);
    const session = await ok<Remembered>(alice, 'remember', { message: { role: 'user', content: 'What should I feed my cat tonight?' } });
    const budget = 1500;
    const reserve = 200;
    const window = await ok<{ messages: { role: string; content: string }[]; report: { tokens: number; budget: number; memories: unknown[] } }>(alice, 'build_context', {
      sessionId: session.sessionId,
      budget,
      reserve,
      query: 'what is the cat called',
    });
    expect(window.report.tokens).toBeLessThanOrEqual(budget - reserve);
    const text = window.messages.map((m) => m.content).join('\n');
    expect(text).toContain('Miso');
    expect(text).toContain('Alice prefers short answers.');
    expect(window.messages.at(-1)?.content).toBe('What should I feed my cat tonight?');
    await toolError(alice, 'build_context', { sessionId: session.sessionId, budget: 5, reserve: 0 }, 'MEMEX_CONTEXT_BUDGET_TOO_SMALL');
  });

  it('bad tool input is a coded tool error, never a crash: the server goes on answering', async () => {
    const alice = await connect(server.alice);
    await toolError(alice, 'recall', {}, 'MEMEX_INVALID_INPUT');
    await toolError(alice, 'recall', { query: 'cat', k: 0 }, 'MEMEX_INVALID_INPUT');
    await toolError(alice, 'recall', { query: 'cat', surprise: true }, 'MEMEX_INVALID_INPUT');
    await toolError(alice, 'remember', { message: { role: 'wizard', content: 'x' } }, 'MEMEX_INVALID_INPUT');
    await toolError(alice, 'remember', { message: { role: 'user', content: 'x' }, note: { text: 'y' } }, 'MEMEX_INVALID_INPUT');
    await toolError(alice, 'read_session', { sessionId: '../etc' }, 'MEMEX_INVALID_ID');
    await toolError(alice, 'read_session', { sessionId: 'no-such-session' }, 'MEMEX_SESSION_NOT_FOUND');
    await toolError(alice, 'remember', { sessionId: 'no-such-session', message: { role: 'user', content: 'x' } }, 'MEMEX_SESSION_NOT_FOUND');
    await expect(alice.callTool({ name: 'ingest_file', arguments: { path: '/etc/passwd' } })).rejects.toThrow(/no tool named/);
    // Still answering.
    expect((await ok<{ total: number }>(alice, 'list_sessions', {})).total).toBeGreaterThan(0);
  });

  it('an imported session is read-only: remember into it is MEMEX_SESSION_READ_ONLY as a tool error', async () => {
    const { memex } = server;
    const source = await memex.sessions.create('alice', { title: 'Old chat' });
    await memex.messages.append('alice', source.id, { role: 'user', content: 'An old conversation about gardening.' });
    let exported = '';
    for await (const piece of memex.sessions.export('alice', source.id, 'json')) exported += piece;
    const path = join(await tempDir(), 'session.json');
    await writeFile(path, exported);
    const report = await memex.imports.run('alice', path);
    const [imported] = report.record.sessions;
    expect(imported).toBeDefined();
    const alice = await connect(server.alice);
    await toolError(alice, 'remember', { sessionId: imported, message: { role: 'user', content: 'more' } }, 'MEMEX_SESSION_READ_ONLY');
    // It can still be read.
    expect((await ok<{ total: number }>(alice, 'read_session', { sessionId: imported })).total).toBe(1);
  });

  it("keeps users apart: bob's key reaches none of alice's sessions, by tools or resources", async () => {
    const alice = await connect(server.alice);
    const bob = await connect(server.bob);
    const secret = await ok<Remembered>(alice, 'remember', { message: { role: 'user', content: 'My locker code is 9182, keep it secret.' } });

    const resources = await alice.listResources();
    const uri = `memex://sessions/${secret.sessionId}`;
    expect(resources.resources.map((r) => r.uri)).toContain(uri);
    const read = await alice.readResource({ uri });
    expect(read.contents[0]).toMatchObject({ uri, mimeType: 'text/markdown' });
    expect((read.contents[0] as { text: string }).text).toContain('locker code is 9182');

    expect((await bob.listResources()).resources).toEqual([]);
    await expect(bob.readResource({ uri })).rejects.toThrow(/MEMEX_SESSION_NOT_FOUND/);
    await toolError(bob, 'read_session', { sessionId: secret.sessionId }, 'MEMEX_SESSION_NOT_FOUND');
    await toolError(bob, 'build_context', { sessionId: secret.sessionId, budget: 1000 }, 'MEMEX_SESSION_NOT_FOUND');
    await toolError(bob, 'remember', { sessionId: secret.sessionId, message: { role: 'user', content: 'mine now' } }, 'MEMEX_SESSION_NOT_FOUND');
    expect((await ok<{ hits: unknown[] }>(bob, 'recall', { query: 'locker code' })).hits).toEqual([]);
    expect((await ok<{ hits: unknown[] }>(bob, 'recall', { query: 'locker code', sessionId: secret.sessionId })).hits).toEqual([]);
    expect((await ok<{ total: number }>(bob, 'list_sessions', { origin: 'all' })).total).toBe(0);
    // Alice's session is untouched by bob's attempts.
    expect((await ok<{ total: number }>(alice, 'read_session', { sessionId: secret.sessionId })).total).toBe(1);
  });

  it('answers 401 without an API key (or with a bad one), and 405 to GET: the endpoint is stateless', async () => {
    const initialize = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const none = await fetch(url, { method: 'POST', headers, body: initialize });
    expect(none.status).toBe(401);
    expect(((await none.json()) as { code: string }).code).toBe('MEMEX_UNAUTHORIZED');
    const bad = await fetch(url, { method: 'POST', headers: { ...headers, authorization: 'Bearer mx_not_a_key' }, body: initialize });
    expect(bad.status).toBe(401);
    await expect(connect({})).rejects.toThrow();
    const get = await fetch(url, { headers: { ...server.alice, accept: 'text/event-stream' } });
    expect(get.status).toBe(405);
    const okay = await fetch(url, { method: 'POST', headers: { ...headers, ...server.alice }, body: initialize });
    expect(okay.status).toBe(200);
    expect(okay.headers.get('mcp-session-id')).toBeNull();
    // What the service's hooks add to every answer comes with the transport's too.
    expect(okay.headers.get('x-request-id')).toMatch(/^[0-9a-f]{16}$/);
    expect(okay.headers.get('x-ratelimit-limit')).not.toBeNull();
  });
});
