import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { describe, expect, it } from 'vitest';
import { MemexError } from '../../src/core/index.js';
import { createMcpServer, type McpMemex } from '../../src/mcp/index.js';
import { toolError } from './client.js';

/**
 * A fake library whose every call fails as a server fault naming a path: it stands in for the
 * Memex only to test how the MCP server reports faults (the real library is behind the other tests).
 */
function faultyFake(): McpMemex {
  const fail = (): never => {
    throw new MemexError('MEMEX_IO', 'write failed: EACCES /srv/memex-data/users/alice/secret.json');
  };
  return {
    sessions: { create: fail, get: fail, list: fail, delete: fail, export: fail },
    messages: { append: fail, list: fail },
    notes: { add: fail },
    search: fail,
    buildContext: fail,
  };
}

async function connect(exposeFaults: boolean, logged: MemexError[]): Promise<Client> {
  const server = createMcpServer({ memex: faultyFake(), userId: 'alice', exposeFaults, onError: (error) => logged.push(error) });
  const [client, side] = InMemoryTransport.createLinkedPair();
  await server.connect(side);
  const mcp = new Client({ name: 'test', version: '1' });
  await mcp.connect(client);
  return mcp;
}

describe('MCP server faults', () => {
  it('over HTTP a server fault says its code and hint, never its message (it can name paths); the log gets it', async () => {
    const logged: MemexError[] = [];
    const client = await connect(false, logged);
    const text = await toolError(client, 'recall', { query: 'anything' }, 'MEMEX_IO');
    expect(text).not.toContain('/srv/memex-data');
    expect(logged.map((error) => error.code)).toEqual(['MEMEX_IO']);
    // A library that throws synchronously is still a tool error, and the server keeps answering.
    await toolError(client, 'list_sessions', {}, 'MEMEX_IO');
    await expect(client.readResource({ uri: 'memex://sessions/s1' })).rejects.toThrow(/MEMEX_IO/);
    await expect(client.listResources()).rejects.toThrow(/MEMEX_IO/);
    expect(JSON.stringify(logged)).not.toContain('undefined');
    await client.close();
  });

  it('a bad argument is a coded tool error, not a protocol error (regression: the parse threw synchronously, outside the call handler\'s catch)', async () => {
    const client = await connect(false, []);
    await toolError(client, 'remember', {}, 'MEMEX_INVALID_INPUT');
    await toolError(client, 'read_session', { sessionId: '../x' }, 'MEMEX_INVALID_ID');
    await client.close();
  });

  it('on stdio (the owner) the message goes to the client too', async () => {
    const client = await connect(true, []);
    const text = await toolError(client, 'recall', { query: 'anything' }, 'MEMEX_IO');
    expect(text).toContain('EACCES');
    await client.close();
  });
});
