import type {
  ContextOptions,
  ContextWindow,
  ExportFormat,
  ListOptions,
  Message,
  MessagePage,
  NewMessage,
  NewNote,
  NewSession,
  Note,
  PageOptions,
  SearchOptions,
  SearchReport,
  SessionPage,
  SessionSummary,
} from '../index.js';

/**
 * The slice of the library facade the MCP server needs. `Memex` satisfies it, and so does the CLI's
 * `HttpMemex`, so `memex mcp` works on the data dir itself or through the `memex serve` that owns it.
 */
export interface McpMemex {
  sessions: {
    create(userId: string, input?: NewSession): Promise<SessionSummary>;
    get(userId: string, sessionId: string): Promise<SessionSummary>;
    list(userId: string, options?: ListOptions): Promise<SessionPage>;
    delete(userId: string, sessionId: string): Promise<void>;
    export(userId: string, sessionId: string, format: ExportFormat): AsyncIterable<string>;
  };
  messages: {
    append(userId: string, sessionId: string, message: NewMessage): Promise<Message>;
    list(userId: string, sessionId: string, page?: PageOptions): Promise<MessagePage>;
  };
  notes: {
    add(userId: string, note: NewNote): Promise<Note>;
  };
  search(userId: string, query: string, options?: SearchOptions): Promise<SearchReport>;
  buildContext(userId: string, options: ContextOptions): Promise<ContextWindow>;
}

/** Ingests a file of the machine the MCP server runs on (given only on stdio: see `McpServerOptions.ingest`). */
export type IngestPath = (
  sessionId: string,
  path: string,
  options: { password?: string; signal: AbortSignal; onProgress?: (progress: { phase: string; done: number; total: number }) => void },
) => Promise<object>;
