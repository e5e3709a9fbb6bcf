import MiniSearch, { type AsPlainObject, type Options } from 'minisearch';
import { MemexError, analyze, processTerm, tokenize } from '../core/index.js';

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

interface Doc {
  id: number;
  text: string;
}

function options(bm25: Bm25Params): Options<Doc> {
  const { stopwords, stemming, ...params } = bm25;
  return {
    fields: ['text'],
    storeFields: [],
    // The analysis of core/terms.ts, shared with the Postgres store's chunk terms: split on anything
    // that is not a letter, mark or digit, lowercased, stopwords dropped, stemmed. Chunks and queries alike.
    tokenize,
    processTerm: (term) => processTerm(term, { stopwords, stemming }),
    searchOptions: { bm25: params, combineWith: 'OR' },
  };
}

/**
 * Lexical search over chunk texts: BM25 through MiniSearch, an inverted index kept in memory and
 * saved as a plain object beside the HNSW file. Removal is lazy (MiniSearch `discard`): scores stay
 * right, the space comes back when the whole index is rebuilt by a compaction.
 */
export class LexicalIndex {
  private constructor(
    private readonly search_: MiniSearch<Doc>,
    private readonly bm25: Bm25Params,
  ) {}

  static create(bm25: Bm25Params = DEFAULT_BM25): LexicalIndex {
    return new LexicalIndex(new MiniSearch<Doc>(options(bm25)), bm25);
  }

  static load(saved: unknown, bm25: Bm25Params = DEFAULT_BM25): LexicalIndex {
    try {
      return new LexicalIndex(MiniSearch.loadJS<Doc>(saved as AsPlainObject, options(bm25)), bm25);
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

  /**
   * The score a chunk would get for holding every query term once at average length (see
   * `idealScore`): what `relevance` divides a lexical score by. 0 when the query has no terms.
   */
  ideal(query: string): number {
    const terms = analyze(query, this.bm25);
    const n = this.search_.documentCount;
    return idealScore(
      terms.map((term) => ({ term, df: this.documentFrequency(term) })),
      n,
      this.bm25,
    );
  }

  /**
   * How many live chunks hold `term`. MiniSearch keeps the postings in its protected term index (field
   * id to chunk id to count) and no public count; discarded chunks stay in the postings until they
   * are vacuumed, so they are skipped as MiniSearch's own scoring skips them.
   */
  private documentFrequency(term: string): number {
    const internals = this.search_ as unknown as { _index: { get(term: string): Map<number, Map<number, number>> | undefined }; _documentIds: Map<number, unknown> };
    let df = 0;
    for (const postings of internals._index.get(term)?.values() ?? []) {
      for (const id of postings.keys()) if (internals._documentIds.has(id)) df++;
    }
    return df;
  }
}

/**
 * BM25+'s score (as MiniSearch computes it, the Postgres side too) of a chunk that holds each query
 * term once and is of average length: each term adds `idf * (d + 1)`, and the sum is multiplied by
 * the number of distinct terms. A query's terms, repeats kept; `df` of each; `n` chunks. Terms no
 * chunk holds count in it with the largest idf: what the query asks that nothing here says.
 */
export function idealScore(terms: readonly { term: string; df: number }[], n: number, bm25: Pick<Bm25Params, 'd'>): number {
  if (terms.length === 0 || n === 0) return 0;
  let sum = 0;
  for (const { df } of terms) sum += Math.log(1 + (n - df + 0.5) / (df + 0.5)) * (bm25.d + 1);
  return sum * new Set(terms.map((t) => t.term)).size;
}

