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
 *    And the same on Multi-Session Chat (`--sets locomo,msc`, both by default; `--msc-episodes N`,
 *    100): bench/lib/msc.ts's episodes, persona-fact questions and evidence rule, ten episodes a
 *    user, each MSC session a Memex session of its own (see `mscSet`), each question asked at the
 *    end of the user's latest session. Each variant's window time is reported as wall and CPU time.
 * 2. Assembly latency for a 10,000-message session: p50/p95 of `buildContext` at 4k and 16k budgets,
 *    with the summary cached (calls with no new turn) and with a new turn appended before each call
 *    (the summary is extended by the turn that leaves the window and saved). With memories the
 *    query is one a search just embedded, so its vector comes from the query-vector cache and the
 *    time excludes embedding it, as the target says.
 *
 *   npx tsx bench/context.ts
 *   npx tsx bench/context.ts --evidence-only --memex-only --neighbours 0:0,1:0,1:1,0:1 --data-dir /tmp/context-data [--sets msc]
 *
 * With neighbours, a memory's turns brought from around it count as in the window too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Memex, type ContextWindow, type NewMessage } from '../src/index.js';
import { benchModel, LOCOMO, locomoSessions, machine, median } from './locomo.js';
import { contentWords, loadMsc, MSC } from './lib/msc.js';

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
/** `--search '{"contextWeight": 0}'` overrides the config's `search` section for the whole run. */
const searchArg = process.argv.indexOf('--search');
const searchOverrides = JSON.parse(searchArg >= 0 ? (process.argv[searchArg + 1] ?? '{}') : '{}') as Record<string, unknown>;
/** `--data-dir <dir>` keeps the ingested conversations there and reuses them on the next run. */
const dataDirArg = process.argv.indexOf('--data-dir');
/** `--sets locomo,msc` (both by default); `--msc-episodes N` (100 by default, as bench/quality.ts). */
const setsArg = process.argv.indexOf('--sets');
const SETS = (setsArg >= 0 ? (process.argv[setsArg + 1] ?? '') : 'locomo,msc').split(',').filter((s): s is 'locomo' | 'msc' => s === 'locomo' || s === 'msc');
const episodesArg = process.argv.indexOf('--msc-episodes');
const mscEpisodes = episodesArg >= 0 ? Number(process.argv[episodesArg + 1]) : 100;
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

/**
 * A conversational set as the windows see it: each user's sessions in order (messages with the ids
 * the evidence names), the session the questions are asked at the end of, and the questions.
 */
interface EvidenceSet {
  name: string;
  describe: (questions: number) => string;
  users: { user: string; sessions: { title: string; messages: NewMessage[] }[] }[];
  /** An adversarial question has nothing to find: measured for what recall spends on it. */
  questions: { user: string; text: string; evidence: string[]; adversarial?: boolean; answer?: string }[];
}

function locomoSet(): EvidenceSet {
  const samples = JSON.parse(readFileSync(LOCOMO, 'utf8')) as { sample_id: string; qa: { question: string; answer?: string | number; evidence?: string[]; category: number }[] }[];
  return {
    name: 'LoCoMo',
    describe: (n) => `LoCoMo: ${n} questions with evidence (category 5 excluded), each conversation one session of its ~600 turns, the question asked at its end`,
    users: samples.map((s) => ({ user: s.sample_id, sessions: [{ title: s.sample_id, messages: conversationMessages(s.sample_id) }] })),
    questions: samples.flatMap((s) =>
      s.qa.map((qa) => ({
        user: s.sample_id,
        text: qa.question,
        evidence: (qa.evidence ?? []).flatMap((e) => e.split(/[;\s]+/)).map((id) => id.replace(':', '-')),
        adversarial: qa.category === 5,
        ...(qa.answer !== undefined ? { answer: String(qa.answer) } : {}),
      })),
    ),
  };
}

/**
 * Multi-Session Chat as a chat app holds it: every MSC session is a Memex session of its own (a
 * user opens a new chat each time; nothing carries the earlier chats into the current one but
 * recall), ten episodes (30 sessions, ~370 turns) a user, in order a day apart, Speaker 1 as the
 * user and Speaker 2 as the assistant. The episodes, questions and evidence are bench/lib/msc.ts's,
 * exactly as bench/quality.ts uses them. Every question is asked at the end of the user's latest
 * session; its evidence always lies in an earlier session, so only recall (and neighbours) can
 * bring it, unlike LoCoMo's one long session where the recent turns and summary hold some.
 */
function mscSet(): EvidenceSet | undefined {
  const msc = loadMsc(mscEpisodes, 10);
  if (!msc) {
    console.error(`MSC not found at ${MSC}: skipped.`);
    return undefined;
  }
  const users = new Map<string, EvidenceSet['users'][number]>();
  for (const session of msc.sessions) {
    const entry = users.get(session.user) ?? { user: session.user, sessions: [] };
    users.set(session.user, entry);
    entry.sessions.push({
      title: session.title,
      messages: session.turns.map((turn, i) => ({
        id: mscId(turn.ref),
        role: turn.content.startsWith('Speaker 1:') ? ('user' as const) : ('assistant' as const),
        content: turn.content,
        // A second apart, sessions a day apart: as bench/quality.ts.
        createdAt: new Date(Date.UTC(2024, 0, 1 + session.day) + i * 1000).toISOString(),
      })),
    });
  }
  return {
    name: 'MSC',
    describe: (n) => `MSC: ${n} persona facts with evidence (${mscEpisodes} episodes, 10 a user, each MSC session its own Memex session), each asked at the end of the user's latest session`,
    users: [...users.values()],
    questions: msc.questions.map((q) => ({ user: q.user, text: q.text, evidence: q.evidence.map(mscId) })),
  };
}

/** `msc-3/1/7` → a message id (ids carry no path separator). */
const mscId = (ref: string): string => ref.replaceAll('/', '-');

/** The user's sessions, created and filled, or the ones a kept data dir already holds (by title). */
async function ingest(memex: Memex, user: EvidenceSet['users'][number]): Promise<{ sessionId: string; history: { id: string }[] }[]> {
  const existing = keptDataDir !== undefined ? await memex.sessions.list(user.user, { limit: 1000 }).catch(() => null) : null;
  if (!existing) await memex.users.create({ id: user.user });
  const out: { sessionId: string; history: { id: string }[] }[] = [];
  for (const { title, messages } of user.sessions) {
    // LoCoMo's kept dirs hold one untitled session a user.
    const reused = existing?.sessions.find((s) => s.title === title) ?? (user.sessions.length === 1 ? existing?.sessions[0] : undefined);
    if (reused) {
      out.push({ sessionId: reused.id, history: (await memex.messages.list(user.user, reused.id, { limit: 1000 })).messages });
      continue;
    }
    const session = await memex.sessions.create(user.user, { title });
    out.push({ sessionId: session.id, history: await memex.messages.appendMany(user.user, session.id, messages) });
  }
  await memex.flush();
  await memex.index.prepare(user.user);
  return out;
}

async function evidence(set: EvidenceSet): Promise<string[]> {
  const dataDir = keptDataDir ?? (await mkdtemp(join(tmpdir(), 'memex-bench-context-')));
  const memex = await Memex.open({ dataDir, env: { MEMEX_MODEL_DIR: modelDir, MEMEX_MODEL: model }, config: { search: searchOverrides }, onWarning: () => undefined });
  const scores = new Map<string, number[]>();
  /** The share of the answer's content words the window's text holds: a check that what counts as evidence in the window still says the answer. */
  const answers = new Map<string, number[]>();
  const parts = new Map<string, { recent: number; summary: number; memories: number; tokens: number }>();
  const times = new Map<string, number[]>();
  // Process CPU time per window too: on a machine shared with other work, wall time mostly measures the queue.
  const cpuTimes = new Map<string, number[]>();
  const noise = new Map<string, { tokens: number; items: number }>();
  let questions = 0;
  let adversarial = 0;
  const started = performance.now();
  for (const user of set.users) {
    const sessionsOfUser = await ingest(memex, user);
    const { sessionId, history } = sessionsOfUser[sessionsOfUser.length - 1] as { sessionId: string; history: { id: string }[] };
    const known = new Set<string>(sessionsOfUser.flatMap((s) => s.history.map((m) => m.id)));
    const conversation = user.user;
    for (const qa of set.questions.filter((q) => q.user === conversation)) {
      if (qa.adversarial === true) {
        adversarial++;
        for (const budget of BUDGETS) {
          for (const mode of MODES.filter((m) => m.startsWith('memex'))) {
            const floor = floorOf.get(mode);
            const window = await memex.buildContext(conversation, {
              sessionId,
              budget,
              query: qa.text,
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
      const refs = qa.evidence.filter((id) => known.has(id));
      if (refs.length === 0) continue;
      questions++;
      // The query's vector is cached first, so the first variant's window time does not include embedding it.
      await memex.search(conversation, qa.text, { k: 1 });
      for (const budget of BUDGETS) {
        for (const mode of MODES) {
          const cpu = process.cpuUsage();
          const window = await memex.buildContext(conversation, {
            sessionId,
            budget,
            query: qa.text,
            include: { notes: false, memories: mode.startsWith('memex'), summary: mode !== 'recent' },
            ...(floorOf.get(mode) !== undefined ? { minScore: floorOf.get(mode) } : {}),
            ...neighbourOption(mode),
          });
          const used = process.cpuUsage(cpu);
          const shown = inWindow(window, history);
          const key = `${mode}@${budget}`;
          const list = scores.get(key) ?? [];
          list.push(refs.filter((id) => shown.has(id)).length / refs.length);
          scores.set(key, list);
          const wanted = contentWords(qa.answer ?? '');
          if (wanted.size > 0) {
            const said = contentWords(window.messages.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n'));
            const a = answers.get(key) ?? [];
            a.push([...wanted].filter((w) => said.has(w)).length / wanted.size);
            answers.set(key, a);
          }
          const p = parts.get(key) ?? { recent: 0, summary: 0, memories: 0, tokens: 0 };
          p.recent += window.report.parts.recent.tokens;
          p.summary += window.report.parts.summary.tokens;
          p.memories += window.report.parts.memories.tokens;
          p.tokens += window.report.tokens;
          parts.set(key, p);
          const t = times.get(key) ?? [];
          t.push(window.report.ms);
          times.set(key, t);
          const c = cpuTimes.get(key) ?? [];
          c.push((used.user + used.system) / 1000);
          cpuTimes.set(key, c);
        }
      }
    }
    process.stderr.write(`\r${set.name} ${conversation}: ${known.size} turns, ${questions} questions so far (${((performance.now() - started) / 1000).toFixed(0)} s)   `);
  }
  process.stderr.write('\n');
  await memex.close();
  if (keptDataDir === undefined) await rm(dataDir, { recursive: true, force: true });
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const lines = [
    '',
    `${set.describe(questions)}; reply reserve 512 tokens, o200k_base. Window ms: p50 of the report's assembly time over the same calls, and of the process CPU time each call took.`,
    '',
    '| window | budget | evidence in window | answer words in window | vs recent only | recent / summary / memories tokens (mean) | window ms p50 | CPU ms p50 |',
    '|---|---:|---:|---:|---:|---|---:|---:|',
  ];
  for (const budget of BUDGETS) {
    const base = (scores.get(`recent@${budget}`) ?? []).length > 0 ? mean(scores.get(`recent@${budget}`) ?? []) : 0;
    for (const mode of MODES) {
      const key = `${mode}@${budget}`;
      const share = mean(scores.get(key) ?? []);
      const p = parts.get(key) as { recent: number; summary: number; memories: number; tokens: number };
      const n = (scores.get(key) ?? []).length;
      const name = mode.startsWith('memex') ? `Memex (recent + summary + recall)${mode === 'memex' ? '' : `, ${mode.slice('memex, '.length)}`}` : mode === 'recent' ? 'recent turns only (baseline)' : 'recent + summary, no recall (baseline)';
      lines.push(
        `| ${name} | ${budget} | ${(share * 100).toFixed(1)}% | ${answers.has(key) ? `${(mean(answers.get(key) ?? []) * 100).toFixed(1)}%` : '-'} | ${base > 0 ? `${(share / base).toFixed(2)}x` : '-'} | ${Math.round(p.recent / n)} / ${Math.round(p.summary / n)} / ${Math.round(p.memories / n)} | ${median(times.get(key) ?? [0]).toFixed(2)} | ${median(cpuTimes.get(key) ?? [0]).toFixed(2)} |`,
      );
    }
  }
  if (adversarial > 0) {
    lines.push('', `Adversarial questions (category 5, ${adversarial}: about things the conversation never says): what recall spends on them, mean per window.`, '', '| window | budget | memory tokens | memories |', '|---|---:|---:|---:|');
    for (const budget of BUDGETS) {
      for (const mode of MODES.filter((m) => m.startsWith('memex'))) {
        const a = noise.get(`${mode}@${budget}`) ?? { tokens: 0, items: 0 };
        lines.push(`| ${mode} | ${budget} | ${Math.round(a.tokens / Math.max(1, adversarial))} | ${(a.items / Math.max(1, adversarial)).toFixed(1)} |`);
      }
    }
  }
  return lines;
}

async function latency(): Promise<string[]> {
  const dataDir = await mkdtemp(join(tmpdir(), 'memex-bench-context-'));
  const memex = await Memex.open({ dataDir, env: { MEMEX_MODEL_DIR: modelDir, MEMEX_MODEL: model }, config: { search: searchOverrides }, onWarning: () => undefined });
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
  // With `--neighbours`, the recall rows are measured for each count (the same session and query).
  const rows = [{ memories: false, around: undefined as Neighbours }, ...NEIGHBOURS.map((around) => ({ memories: true, around }))];
  for (const budget of [4096, 16384]) {
    for (const { memories, around } of rows) {
      const aroundOption = around ? { neighbours: around } : {};
      // A fresh summary for each row, so the first call shows the cost of summarizing the whole session.
      await memex.summaries.clear('u', session.id);
      const query = 'What did Caroline say about the adoption agency?';
      if (memories) await memex.search('u', query, { k: 1 });
      const first = performance.now();
      await memex.buildContext('u', { sessionId: session.id, budget, ...(memories ? { query } : {}), include: { memories }, ...aroundOption });
      const firstMs = performance.now() - first;
      const timed = async (appendFirst: boolean): Promise<number[]> => {
        const times: number[] = [];
        for (let i = 0; i < 100; i++) {
          if (appendFirst) {
            await memex.messages.append('u', session.id, turns[i % turns.length] as NewMessage);
            await memex.flush();
          }
          const t = performance.now();
          const { report } = await memex.buildContext('u', { sessionId: session.id, budget, ...(memories ? { query } : {}), include: { memories }, ...aroundOption });
          times.push(performance.now() - t);
          if (report.tokens > budget - report.reserve) throw new Error('over budget');
        }
        return times.sort((a, b) => a - b);
      };
      const cached = await timed(false);
      const growing = await timed(true);
      const p95 = (times: number[]): string => (times[Math.floor(times.length * 0.95)] as number).toFixed(2);
      lines.push(
        `| ${memories ? `recent + summary + recall${around ? `, neighbours ${around.before}:${around.after}` : ''}` : 'recent + summary'} | ${budget} | ${firstMs.toFixed(0)} ms | ${median(cached).toFixed(2)} / ${p95(cached)} ms | ${median(growing).toFixed(2)} / ${p95(growing)} ms |`,
      );
    }
  }
  await memex.close();
  await rm(dataDir, { recursive: true, force: true });
  return lines;
}

async function evidenceOnSets(): Promise<string[]> {
  const out: string[] = [];
  for (const name of SETS) {
    const set = name === 'locomo' ? locomoSet() : mscSet();
    if (set) out.push(...(await evidence(set)));
  }
  return out;
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const out = [`${machine()}, ${cpus().length} x ${cpu}, model ${model}`, '', ...(process.argv.includes('--latency-only') ? [] : await evidenceOnSets()), ...(process.argv.includes('--evidence-only') ? [] : await latency())];
console.log(out.join('\n'));
