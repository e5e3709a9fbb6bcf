import { InvalidArgumentError, Option, type Command } from 'commander';
import { IMPORT_SOURCES, ROLES, SEARCH_MODES, SOURCE_KINDS, type ImportSource, type SearchOptions, type Where } from '../core/index.js';
import type { DoctorReport } from '../doctor.js';
import type { SearchHit } from '../index/index.js';
import type { MemexApi } from './api.js';
import { isoTime, positiveInt, userOf, type ContextOf } from './args.js';
import { clip, print, progress, shortTime, table } from './output.js';

/** Repeatable options (`-s a -s b`): variadic ones would swallow the query words after them. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function oneOf<T extends string>(choices: readonly T[]): (value: string, previous: T[] | undefined) => T[] {
  return (value, previous) => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}`);
    return [...(previous ?? []), value as T];
  };
}

function fraction(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('expected a number from 0 to 1');
  return n;
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

interface SearchFlags {
  session?: string[];
  excludeSession?: string[];
  k: number;
  mode: SearchOptions['mode'];
  role?: SearchOptions['roles'];
  source?: SearchOptions['sources'];
  after?: string;
  before?: string;
  origin?: 'native' | 'imported' | ImportSource;
  mmr?: number | true;
  recency?: number;
  where?: Where;
  minRelevance?: number;
  feedback?: true;
}

/** Parsed here, validated by the search options schema (a bad filter is MEMEX_INVALID_INPUT). */
function whereJson(value: string): Where {
  try {
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Where;
  } catch {
    // reported below
  }
  throw new InvalidArgumentError('expected a JSON object, e.g. \'{"project":"x","priority":{"$gte":2}}\'');
}

/** `memex search` and `memex doctor`: recall over a user's sessions, and the data dir's health. */
export function registerRecallCommands(program: Command, contextOf: ContextOf): void {
  program
    .command('search <query...>')
    .description("find the chunks of the user's sessions most relevant to a query (hybrid vector + lexical by default)")
    .option('-s, --session <id>', 'only this session (repeat for more)', collect)
    .option('--exclude-session <id>', 'leave this session out, say the current one (repeatable)', collect)
    .addOption(new Option('-k, --k <n>', 'results to show').argParser(positiveInt).default(10))
    .addOption(new Option('--mode <mode>', 'how to rank').choices(SEARCH_MODES).default('hybrid'))
    .addOption(new Option('--role <role>', `only messages with this role (repeatable; ${ROLES.join(', ')})`).argParser(oneOf(ROLES)))
    .addOption(new Option('--source <kind>', `only chunks of this kind (repeatable; ${SOURCE_KINDS.join(', ')})`).argParser(oneOf(SOURCE_KINDS)))
    .addOption(new Option('--after <time>', 'only messages from this date or ISO time on (2026-01-31, midnight UTC, or 2026-01-31T09:00:00+01:00)').argParser(isoTime))
    .addOption(new Option('--before <time>', 'only messages before this date or ISO time').argParser(isoTime))
    .addOption(new Option('--origin <origin>', "only native sessions, only imported chat exports, or one service's exports").choices(['native', 'imported', ...IMPORT_SOURCES]))
    .addOption(new Option('--mmr [lambda]', 'diversify results (maximal marginal relevance; lambda 0-1, default 0.7)').argParser(fraction))
    .addOption(new Option('--recency <days>', 'favour recent messages: the half-life of the boost, in days').argParser(positive))
    .addOption(new Option('--where <json>', 'only messages whose metadata match this filter (equality, $in, $gt/$gte/$lt/$lte, $ne, $exists, $and/$or)').argParser(whereJson))
    .addOption(new Option('--min-relevance <x>', "leave out chunks whose relevance (0-1, comparable across queries) is below x; the query's only word match stays").argParser(fraction))
    .option('--feedback', "a second lexical pass with the words the first hits share (pseudo-relevance feedback) on every query; by default it runs only where the hits are documents, not chats")
    .addHelpText('after', '\nExamples:\n  memex search "when is the Lisbon trip"\n  memex search -k 5 --mode lexical -s <session-id> invoice number\n  memex --json search --recency 30 "what did I decide about the database"')
    .action(async (words: string[], flags: SearchFlags, command: Command) => {
      const ctx = contextOf(command);
      const { memex, user } = await userOf(ctx);
      const bar = progress(ctx.io, 'index');
      await memex.index.prepare(user, { onProgress: (p) => bar.update(p.done, p.total, 'rows') });
      bar.finish();
      const query = words.join(' ');
      const started = performance.now();
      const report = await memex.search(user, query, {
        k: flags.k,
        mode: flags.mode,
        ...(flags.session ? { sessionIds: flags.session } : {}),
        ...(flags.excludeSession ? { excludeSessionIds: flags.excludeSession } : {}),
        ...(flags.role ? { roles: flags.role } : {}),
        ...(flags.source ? { sources: flags.source } : {}),
        ...(flags.after ? { after: flags.after } : {}),
        ...(flags.before ? { before: flags.before } : {}),
        ...(flags.origin ? { origin: flags.origin } : {}),
        ...(flags.mmr !== undefined ? { mmr: flags.mmr === true ? {} : { lambda: flags.mmr } } : {}),
        ...(flags.recency !== undefined ? { recency: { halfLifeDays: flags.recency } } : {}),
        ...(flags.where ? { where: flags.where } : {}),
        ...(flags.minRelevance !== undefined ? { minRelevance: flags.minRelevance } : {}),
        ...(flags.feedback ? { understand: { feedback: true } } : {}),
      });
      const ms = (performance.now() - started).toFixed(1);
      const names = await fileNames(memex, user, report.hits);
      const rows = report.hits.map((hit, i) => [
        String(i + 1),
        hit.score.toFixed(4),
        hit.sessionId,
        hit.source.kind === 'message' ? hit.source.role : 'file',
        hit.source.kind === 'message' ? shortTime(hit.source.createdAt) : '',
        hit.source.kind === 'message' ? clip(hit.text, 70) : `[${clip(names.get(hit.source.fileId) ?? hit.source.fileId.slice(0, 12), 30)}${hit.source.page ? ` p${hit.source.page}` : ''}] ${clip(hit.text, 50)}`,
      ]);
      const footer = `${report.hits.length} of ${report.matching} chunks, ${report.mode} search in ${ms} ms`;
      const human =
        report.hits.length === 0
          ? report.matching === 0
            ? nothingMatches(flags)
            : `No chunk shares a word with the query (${report.matching} searched); try --mode hybrid or vector.`
          : `${table(['#', 'SCORE', 'SESSION', 'ROLE', 'WHEN', 'TEXT'], rows)}\n${footer}`;
      print(ctx.io, human, { query, ...report });
    });

  program
    .command('doctor')
    .description('check the data dir and repair what it can: vector rows, vector files, search indexes')
    .option('--rebuild-index', 'rebuild every search index from the session files, even ones that load fine')
    .addHelpText('after', '\nExit code 0 when nothing is left to fix by hand, 1 otherwise. --user limits it to one user.')
    .action(async (flags: { rebuildIndex?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const memex = await ctx.memex({ allowModelMismatch: true });
      const bar = progress(ctx.io, 'doctor');
      const report: DoctorReport = await memex.doctor({
        ...(ctx.defaultUser ? {} : { userId: ctx.user }),
        ...(flags.rebuildIndex ? { rebuildIndex: true } : {}),
        onProgress: (p) => bar.update(p.done, p.total, `${p.userId}: ${p.phase}`),
      });
      bar.finish();
      const lines = [`Checked ${report.users} users, ${report.sessions} sessions, ${report.messages} messages, ${report.rows} vector rows.`];
      if (report.findings.length === 0) lines.push('Everything is in order.');
      else lines.push(table(['SEVERITY', 'WHERE', 'WHAT'], report.findings.map((f) => [f.severity, f.where, f.what])));
      if (!report.ok) lines.push('Some problems need you: see the lines marked "problem".');
      print(ctx.io, lines.join('\n'), report);
      if (!report.ok) ctx.setExitCode(1);
    });
}

/** What "no chunk matches" means depends on what was asked for. */
function nothingMatches(flags: SearchFlags): string {
  const filtered = flags.session || flags.excludeSession || flags.role || flags.after || flags.before || flags.origin;
  if (flags.source?.length === 1 && flags.source[0] === 'file') {
    return `No file chunks match${filtered ? ' these filters' : ''} (store files with \`memex ingest <file>\`).`;
  }
  if (flags.source?.length === 1 && flags.source[0] === 'message') return `No message chunks match${filtered ? ' these filters' : ''} (add messages with \`memex add <text>\`).`;
  if (filtered) return 'No chunks match these filters.';
  return 'Nothing to search yet: no messages or files (add some with `memex add <text>` or `memex ingest <file>`).';
}

/** The names of the files hits came from (the hits carry only their sha256 ids). */
async function fileNames(memex: MemexApi, user: string, hits: SearchHit[]): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  for (const hit of hits) {
    if (hit.source.kind !== 'file' || names.has(hit.source.fileId)) continue;
    const record = await memex.files.get(user, hit.sessionId, hit.source.fileId).catch(() => null);
    if (record?.name) names.set(hit.source.fileId, record.name);
  }
  return names;
}
