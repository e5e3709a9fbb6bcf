import MiniSearch, { type AsPlainObject, type Options } from 'minisearch';
import { MemexError } from '../core/index.js';
import { stem } from './stem.js';

export interface LexicalHit {
  label: number;
  score: number;
}

/**
 * BM25 parameters (MiniSearch's BM25+). `k` (default 1.2) is how fast repeated terms stop adding
 * score; `b` (default 0.7) how much long chunks are penalised; `d` (default 0.5) the floor every
 * matching term adds. The defaults are the usual ones; on LoCoMo and MS MARCO every `k` from 0.9
 * to 2 and `b` from 0.3 to 0.9 scored within 0.01 of them (bench/quality.ts --grid).
 */
export interface Bm25Params {
  k: number;
  b: number;
  d: number;
  /**
   * Drop common English function words ("what", "did", "the") from chunks and queries. A question
   * is mostly such words, and with them BM25 ranks chunks that share "what did" above the one that
   * shares the topic: LoCoMo recall@10 0.547 without, 0.624 with (bench/quality.ts --grid).
   * Changing it rebuilds the index.
   */
  stopwords: boolean;
  /**
   * Reduce English words to their Porter stem, so "researching" finds "research" and "paintings"
   * finds "painting" (src/index/stem.ts): LoCoMo recall@10 0.584 without, 0.624 with; MS MARCO
   * nDCG@10 0.697 without, 0.746 with (bench/quality.ts --grid). Changing it rebuilds the index.
   */
  stemming: boolean;
}

export const DEFAULT_BM25: Bm25Params = { k: 1.2, b: 0.7, d: 0.5, stopwords: true, stemming: true };

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

interface Doc {
  id: number;
  text: string;
}

/** Where a text splits into terms: anything that is not a letter, mark or digit. */
const TERM_SEPARATOR = /[^\p{L}\p{M}\p{N}]+/u;

/**
 * A query's distinct lowercased terms, split as the BM25 index splits chunks, stopwords dropped
 * when asked, unstemmed: what the Postgres search ORs together (its lexemes are unstemmed too).
 * Each term is letters, marks and digits only, so it can be quoted into a tsquery as it is.
 */
export function queryTerms(text: string, options: { stopwords: boolean; limit?: number }): string[] {
  const terms = new Set<string>();
  for (const term of text.split(TERM_SEPARATOR)) {
    const lower = term.toLowerCase();
    if (lower.length === 0 || (options.stopwords && STOPWORDS.has(lower))) continue;
    terms.add(lower);
    if (terms.size >= (options.limit ?? 256)) break;
  }
  return [...terms];
}

function options(bm25: Bm25Params): Options<Doc> {
  const { stopwords, stemming, ...params } = bm25;
  return {
    fields: ['text'],
    storeFields: [],
    // Terms are lowercased and split on anything that is not a letter, mark or digit (MiniSearch's
    // default splits on punctuation and spaces only, which leaves "it's" and "2023," whole). Stopwords
    // are dropped before stemming, so the list needs no stemmed forms. Chunks and queries alike.
    tokenize: (text) => text.split(TERM_SEPARATOR),
    processTerm: (term) => {
      const lower = term.toLowerCase();
      if (lower.length === 0 || (stopwords && STOPWORDS.has(lower))) return null;
      return stemming ? stem(lower) : lower;
    },
    searchOptions: { bm25: params, combineWith: 'OR' },
  };
}

/**
 * Lexical search over chunk texts: BM25 through MiniSearch, an inverted index kept in memory and
 * saved as a plain object beside the HNSW file. Removal is lazy (MiniSearch `discard`): scores stay
 * right, the space comes back when the whole index is rebuilt by a compaction.
 */
export class LexicalIndex {
  private constructor(private readonly search_: MiniSearch<Doc>) {}

  static create(bm25: Bm25Params = DEFAULT_BM25): LexicalIndex {
    return new LexicalIndex(new MiniSearch<Doc>(options(bm25)));
  }

  static load(saved: unknown, bm25: Bm25Params = DEFAULT_BM25): LexicalIndex {
    try {
      return new LexicalIndex(MiniSearch.loadJS<Doc>(saved as AsPlainObject, options(bm25)));
    } catch (cause) {
      throw new MemexError('MEMEX_INDEX_CORRUPT', `the lexical index cannot be loaded: ${(cause as Error).message}`, { cause });
    }
  }

  toJSON(): AsPlainObject {
    return this.search_.toJSON();
  }

  get size(): number {
    return this.search_.documentCount;
  }

  add(label: number, text: string): void {
    this.search_.add({ id: label, text });
  }

  remove(label: number): void {
    if (this.search_.has(label)) this.search_.discard(label);
  }

  /** Every chunk that shares a term with the query and that `accept` lets through, best first, at most `limit`. */
  search(query: string, limit: number, accept?: (label: number) => boolean): LexicalHit[] {
    const hits = this.search_.search(query, accept ? { filter: (result) => accept(result.id as number) } : {});
    const result: LexicalHit[] = [];
    for (const hit of hits) {
      if (result.length >= limit) break;
      result.push({ label: hit.id as number, score: hit.score });
    }
    return result;
  }
}
