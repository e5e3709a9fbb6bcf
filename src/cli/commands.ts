import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { basename } from 'node:path';
import { Option, type Command } from 'commander';
import { MemexError, ROLES, SESSION_SORTS, type AttachmentRef, type Message, type Role, type SessionSort } from '../core/index.js';
import { EXPORT_FORMATS, type ExportFormat } from '../store/index.js';
import { clip, print, progress, shortTime, table, write } from './output.js';
import { registerFileCommands } from './file-commands.js';
import { ingestPath } from './ingest-commands.js';
import { registerRecallCommands } from './recall-commands.js';
import { registerIngestCommands } from './ingest-commands.js';
import { registerImportCommands } from './import-commands.js';
import { registerContextCommands } from './context-commands.js';
import { registerServerCommands } from './server-commands.js';
import { registerMigrateCommand } from './migrate-command.js';
import { registerBackupCommands } from './backup-command.js';
import { registerDbCommands } from './db-commands.js';
import { registerMcpCommand } from './mcp-command.js';
import { registerChatCommand } from './chat-command.js';
import { registerForkCommands, registerPanelCommands } from './panel-commands.js';
import { registerArchiveCommands } from './archive-commands.js';
import { registerBenchCommand } from './bench-command.js';
import { isoTime, personaOf, positiveInt, sessionOf, userOf, type ContextOf } from './args.js';
import { registerOrganiseCommands } from './session-commands.js';

/** Stdin as the message: the one newline that ends a file or an `echo` is not part of it. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function attachmentLine(attachment: AttachmentRef): string {
  return `    attached: ${attachment.name ?? '(unnamed)'}${attachment.mimeType ? ` (${attachment.mimeType})` : ''} ${attachment.fileId.slice(0, 12)}`;
}

function messageLines(m: Message): string {
  return [`[${shortTime(m.createdAt)}] ${m.role}: ${m.content}`, ...m.attachments.map(attachmentLine)].join('\n');
}

/** The chat turns' token totals (`metadata.usage`), when the session has any. */
function usageLine(usage: unknown): string[] {
  if (usage === null || typeof usage !== 'object') return [];
  const { promptTokens, completionTokens, replies } = usage as Record<string, unknown>;
  if (typeof promptTokens !== 'number' || typeof completionTokens !== 'number') return [];
  return [`  tokens:        ${promptTokens} prompt + ${completionTokens} completion${typeof replies === 'number' ? ` over ${replies} replies` : ''}`];
}

interface SessionListFlags {
  limit: number;
  offset: number;
  title?: string;
  origin: 'native' | 'imported' | 'all';
  sort: SessionSort;
  asc?: boolean;
  tag?: string;
  persona?: string;
  after?: string;
  before?: string;
  archived: 'include' | 'exclude' | 'only';
}

export function registerCommands(program: Command, contextOf: ContextOf): void {
  registerRecallCommands(program, contextOf);
  registerIngestCommands(program, contextOf);
  registerImportCommands(program, contextOf);
  registerServerCommands(program, contextOf);
  registerContextCommands(program, contextOf);
  registerFileCommands(program, contextOf);
  registerMigrateCommand(program, contextOf);
  registerBackupCommands(program, contextOf);
  registerDbCommands(program, contextOf);
  registerMcpCommand(program, contextOf);
  registerChatCommand(program, contextOf);
  registerPanelCommands(program, contextOf);
  registerBenchCommand(program, contextOf);
  program
    .command('init')
    .description('create the data dir and the default user')
    .action(async (_options, command: Command) => {
      const ctx = contextOf(command);
      const memex = await ctx.memex();
      const profile = await memex.users.ensure(ctx.user);
      const { dataDir } = ctx.config();
      print(ctx.io, `Memex data dir ready at ${dataDir} (user: ${profile.id})`, { dataDir, id: profile.id, userId: profile.id });
    });

  const user = program.command('user').description('manage users');
  user
    .command('add <id>')
    .description('create a user; <id> is how --user names it')
    .option('--name <name>', 'display name (default: the id)')
    .action(async (id: string, options: { name?: string }, command: Command) => {
      const ctx = contextOf(command);
      const profile = await (await ctx.memex()).users.create({ id, ...(options.name ? { name: options.name } : {}) });
      print(ctx.io, `Created user ${profile.id}`, profile);
    });
  user
    .command('list')
    .description('list users')
    .action(async (_options, command: Command) => {
      const ctx = contextOf(command);
      const users = await (await ctx.memex()).users.list();
      print(ctx.io, users.length ? table(['ID', 'NAME', 'CREATED'], users.map((u) => [u.id, u.name, shortTime(u.createdAt)])) : 'No users yet.', users);
    });
  user
    .command('rm <id>')
    .description('delete a user and everything they have (sessions, messages, files, personas)')
    .option('--yes', 'confirm the deletion')
    .action(async (id: string, options: { yes?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      if (!options.yes) throw new MemexError('MEMEX_USAGE', `deleting user ${id} removes all of their data; run again with --yes to confirm`);
      await (await ctx.memex()).users.delete(id);
      print(ctx.io, `Deleted user ${id}`, { id, deleted: true });
    });

  const session = program.command('session').description('manage chat sessions');
  session
    .command('new')
    .description('start a session')
    .option('--title <title>', 'title (default: taken from the first user message)')
    .option('--persona <id-or-name>', 'persona to attach: its id, or its name')
    .action(async (options: { title?: string; persona?: string }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const persona = options.persona === undefined ? undefined : await personaOf(memex, uid, options.persona);
      const created = await memex.sessions.create(uid, {
        ...(options.title ? { title: options.title } : {}),
        ...(persona ? { personaId: persona.id } : {}),
      });
      print(ctx.io, `Created session ${created.id}`, created);
    });
  session
    .command('list')
    .description('list sessions, most recently active first')
    .addOption(new Option('--limit <n>', 'sessions per page').argParser(positiveInt).default(20))
    .addOption(new Option('--offset <n>', 'sessions to skip').argParser(positiveInt).default(0))
    .option('--title <text>', 'only sessions whose title contains this (ignoring case and accents)')
    .addOption(new Option('--origin <origin>', 'native sessions, imported chat exports, or all').choices(['native', 'imported', 'all']).default('native'))
    .addOption(new Option('--archived <which>', 'archived sessions: listed (include), hidden (exclude), or only them').choices(['include', 'exclude', 'only']).default('include'))
    .addOption(new Option('--sort <by>', 'order by last activity, creation time, title or message count').choices(SESSION_SORTS).default('activity'))
    .option('--asc', 'ascending (default: descending)')
    .option('--tag <tags>', 'only sessions with every one of these tags (comma-separated)')
    .option('--persona <id-or-name>', 'only sessions with this persona')
    .addOption(new Option('--after <time>', 'only sessions last active at or after this date or time').argParser(isoTime))
    .addOption(new Option('--before <time>', 'only sessions last active before this date or time').argParser(isoTime))
    .action(async (flags: SessionListFlags, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const { asc, tag, persona: personaName, ...rest } = flags;
      const persona = personaName === undefined ? undefined : await personaOf(memex, uid, personaName);
      const options = { ...rest, order: asc ? ('asc' as const) : ('desc' as const), ...(tag !== undefined ? { tags: tag.split(',') } : {}), ...(persona ? { personaId: persona.id } : {}) };
      const page = await memex.sessions.list(uid, options);
      const rows = page.sessions.map((s) => [s.id, String(s.messageCount), shortTime(s.lastMessageAt ?? s.createdAt) + (s.archivedAt === null ? '' : ' (archived)'), clip(s.title, 40), clip(s.lastMessagePreview, 50)]);
      const none = options.title === undefined && tag === undefined ? 'No sessions yet. Start one with `memex add <text>`.' : 'No sessions match.';
      let human = page.total === 0 ? none : table(['ID', 'MSGS', 'LAST ACTIVE', 'TITLE', 'LAST MESSAGE'], rows);
      if (page.total > page.offset + page.sessions.length) human += `\n… ${page.total - page.offset - page.sessions.length} more (use --offset ${page.offset + page.sessions.length})`;
      for (const broken of page.unreadable) human += `\n! ${broken.sessionId} is unreadable: ${broken.code}`;
      print(ctx.io, human, page);
    });
  session
    .command('show <id>')
    .description("show a session's details")
    .action(async (id: string, _options, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const found = await memex.sessions.get(uid, id);
      const human = [
        `${found.title ?? '(untitled)'}`,
        `  id:            ${found.id}`,
        `  messages:      ${found.messageCount}`,
        `  created:       ${found.createdAt}`,
        `  last message:  ${found.lastMessageAt ?? '-'}`,
        `  persona:       ${found.personaId ?? '-'}`,
        ...(found.participants.length > 0 ? [`  participants:  ${found.participants.join(', ')}`] : []),
        ...(found.forkedFrom ? [`  forked from:   ${found.forkedFrom.sessionId} at ${found.forkedFrom.messageId}`] : []),
        ...(found.forks.length > 0 ? [`  forks:         ${found.forks.join(', ')}`] : []),
        ...(found.mergedFrom.length > 0 ? [`  merged from:   ${found.mergedFrom.join(', ')}`] : []),
        ...(found.archivedAt === null ? [] : [`  archived:      ${found.archivedAt}`]),
        `  tags:          ${found.tags.length > 0 ? found.tags.join(', ') : '-'}`,
        ...(Array.isArray(found.metadata.models) ? [`  models:        ${found.metadata.models.join(', ')}`] : []),
        ...(found.trashedAt !== null ? [`  in the trash:  since ${found.trashedAt}`] : []),
        ...usageLine(found.metadata.usage),
      ].join('\n');
      print(ctx.io, human, found);
    });
  session
    .command('rename <id> <title>')
    .description('rename a session')
    .action(async (id: string, title: string, _options, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const renamed = await memex.sessions.rename(uid, id, title);
      print(ctx.io, `Renamed ${renamed.id} to "${renamed.title ?? ''}"`, renamed);
    });
  session
    .command('rm <id>')
    .description('move a session to the trash (restore with `memex trash restore <id>`); --purge deletes it with its messages and files at once')
    .option('--purge', 'delete for good now instead of moving to the trash')
    .action(async (id: string, options: { purge?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      await memex.sessions.delete(uid, id, { purge: options.purge === true });
      if (options.purge) print(ctx.io, `Deleted session ${id}`, { id, deleted: true, purged: true });
      else print(ctx.io, `Moved session ${id} to the trash (restore it with \`memex trash restore ${id}\`)`, { id, deleted: true, purged: false });
    });
  registerForkCommands(session, contextOf);
  registerOrganiseCommands(session, program, contextOf);

  program
    .command('add <text...>')
    .description('append a message (text "-" reads it from stdin); without --session, to the latest session or a new one')
    .option('-s, --session <id>', 'session to append to')
    .addOption(new Option('-r, --role <role>', 'who said it').choices(ROLES).default('user'))
    .option('-a, --attach <path>', 'store this file in the session, make it searchable and attach it (repeatable)', collect)
    .action(async (words: string[], options: { session?: string; role: Role; attach?: string[] }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const content = words.length === 1 && words[0] === '-' ? await readStdin() : words.join(' ');
      // Load (and check) the model first: a data dir of another model refuses before anything is stored.
      await memex.embedder();
      const sessionId = await sessionOf(memex, uid, options.session, true);
      const attachments: AttachmentRef[] = [];
      for (const path of options.attach ?? []) {
        // Stored first: a message never refers to a file that is not there.
        const { file } = await ingestPath(memex, uid, sessionId, path, {});
        attachments.push({ fileId: file.id, name: file.name || basename(path), mimeType: file.mimeType });
      }
      const message = await memex.messages.append(uid, sessionId, { role: options.role, content, ...(attachments.length ? { attachments } : {}) });
      // Embedded before the command ends, so a failure to embed is this command's error to report.
      await memex.flush();
      print(ctx.io, `Added ${message.id} to session ${sessionId}`, message);
    });

  const message = program.command('message').description('act on one message');
  message
    .command('rm <id>')
    .description('move a message and its vectors to the trash (restore with `memex trash restore <id>`); --purge deletes them at once')
    .option('-s, --session <id>', 'session (default: the latest)')
    .option('--purge', 'delete for good now instead of moving to the trash')
    .action(async (id: string, options: { session?: string; purge?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const sessionId = await sessionOf(memex, uid, options.session, false);
      await memex.messages.delete(uid, sessionId, id, { purge: options.purge === true });
      const done = options.purge ? 'Deleted message' : 'Moved to the trash message';
      print(ctx.io, `${done} ${id} of session ${sessionId}`, { deleted: true, purged: options.purge === true, sessionId, messageId: id });
    });

  program
    .command('reindex')
    .description("re-embed stored messages with the configured model (after changing models, or to catch up); resumable")
    .option('--force', 're-embed every session, even those already current (say, after changing chunk sizes)')
    .action(async (options: { force?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const memex = await ctx.memex({ allowModelMismatch: true });
      const bar = progress(ctx.io, 'reindex');
      const started = Date.now();
      const result = await memex.reindex({
        ...(ctx.defaultUser ? {} : { userId: ctx.user }),
        ...(options.force ? { force: true } : {}),
        onProgress: (p) => bar.update(p.sessionsDone, p.sessionsTotal, `${p.messages} messages, ${p.chunks} chunks`),
      });
      bar.finish();
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const lines = [
        `Re-embedded ${result.sessionsEmbedded} of ${result.sessionsTotal} sessions (${result.messages} messages, ${result.chunks} chunks) with ${result.model} in ${seconds} s.`,
      ];
      if (result.sessionsSkipped > 0) lines.push(`${result.sessionsSkipped} sessions were already current${result.resumed ? ' (resumed an interrupted run)' : ''}.`);
      print(ctx.io, lines.join('\n'), result);
    });

  program
    .command('messages')
    .description("show a session's messages, oldest first")
    .option('-s, --session <id>', 'session (default: the latest)')
    .addOption(new Option('--limit <n>', 'messages per page').argParser(positiveInt).default(50))
    .addOption(new Option('--offset <n>', 'messages to skip').argParser(positiveInt))
    .option('--cursor <cursor>', 'continue after a previous page (its nextCursor)')
    .option('--before <cursor>', 'the page before a previous page (its prevCursor)')
    .option('--latest', 'the last messages (a page of --limit)')
    .action(async (options: { session?: string; limit: number; offset?: number; cursor?: string; before?: string; latest?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const sessionId = await sessionOf(memex, uid, options.session, false);
      const page = await memex.messages.list(uid, sessionId, {
        limit: options.limit,
        ...(options.offset !== undefined ? { offset: options.offset } : {}),
        ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
        ...(options.before !== undefined ? { before: options.before } : {}),
        ...(options.latest ? { latest: true } : {}),
      });
      const lines = page.messages.map(messageLines);
      const shown = page.messages.length;
      // A page reached by cursor may not know its offset (over HTTP): it names the next cursor instead.
      if (shown === 0) lines.push(page.total === 0 ? 'No messages yet.' : `No messages there (${page.total} in all).`);
      else if (page.nextCursor && page.offset >= 0) lines.push(`… ${page.total - page.offset - shown} more (use --offset ${page.offset + shown})`);
      else if (page.nextCursor) lines.push(`… more (use --cursor ${page.nextCursor})`);
      print(ctx.io, lines.join('\n'), { sessionId, ...page });
    });

  program
    .command('export')
    .description('export a session as Markdown or JSON')
    .option('-s, --session <id>', 'session (default: the latest)')
    .addOption(new Option('-f, --format <format>', 'output format').choices(EXPORT_FORMATS).default('md'))
    .option('-o, --out <file>', 'write to a file instead of stdout')
    .action(async (options: { session?: string; format: ExportFormat; out?: string }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const sessionId = await sessionOf(memex, uid, options.session, false);
      const target = options.out ? createWriteStream(options.out, { flags: 'wx' }) : ctx.io.out;
      for await (const piece of memex.sessions.export(uid, sessionId, options.format)) await write(target, piece);
      if (options.out) {
        target.end();
        await once(target, 'finish');
        ctx.io.err.write(`Exported session ${sessionId} to ${options.out}\n`);
      }
    });

  const persona = program.command('persona').description('manage personas (system prompts attached to sessions)');
  persona
    .command('add <name>')
    .description('create a persona')
    .requiredOption('--instructions <text>', 'the system prompt')
    .option('--id <id>', 'persona id (default: generated)')
    .action(async (name: string, options: { instructions: string; id?: string }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const created = await memex.personas.create(uid, { name, instructions: options.instructions, ...(options.id ? { id: options.id } : {}) });
      print(ctx.io, `Created persona ${created.id}`, created);
    });
  persona
    .command('list')
    .description('list personas')
    .action(async (_options, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const personas = await memex.personas.list(uid);
      print(ctx.io, personas.length ? table(['ID', 'NAME', 'INSTRUCTIONS'], personas.map((p) => [p.id, p.name, clip(p.instructions, 60)])) : 'No personas yet.', personas);
    });
  registerArchiveCommands(program, contextOf);
}
