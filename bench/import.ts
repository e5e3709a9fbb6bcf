/**
 * Importing a chat export against appending the same messages, in one run.
 *
 *  - The export: every LoCoMo session as a ChatGPT conversation (conversations.json, a `mapping`
 *    tree per conversation, the two speakers as user and assistant, LoCoMo's real text), written
 *    by this bench to a temp dir: 272 conversations, 5,882 messages.
 *  - Import: `memex.imports.run` on it, into a fresh data dir, until every message is embedded
 *    (the clock stops when the import returns: it waits for the vectors).
 *  - Baseline: the same conversations as sessions through `sessions.create` + `messages.appendMany`
 *    and `flush()`, the plain append + embed path, into another fresh data dir.
 *  Both with the real model (MEMEX_MODEL_DIR / MEMEX_MODEL, else the hashed fallback, said so),
 *  alternating which runs first over `--rounds`.
 *  - Memory: generated exports of `--large-mb` sizes (default 30 and 300 MB; LoCoMo conversations
 *    repeated with new ids, streamed to disk) each imported with `--dry-run` (read, parsed and
 *    compared in full, nothing written, so no model) in a child process that reports its peak RSS:
 *    flat in the export's size when the 300 MB one peaks where the 30 MB one does. And `--real-mb`
 *    sizes (default 3 and 30 MB) imported for real, written, embedded with the hashed model (the
 *    real model would take hours) and indexed, the same way.
 *  `--only memory` skips the speed comparison.
 *
 *   npx tsx bench/import.ts [--rounds 2] [--large-mb 30,300] [--real-mb 3,30] [--only memory] [--backend flat|postgres]
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { Memex } from '../src/index.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../test/helpers/postgres.js';
import { benchModel, locomoSessions, machine, median } from './locomo.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    'large-mb': { type: 'string', default: '30,300' },
    'real-mb': { type: 'string', default: '3,30' },
    only: { type: 'string' },
    backend: { type: 'string', default: 'flat' },
    child: { type: 'string' },
    real: { type: 'boolean', default: false },
  },
});

/** The child: imports `--child <file>` into a fresh data dir (a dry run unless `--real`) and prints its peak RSS. */
if (values.child !== undefined) {
  const dataDir = await mkdtemp(join(tmpdir(), 'memex-bench-import-'));
  const memex = await Memex.open({ dataDir, env: { MEMEX_MODEL: 'hashed' } });
  await memex.users.create({ id: 'bench' });
  const report = await memex.imports.run('bench', values.child, { dryRun: !values.real });
  await memex.close();
  await rm(dataDir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify({ conversations: report.record.counts.conversations.added, maxRssKb: process.resourceUsage().maxRSS }));
  process.exit(0);
}

const sessions = locomoSessions();
const { model, modelDir } = benchModel();
const env = { MEMEX_MODEL_DIR: modelDir, MEMEX_MODEL: model };

interface Turn {
  role: 'user' | 'assistant';
  text: string;
}
const conversations: { id: string; title: string; turns: Turn[] }[] = sessions.map((s, i) => {
  const first = s.turns[0]?.speaker;
  return { id: `locomo-${i}`, title: `${s.conversation} session ${s.index}`, turns: s.turns.map((t) => ({ role: t.speaker === first ? 'user' : 'assistant', text: `${t.speaker}: ${t.text}` })) };
});
const messageCount = conversations.reduce((n, c) => n + c.turns.length, 0);

/** One conversation in ChatGPT's export form: a chain of nodes from a root, current_node its last. */
function chatgpt(id: string, title: string, turns: Turn[], start: number): string {
  const mapping: Record<string, unknown> = { [`${id}-root`]: { id: `${id}-root`, parent: null, children: [`${id}-0`], message: null } };
  turns.forEach((turn, i) => {
    const node = `${id}-${i}`;
    mapping[node] = {
      id: node,
      parent: i === 0 ? `${id}-root` : `${id}-${i - 1}`,
      children: i + 1 < turns.length ? [`${id}-${i + 1}`] : [],
      message: { id: node, author: { role: turn.role }, create_time: start + i * 60, content: { content_type: 'text', parts: [turn.text] }, metadata: {} },
    };
  });
  return JSON.stringify({ id, conversation_id: id, title, create_time: start, update_time: start + turns.length * 60, current_node: `${id}-${turns.length - 1}`, mapping });
}

async function writeExport(path: string, repeat: (i: number) => string | null): Promise<void> {
  const out = createWriteStream(path);
  out.write('[');
  for (let i = 0; ; i++) {
    const piece = repeat(i);
    if (piece === null) break;
    if (!out.write(`${i === 0 ? '' : ','}\n${piece}`)) await once(out, 'drain');
  }
  out.end(']\n');
  await once(out, 'finish');
}

let database: TestDatabase | null = null;
async function open(dataDir: string): Promise<Memex> {
  if (values.backend !== 'postgres') return Memex.open({ dataDir, env });
  database ??= await startTestDatabase();
  const memex = await Memex.open({ dataDir, env, config: { store: { kind: 'postgres', url: database.url } } });
  return memex;
}

/** A fresh data dir (or schema) with the user and the model loaded, and how to throw it away. */
async function fresh(): Promise<{ memex: Memex; done: () => Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'memex-bench-import-'));
  if (database) await resetMemexSchema(database.url);
  const memex = await open(dataDir);
  await memex.users.create({ id: 'bench' });
  await memex.embedder();
  return {
    memex,
    done: async () => {
      await memex.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function importRun(file: string): Promise<number> {
  const { memex, done } = await fresh();
  const start = performance.now();
  const report = await memex.imports.run('bench', file);
  const ms = performance.now() - start;
  if (report.record.counts.messages.added !== messageCount) throw new Error(`imported ${report.record.counts.messages.added} messages, expected ${messageCount}`);
  await done();
  return ms;
}

async function appendRun(): Promise<number> {
  const { memex, done } = await fresh();
  const start = performance.now();
  for (const [c, conversation] of conversations.entries()) {
    const base = Date.UTC(2024, 0, 1) + c * 86_400_000;
    const session = await memex.sessions.create('bench', { title: conversation.title, createdAt: new Date(base).toISOString() });
    await memex.messages.appendMany('bench', session.id, conversation.turns.map((t, i) => ({ id: `locomo-${c}-${i}`, role: t.role, content: t.text, createdAt: new Date(base + i * 60_000).toISOString() })));
  }
  await memex.flush();
  const ms = performance.now() - start;
  await done();
  return ms;
}

const dir = await mkdtemp(join(tmpdir(), 'memex-bench-export-'));
try {
  const file = join(dir, 'conversations.json');
  await writeExport(file, (i) => {
    const c = conversations[i];
    return c ? chatgpt(c.id, c.title, c.turns, Date.UTC(2024, 0, 1) / 1000 + i * 86_400) : null;
  });
  const rounds = values.only === 'memory' ? 0 : Number(values.rounds);
  const times = { import: [] as number[], append: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so neither always gets the warmer machine.
    if (round % 2 === 0) {
      times.append.push(await appendRun());
      times.import.push(await importRun(file));
    } else {
      times.import.push(await importRun(file));
      times.append.push(await appendRun());
    }
    process.stderr.write(`round ${round + 1}: import ${(times.import.at(-1) as number).toFixed(0)} ms, append + embed ${(times.append.at(-1) as number).toFixed(0)} ms\n`);
  }

  // Large exports: the same conversations again and again, with new ids, to each size.
  const large: { mb: number; real: boolean; conversations: number; rssMb: number; seconds: number }[] = [];
  const sizes = [...String(values['large-mb']).split(',').map((mb) => ({ mb: Number(mb), real: false })), ...String(values['real-mb']).split(',').map((mb) => ({ mb: Number(mb), real: true }))];
  for (const { mb, real } of sizes) {
    const path = join(dir, `large-${mb}.json`);
    let written = 0;
    await writeExport(path, (i) => {
      if (written >= mb * 1024 * 1024) return null;
      const c = conversations[i % conversations.length] as (typeof conversations)[number];
      const piece = chatgpt(`big-${i}`, c.title, c.turns, Date.UTC(2024, 0, 1) / 1000 + i * 600);
      written += piece.length;
      return piece;
    });
    const size = (await stat(path)).size;
    const started = performance.now();
    const child = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', 'bench/import.ts', '--child', path, ...(real ? ['--real'] : [])], { encoding: 'utf8', maxBuffer: 1 << 20 })) as { conversations: number; maxRssKb: number };
    large.push({ mb: size / 1024 / 1024, real, conversations: child.conversations, rssMb: child.maxRssKb / 1024, seconds: (performance.now() - started) / 1000 });
    process.stderr.write(`${real ? 'import' : 'dry run'} of ${mb} MB: peak RSS ${(child.maxRssKb / 1024).toFixed(0)} MB\n`);
    await rm(path, { force: true });
  }

  console.log(`\n${machine()}; ${values.backend === 'postgres' ? 'PostgreSQL (PGlite)' : 'flat files'}; model ${model}; ${conversations.length} conversations, ${messageCount} messages${rounds > 0 ? `; median of ${rounds} rounds` : ''}\n`);
  if (rounds > 0) {
    const [imp, app] = [median(times.import), median(times.append)];
    const rows = [
      ['measure', 'import', 'appendMany + embed (baseline)', 'import vs baseline'],
      ['conversations/s', (conversations.length / (imp / 1000)).toFixed(1), (conversations.length / (app / 1000)).toFixed(1), `${(app / imp).toFixed(2)}×`],
      ['messages/s', (messageCount / (imp / 1000)).toFixed(0), (messageCount / (app / 1000)).toFixed(0), `${(app / imp).toFixed(2)}×`],
    ];
    console.log(`| ${rows[0]?.join(' | ')} |\n|---|---:|---:|---:|`);
    for (const row of rows.slice(1)) console.log(`| ${row.join(' | ')} |`);
  }
  console.log('\n| export (child process) | mode | conversations | time | peak RSS |\n|---:|---|---:|---:|---:|');
  for (const row of large) console.log(`| ${row.mb.toFixed(0)} MB | ${row.real ? 'import (hashed model)' : '--dry-run'} | ${row.conversations.toLocaleString('en-US')} | ${row.seconds.toFixed(0)} s | ${row.rssMb.toFixed(0)} MB |`);
} finally {
  await rm(dir, { recursive: true, force: true });
  await (database as TestDatabase | null)?.stop();
}
