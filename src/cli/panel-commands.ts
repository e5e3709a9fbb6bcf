import { Option, type Command } from 'commander';
import type { Message } from '../core/index.js';
import { personaOf, userOf, type ContextOf } from './args.js';
import { print } from './output.js';

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `memex session fork` and `memex session merge`: new sessions made from others, linked to them. */
export function registerForkCommands(session: Command, contextOf: ContextOf): void {
  session
    .command('fork <session> <message>')
    .description('start a new session with the turns up to and including <message> (their files and vectors are copied, not embedded again)')
    .option('--title <title>', "the fork's title (default: the source's)")
    .action(async (sessionId: string, messageId: string, options: { title?: string }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user } = await userOf(ctx);
      const result = await memex.sessions.fork(user, sessionId, messageId, options.title !== undefined ? { title: options.title } : {});
      print(ctx.io, `Forked ${sessionId} at ${messageId} into session ${result.session.id} (${result.messages} messages, ${result.files} files, ${result.vectorRows} vector rows copied)`, result);
    });
  session
    .command('merge <sessions...>')
    .description('merge sessions into one new session, keeping message ids, files and vectors; the sources are kept unless --delete-sources')
    .addOption(new Option('--mode <mode>', 'time: interleave by when each message was written; concat: one session after the other').choices(['time', 'concat']).default('time'))
    .option('--title <title>', "the merged session's title (default: the first session's)")
    .option('--delete-sources', 'delete the merged sessions once the merge is written')
    .action(async (sessionIds: string[], options: { mode: 'time' | 'concat'; title?: string; deleteSources?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user } = await userOf(ctx);
      const result = await memex.sessions.merge(user, sessionIds, {
        mode: options.mode,
        ...(options.title !== undefined ? { title: options.title } : {}),
        ...(options.deleteSources ? { deleteSources: true } : {}),
      });
      const shared = result.shared > 0 ? `, ${result.shared} shared kept once` : '';
      print(ctx.io, `Merged ${sessionIds.length} sessions into ${result.session.id} (${result.messages} messages${shared}, ${result.files} files, ${result.vectorRows} vector rows)`, result);
    });
}

/** `memex panel`: one session, several personas taking turns. */
export function registerPanelCommands(program: Command, contextOf: ContextOf): void {
  const panel = program.command('panel').description('panels: several personas discussing in one session (`memex context --as <persona>` builds one participant\'s window)');
  panel
    .command('new')
    .description('start a panel with these personas as participants')
    .requiredOption('--persona <id-or-name>', 'a participant (repeat for each)', collect)
    .option('--title <title>', 'title')
    .action(async (options: { persona: string[]; title?: string }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user } = await userOf(ctx);
      const created = await memex.panels.create(user, { personas: options.persona, ...(options.title !== undefined ? { title: options.title } : {}) });
      print(ctx.io, `Created panel ${created.id} with ${created.participants.length} participants`, created);
    });
  panel
    .command('say <session> <text...>')
    .description("add a participant's turn (an assistant message spoken by the persona)")
    .requiredOption('--as <id-or-name>', 'the persona speaking')
    .action(async (sessionId: string, words: string[], options: { as: string }, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user } = await userOf(ctx);
      const message: Message = await memex.panels.say(user, sessionId, { persona: options.as, content: words.join(' ') });
      print(ctx.io, `Added ${message.id} to panel ${sessionId} as ${options.as}`, message);
    });
  panel
    .command('join <session> <persona>')
    .description('add a persona to a panel')
    .action(async (sessionId: string, persona: string, _options, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user } = await userOf(ctx);
      const joined = await memex.panels.join(user, sessionId, (await personaOf(memex, user, persona)).id);
      print(ctx.io, `Panel ${sessionId} has ${joined.participants.length} participants`, joined);
    });
}
