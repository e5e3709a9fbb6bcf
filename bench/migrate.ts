/**
 * Migration throughput (`memex migrate`, src/store/migrate): all of LoCoMo (272 sessions, 5,882
 * turns) with the real model's vector rows, copied from one flat-file data dir into another and
 * into PostgreSQL (PGlite with pgvector over the wire protocol, unless MEMEX_TEST_DATABASE_URL names
 * a real server), and back; each then run again (a finished migration: compares, writes nothing).
 * The baseline in the same run is the raw copy of the data dir's files (`fs.cp`), the floor for
 * moving the same bytes. Rows are messages plus vector rows; verification is timed apart.
 *
 *   npx tsx bench/migrate.ts [--fsync group|always|none] [--no-postgres]
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FsyncPolicy } from '../src/core/index.js';
import { Memex } from '../src/index.js';
import { FlatFileStore, migrateStore, PostgresStore, type MigrateResult, type Store } from '../src/store/index.js';
import { resetMemexSchema, startTestDatabase } from '../test/helpers/postgres.js';
import { benchModel, locomoSessions, machine } from './locomo.js';

const fsyncArg = process.argv.indexOf('--fsync');
const fsync = (fsyncArg >= 0 ? process.argv[fsyncArg + 1] : 'group') as FsyncPolicy;
const { model, modelDir } = benchModel();
const root = await mkdtemp(join(tmpdir(), 'memex-bench-migrate-'));

async function buildSource(dataDir: string): Promise<void> {
  const memex = await Memex.open({ dataDir, env: { MEMEX_MODEL_DIR: modelDir, MEMEX_MODEL: model }, onWarning: () => undefined });
  for (const s of locomoSessions()) {
    const speakers = [...new Set(s.turns.map((t) => t.speaker))];
    await memex.users.ensure(s.conversation);
    const session = await memex.sessions.create(s.conversation, { metadata: { locomoSession: s.index } });
    await memex.messages.appendMany(s.conversation, session.id, s.turns.map((t) => ({ role: t.speaker === speakers[0] ? ('user' as const) : ('assistant' as const), content: `${t.speaker}: ${t.text}`, metadata: { diaId: t.diaId } })));
  }
  await memex.close();
}

type End = { dir: string } | { url: string };

function openEnd(end: End): Promise<Store> {
  return 'dir' in end ? FlatFileStore.open({ dataDir: end.dir, fsync, onWarning: () => undefined }) : PostgresStore.open({ url: end.url, onWarning: () => undefined });
}

async function migrate(fromEnd: End, toEnd: End): Promise<{ result: MigrateResult; ms: number }> {
  const from = await openEnd(fromEnd);
  const to = await openEnd(toEnd);
  const start = performance.now();
  const result = await migrateStore(from, to);
  const ms = performance.now() - start;
  await Promise.all([from.close(), to.close()]);
  return { result, ms };
}

try {
  const source = join(root, 'source');
  const buildStart = performance.now();
  await buildSource(source);
  const buildMs = performance.now() - buildStart;

  const rawStart = performance.now();
  await cp(source, join(root, 'raw'), { recursive: true });
  const rawMs = performance.now() - rawStart;

  const rowsOf = (r: MigrateResult): number => r.totals.messages + r.totals.vectorRows;
  const line = (label: string, run: { result: MigrateResult; ms: number }): string => {
    const copyS = run.result.seconds - (run.result.verification?.seconds ?? 0);
    return `| ${label} | ${copyS.toFixed(2)} | ${run.result.rowsPerSecond} | ${(run.result.verification?.seconds ?? 0).toFixed(2)} |`;
  };
  const first = await migrate({ dir: source }, { dir: join(root, 'copy') });
  const again = await migrate({ dir: source }, { dir: join(root, 'copy') });
  const { totals } = first.result;
  const rows = rowsOf(first.result);

  console.log(`# Migration (fsync ${fsync}): LoCoMo, ${totals.sessions} sessions, ${totals.messages} messages, ${totals.vectorRows} vector rows of ${model}`);
  console.log(`machine: ${machine()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; source built (embedded) in ${(buildMs / 1000).toFixed(1)} s`);
  console.log('| path | copy seconds | rows/s | verification seconds |');
  console.log('| --- | ---: | ---: | ---: |');
  console.log(`| raw copy of the data dir's files (fs.cp, baseline) | ${(rawMs / 1000).toFixed(2)} | ${Math.round(rows / (rawMs / 1000))} | – |`);
  console.log(line('flat files → flat files', first));
  console.log(`| the same again (finished: compares, writes nothing), whole run | ${(again.ms / 1000).toFixed(2)} | – | – |`);
  if (!process.argv.includes('--no-postgres')) {
    const database = await startTestDatabase();
    try {
      await resetMemexSchema(database.url);
      const there = await migrate({ dir: source }, { url: database.url });
      const back = await migrate({ url: database.url }, { dir: join(root, 'back') });
      const twice = await migrate({ dir: source }, { url: database.url });
      const kind = database.kind === 'pglite' ? 'PGlite (WASM, one backend session)' : 'PostgreSQL';
      console.log(line(`flat files → ${kind}`, there));
      console.log(line(`${kind} → flat files`, back));
      console.log(`| flat files → ${kind} again (finished), whole run | ${(twice.ms / 1000).toFixed(2)} | – | – |`);
    } finally {
      await database.stop();
    }
  }
  console.log(`second flat run wrote: ${JSON.stringify(again.result.written)}`);
} finally {
  await rm(root, { recursive: true, force: true });
}
