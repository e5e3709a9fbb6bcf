import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Config } from '../core/index.js';
import type { BenchReport, PeerName } from '../bench/index.js';
import { describeEmbeddingWarning, loadEmbedder, type EmbeddingWarning } from '../embedding/index.js';
import { Memex, type MemexOptions } from '../memex.js';
import { positiveInt, type ContextOf } from './args.js';
import { print, progress, table } from './output.js';

const PEER_NAMES = ['hnswlib', 'usearch', 'lancedb'] as const;

interface BenchFlags {
  dataset?: string;
  queries: number;
  k: number;
  ef: number[];
  rounds: number;
  peers?: PeerName[] | true;
  maxMessages: number;
  e2e: boolean;
  budget: number;
  concurrency: number;
  html: string | false;
  schema?: boolean;
}

function efList(value: string): number[] {
  const list = value.split(',').map((part) => Number(part.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1 || n > 100_000)) throw new InvalidArgumentError('expected whole numbers separated by commas, like 16,32,64,128');
  return list;
}

function peerList(value: string): PeerName[] {
  const list = value.split(',').map((part) => part.trim().toLowerCase());
  for (const name of list) if (!(PEER_NAMES as readonly string[]).includes(name)) throw new InvalidArgumentError(`expected peers from ${PEER_NAMES.join(', ')}`);
  return list as PeerName[];
}

function atLeastOne(value: string): number {
  const n = positiveInt(value);
  if (n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

const fixed = (n: number, digits: number): string => n.toFixed(digits);
const rate = (n: number): string => (n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US'));

function summary(report: BenchReport, htmlPath: string | null): string {
  const { ann, e2e } = report;
  const lines = [`memex bench: ${report.dataset.description}`, `ANN: ${ann.rows.toLocaleString('en-US')} rows x ${ann.dimension}-d, ${ann.queries} queries, recall@${ann.k} against exact search (${ann.exact.kind}), one thread`, ''];
  const rows = ann.systems.flatMap((s) => s.curve.map((p) => [s.name, String(p.efSearch), fixed(p.recall, 4), rate(p.qps), fixed(p.p50Ms, 3), fixed(p.p99Ms, 3)]));
  rows.push(['exact', '', '1', rate(ann.exact.qps), fixed(ann.exact.p50Ms, 3), fixed(ann.exact.p99Ms, 3)]);
  lines.push(table(['system', 'efSearch', `recall@${ann.k}`, 'qps', 'p50 ms', 'p99 ms'], rows), '');
  lines.push(table(['system', 'build s', 'rows/s', 'memory MiB', 'file MiB', 'load s'], ann.systems.map((s) => [s.name, fixed(s.build.seconds, 2), rate(s.build.rowsPerSecond), fixed(s.build.memoryBytes / 2 ** 20, 1), fixed(s.build.fileBytes / 2 ** 20, 1), fixed(s.build.loadSeconds, 3)])));
  for (const s of ann.skipped) lines.push(`skipped ${s.name}: ${s.reason}`);
  for (const { peer, points } of ann.equalRecall) {
    const at = points.map((p) => `${fixed(p.recall, 3)}: ${p.ratio === null ? '-' : `${fixed(p.ratio, 2)}x`}`).join(', ');
    lines.push(`memex / ${peer} at equal recall (recall: ratio of queries/s): ${at}`);
  }
  if (e2e) {
    lines.push(
      '',
      `End to end (${e2e.messages.toLocaleString('en-US')} messages in a temporary data dir):`,
      `  ingest ${rate(e2e.ingest.messagesPerSecond)} messages/s, ${fixed(e2e.ingest.ratio, 2)}x Memex's embedder alone (${rate(e2e.ingest.modelAlone.textsPerSecond)} texts/s)${e2e.ingest.library && e2e.ingest.libraryRatio !== null ? `, ${fixed(e2e.ingest.libraryRatio, 2)}x transformers.js's pipeline alone (${rate(e2e.ingest.library.textsPerSecond)} texts/s)` : ''}`,
      `  index build ${fixed(e2e.index.buildSeconds, 2)} s, load ${fixed(e2e.index.loadSeconds, 2)} s`,
      `  hybrid search p50 ${fixed(e2e.search.p50Ms, 2)} ms, p99 ${fixed(e2e.search.p99Ms, 2)} ms (query embedding alone ${fixed(e2e.search.embedP50Ms, 2)} ms); ${rate(e2e.search.qps)}/s one caller, ${rate(e2e.search.concurrentQps)}/s with ${e2e.search.concurrency}`,
      `  context with recall (budget ${e2e.context.budget}) p50 ${fixed(e2e.context.p50Ms, 2)} ms, p99 ${fixed(e2e.context.p99Ms, 2)} ms`,
    );
  }
  if (htmlPath) lines.push('', `report: ${htmlPath}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The end-to-end part's settings: the user's for what it measures (chunking, index, search,
 * context, durability), in a temporary flat-file data dir whatever the configured store, and never
 * calling the configured model server (extractive summaries, no memory extraction).
 */
function e2eConfig(config: Config, dataDir: string): NonNullable<MemexOptions['config']> {
  const { fsync, embedding, chunking, index, search, ingest, context, limits } = config;
  return { dataDir, store: { kind: 'flat', url: null }, fsync, embedding, chunking, index, search, ingest, context: { ...context, summarizer: 'extractive' }, limits, memory: { extract: false } };
}

/** `memex bench`: recall and speed on the data dir's own vectors or a named dataset. */
export function registerBenchCommand(program: Command, contextOf: ContextOf): void {
  program
    .command('bench')
    .description("measure recall and speed: ANN recall against exact search at several efSearch, build, load and memory, then ingest, search and context end to end")
    .option('--dataset <name>', 'locomo, msmarco (read from $MEMEX_EVAL_DIR or ../shared/eval; or name:path) or synthetic:N (like synthetic:100k); default: the --user\'s own vectors in the data dir')
    .addOption(new Option('--queries <n>', 'ANN queries (held out from the rows where they come from them)').argParser(atLeastOne).default(1000))
    .addOption(new Option('-k, --k <n>', 'neighbours per query, for recall@k').argParser(atLeastOne).default(10))
    .addOption(new Option('--ef <list>', 'efSearch values to sweep').argParser(efList).default([10, 16, 32, 64, 128, 256], '10,16,32,64,128,256'))
    .addOption(new Option('--rounds <n>', 'timed passes per efSearch').argParser(atLeastOne).default(3))
    .addOption(new Option('--peers [list]', `compare with other engines in the same run (${PEER_NAMES.join(', ')}; bare: all)`).argParser(peerList))
    .addOption(new Option('--max-messages <n>', 'the most messages the end-to-end part writes').argParser(atLeastOne).default(5000))
    .option('--no-e2e', 'only the ANN part: skip ingest, search and context end to end')
    .addOption(new Option('--budget <tokens>', 'the context window budget').argParser(atLeastOne).default(4096))
    .addOption(new Option('--concurrency <n>', 'concurrent callers for the search throughput').argParser(atLeastOne).default(32))
    .option('--html <file>', 'write the HTML report here', 'memex-bench-report.html')
    .option('--no-html', 'write no HTML report')
    .option('--schema', 'print the JSON Schema of the --json report and exit')
    .addHelpText(
      'after',
      '\nNothing is written to the data dir: its vectors are only read, and the end-to-end part runs in a temporary data dir.\n\nExamples:\n  memex bench                                  # your own data (the default user)\n  memex bench --dataset synthetic:100k --peers  # against hnswlib-node, usearch and LanceDB\n  memex bench --dataset locomo --json > bench.json',
    )
    .action(async (flags: BenchFlags, command: Command) => {
      const ctx = contextOf(command);
      const bench = await import('../bench/index.js');
      if (flags.schema) {
        ctx.io.out.write(`${JSON.stringify(bench.benchReportJsonSchema(), null, 2)}\n`);
        return;
      }
      const config = ctx.config();
      const bar = progress(ctx.io, 'bench');
      const onProgress = (step: string, done: number, total: number): void => bar.update(done, total, step);
      const onWarning = (warning: EmbeddingWarning): void => void ctx.io.err.write(`memex: warning: ${describeEmbeddingWarning(warning)}\n`);
      const options = { queries: flags.queries, maxMessages: flags.maxMessages };
      let dataset;
      let embedder;
      if (flags.dataset) {
        dataset = bench.loadDataset(flags.dataset, options);
        embedder = await loadEmbedder(config.embedding, { onWarning });
      } else {
        // The user's own rows: read through the library, with the model they were made with.
        const library = await ctx.library();
        if (ctx.defaultUser) await library.users.ensure(ctx.user);
        else await library.users.get(ctx.user);
        embedder = await library.embedder();
        const source = {
          listSessions: (userId: string, page: Parameters<typeof library.sessions.list>[1]) => library.sessions.list(userId, page),
          readVectors: (userId: string, sessionId: string) => library.vectors.read(userId, sessionId),
          streamMessages: (userId: string, sessionId: string) => library.messages.stream(userId, sessionId),
        };
        dataset = await bench.userDataset(source, ctx.user, options, (done, total) => onProgress('reading vectors', done, total));
      }
      const model = embedder;
      const report = await bench.runBench({
        dataset,
        embedder: () => Promise.resolve(model),
        ...(flags.e2e ? { open: (dataDir: string) => Memex.open({ dataDir, config: e2eConfig(config, dataDir), embedder: model, onWarning: () => undefined }) } : {}),
        k: flags.k,
        efSearch: flags.ef,
        rounds: flags.rounds,
        peers: flags.peers === true ? [...PEER_NAMES] : (flags.peers ?? []),
        budget: flags.budget,
        concurrency: flags.concurrency,
        onProgress,
      });
      bar.finish();
      const htmlPath = flags.html === false ? null : resolve(flags.html);
      if (htmlPath) await writeFile(htmlPath, bench.renderHtml(report));
      print(ctx.io, summary(report, htmlPath), report);
    });
}
