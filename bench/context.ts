/**
 * Context windows, measured on real conversations.
 *
 * 1. Evidence in the window (LoCoMo, 10 conversations, the 1,535 questions with evidence,
 *    category 5 excluded). Each conversation is one long Memex session (all its LoCoMo sessions in
 *    order, about 600 turns), and each question is asked at its end: the window is assembled with
 *    the question as the query. A question's score is the share of its evidence turns the window
 *    holds (as a recent turn, a recalled memory, or a summary sentence of that turn); the table
 *    shows the mean at 2k and 4k budgets for three windows built in the same run:
 *      - recent turns only (baseline),
 *      - recent turns plus the rolling summary, no recall (baseline),
 *      - Memex's full window: recent turns, summary, recalled memories.
 * 2. Assembly latency for a 10,000-message session: p50/p95 of `buildContext` at 4k and 16k budgets,
 *    with the summary cached (calls with no new turn) and with a new turn appended before each call
 *    (the summary is extended by the turn that leaves the window and saved). With memories the
 *    query is one a search just embedded, so its vector comes from the query-vector cache and the
 *    time excludes embedding it, as the target says.
 *
 *   npx tsx bench/context.ts
 *   npx tsx bench/context.ts --evidence-only --memex-only --neighbours 0:0,1:0,1:1,0:1 --data-dir /tmp/locomo-data
 *
 * With neighbours, a memory's turns brought from around it count as in the window too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Memex, type ContextWindow, type NewMessage } from '../src/index.js';
import { benchModel, LOCOMO, locomoSessions, machine, median } from './locomo.js';

const { model, modelDir } = benchModel();
const sessions = locomoSessions();
const BUDGETS = [2048, 4096];

/**
 * `--min-scores none,0.2,0.3` measures the full window at each relevance floor (`minScore`; none
 * turns it off) instead of the configured one, and the memory tokens spent on the adversarial
 * questions (category 5: about things the conversation never says), where every recalled memory is
 * noise. `--memex-only` skips the two baseline windows.
 */
const floorArg = process.argv.indexOf('--min-scores');
const FLOORS: (number | null | undefined)[] =
  floorArg >= 0 ? (process.argv[floorArg + 1] ?? '').split(',').map((f) => (f === 'none' ? null : Number(f))) : [undefined];
/** `--min-relevances none,0.1,0.2` does the same for the relevance floor (`minRelevance`, on every chunk). */
const relevanceArg = process.argv.indexOf('--min-relevances');
const RELEVANCES: (number | null | undefined)[] =
  relevanceArg >= 0 ? (process.argv[relevanceArg + 1] ?? '').split(',').map((f) => (f === 'none' ? null : Number(f))) : [undefined];
/**
 * `--neighbours 0:0,1:0,1:1,0:1` measures the full window with each recalled turn bringing that many
 * turns from before:after it (`context.neighbours`) instead of the configured number.
 */
const neighboursArg = process.argv.indexOf('--neighbours');
type Neighbours = { before: number; after: number } | undefined;
const NEIGHBOURS: Neighbours[] =
  neighboursArg >= 0
    ? (process.argv[neighboursArg + 1] ?? '').split(',').map((pair) => {
        const [before, after] = pair.split(':').map(Number);
        return { before: before ?? 0, after: after ?? 0 };
      })
    : [undefined];
/** `--data-dir <dir>` keeps the ingested conversations there and reuses them on the next run. */
const dataDirArg = process.argv.indexOf('--data-dir');
const keptDataDir = dataDirArg >= 0 ? process.argv[dataDirArg + 1] : undefined;
const floorName = (floor: number | null | undefined, around: Neighbours, relevance?: number | null): `memex${string}` => {
  const parts = [
    ...(floor === undefined ? [] : [`minScore ${floor ?? 'none'}`]),
    ...(relevance === undefined ? [] : [`minRelevance ${relevance ?? 'none'}`]),
    ...(around === undefined ? [] : [`neighbours ${around.before}:${around.after}`])];
  return parts.length === 0 ? 'memex' : `memex, ${parts.join(', ')}`;
};

type Mode = 'recent' | 'recent+summary' | `memex${string}`;
const VARIANTS = FLOORS.flatMap((floor) => RELEVANCES.flatMap((relevance) => NEIGHBOURS.map((around) => ({ floor, relevance, around, name: floorName(floor, around, relevance) }))));
const MODES: Mode[] = [...(process.argv.includes('--memex-only') ? [] : (['recent', 'recent+summary'] as const)), ...VARIANTS.map((v) => v.name)];
const floorOf = new Map<string, number | null | undefined>(VARIANTS.map((v) => [v.name, v.floor]));
const neighboursOf = new Map<string, Neighbours>(VARIANTS.map((v) => [v.name, v.around]));
const relevanceOf = new Map<string, number | null | undefined>(VARIANTS.map((v) => [v.name, v.relevance]));
const neighbourOption = (mode: string): { neighbours?: { before: number; after: number }; minRelevance?: number | null } => {
  const around = neighboursOf.get(mode);
  const relevance = relevanceOf.get(mode);
  return { ...(around ? { neighbours: around } : {}), ...(relevance !== undefined ? { minRelevance: relevance } : {}) };
};

/** "1:56 pm on 8 May, 2023" → an ISO time. */
function locomoTime(date: string, turn: number): string {
  const m = /(\d+):(\d+)\s*(am|pm) on (\d+) (\w+),? (\d{4})/i.exec(date);
  if (!m) throw new Error(`unreadable LoCoMo date ${date}`);
  const [, h, min, ampm, day, month, year] = m as unknown as string[];
  const hour = (Number(h) % 12) + ((ampm as string).toLowerCase() === 'pm' ? 12 : 0);
  const base = new Date(`${day} ${month} ${year} ${hour}:${min}:00 UTC`);
  return new Date(base.getTime() + turn * 1000).toISOString();
}

function conversationMessages(conversation: string): NewMessage[] {
  const parts = sessions.filter((s) => s.conversation === conversation);
  const first = parts[0]?.turns[0]?.speaker;
  return parts.flatMap((s) =>
    s.turns.map((t, i) => ({
      id: t.diaId.replace(':', '-'),
      role: t.speaker === first ? ('user' as const) : ('assistant' as const),
      content: `${t.speaker}: ${t.text}`,
      createdAt: locomoTime(s.date, i),
    })),
  );
}

function inWindow(window: ContextWindow, history: readonly { id: string }[]): Set<string> {
  const { report } = window;
  const ids = new Set(history.slice(history.length - report.recent.messages).map((m) => m.id));
  for (const memory of report.memories) {
    if (memory.source.messageId) ids.add(memory.source.messageId);
    for (const id of memory.neighbours) ids.add(id);
  }
  for (const id of report.summary?.sentencesFrom ?? []) ids.add(id);
  return ids;
}

async function evidence(): Promise<string[]> {
  const dataDir = keptDataDir ?? (await mkdtemp(join(tmpdir(), 'memex-bench-context-')));
  const memex = await Memex.open({ dataDir, env: { MEMEX_MODEL_DIR: modelDir, MEMEX_MODEL: model }, onWarning: () => undefined });
  const samples = JSON.parse(readFileSync(LOCOMO, 'utf8')) as { sample_id: string; qa: { question: string; evidence?: string[]; category: number }[] }[];
  const scores = new Map<string, number[]>();
  const parts = new Map<string, { recent: number; summary: number; memories: number; tokens: number }>();
  const noise = new Map<string, { tokens: number; items: number }>();
  let questions = 0;
  let adversarial = 0;
  const started = performance.now();
  for (const sample of samples) {
    const conversation = sample.sample_id;
    const reused = keptDataDir !== undefined ? (await memex.sessions.list(conversation).catch(() => null))?.sessions[0] : undefined;
    if (!reused) await memex.users.create({ id: conversation });
    const session = reused ?? (await memex.sessions.create(conversation));
    const history = reused
      ? (await memex.messages.list(conversation, session.id, { limit: 1000 })).messages
      : await memex.messages.appendMany(conversation, session.id, conversationMessages(conversation));
    await memex.flush();
    await memex.index.prepare(conversation);
    const known = new Set<string>(history.map((m) => m.id));
    for (const qa of sample.qa) {
      if (qa.category === 5) {
        adversarial++;
        for (const budget of BUDGETS) {
          for (const mode of MODES.filter((m) => m.startsWith('memex'))) {
            const floor = floorOf.get(mode);
            const window = await memex.buildContext(conversation, {
              sessionId: session.id,
              budget,
              query: qa.question,
              include: { notes: false },
              ...(floor !== undefined ? { minScore: floor } : {}),
              ...neighbourOption(mode),
            });
            const key = `${mode}@${budget}`;
            const a = noise.get(key) ?? { tokens: 0, items: 0 };
            a.tokens += window.report.parts.memories.tokens;
            a.items += window.report.parts.memories.items;
            noise.set(key, a);
          }
        }
        continue;
      }
      const refs = (qa.evidence ?? []).flatMap((e) => e.split(/[;\s]+/)).map((id) => id.replace(':', '-')).filter((id) => known.has(id));
      if (refs.length === 0) continue;
      questions++;
      for (const budget of BUDGETS) {
        for (const mode of MODES) {
          const window = await memex.buildContext(conversation, {
            sessionId: session.id,
            budget,
            query: qa.question,
            include: { notes: false, memories: mode.startsWith('memex'), summary: mode !== 'recent' },
            ...(floorOf.get(mode) !== undefined ? { minScore: floorOf.get(mode) } : {}),
            ...neighbourOption(mode),
          });
          const shown = inWindow(window, history);
          const key = `${mode}@${budget}`;
          const list = scores.get(key) ?? [];
          list.push(refs.filter((id) => shown.has(id)).length / refs.length);
          scores.set(key, list);
          const p = parts.get(key) ?? { recent: 0, summary: 0, memories: 0, tokens: 0 };
          p.recent += window.report.parts.recent.tokens;
          p.summary += window.report.parts.summary.tokens;
          p.memories += window.report.parts.memories.tokens;
          p.tokens += window.report.tokens;
          parts.set(key, p);
        }
      }
    }
    process.stderr.write(`\r${conversation}: ${history.length} turns, ${questions} questions so far (${((performance.now() - started) / 1000).toFixed(0)} s)   `);
  }
  process.stderr.write('\n');
  await memex.close();
  if (keptDataDir === undefined) await rm(dataDir, { recursive: true, force: true });
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const lines = [
    `LoCoMo: ${questions} questions with evidence (category 5 excluded), each conversation one session of its ~600 turns, the question asked at its end; reply reserve 512 tokens, o200k_base.`,
    '',
    '| window | budget | evidence in window | vs recent only | recent / summary / memories tokens (mean) |',
    '|---|---:|---:|---:|---|',
  ];
  for (const budget of BUDGETS) {
    const base = (scores.get(`recent@${budget}`) ?? []).length > 0 ? mean(scores.get(`recent@${budget}`) ?? []) : 0;
    for (const mode of MODES) {
      const key = `${mode}@${budget}`;
      const share = mean(scores.get(key) ?? []);
      const p = parts.get(key) as { recent: number; summary: number; memories: number; tokens: number };
      const n = (scores.get(key) ?? []).length;
      const name = mode.startsWith('memex') ? `Memex (recent + summary + recall)${mode === 'memex' ? '' : `, ${mode.slice('memex, '.length)}`}` : mode === 'recent' ? 'recent turns only (baseline)' : 'recent + summary, no recall (baseline)';
      lines.push(`| ${name} | ${budget} | ${(share * 100).toFixed(1)}% | ${base > 0 ? `${(share / base).toFixed(2)}x` : '-'} | ${Math.round(p.recent / n)} / ${Math.round(p.summary / n)} / ${Math.round(p.memories / n)} |`);
    }
  }
  lines.push('', `Adversarial questions (category 5, ${adversarial}: about things the conversation never says): what recall spends on them, mean per window.`, '', '| window | budget | memory tokens | memories |', '|---|---:|---:|---:|');
  for (const budget of BUDGETS) {
    for (const mode of MODES.filter((m) => m.startsWith('memex'))) {
      const a = noise.get(`${mode}@${budget}`) ?? { tokens: 0, items: 0 };
      lines.push(`| ${mode} | ${budget} | ${Math.round(a.tokens / Math.max(1, adversarial))} | ${(a.items / Math.max(1, adversarial)).toFixed(1)} |`);
    }
  }
  return lines;
}

async function latency(): Promise<string[]> {
  const dataDir = await mkdtemp(join(tmpdir(), 'memex-bench-context-'));
  const memex = await Memex.open({ dataDir, env: { MEMEX_MODEL_DIR: modelDir, MEMEX_MODEL: model }, onWarning: () => undefined });
  await memex.users.create({ id: 'u' });
  const session = await memex.sessions.create('u');
  const turns = [...new Set(sessions.map((s) => s.conversation))].flatMap((c) => conversationMessages(c)).map(({ role, content }) => ({ role, content }));
  let appended = 0;
  const build = performance.now();
  while (appended < 10_000) {
    const batch = turns.slice(0, Math.min(turns.length, 10_000 - appended));
    await memex.messages.appendMany('u', session.id, batch);
    appended += batch.length;
  }
  await memex.flush();
  await memex.index.prepare('u');
  const seconds = ((performance.now() - build) / 1000).toFixed(0);
  const lines = [
    '',
    `Assembly latency, one session of 10,000 LoCoMo turns (${seconds} s to append and embed); 100 calls each, p50 / p95:`,
    '',
    '| window | budget | first call (summarizes ~10k turns) | summary cached (no new turn) | a new turn before each call (summary extended) |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const budget of [4096, 16384]) {
    for (const memories of [false, true]) {
      // A fresh summary for each row, so the first call shows the cost of summarizing the whole session.
      await memex.summaries.clear('u', session.id);
      const query = 'What did Caroline say about the adoption agency?';
      if (memories) await memex.search('u', query, { k: 1 });
      const first = performance.now();
      await memex.buildContext('u', { sessionId: session.id, budget, ...(memories ? { query } : {}), include: { memories } });
      const firstMs = performance.now() - first;
      const timed = async (appendFirst: boolean): Promise<number[]> => {
        const times: number[] = [];
        for (let i = 0; i < 100; i++) {
          if (appendFirst) {
            await memex.messages.append('u', session.id, turns[i % turns.length] as NewMessage);
            await memex.flush();
          }
          const t = performance.now();
          const { report } = await memex.buildContext('u', { sessionId: session.id, budget, ...(memories ? { query } : {}), include: { memories } });
          times.push(performance.now() - t);
          if (report.tokens > budget - report.reserve) throw new Error('over budget');
        }
        return times.sort((a, b) => a - b);
      };
      const cached = await timed(false);
      const growing = await timed(true);
      const p95 = (times: number[]): string => (times[Math.floor(times.length * 0.95)] as number).toFixed(2);
      lines.push(
        `| ${memories ? 'recent + summary + recall' : 'recent + summary'} | ${budget} | ${firstMs.toFixed(0)} ms | ${median(cached).toFixed(2)} / ${p95(cached)} ms | ${median(growing).toFixed(2)} / ${p95(growing)} ms |`,
      );
    }
  }
  await memex.close();
  await rm(dataDir, { recursive: true, force: true });
  return lines;
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const out = [`${machine()}, ${cpus().length} x ${cpu}, model ${model}`, '', ...(process.argv.includes('--latency-only') ? [] : await evidence()), ...(process.argv.includes('--evidence-only') ? [] : await latency())];
console.log(out.join('\n'));
