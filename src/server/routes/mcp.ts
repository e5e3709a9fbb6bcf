import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { createMcpServer } from '../../mcp/index.js';
import { userOf, type App, type ServerContext } from '../app.js';

/**
 * The MCP SDK, loaded on the first MCP request: the CLI imports the server for `memex serve`, and
 * every command would otherwise pay for loading the SDK at start.
 */
async function sdk(): Promise<{ createMcpServer: typeof createMcpServer; Transport: typeof StreamableHTTPServerTransport }> {
  const [mcp, transport] = await Promise.all([import('../../mcp/index.js'), import('@modelcontextprotocol/sdk/server/streamableHttp.js')]);
  return { createMcpServer: mcp.createMcpServer, Transport: transport.StreamableHTTPServerTransport };
}

/**
 * The MCP server over Streamable HTTP at `/mcp`, for the caller's user (the API key's, as every
 * /v1 route). Stateless: each POST gets a fresh server and transport and is answered with one
 * JSON body. Nothing of an MCP session lives in this process, so any instance behind a load
 * balancer can answer any request, and a restart loses nothing; the price is no server-initiated
 * messages (no GET stream), which none of these tools need. `ingest_file` is not offered here: a
 * path would name a file on the server's disk.
 */
export function mcpRoutes(app: App, { memex }: ServerContext): void {
  app.post('/mcp', { schema: { summary: 'The MCP server (Streamable HTTP, stateless, JSON responses) over the caller\'s memory', tags: ['mcp'] } }, async (request, reply) => {
    const { createMcpServer, Transport } = await sdk();
    const server = createMcpServer({
      memex,
      userId: userOf(request),
      exposeFaults: false,
      onError: (error) => request.log.error({ err: error }, 'MCP tool failed'),
    });
    // No sessionIdGenerator: stateless.
    const transport = new Transport({ enableJsonResponse: true });
    reply.raw.once('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    // The transport writes the answer itself; fastify has authenticated and parsed the body already.
    // What the hooks set (x-request-id, the rate limit's headers) goes out with the transport's answer.
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value);
    reply.hijack();
    await transport.handleRequest(request.raw, reply.raw, request.body);
  });

  // Stateless: there is no stream of server messages to open (GET) and no session to end (DELETE).
  const notAllowed = { jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed: this MCP endpoint is stateless; POST JSON-RPC messages to it' }, id: null };
  app.get('/mcp', { schema: { summary: 'Not offered: the MCP endpoint is stateless (405)', tags: ['mcp'] } }, async (_request, reply) => reply.code(405).header('allow', 'POST').send(notAllowed));
  app.delete('/mcp', { schema: { summary: 'Not offered: the MCP endpoint is stateless (405)', tags: ['mcp'] } }, async (_request, reply) => reply.code(405).header('allow', 'POST').send(notAllowed));
}
