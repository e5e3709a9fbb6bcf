import { stat } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { IMPORT_SOURCES, MemexError, type ImportRecord, type ImportSource } from '../core/index.js';
import type { ImportReport } from '../import/index.js';
import { userOf, type ContextOf } from './args.js';
import type { Context } from './main.js';
import { clip, print, progress, shortTime, table } from './output.js';

const IMPORT_HELP = `
Takes ChatGPT's conversations.json, Claude's export (conversations.json with projects.json,
memories.json and users.json), Google Takeout's Gemini "My Activity" JSON, or a Memex session
export, each as JSON or as the ZIP the service sent. The format is read from the content.

Each conversation becomes an imported session: read-only, listed with \`memex session list
--origin imported\`, searched with the others (\`memex search --origin imported\` for only
them). Importing the same export again adds nothing; a newer one adds only what is new.
The files an export carries (ChatGPT's images and uploads in the ZIP, the text Claude extracted
from attachments) are ingested like uploads, so search finds their text; OCR takes seconds per
image, so \`--attachments store\` keeps them without reading them.

Examples:
  memex import ~/Downloads/chatgpt-export.zip
  memex import --dry-run conversations.json projects.json memories.json users.json
  memex import --attachments store chatgpt-export.zip
  memex --json import takeout/MyActivity.json
  memex import list
  memex import rm imp_01jd…`;

/** `memex import`: chat exports in, as imported sessions; `import list`, `import rm`. */
export function registerImportCommands(program: Command, contextOf: ContextOf): void {
  const command = program
    .command('import')
    .description('import ChatGPT, Claude and Gemini exports (JSON or ZIP) as imported sessions')
    .argument('[files...]', 'export files: .json or the service\'s .zip')
    .addOption(new Option('--source <source>', 'the service the files come from').choices(['auto', ...IMPORT_SOURCES]).default('auto'))
    .option('--dry-run', 'read and compare everything, write nothing: what would be added, changed and skipped')
    .addOption(new Option('--attachments <mode>', "the files the export carries: ingest (searchable: images OCRed, PDFs' text) or store (kept, not read; much faster for many images)").choices(['ingest', 'store']).default('ingest'))
    .addHelpText('after', IMPORT_HELP)
    .action((paths: string[], flags: ImportFlags, cmd: Command) => {
      if (paths.length === 0) {
        cmd.help({ error: true });
      }
      return runImportCommand(contextOf(cmd), paths, flags);
    });
  command
    .command('list')
    .description("the user's imports, oldest first: what each added, changed and skipped")
    .action(async (_options, cmd: Command) => {
      const ctx = contextOf(cmd);
      const { memex, user } = await userOf(ctx);
      const records = await memex.imports.list(user);
      const rows = records.map((r) => [r.id, r.source, r.state, shortTime(r.finishedAt), String(r.sessions.length), String(r.counts.messages.added), String(r.notes.length), String(r.skippedTotal), clip(r.files.map((f) => f.name).join(', '), 40)]);
      print(ctx.io, records.length === 0 ? 'No imports yet. Import an export with `memex import <file>`.' : table(['ID', 'SOURCE', 'STATE', 'WHEN', 'SESSIONS', 'MESSAGES', 'NOTES', 'SKIPPED', 'FILES'], rows), records);
    });
  command
    .command('rm <importId>')
    .description('delete an import: the sessions and notes it added or changed, then its record')
    .action(async (importId: string, _options, cmd: Command) => {
      const ctx = contextOf(cmd);
      const { memex, user } = await userOf(ctx);
      const record = await memex.imports.delete(user, importId);
      print(ctx.io, `Deleted import ${record.id}: ${record.sessions.length} sessions, ${record.notes.length} notes`, record);
    });
}

interface ImportFlags {
  source: 'auto' | ImportSource;
  dryRun?: boolean;
  attachments: 'ingest' | 'store';
}

async function runImportCommand(ctx: Context, paths: string[], flags: ImportFlags): Promise<void> {
  for (const path of paths) {
    const info = await stat(path).catch((cause: unknown) => {
      throw new MemexError('MEMEX_PATH_NOT_FOUND', `no file at ${path}`, { cause, details: { path } });
    });
    if (!info.isFile()) throw new MemexError('MEMEX_PATH_NOT_FOUND', `${path} is not a file`, { details: { path } });
  }
  const { memex, user } = await userOf(ctx);
  if (!flags.dryRun) await memex.embedder();
  const controller = new AbortController();
  const stop = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', stop);
  const bars = { scan: progress(ctx.io, 'reading   '), store: progress(ctx.io, 'importing '), embed: progress(ctx.io, 'embedding ') };
  const shown: { phase: keyof typeof bars | null } = { phase: null };
  let report: ImportReport;
  try {
    report = await memex.imports.run(user, paths, {
      ...(flags.source === 'auto' ? {} : { source: flags.source }),
      dryRun: flags.dryRun === true,
      attachments: flags.attachments,
      signal: controller.signal,
      onProgress: (p) => {
        if (shown.phase !== p.phase) {
          if (shown.phase) bars[shown.phase].finish();
          shown.phase = p.phase;
        }
        bars[p.phase].update(p.done, p.total ?? p.done, `${p.messages} messages`);
      },
    });
  } finally {
    if (shown.phase) bars[shown.phase].finish();
    process.removeListener('SIGINT', stop);
  }
  print(ctx.io, describeReport(report), report);
}

function describeReport(report: ImportReport): string {
  const { record } = report;
  const c = record.counts;
  const verb = report.dryRun ? 'would be' : 'were';
  const lines = [
    `${report.dryRun ? 'Dry run of an import' : `Import ${report.saved ? record.id : '(nothing new)'}`} from ${record.source}: ${record.files.map((f) => f.name).join(', ')}`,
    table(
      ['WHAT', 'ADDED', 'UPDATED', 'UNCHANGED', 'SKIPPED'],
      [
        ['conversations', String(c.conversations.added), String(c.conversations.updated), String(c.conversations.unchanged), String(c.conversations.skipped)],
        ['messages', String(c.messages.added), '', String(c.messages.unchanged), ''],
        ['documents', String(c.documents.added), '', String(c.documents.unchanged), ''],
        ['notes', String(c.notes.added), '', String(c.notes.unchanged), ''],
        ['attachments', String(c.attachments.stored), '', '', String(c.attachments.missing)],
        ['  ingested', String(c.attachments.ingested), '', '', ''],
      ],
    ),
  ];
  const changed = report.conversations.filter((o) => o.action !== 'unchanged');
  if (changed.length > 0) {
    lines.push(`Conversations that ${verb} added or updated:`);
    lines.push(table(['SESSION', 'ACTION', 'NEW MESSAGES', 'TITLE'], changed.slice(0, 20).map((o) => [o.sessionId, o.action, String(o.newMessages), clip(o.title, 40)])));
    if (changed.length > 20) lines.push(`… and ${changed.length - 20} more (see --json)`);
  }
  lines.push(...skippedLines(record));
  if (!report.dryRun && report.saved) lines.push(`Listed with \`memex session list --origin imported\`; undo with \`memex import rm ${record.id}\`.`);
  return lines.join('\n');
}

function skippedLines(record: ImportRecord): string[] {
  if (record.skippedTotal === 0) return [];
  const byReason = new Map<string, number>();
  for (const skip of record.skipped) byReason.set(skip.reason, (byReason.get(skip.reason) ?? 0) + 1);
  const lines = [`Skipped ${record.skippedTotal}: ${[...byReason].map(([reason, n]) => `${reason} ${n}`).join(', ')}`];
  for (const skip of record.skipped.slice(0, 5)) lines.push(`  ${skip.reason}: ${clip(skip.item, 40)} ${clip(skip.detail, 80)}`);
  if (record.skippedTotal > 5) lines.push('  … (see --json)');
  return lines;
}
