import type { ParsedSearchOptions } from '../core/index.js';
import type { SearchSettings } from './backend.js';
import { dot } from './vector-index.js';

/**
 * One chunk as the two rankings saw it, before fusion. `ref` is the backend's handle on the row (a
 * label on flat files, the SQL row on Postgres); `order` breaks ties between equal scores, so the
 * result order never depends on hash-map or query-plan order.
 */
export interface Candidate<R> {
  ref: R;
  order: number;
  /** Cosine to the query, and 1-based rank in the vector list; null when not in it. */
  vector: number | null;
  vectorRank: number | null;
  /**
   * Cosine of the query to the chunk read with the turn before it (turn-context.ts), and 1-based
   * rank in that list; null when not in it (or when the chunk's session gives no context).
   */
  context: number | null;
  contextRank: number | null;
  /** Lexical score and 1-based rank in the lexical list; null when not in it. */
  lexical: number | null;
  lexicalRank: number | null;
  /** The lexical score as a share of the query's ideal one (`lexicalRelevance`); 0 when not in the list. */
  lexicalRelevance: number;
  /** When the chunk's message was written (ms since the epoch); NaN for a file chunk. */
  createdAt: number;
  /** Filled in by `rank`. */
  score: number;
  recency: number;
  /** How well the chunk answers the query, comparable across queries (see `relevance`); filled in by `rank`. */
  relevance: number;
}

/** Ranked lists in, one candidate per chunk out: what both backends feed to `rank`. */
export class CandidateSet<K extends string | number, R> {
  private readonly byKey = new Map<K, Candidate<R>>();

  constructor(private readonly describe: (key: K) => { ref: R; order: number; createdAt: number }) {}

  /** The vector list, best first (rank 1 is the first). */
  addVector(hits: Iterable<{ key: K; score: number }>): void {
    this.addList(hits, (candidate, score, rank) => {
      candidate.vector = score;
      candidate.vectorRank = rank;
    });
  }

  /** The contextual list (turn-context.ts), best first. */
  addContext(hits: Iterable<{ key: K; score: number }>): void {
    this.addList(hits, (candidate, score, rank) => {
      candidate.context = score;
      candidate.contextRank = rank;
    });
  }

  /** The lexical list, best first, and the query's ideal lexical score (lexical.ts `idealScore`). */
  addLexical(hits: Iterable<{ key: K; score: number }>, ideal: number): void {
    this.addList(hits, (candidate, score, rank) => {
      candidate.lexical = score;
      candidate.lexicalRelevance = lexicalRelevance(score, ideal);
      candidate.lexicalRank = rank;
    });
  }

  values(): Candidate<R>[] {
    return [...this.byKey.values()];
  }

  private addList(hits: Iterable<{ key: K; score: number }>, record: (candidate: Candidate<R>, score: number, rank: number) => void): void {
    let rank = 0;
    for (const hit of hits) record(this.entry(hit.key), hit.score, ++rank);
  }

  private entry(key: K): Candidate<R> {
    let candidate = this.byKey.get(key);
    if (!candidate) {
      const { ref, order, createdAt } = this.describe(key);
      candidate = { ref, order, vector: null, vectorRank: null, context: null, contextRank: null, lexical: null, lexicalRank: null, lexicalRelevance: 0, createdAt, score: 0, recency: 1, relevance: 0 };
      this.byKey.set(key, candidate);
    }
    return candidate;
  }
}

/**
 * A lexical score in [0, 1], comparable across queries: the square root of the score over the
 * query's ideal one (a chunk holding every query term once at average length, lexical.ts
 * `idealScore`), capped at 1. BM25+ sums the matched terms' idf and multiplies by how many distinct
 * terms matched, so a chunk holding half of the query's idf mass (equal idfs) scores a quarter of
 * the ideal: the root reads as that share, 0.5. A chunk that matches only a common name of a long
 * question scores near 0 however it ranks; one holding the rare words of the question, near 1.
 */
export function lexicalRelevance(score: number, ideal: number): number {
  return ideal > 0 && score > 0 ? Math.min(1, Math.sqrt(score / ideal)) : 0;
}

/**
 * How deep each ranking is read: the config's `candidates`, at least `k`, and with MMR four times
 * `k` so the diversity re-ranking has something to choose from.
 */
export function candidateDepth(options: ParsedSearchOptions, settings: Pick<SearchSettings, 'candidates'>): number {
  return Math.max(options.k, settings.candidates, options.mmr ? options.k * 4 : 0);
}

/**
 * The relevance floor, for what only the vector search found: a candidate that shares a word with
 * the query (a lexical match) is kept on that evidence; one found by meaning alone goes when its
 * cosine to the query is below `minScore` (the better of its own cosine and its contextual one: a
 * chunk found through the turn before it is judged by that). The vector list is ordered by cosine,
 * so when fewer than `k` of it pass, no row beyond its depth would have.
 */
function dropBelow<R>(candidates: Candidate<R>[], minScore: number): Candidate<R>[] {
  return candidates.filter((candidate) => candidate.lexical !== null || Math.max(candidate.vector ?? -Infinity, candidate.context ?? -Infinity) >= minScore);
}

/**
 * The relevance floor on every candidate (`minRelevance`): a candidate below it goes, unless it is
 * the query's only lexical match, which is kept on that evidence: a floor must not turn a query that
 * names one thing said once into a query that finds nothing.
 */
function dropIrrelevant<R>(candidates: Candidate<R>[], minRelevance: number): Candidate<R>[] {
  let matches = 0;
  for (const candidate of candidates) if (candidate.lexical !== null) matches++;
  return candidates.filter((candidate) => candidate.relevance >= minRelevance || (matches === 1 && candidate.lexical !== null));
}

/**
 * A cosine in [0, 1], comparable across queries: its place between what unrelated text scores with
 * the model (`unrelated`, search.unrelatedCosine) and 1. Below `unrelated` it is 0.
 */
export function vectorRelevance(cosine: number, unrelated: number): number {
  return Math.min(1, Math.max(0, (cosine - unrelated) / (1 - unrelated)));
}

/** A candidate's relevance (SearchHit `relevance`): the best of the lists' evidence (the contextual cosine read as a cosine). */
export function relevance(candidate: Pick<Candidate<unknown>, 'lexicalRelevance' | 'vector' | 'context'>, unrelated: number): number {
  const cosine = Math.max(candidate.vector ?? -Infinity, candidate.context ?? -Infinity);
  return Math.max(candidate.lexicalRelevance, cosine === -Infinity ? 0 : vectorRelevance(cosine, unrelated));
}

/**
 * Scores and orders the candidates: the floors, then the score of the mode (cosine for `vector`, the
 * lexical score for `lexical`, weighted reciprocal rank fusion of the vector, contextual and lexical
 * lists for `hybrid`), then recency, best
 * first, ties by `order`.
 */
export function rank<R>(
  candidates: Candidate<R>[],
  options: ParsedSearchOptions,
  settings: Pick<SearchSettings, 'rrfK' | 'vectorWeight' | 'lexicalWeight' | 'contextWeight' | 'unrelatedCosine'>,
): Candidate<R>[] {
  const { mode } = options;
  for (const candidate of candidates) candidate.relevance = relevance(candidate, settings.unrelatedCosine);
  let kept = options.minScore !== undefined ? dropBelow(candidates, options.minScore) : candidates;
  if (options.minRelevance !== undefined) kept = dropIrrelevant(kept, options.minRelevance);
  const rrfK = options.rrfK ?? settings.rrfK;
  const vectorWeight = options.vectorWeight ?? settings.vectorWeight;
  const lexicalWeight = options.lexicalWeight ?? settings.lexicalWeight;
  const contextWeight = options.contextWeight ?? settings.contextWeight;
  const now = options.recency?.now ? Date.parse(options.recency.now) : Date.now();
  for (const candidate of kept) {
    if (mode === 'vector') candidate.score = candidate.vector ?? 0;
    else if (mode === 'lexical') candidate.score = candidate.lexical ?? 0;
    else {
      candidate.score =
        (candidate.vectorRank ? vectorWeight / (rrfK + candidate.vectorRank) : 0) +
        (candidate.contextRank ? contextWeight / (rrfK + candidate.contextRank) : 0) +
        (candidate.lexicalRank ? lexicalWeight / (rrfK + candidate.lexicalRank) : 0);
    }
    if (options.recency) {
      const { halfLifeDays, weight } = options.recency;
      const ageDays = Number.isNaN(candidate.createdAt) ? Infinity : Math.max(0, now - candidate.createdAt) / 86_400_000;
      candidate.recency = 1 - weight + weight * 0.5 ** (ageDays / halfLifeDays);
      candidate.score *= candidate.recency;
    }
  }
  return kept.sort((a, b) => b.score - a.score || a.order - b.order);
}

/** The ranked candidates MMR chooses among (the rows whose vectors `pick` needs). */
export function mmrPool<R>(ranked: Candidate<R>[], k: number): Candidate<R>[] {
  return ranked.slice(0, Math.max(k * 4, k));
}

/** The final `k`: the top of the ranking, or the MMR choice when asked for. */
export function pick<R>(ranked: Candidate<R>[], options: ParsedSearchOptions, vectorOf: (candidate: Candidate<R>) => Float32Array | null): Candidate<R>[] {
  return options.mmr ? mmr(mmrPool(ranked, options.k), options.k, options.mmr.lambda, vectorOf) : ranked.slice(0, options.k);
}

/**
 * Maximal marginal relevance over the ranked candidates: each pick maximises
 * `lambda * relevance - (1 - lambda) * (highest cosine to a chunk already picked)`, relevance being
 * the score scaled to [0, 1].
 */
function mmr<R>(pool: Candidate<R>[], k: number, lambda: number, vectorOf: (candidate: Candidate<R>) => Float32Array | null): Candidate<R>[] {
  const top = pool[0]?.score ?? 0;
  const vectors = pool.map(vectorOf);
  const closest = new Float64Array(pool.length).fill(-Infinity);
  const picked: Candidate<R>[] = [];
  const used = new Uint8Array(pool.length);
  while (picked.length < Math.min(k, pool.length)) {
    let best = -1;
    let bestValue = -Infinity;
    for (let i = 0; i < pool.length; i++) {
      if (used[i]) continue;
      const relevance = top > 0 ? (pool[i] as Candidate<R>).score / top : 0;
      const redundancy = picked.length === 0 ? 0 : (closest[i] as number);
      const value = lambda * relevance - (1 - lambda) * redundancy;
      if (value > bestValue) {
        bestValue = value;
        best = i;
      }
    }
    used[best] = 1;
    picked.push(pool[best] as Candidate<R>);
    const chosen = vectors[best];
    if (chosen) {
      for (let i = 0; i < pool.length; i++) {
        const other = vectors[i];
        if (!used[i] && other) closest[i] = Math.max(closest[i] as number, dot(chosen, other));
      }
    }
  }
  return picked;
}
