import { stem } from './stem.js';

/**
 * How chunk and query texts become BM25 terms: one analysis for the flat files' MiniSearch index
 * (src/index/lexical.ts) and the Postgres store, which writes each chunk's terms as it inserts it, so
 * both backends rank by the same function of the same terms.
 */
export interface TermAnalysis {
  /** Drop common English function words (search.stopwords). */
  stopwords: boolean;
  /** Porter-stem the terms (search.stemming). */
  stemming: boolean;
}

/** A short, conventional English stopword list (Lucene's and NLTK's function words). */
const STOPWORDS = new Set(
  (
    'a about above after again against all am an and any are as at be because been before being below between both but by can could did do does ' +
    'doing down during each few for from further had has have having he her here hers herself him himself his how i if in into is it its itself ' +
    "just me more most my myself no nor not now of off on once only or other our ours ourselves out over own same she should so some such than " +
    'that the their theirs them themselves then there these they this those through to too under until up very was we were what when where which ' +
    'while who whom why will with would you your yours yourself yourselves s t d ll m re ve'
  ).split(' '),
);

/** Where a text splits into terms: anything that is not a letter, mark or digit. */
const TERM_SEPARATOR = /[^\p{L}\p{M}\p{N}]+/u;

/** A text's raw tokens, before `processTerm` (empty strings where the text starts or ends with a separator). */
export function tokenize(text: string): string[] {
  return text.split(TERM_SEPARATOR);
}

/**
 * One raw token as a term: lowercased, null when empty or a stopword (dropped before stemming, so
 * the list needs no stemmed forms), then stemmed when asked.
 */
export function processTerm(token: string, analysis: TermAnalysis): string | null {
  const lower = token.toLowerCase();
  if (lower.length === 0 || (analysis.stopwords && STOPWORDS.has(lower))) return null;
  return analysis.stemming ? stem(lower) : lower;
}

/** A text's terms in order, repeats kept (a repeated query term counts twice, as in MiniSearch). */
export function analyze(text: string, analysis: TermAnalysis): string[] {
  const terms: string[] = [];
  for (const token of tokenize(text)) {
    const term = processTerm(token, analysis);
    if (term !== null) terms.push(term);
  }
  return terms;
}

/**
 * A chunk as BM25 sees it: how often each term occurs, and its length. The length is MiniSearch's
 * field length, the number of DISTINCT RAW tokens (stopwords, case and the empty edge tokens
 * included), not the number of terms; the Postgres side stores this same number so that both
 * normalise by the same length.
 */
export function termCounts(text: string, analysis: TermAnalysis): { counts: Map<string, number>; length: number } {
  const tokens = tokenize(text);
  const counts = new Map<string, number>();
  for (const token of tokens) {
    const term = processTerm(token, analysis);
    if (term !== null) counts.set(term, (counts.get(term) ?? 0) + 1);
  }
  return { counts, length: new Set(tokens).size };
}
