import { Option, type Command } from 'commander';
import type { ArchiveResult } from '../store/index.js';
import type { MaintenanceReport } from '../maintain.js';
import { clip, print, table } from './output.js';
import { userOf, type ContextOf } from './args.js';

function sizes(result: ArchiveResult): string {
  if (!result.archivedNow) return '';
  const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;
  return ` (${kib(result.rawBytes)} of content, ${kib(result.archiveBytes)} archived)`;
}

function reportText(report: MaintenanceReport): string {
  const head = report.dryRun ? 'Would do' : 'Did';
  if (report.actions.length === 0) return `Nothing to do: ${report.sessionsSeen} sessions of ${report.users} users are within the retention policies.`;
  const rows = report.actions.map((a) => [
    a.userId,
    a.sessionId,
    clip(a.title, 30),
    a.messages === null ? a.action : `${a.action} ${a.messages} oldest messages`,
    a.policy,
    a.status === 'failed' ? `failed: ${a.error?.code ?? ''}` : a.status,
    clip(a.reason, 60),
  ]);
  return `${head} ${report.actions.length} actions over ${report.sessionsSeen} sessions of ${report.users} users:\n${table(['USER', 'SESSION', 'TITLE', 'ACTION', 'POLICY', 'STATUS', 'WHY'], rows)}`;
}

/** `memex session archive|unarchive <id>` and `memex maintain` (README "Archive and retention"). */
export function registerArchiveCommands(program: Command, contextOf: ContextOf): void {
  const session = program.commands.find((command) => command.name() === 'session') ?? program.command('session');
  session
    .command('archive <id>')
    .description('compress a session: still listed, out of search; unarchive to use it again')
    .action(async (id: string, _options, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const result = await memex.sessions.archive(uid, id);
      print(ctx.io, result.archivedNow ? `Archived session ${id}${sizes(result)}` : `Session ${id} was already archived`, result);
    });
  session
    .command('unarchive <id>')
    .description('restore an archived session exactly (messages, files, vectors, summary)')
    .action(async (id: string, _options, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user: uid } = await userOf(ctx);
      const result = await memex.sessions.unarchive(uid, id);
      print(ctx.io, result.archivedNow ? `Unarchived session ${id}` : `Session ${id} was not archived`, result);
    });

  program
    .command('maintain')
    .description("apply the config's retention policies (retention: maxAgeDays, maxSessionsPerUser, maxMessagesPerSession) to every user, or to --user")
    .addOption(new Option('--dry-run', 'print what the policies would do, changing nothing').default(false))
    .action(async (options: { dryRun: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const memex = await ctx.memex();
      const report = await memex.maintain({ ...(options.dryRun ? { dryRun: true } : {}), ...(ctx.defaultUser ? {} : { userId: ctx.user }) });
      print(ctx.io, reportText(report), report);
    });
}
