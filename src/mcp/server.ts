import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, type CallToolResult, type Tool as McpTool } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { SessionIdSchema, memexVersion, parseInput, toMemexError, type MemexError } from '../core/index.js';
import type { IngestPath, McpMemex } from './api.js';
import { toolsFor, type Tool } from './tools.js';

export interface McpServerOptions {
  memex: McpMemex;
  /** The one user every tool and resource acts as: `--user` on stdio, the API key's user over HTTP. */
  userId: string;
  /**
   * Reads a file of the machine the server runs on into a session. Given on stdio only, where the
   * caller is the server's own user; without it `ingest_file` is not offered at all.
   */
  ingest?: IngestPath;
  /**
   * Whether the message of a server fault (a 5xx code) goes to the client. On stdio the client is
   * the server's owner; over HTTP such messages can name paths on the server, so only the code
   * and hint go out and the message goes to `onError` (the log), as the HTTP routes do.
   */
  exposeFaults: boolean;
  /** Server faults, for the log. */
  onError?: (error: MemexError) => void;
}


export interface McpMemexServer extends McpServer {
  /**
   * Resolves when no tool call is running. A client may close the connection before a call it
   * made has answered: the shell waits for it before closing the library under it.
   */
  idle(): Promise<void>;
}

/** Sessions a `resources/list` names: the most recently active; `list_sessions` pages through all. */
const LISTED_SESSIONS = 100;
/** A session read as a resource stops here (its Markdown export); `read_session` pages through the rest. */
const RESOURCE_MAX_CHARS = 1_000_000;
/** JSON-RPC's "resource not found" in MCP. */
const RESOURCE_NOT_FOUND = -32002;

/** What the client sees of an error: its Memex code first, so clients (and models) can branch on it. */
function describe(error: MemexError, exposeFaults: boolean): string {
  const fault = error.statusCode >= 500;
  const message = fault && !exposeFaults ? 'the server could not do this (its log has the details)' : error.message;
  return `${error.code}: ${message}\n${error.hint}`;
}

function toolError(cause: unknown, options: McpServerOptions): CallToolResult {
  const error = toMemexError(cause, 'tool failed');
  if (error.statusCode >= 500) options.onError?.(error);
  const fault = error.statusCode >= 500 && !options.exposeFaults;
  return {
    isError: true,
    content: [{ type: 'text', text: describe(error, options.exposeFaults) }],
    structuredContent: { error: { code: error.code, hint: error.hint, ...(fault ? {} : { message: error.message, details: error.details }) } },
  };
}

function resourceError(cause: unknown, options: McpServerOptions): McpError {
  const error = toMemexError(cause, 'reading the resource failed');
  if (error.statusCode >= 500) options.onError?.(error);
  const code = error.statusCode === 404 ? RESOURCE_NOT_FOUND : error.statusCode < 500 ? ErrorCode.InvalidParams : ErrorCode.InternalError;
  return new McpError(code, describe(error, options.exposeFaults), { code: error.code });
}

/** Made once per tool: over HTTP every request gets a new server, and the schemas never change. */
const listings = new WeakMap<Tool, McpTool>();

function listing(tool: Tool): McpTool {
  let listed = listings.get(tool);
  if (!listed) {
    // The advertised schema is the input side of the very schema `run` parses with.
    const schema = z.toJSONSchema(tool.input, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    delete schema.$schema;
    listed = { name: tool.name, title: tool.title, description: tool.description, inputSchema: { ...schema, type: 'object' }, annotations: tool.annotations };
    listings.set(tool, listed);
  }
  return listed;
}

/**
 * An MCP server over one user's memory: tools to remember, recall, build a context window, list
 * and read sessions (and ingest a file, on stdio), and each session as a resource
 * (`memex://sessions/{sessionId}`, its Markdown export).
 *
 * Tools are dispatched here rather than by `McpServer.registerTool` so that their input goes
 * through the library's `parseInput`: a bad argument is the same coded error (MEMEX_INVALID_INPUT,
 * MEMEX_INVALID_ID) as over HTTP or in the library, where the SDK's own check would answer with an
 * uncoded message. Every failure is a tool result with `isError` whose text starts with the code;
 * nothing a caller sends can take the server down.
 */
export function createMcpServer(options: McpServerOptions): McpMemexServer {
  const { memex, userId } = options;
  const server = new McpServer(
    { name: 'memex', title: 'Memex', version: memexVersion() },
    {
      instructions:
        "Memex is the user's long-term memory. Use `recall` before answering questions that may depend on earlier conversations, `remember` to store what the user says that is worth keeping (a message in a session, or a note for durable facts and preferences), and `build_context` to get a budgeted context window for a session.",
    },
  );
  const tools = toolsFor({ ingest: options.ingest !== undefined });
  const byName = new Map(tools.map((tool) => [tool.name, tool]));
  const listed = tools.map(listing);
  const running = new Set<Promise<unknown>>();

  // Declared here, not in the options: declared there, McpServer installs its own tool handlers.
  server.server.registerCapabilities({ tools: {} });
  server.server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listed }));
  server.server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const tool = byName.get(request.params.name);
    // An unknown tool is a protocol error, as the MCP spec has it: the client asked for something never listed.
    if (!tool) throw new McpError(ErrorCode.InvalidParams, `no tool named ${JSON.stringify(request.params.name.slice(0, 100))}; see tools/list`);
    const token = request.params._meta?.progressToken;
    let step = 0;
    // MCP progress must only grow, while ingest's counts restart with each phase: the notification
    // counts steps, and its message says the phase and its counts.
    const progress =
      token === undefined
        ? undefined
        : (message: string): void => void extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: ++step, message } }).catch(() => undefined);
    const run = tool.run(request.params.arguments ?? {}, { memex, userId, signal: extra.signal, ingest: options.ingest, progress });
    running.add(run);
    try {
      const result = await run;
      return { content: [{ type: 'text', text: JSON.stringify(result, null, 2) }], structuredContent: result };
    } catch (cause) {
      return toolError(cause, options);
    } finally {
      running.delete(run);
    }
  });

  server.registerResource(
    'session',
    new ResourceTemplate('memex://sessions/{sessionId}', {
      list: async () => {
        try {
          const page = await memex.sessions.list(userId, { limit: LISTED_SESSIONS });
          return {
            resources: page.sessions.map((session) => ({
              uri: `memex://sessions/${session.id}`,
              name: session.id,
              title: session.title ?? session.id,
              mimeType: 'text/markdown',
              ...(session.lastMessageAt ? { annotations: { lastModified: session.lastMessageAt } } : {}),
            })),
          };
        } catch (cause) {
          throw resourceError(cause, options);
        }
      },
    }),
    { title: 'Session', description: `A session of the user as Markdown: its title, persona and messages (the ${LISTED_SESSIONS} most recently active are listed; the list_sessions tool pages through all).`, mimeType: 'text/markdown' },
    async (uri, variables) => {
      try {
        const sessionId = parseInput(SessionIdSchema, variables.sessionId, 'session id');
        return { contents: [{ uri: uri.href, mimeType: 'text/markdown', text: await markdown(memex, userId, sessionId) }] };
      } catch (cause) {
        throw resourceError(cause, options);
      }
    },
  );
  return Object.assign(server, {
    idle: async (): Promise<void> => {
      while (running.size > 0) await Promise.allSettled([...running]);
    },
  });
}

/** The session's Markdown export, cut at RESOURCE_MAX_CHARS with a line that says so. */
async function markdown(memex: McpMemex, userId: string, sessionId: string): Promise<string> {
  let text = '';
  for await (const piece of memex.sessions.export(userId, sessionId, 'md')) {
    text += piece;
    if (text.length > RESOURCE_MAX_CHARS) {
      return `${text.slice(0, RESOURCE_MAX_CHARS)}\n\n… (cut at ${RESOURCE_MAX_CHARS} characters: read the rest with the read_session tool)\n`;
    }
  }
  return text;
}
