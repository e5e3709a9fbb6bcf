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

  /**
   * Every chunk that shares a term with the query and that `accept` lets through, best first, at
   * most `limit`: MiniSearch's BM25+ ranking, computed here over its postings (`scoreQuery`) rather
   * than by its `search`, which builds a result object for every matching chunk and sorts them all.
   */
  search(query: string, limit: number, accept?: (label: number) => boolean): LexicalHit[] {
    return scoreQuery(this.search_ as unknown as MiniSearchInternals, analyze(query, this.bm25), this.bm25, limit, accept);
  }

  /** The same ranking through MiniSearch's own `search`: the reference `search` is tested against. */
  searchWithMiniSearch(query: string, limit: number, accept?: (label: number) => boolean): LexicalHit[] {
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
    const internals = this.search_ as unknown as MiniSearchInternals;
    let df = 0;
    for (const postings of internals._index.get(term)?.values() ?? []) df += liveCount(internals, postings);
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

/** The parts of MiniSearch's state its scoring reads (version 7; one field, `text`). */
interface MiniSearchInternals {
  _index: { get(term: string): Map<number, Map<number, number>> | undefined };
  _documentIds: Map<number, unknown>;
  _fieldIds: Record<string, number>;
  _fieldLength: Map<number, number[]>;
  _avgFieldLength: number[];
  _documentCount: number;
  /** Chunks discarded since the last vacuum: until it is 0, postings may still name them. */
  _dirtCount: number;
  /** One past the largest short id given out. */
  _nextId: number;
}

/**
 * MiniSearch's OR query, scored as it scores it: for each query term in order (a repeated term
 * counts again), each live chunk holding it adds BM25+ of its count, the term's live document
 * frequency, the chunk's field length and the average; the sum is multiplied by how many distinct
 * query terms the chunk holds; ties keep the order chunks were first met in (term by term, in
 * posting order), as MiniSearch's stable sort does. The same additions in the same order, so the
 * same floating-point scores. One difference: a term's postings still holding chunks that were
 * removed (discarded, not yet vacuumed) count only live chunks in its document frequency, where
 * MiniSearch's first search after the removal counts some of the removed ones too.
 */
function scoreQuery(index: MiniSearchInternals, terms: readonly string[], bm25: Pick<Bm25Params, 'k' | 'b' | 'd'>, limit: number, accept?: (label: number) => boolean): LexicalHit[] {
  if (limit <= 0 || terms.length === 0) return [];
  const fieldId = index._fieldIds.text as number;
  const average = index._avgFieldLength[fieldId] as number;
  const total = index._documentCount;
  const { k, b, d } = bm25;
  const scratch = scratchFor(index._nextId);
  // Chunks in the order first met; their sums and distinct-term counts live in the scratch arrays.
  const met: number[] = [];
  const seenTerms = new Set<string>();
  try {
    for (const term of terms) {
      const postings = index._index.get(term)?.get(fieldId);
      if (!postings) continue;
      const repeat = seenTerms.has(term);
      seenTerms.add(term);
      const live = liveCount(index, postings);
      const idf = Math.log(1 + (total - live + 0.5) / (live + 0.5));
      for (const [id, count] of postings) {
        const state = scratch.state[id];
        if (state === REFUSED) continue;
        if (state === UNSEEN) {
          const label = index._documentIds.get(id);
          if (label === undefined || (accept && !accept(label as number))) {
            scratch.state[id] = REFUSED;
            met.push(id);
            continue;
          }
          scratch.state[id] = SCORED;
          met.push(id);
        }
        const length = (index._fieldLength.get(id) as number[])[fieldId] as number;
        scratch.score[id] = (scratch.score[id] as number) + idf * (d + (count * (k + 1)) / (count + k * (1 - b + (b * length) / average)));
        if (!repeat) scratch.matched[id] = (scratch.matched[id] as number) + 1;
      }
    }
    const hits: { id: number; score: number; order: number }[] = [];
    met.forEach((id, order) => {
      if (scratch.state[id] === SCORED) hits.push({ id, score: (scratch.score[id] as number) * ((scratch.matched[id] as number) || 1), order });
    });
    hits.sort((x, y) => y.score - x.score || x.order - y.order);
    return hits.slice(0, limit).map((hit) => ({ label: index._documentIds.get(hit.id) as number, score: hit.score }));
  } finally {
    for (const id of met) {
      scratch.state[id] = UNSEEN;
      scratch.score[id] = 0;
      scratch.matched[id] = 0;
    }
  }
}

/** How many live chunks a term's postings name: all of them, unless chunks were discarded since the last vacuum. */
function liveCount(index: MiniSearchInternals, postings: Map<number, number>): number {
  if (index._dirtCount === 0) return postings.size;
  let live = 0;
  for (const id of postings.keys()) if (index._documentIds.has(id)) live++;
  return live;
}

const UNSEEN = 0;
const SCORED = 1;
const REFUSED = 2;
/** Per-chunk sums for one query at a time (scoring is synchronous), by MiniSearch's short id; left zeroed. */
let scratch = { state: new Uint8Array(0), score: new Float64Array(0), matched: new Uint32Array(0) };
function scratchFor(ids: number): typeof scratch {
  if (scratch.state.length < ids) {
    const size = Math.max(ids, scratch.state.length * 2, 1024);
    scratch = { state: new Uint8Array(size), score: new Float64Array(size), matched: new Uint32Array(size) };
  }
  return scratch;
}
