import { Option, type Command } from 'commander';
import { clip, print, shortTime, table } from './output.js';
import { positiveInt, userOf, type ContextOf } from './args.js';

/** Tags, search by content and the trash: `memex session tag|untag|tags|search`, `memex trash list|restore|empty`. */
export function registerOrganiseCommands(session: Command, program: Command, contextOf: ContextOf): void {
  session
    .command('tag <id> <tags...>')
    .description('add tags to a session')
    .action(async (id: string, tags: string[], _options, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const tagged = await memex.sessions.tag(uid, id, tags);
      print(ctx.io, `Tags of ${id}: ${tagged.tags.join(', ') || '-'}`, tagged);
    });
  session
    .command('untag <id> <tags...>')
    .description('remove tags from a session')
    .action(async (id: string, tags: string[], _options, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const untagged = await memex.sessions.untag(uid, id, tags);
      print(ctx.io, `Tags of ${id}: ${untagged.tags.join(', ') || '-'}`, untagged);
    });
  session
    .command('tags')
    .description('your tags with how many sessions carry each, most used first')
    .action(async (_options, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const tags = await memex.sessions.tags(uid);
      print(ctx.io, tags.length === 0 ? 'No tags yet. Tag a session with `memex session tag <id> <tag>`.' : table(['TAG', 'SESSIONS'], tags.map((t) => [t.tag, String(t.sessions)])), { tags });
    });
  session
    .command('search <query...>')
    .description('the sessions best matching a query, with their best passages')
    .addOption(new Option('--limit <n>', 'sessions to show').argParser(positiveInt).default(10))
    .action(async (words: string[], options: { limit: number }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const report = await memex.sessions.search(uid, words.join(' '), { limit: options.limit });
      const human = report.sessions.length === 0
        ? 'No session matches.'
        : report.sessions.map((m) => [`${m.session.id}  ${m.score.toFixed(3)}  ${clip(m.session.title, 60)}`, ...m.hits.map((hit) => `    ${clip(hit.text, 100)}`)].join('\n')).join('\n');
      print(ctx.io, human, report);
    });

  const trash = program.command('trash').description('sessions and messages deleted without --purge: list, restore, empty');
  trash
    .command('list')
    .description("what is in the trash (kept for trash.retentionDays, then purged)")
    .action(async (_options, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const listing = await memex.trash.list(uid);
      const rows = [
        ...listing.sessions.map((s) => ['session', s.id, shortTime(s.trashedAt), clip(s.title, 50)]),
        ...listing.messages.map((m) => ['message', m.message.id, shortTime(m.trashedAt), clip(`${m.sessionId}: ${m.message.content}`, 50)]),
      ];
      print(ctx.io, rows.length === 0 ? 'The trash is empty.' : `${table(['KIND', 'ID', 'TRASHED', 'WHAT'], rows)}\nKept ${listing.retentionDays} days, then purged.`, listing);
    });
  trash
    .command('restore <id>')
    .description('take a session or a message out of the trash, exactly as it was')
    .action(async (id: string, _options, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const listing = await memex.trash.list(uid);
      const message = listing.messages.find((m) => m.message.id === id);
      if (message) {
        const restored = await memex.messages.restore(uid, message.sessionId, id);
        print(ctx.io, `Restored message ${id} to session ${message.sessionId}`, restored);
        return;
      }
      const restored = await memex.sessions.restore(uid, id);
      print(ctx.io, `Restored session ${id}`, restored);
    });
  trash
    .command('empty')
    .description('delete everything in the trash for good')
    .action(async (_options, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const purged = await memex.trash.empty(uid);
      print(ctx.io, `Deleted ${purged.sessions.length} sessions and ${purged.messages.length} messages for good`, purged);
    });
}
