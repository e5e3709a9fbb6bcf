/**
 * Migration throughput (`memex migrate`, src/store/migrate): all of LoCoMo (272 sessions, 5,882
 * turns) with the real model's vector rows, copied from one flat-file data dir into another, then
 * run again (a finished migration: reads and compares, writes nothing). The baseline in the same
 * run is the raw copy of the data dir's files (`fs.cp`), the floor for moving the same bytes.
 * Rows are messages plus vector rows; verification (reading both sides back) is timed apart.
 *
 *   npx tsx bench/migrate.ts [--fsync group|always|none]
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FsyncPolicy } from '../src/core/index.js';
import { Memex } from '../src/index.js';
import { FlatFileStore, migrateStore, type MigrateResult } from '../src/store/index.js';
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

async function migrate(fromDir: string, toDir: string): Promise<{ result: MigrateResult; ms: number }> {
  const from = await FlatFileStore.open({ dataDir: fromDir, fsync, onWarning: () => undefined });
  const to = await FlatFileStore.open({ dataDir: toDir, fsync, onWarning: () => undefined });
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

  const first = await migrate(source, join(root, 'copy'));
  const again = await migrate(source, join(root, 'copy'));
  const { totals } = first.result;
  const rows = totals.messages + totals.vectorRows;
  const copyS = first.result.seconds - (first.result.verification?.seconds ?? 0);

  console.log(`# Migration, flat files → flat files (fsync ${fsync}): LoCoMo, ${totals.sessions} sessions, ${totals.messages} messages, ${totals.vectorRows} vector rows of ${model}`);
  console.log(`machine: ${machine()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; source built (embedded) in ${(buildMs / 1000).toFixed(1)} s`);
  console.log('| path | seconds | rows/s |');
  console.log('| --- | ---: | ---: |');
  console.log(`| raw copy of the data dir's files (fs.cp, baseline) | ${(rawMs / 1000).toFixed(2)} | ${Math.round(rows / (rawMs / 1000))} |`);
  console.log(`| migrate: copy | ${copyS.toFixed(2)} | ${first.result.rowsPerSecond} |`);
  console.log(`| migrate: verification (both sides read back, checksums) | ${(first.result.verification?.seconds ?? 0).toFixed(2)} | ${Math.round(rows / (first.result.verification?.seconds ?? 1))} |`);
  console.log(`| migrate again (finished: compares, writes nothing), with verification | ${(again.ms / 1000).toFixed(2)} | – |`);
  console.log(`second run wrote: ${JSON.stringify(again.result.written)}`);
} finally {
  await rm(root, { recursive: true, force: true });
}
