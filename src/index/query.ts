import { analyze, processTerm, tokenize, type ParsedSearchOptions, type TermAnalysis } from '../core/index.js';
import type { SearchHit } from './backend.js';
import type { Candidate } from './fuse.js';
import { findDates, inRanges, type TimeRange } from './query-dates.js';

export { findDates, inRanges, type TimeRange, type QueryDates } from './query-dates.js';

/**
 * Query understanding: what `Recall` does to a query before the backends rank it. Each part is a
 * switch of the search options' `understand` (SearchOptionsSchema, where each is described); the
 * defaults below are the ones bench/quality.ts measured as helping (or not hurting) LoCoMo, MSC and
 * MS MARCO together. Derived from the schema, so a switch the schema takes is one the defaults set.
 */
type UnderstandInput = Omit<NonNullable<ParsedSearchOptions['understand']>, 'now'>;
export type Understanding = { [K in keyof UnderstandInput]-?: Exclude<UnderstandInput[K], undefined> };

/**
 * Measured with bench/quality.ts --understand-grid (README "Search / Query understanding"): the
 * date boost and the speaker boost each raise LoCoMo and leave MSC and MS MARCO as they were, at
 * every weight and slack of their grid; stripping the date words, the date filter and dropping
 * names each cost LoCoMo or MSC, so they stay off. Pseudo-relevance feedback raises MS MARCO's
 * nDCG@10 and costs LoCoMo and MSC: it runs where the search's top hits are documents (file chunks,
 * or sessions that are not conversations: turn-context.ts), which leaves both chat sets as they were.
 * Embedding the question with and without its scaffolding and taking the mean (`questionWords:
 * 'both'`) raises every LoCoMo category a little and leaves MSC (no question among its queries) and
 * MS MARCO as they were (`--question-grid`, README), but the second text in the query's model call
 * costs a chat turn 1.8 ms (paired A/B), which chat's 15 ms budget cannot spare: it stays opt-in.
 */
export const DEFAULT_UNDERSTANDING: Understanding = {
  dates: 'boost',
  // Date words match any message that names a month.
  stripDates: false,
  dateWeight: 0.5,
  // People tell of a thing after it happened.
  dateSlackDays: 7,
  // Where the hits are documents, not conversations: it raises MS MARCO and would cost LoCoMo and MSC.
  feedback: 'documents',
  // RM3's usual ten feedback documents.
  feedbackDocs: 10,
  feedbackTerms: 5,
  names: 'keep',
  speakers: 'boost',
  speakerWeight: 0.5,
  speakerDepth: 2,
  questionWords: 'keep',
};

const DAY = 86_400_000;

/** What the backends receive besides the query text: ranges whose chunks rank higher. */
export interface TimeBoost {
  ranges: TimeRange[];
  /** Score multiplier for a chunk in range. */
  factor: number;
  /** ms a range reaches past its end. */
  slack: number;
}

export interface UnderstoodQuery {
  /** The text the lexical side searches. */
  lexical: string;
  /** Options with a date filter applied (`dates: 'filter'`), else the caller's. */
  options: ParsedSearchOptions;
  boost: TimeBoost | null;
  settings: Understanding;
  /** The texts the vector side embeds (one or two); the query vector is the mean of their rows. */
  vectorTexts: string[];
}

/** The understanding the options ask for: their `understand` over the defaults. */
export function understandingOf(options: ParsedSearchOptions): Understanding {
  const asked = options.understand ?? {};
  const settings = { ...DEFAULT_UNDERSTANDING };
  for (const [key, value] of Object.entries(asked)) if (value !== undefined && key in settings) (settings as Record<string, unknown>)[key] = value;
  return settings;
}

/**
 * Reads the query: its dates (against `understand.now`, else `recency.now`, else the clock) and
 * its names, into the lexical text, a boost or a filter.
 */
export function understand(query: string, options: ParsedSearchOptions): UnderstoodQuery {
  const settings = understandingOf(options);
  let lexical = query;
  let boost: TimeBoost | null = null;
  let filtered = options;
  if (settings.dates !== 'off') {
    const nowText = options.understand?.now ?? options.recency?.now;
    const now = nowText ? Date.parse(nowText) : Date.now();
    const { ranges, rest } = findDates(query, now);
    if (ranges.length > 0) {
      if (settings.stripDates) lexical = rest;
      const slack = settings.dateSlackDays * DAY;
      if (settings.dates === 'boost') boost = { ranges, factor: 1 + settings.dateWeight, slack };
      else filtered = withinRanges(options, ranges, slack);
    }
  }
  if (settings.names === 'drop') lexical = withoutNames(lexical);
  return { lexical, options: filtered, boost, settings, vectorTexts: vectorTexts(query, settings) };
}

/** The texts the vector side embeds for `query` under `settings` (`questionWords`), distinct. */
export function vectorTexts(query: string, settings: Pick<Understanding, 'questionWords'>): string[] {
  if (settings.questionWords === 'keep') return [query];
  const core = questionCore(query);
  if (settings.questionWords === 'strip' || core === query) return [core];
  return [query, core];
}

const WH = String.raw`(?:what|which|who|whom|whose|when|where|why|how)(?:\s+(?:many|much|long|often|old|far|soon))?`;
const AUX = String.raw`(?:do|does|did|is|are|was|were|am|has|have|had|can|could|will|would|should)(?:n['’]t|\s+not)?`;
const LEADING = new RegExp(String.raw`^\s*(?:${WH}(?:['’]s)?\s+(?:${AUX}\s+)*|${AUX}\s+)`, 'iu');
const DO_SUPPORT = /\b(?:do|does|did)\b\s*/giu;
// A statement may open with a name that is also an auxiliary ("Will"): only a question mark or a question word makes a question.
const IS_QUESTION = new RegExp(String.raw`\?\s*$|^\s*${WH}\b`, 'iu');

/**
 * A question without its scaffolding, for the vector side: the leading question word ("how many"
 * and the like included) and the auxiliaries after it, or a yes/no question's leading auxiliary, a
 * later "do/does/did" (do-support: "How many children does Melanie have?"), and the question mark.
 * What a question asks is in the words that are left; the scaffolding pulls a weak model's vector
 * towards other questions. A text that is no question (a statement, a keyword list) is returned as
 * it is, and so is a question that would be left empty.
 */
export function questionCore(text: string): string {
  if (!IS_QUESTION.test(text)) return text;
  const core = text.replace(LEADING, '').replace(DO_SUPPORT, '').replace(/\s*\?+\s*$/u, '').replace(/\s{2,}/g, ' ').trim();
  return core.length > 0 ? core : text;
}

/** The options narrowed to the span the ranges cover (their hull), inside any after/before the caller gave. */
function withinRanges(options: ParsedSearchOptions, ranges: readonly TimeRange[], slack: number): ParsedSearchOptions {
  const start = Math.min(...ranges.map((r) => r.start));
  const end = Math.max(...ranges.map((r) => r.end)) + slack;
  const after = Math.max(start, options.after ? Date.parse(options.after) : -Infinity);
  const before = Math.min(end, options.before ? Date.parse(options.before) : Infinity);
  return { ...options, after: new Date(after).toISOString(), before: new Date(Math.max(before, after)).toISOString() };
}

/** Capitalised words past the first word of a sentence: names, as far as a question shows them. */
function withoutNames(text: string): string {
  const kept = text.replace(/(?<=[\p{L}\p{N},;:'"]\s+)\p{Lu}[\p{L}'’-]*(?:'s|’s)?/gu, ' ').replace(/\s{2,}/g, ' ').trim();
  return kept.length > 0 ? kept : text;
}

/**
 * Re-ranks candidates already scored by fuse.ts's `rank`: a chunk written in one of the ranges has
 * its score multiplied by the boost's factor. A boost, not a filter: a chunk out of range that the
 * rest of the query favours strongly still ranks. Best first, ties as `rank` broke them.
 */
export function boostInRange<R>(ranked: Candidate<R>[], boost: TimeBoost | null): Candidate<R>[] {
  if (!boost) return ranked;
  for (const candidate of ranked) if (inRanges(candidate.createdAt, boost.ranges, boost.slack)) candidate.score *= boost.factor;
  return ranked.sort((a, b) => b.score - a.score || a.order - b.order);
}

/**
 * Pseudo-relevance feedback (RM3's idea, without a language model): the terms the first pass's top
 * chunks share, each weighted by how much of each chunk it is and how high that chunk ranked. A
 * term must occur in two of the chunks (one chunk's odd word is noise), and the query's own terms
 * and a leading "Speaker:" label (in every chat turn of a speaker, so evidence of nothing) are left
 * out. Returns the second pass's lexical query: the query's terms twice (they stay what matters
 * most; the lexical scorer counts a repeated query term twice) and the expansion once.
 */
export function feedbackQuery(query: string, texts: readonly string[], analysis: TermAnalysis, terms: number): string {
  const own = new Set(analyze(query, analysis));
  if (own.size === 0 || texts.length === 0) return query;
  const weight = new Map<string, number>();
  const seen = new Map<string, number>();
  // The word as written (lowercased) for each term: a stem fed back would be stemmed again.
  const written = new Map<string, string>();
  texts.forEach((text, rank) => {
    const counts = new Map<string, number>();
    let length = 0;
    for (const token of tokenize(text.replace(/^[\p{L}\p{N} ._-]{1,40}:\s/u, ''))) {
      const term = processTerm(token, analysis);
      if (term === null || own.has(term) || /^\d+$/.test(term)) continue;
      length++;
      counts.set(term, (counts.get(term) ?? 0) + 1);
      if (!written.has(term)) written.set(term, token.toLowerCase());
    }
    for (const [term, n] of counts) {
      weight.set(term, (weight.get(term) ?? 0) + n / length / (rank + 1));
      seen.set(term, (seen.get(term) ?? 0) + 1);
    }
  });
  const expansion = [...weight]
    .filter(([term]) => (seen.get(term) ?? 0) >= 2)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, terms)
    .map(([term]) => written.get(term) as string);
  return expansion.length === 0 ? query : `${query} ${query} ${expansion.join(' ')}`;
}

/** The capitalised words of a question, lowercased, possessives cut: the people it may name. */
export function namesIn(query: string): Set<string> {
  return new Set([...query.matchAll(/\p{Lu}[\p{L}\p{M}-]*/gu)].map((m) => m[0].toLowerCase()));
}

/** The speaker a chunk's text opens with ("Melanie: ..."), lowercased; null without a label. */
export function speakerOf(text: string): string | null {
  const match = /^([\p{L}\p{M}-]{1,40})(?: [\p{L}\p{N}-]{1,40})?:\s/u.exec(text);
  return match ? (match[1] as string).toLowerCase() : null;
}

/**
 * Re-ranks hits so the ones spoken by a person the question names come first among near equals:
 * each such hit's score is multiplied by `factor`. Best first; ties keep the order they came in.
 */
export function boostSpeakers(hits: SearchHit[], names: ReadonlySet<string>, factor: number): SearchHit[] {
  if (names.size === 0) return hits;
  return hits
    .map((hit, i) => {
      const speaker = speakerOf(hit.text);
      return { hit: speaker !== null && names.has(speaker) ? { ...hit, score: hit.score * factor } : hit, i };
    })
    .sort((a, b) => b.hit.score - a.hit.score || a.i - b.i)
    .map(({ hit }) => hit);
}
