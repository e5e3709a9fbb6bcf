import { Console } from 'node:console';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { userOf, type ContextOf } from './args.js';
import { ingestPath } from './ingest-commands.js';

const MCP_HELP = `
Speaks the Model Context Protocol on stdin/stdout for one user (--user), so an MCP client
(Claude Desktop, an IDE, an agent) can remember, recall, build context windows, read sessions and
ingest files. Logs and warnings go to stderr; stdout carries only the protocol. It ends when the
client closes stdin. While it runs it holds the data dir, unless \`memex serve\` owns it: then it
talks to that server. For a remote service use its /mcp endpoint instead (see the README, "MCP").

Client config (Claude Desktop's claude_desktop_config.json):
  { "mcpServers": { "memex": { "command": "memex", "args": ["mcp", "--data-dir", "/path/to/memex-data"] } } }`;

/** `memex mcp`: the MCP server over stdio. */
export function registerMcpCommand(program: Command, contextOf: ContextOf): void {
  program
    .command('mcp')
    .description('run an MCP server (Model Context Protocol) over stdio for one user')
    .addHelpText('after', MCP_HELP)
    .action(async (_options, command: Command) => {
      const ctx = contextOf(command);
      // stdout is the protocol: anything a library prints with console.log would corrupt it.
      globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });
      // Loaded here, not at the top: every other command would pay for loading the SDK at start.
      const [{ createMcpServer }, { StdioServerTransport }] = await Promise.all([import('../mcp/index.js'), import('@modelcontextprotocol/sdk/server/stdio.js')]);
      const { memex, user } = await userOf(ctx);
      const server = createMcpServer({
        memex,
        userId: user,
        exposeFaults: true,
        // No shell expands `~` for a model that writes one, and the client's working folder is rarely the user's.
        ingest: (sessionId, path, options) => ingestPath(memex, user, sessionId, /^~(\/|$)/.test(path) ? join(homedir(), path.slice(1)) : path, options),
        onError: (error) => ctx.io.err.write(`memex: ${error.code}: ${error.message}\n`),
      });
      const closed = new Promise<void>((resolve) => {
        server.server.onclose = resolve;
      });
      const stop = (): void => void server.close();
      // The client ends the session by closing our stdin (or by a signal); the transport does not notice the first by itself.
      process.stdin.once('end', stop);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await server.connect(new StdioServerTransport());
        // For the client's log of the server's stderr: which memory this is.
        ctx.io.err.write(`memex: MCP server on stdio for user ${user} (${ctx.config().store.kind === 'postgres' ? 'PostgreSQL' : `data dir ${ctx.config().dataDir}`})\n`);
        await closed;
        // A call the client did not wait for still finishes; then the CLI closes the Memex, which
        // waits for remembered messages to be embedded.
        await server.idle();
      } finally {
        process.stdin.off('end', stop);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
