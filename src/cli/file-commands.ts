import type { Command } from 'commander';
import { sessionOf, userOf, type ContextOf } from './args.js';
import { runIngest } from './ingest-commands.js';
import { print, shortTime, table } from './output.js';

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** `memex file add|list|rm`: a session's stored files (PDFs and images), by their sha256 id. */
export function registerFileCommands(program: Command, contextOf: ContextOf): void {
  const file = program.command('file').description("a session's files: store and make searchable, list, delete");

  file
    .command('add <files...>')
    .description('store files in a session and make their text searchable (as `memex ingest`)')
    .option('-s, --session <id>', 'session (default: the latest session, or a new one)')
    .option('--password <password>', 'password for encrypted PDFs')
    .action((paths: string[], flags: { session?: string; password?: string }, command: Command) => runIngest(contextOf(command), paths, flags));

  file
    .command('list')
    .description("list a session's files")
    .option('-s, --session <id>', 'session (default: the latest)')
    .action(async (flags: { session?: string }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user } = await userOf(ctx);
      const sessionId = await sessionOf(memex, user, flags.session, false);
      const files = await memex.files.list(user, sessionId);
      const rows = files.map((f) => [f.id.slice(0, 12), f.name, f.mimeType, size(f.size), f.content ? `${f.content.kind}, ${f.content.chunks} chunks` : 'stored', shortTime(f.createdAt)]);
      const human = files.length === 0 ? `No files in session ${sessionId}. Add one with \`memex file add <path>\`.` : table(['ID', 'NAME', 'TYPE', 'SIZE', 'SEARCHABLE', 'ADDED'], rows);
      print(ctx.io, human, { sessionId, files });
    });

  file
    .command('rm <id>')
    .description('delete a file, what was derived from it and its vectors (the id, or its first 12 characters as listed)')
    .option('-s, --session <id>', 'session (default: the latest)')
    .action(async (id: string, flags: { session?: string }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user } = await userOf(ctx);
      const sessionId = await sessionOf(memex, user, flags.session, false);
      // `file list` shows 12 characters of the sha256: a unique prefix names the file.
      const matches = id.length < 64 ? (await memex.files.list(user, sessionId)).filter((f) => f.id.startsWith(id)) : [];
      const fileId = matches.length === 1 ? (matches[0]?.id ?? id) : id;
      await memex.files.delete(user, sessionId, fileId);
      print(ctx.io, `Deleted file ${fileId} from session ${sessionId}`, { deleted: true, sessionId, fileId });
    });
}
