/**
 * Append throughput of the flat-file store under each fsync policy, against the raw baseline in the
 * same run: node's own open/append/fsync of the same JSON lines, with no store around it.
 *
 *   npx tsx bench/append.ts [messages=2000]
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlatFileStore } from '../src/store/index.js';
import type { FsyncPolicy } from '../src/core/index.js';

const N = Number(process.argv[2] ?? 2000);
const CONCURRENCY = 16;
const text = (i: number): string => `message ${i}: ${'lorem ipsum dolor sit amet '.repeat(8)}`;

async function raw(sync: boolean, concurrent: boolean): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'memex-bench-'));
  const path = join(dir, 'raw.jsonl');
  const one = async (i: number): Promise<void> => {
    const handle = await open(path, 'a');
    await handle.writeFile(`${JSON.stringify({ v: 1, id: `m${i}`, role: 'user', content: text(i) })}\n`);
    if (sync) await handle.sync();
    await handle.close();
  };
  const start = performance.now();
  await drive(one, concurrent);
  const seconds = (performance.now() - start) / 1000;
  await rm(dir, { recursive: true, force: true });
  return N / seconds;
}

async function drive(one: (i: number) => Promise<void>, concurrent: boolean): Promise<void> {
  if (!concurrent) {
    for (let i = 0; i < N; i++) await one(i);
    return;
  }
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < N) await one(next++);
  }));
}

async function memex(fsync: FsyncPolicy, concurrent: boolean): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'memex-bench-'));
  const store = await FlatFileStore.open({ dataDir: join(dir, 'data'), fsync, onWarning: () => undefined });
  await store.createUser({ id: 'bench' });
  const { id } = await store.createSession('bench');
  const start = performance.now();
  await drive(async (i) => void (await store.appendMessages('bench', id, [{ role: 'user', content: text(i) }])), concurrent);
  const seconds = (performance.now() - start) / 1000;
  await store.close();
  await rm(dir, { recursive: true, force: true });
  return N / seconds;
}

const rows: string[][] = [];
for (const concurrent of [false, true]) {
  const mode = concurrent ? `${CONCURRENCY} concurrent` : 'one at a time';
  rows.push([mode, 'raw append, no fsync (baseline)', (await raw(false, concurrent)).toFixed(0)]);
  rows.push([mode, 'raw append + fsync each (baseline)', (await raw(true, concurrent)).toFixed(0)]);
  for (const policy of ['none', 'always', 'group'] as const) rows.push([mode, `memex fsync=${policy}`, (await memex(policy, concurrent)).toFixed(0)]);
}
console.log(`${N} single-message appends to one session; ${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length}, node ${process.version}\n`);
console.log('| appenders | path | messages/s |\n|---|---|---:|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
