import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { MemexError, toMemexError } from '../core/index.js';
import type { IngestFileOptions } from '../ingest/index.js';
import type { IngestSummary, MemexApi } from './api.js';
import { sessionOf, userOf, type ContextOf } from './args.js';
import type { Context } from './main.js';
import { clip, print, progress, table } from './output.js';

interface FileOutcome {
  path: string;
  ok: boolean;
  result?: IngestSummary;
  error?: { code: string; message: string; hint: string };
}

/** Ingests a file of this machine, after checking that there is one (a missing path is the user's typo, not a schema error). */
export async function ingestPath(memex: MemexApi, user: string, sessionId: string, path: string, options: IngestFileOptions): Promise<IngestSummary> {
  const info = await stat(path).catch((cause: unknown) => {
    throw new MemexError('MEMEX_PATH_NOT_FOUND', `no file at ${path}`, { cause, details: { path } });
  });
  if (!info.isFile()) throw new MemexError('MEMEX_PATH_NOT_FOUND', `${path} is not a file`, { details: { path } });
  return memex.ingestFile(user, sessionId, { path }, { name: basename(path), ...options });
}

const INGEST_HELP =
  '\nThe type is read from the bytes: PDF, PNG, JPEG, GIF, WebP, TIFF. The same file twice is stored and\nembedded once. Exit code 1 when any file failed; the others are still ingested.\n\nExamples:\n  memex ingest paper.pdf scan.png\n  memex ingest --session trip --password s3cret statement.pdf\n  memex --json ingest *.pdf';

/** `memex ingest`: PDFs and images into a session, each on its own; one failure never stops the rest. */
export function registerIngestCommands(program: Command, contextOf: ContextOf): void {
  program
    .command('ingest <files...>')
    .description('store PDFs and images in a session and make their text searchable (text layer, else OCR)')
    .option('-s, --session <id>', 'session to add them to (default: the latest session, or a new one)')
    .option('--password <password>', 'password for encrypted PDFs')
    .addHelpText('after', INGEST_HELP)
    .action((paths: string[], flags: { session?: string; password?: string }, command: Command) => runIngest(contextOf(command), paths, flags));
}

/** `memex ingest` and `memex file add`: each file on its own, a progress bar each, one table at the end. */
export async function runIngest(ctx: Context, paths: string[], flags: { session?: string; password?: string }): Promise<void> {
  const { memex, user } = await userOf(ctx);
  await memex.embedder();
  const sessionId = await sessionOf(memex, user, flags.session, true);
  const controller = new AbortController();
  const stop = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', stop);
  const outcomes: FileOutcome[] = [];
  try {
    for (const path of paths) {
      if (controller.signal.aborted) break;
      const bar = progress(ctx.io, clip(basename(path), 30));
      try {
        const result = await ingestPath(memex, user, sessionId, path, {
          ...(flags.password !== undefined ? { password: flags.password } : {}),
          signal: controller.signal,
          onProgress: (p) => bar.update(p.done, p.total, p.phase),
        });
        outcomes.push({ path, ok: true, result });
      } catch (cause) {
        const error = toMemexError(cause);
        outcomes.push({ path, ok: false, error: { code: error.code, message: error.message, hint: error.hint } });
      } finally {
        bar.finish();
      }
    }
  } finally {
    process.removeListener('SIGINT', stop);
  }
  const rows = outcomes.map(({ path, result, error }) =>
    result
      ? [clip(basename(path), 32), result.kind, String(result.pages), String(result.chunks), String(result.characters), String(result.warnings.length), result.ingested ? (result.timings ? `ingested in ${seconds(result.timings)}` : 'ingested') : 'already ingested']
      : [clip(basename(path), 32), '', '', '', '', '', `failed: ${error?.code ?? ''}`],
  );
  const lines = [`Session ${sessionId}`, table(['FILE', 'KIND', 'PAGES', 'CHUNKS', 'CHARS', 'WARNINGS', 'STATUS'], rows)];
  for (const { path, result, error } of outcomes) {
    if (error) lines.push(`${basename(path)}: ${error.message}\n  ${error.hint}`);
    for (const warning of result?.warnings.slice(0, 5) ?? []) lines.push(`${basename(path)}: warning: ${warning.message}`);
    if (result && result.warnings.length > 5) lines.push(`${basename(path)}: … and ${result.warnings.length - 5} more warnings (see --json)`);
  }
  const failed = outcomes.filter((o) => !o.ok).length;
  if (failed > 0) lines.push(`${failed} of ${paths.length} files failed; the others were ingested.`);
  print(ctx.io, lines.join('\n'), { sessionId, files: outcomes });
  if (failed > 0 || outcomes.length < paths.length) ctx.setExitCode(1);
}

/** How long ingest took (a server does not send its timings). */
function seconds(timings: NonNullable<IngestSummary['timings']>): string {
  const ms = Object.values(timings).reduce((a, b) => a + b, 0);
  return `${(ms / 1000).toFixed(1)} s`;
}
