import { compileWhere, importedSessionParts, isMemexError, type Metadata, type ParsedSearchOptions } from '../../core/index.js';
import type { Store } from '../../store/index.js';
import { KIND_CODES, ORIGIN_CODES, ROLE_CODES, type UserIndex } from './user-index.js';
import type { Neighbor } from '../vector-index.js';
import type { SearchHit, SearchQuery, SearchReport, SearchSettings } from '../backend.js';
import { CandidateSet, candidateDepth, pick, rank, type Candidate } from '../fuse.js';
import { boostInRange } from '../query.js';
import { contextList, type ContextRow } from '../turn-context.js';

/**
 * Ranks one user's chunks for a query. The index holds only this user's rows, so nothing of another
 * user can be returned; filters narrow further. Vector candidates come from the HNSW graph, or from
 * an exact scan when the filters leave at most `exactBelow` rows (or the graph came back short), so a
 * vector or hybrid search returns `k` hits whenever `k` rows match.
 */
export async function searchIndex(
  index: UserIndex,
  store: Store,
  userId: string,
  input: Pick<SearchQuery, 'text' | 'vector' | 'boost'>,
  options: ParsedSearchOptions,
  settings: SearchSettings,
): Promise<SearchReport> {
  const { mode } = options;
  const accept = filterOf(index, options);
  const matching = accept ? countMatching(index, accept, options) : { count: index.size, labels: null };
  const depth = candidateDepth(options, settings);
  const { time } = index.columns();
  const candidates = new CandidateSet<number, number>((label) => ({ ref: label, order: label, createdAt: time[label] as number }));

  let vectorPath: SearchReport['vectorPath'] = 'none';
  if (mode !== 'lexical' && input.vector && matching.count > 0) {
    const want = Math.min(depth, matching.count);
    let neighbors: Neighbor[];
    if (accept && matching.count <= settings.exactBelow) {
      neighbors = index.exact(input.vector, want, matching.labels ?? liveLabels(index, accept));
      vectorPath = 'exact';
    } else {
      index.vectors.setEf(Math.max(options.efSearch ?? settings.efSearch, want));
      neighbors = index.vectors.search(input.vector, want, accept ?? undefined);
      vectorPath = 'hnsw';
      if (neighbors.length < want) {
        // A filtered graph walk can strand itself among rejected nodes; the exact scan cannot.
        neighbors = index.exact(input.vector, want, matching.labels ?? liveLabels(index, accept ?? (() => true)));
        vectorPath = 'exact';
      }
    }
    candidates.addVector(neighbors.map((neighbor) => ({ key: neighbor.label, score: neighbor.score })));
    const contextWeight = options.contextWeight ?? settings.contextWeight;
    if (mode === 'hybrid' && contextWeight > 0) candidates.addContext(contextList(contextRows(index, input.vector, neighbors, accept, options.contextCoherence ?? settings.contextCoherence), depth));
  }
  if (mode !== 'vector' && matching.count > 0) {
    candidates.addLexical(
      index.lexical.search(input.text, depth, accept ?? undefined).map((hit) => ({ key: hit.label, score: hit.score })),
      index.lexical.ideal(input.text),
    );
  }

  const ranked = pick(boostInRange(rank(candidates.values(), options, settings), input.boost ?? null), options, (candidate) => index.vectorOf(candidate.ref));
  return { hits: await hydrate(index, store, userId, ranked), mode, vectorPath, matching: matching.count };
}

/**
 * The contextual list's rows (turn-context.ts): the vector list's chunks and the row after each
 * (when the filters let it through), those of them in a conversation with a message row before them.
 */
function contextRows(index: UserIndex, vector: Float32Array, neighbors: readonly Neighbor[], accept: ((label: number) => boolean) | null, coherence: number): ContextRow<number>[] {
  const own = new Map<number, number>();
  for (const neighbor of neighbors) own.set(neighbor.label, neighbor.score);
  for (const neighbor of neighbors) {
    const next = index.nextRow(neighbor.label);
    if (next !== null && !own.has(next) && (!accept || accept(next))) own.set(next, index.dotQuery(vector, next));
  }
  const rows: ContextRow<number>[] = [];
  for (const [label, score] of own) {
    const previous = index.previousMessageRow(label);
    if (previous === null || !index.inConversation(label, coherence)) continue;
    // The row before is often in the vector list itself (consecutive turns on one topic).
    rows.push({ key: label, own: score, previous: own.get(previous) ?? index.dotQuery(vector, previous), pair: index.pairCosine(label, previous) });
  }
  return rows;
}

const NO_METADATA: Metadata = Object.freeze({});

/** The filters as one predicate over labels; null when there are none. */
function filterOf(index: UserIndex, options: ParsedSearchOptions): ((label: number) => boolean) | null {
  const tests: ((label: number) => boolean)[] = [];
  const columns = index.columns();
  if (options.sessionIds) {
    const slots = new Set(options.sessionIds.map((id) => columns.sessionSlot(id)).filter((slot) => slot !== undefined));
    tests.push((label) => slots.has(columns.session[label] as number));
  }
  if (options.excludeSessionIds && options.excludeSessionIds.length > 0) {
    const slots = new Set(options.excludeSessionIds.map((id) => columns.sessionSlot(id)).filter((slot) => slot !== undefined));
    tests.push((label) => !slots.has(columns.session[label] as number));
  }
  if (options.sources) {
    const kinds = new Set(options.sources.map((kind) => KIND_CODES[kind]));
    tests.push((label) => kinds.has(columns.kind[label] as 0 | 1));
  }
  if (options.roles) {
    const roles = new Set<number>(options.roles.map((role) => ROLE_CODES[role]));
    tests.push((label) => roles.has(columns.role[label] as number));
  }
  if (options.after !== undefined || options.before !== undefined) {
    const after = options.after ? Date.parse(options.after) : -Infinity;
    const before = options.before ? Date.parse(options.before) : Infinity;
    tests.push((label) => {
      const t = columns.time[label] as number;
      return t >= after && t < before; // NaN (no time) fails both
    });
  }
  if (options.origin === 'native' || options.origin === 'imported') {
    const origin = ORIGIN_CODES[options.origin];
    tests.push((label) => columns.sessionOrigin(columns.session[label] as number) === origin);
  } else if (options.origin) {
    // One service's exports: an imported session's id names its source (core/ids.ts importedSessionId).
    const source = options.origin;
    tests.push((label) => columns.sessionOrigin(columns.session[label] as number) === ORIGIN_CODES.imported && importedSessionParts(columns.sessionId(columns.session[label] as number))?.source === source);
  }
  if (options.where && Object.keys(options.where).length > 0) {
    const test = compileWhere(options.where);
    const { metaRef, metadata } = columns;
    // Chunks of one message share its metadata: test each message once (0 untested, 1 pass, 2 fail).
    const verdicts = new Uint8Array(metadata.length + 1);
    verdicts[0] = test(NO_METADATA) ? 1 : 2;
    tests.push((label) => {
      const ref = metaRef[label] as number;
      if (verdicts[ref] === 0) verdicts[ref] = test(metadata[ref - 1] as Metadata) ? 1 : 2;
      return verdicts[ref] === 1;
    });
  }
  if (tests.length === 0) return null;
  return (label) => index.isLive(label) && tests.every((test) => test(label));
}

/** How many live rows pass the filter, and (when few enough to scan) which. */
function countMatching(index: UserIndex, accept: (label: number) => boolean, options: ParsedSearchOptions): { count: number; labels: Uint32Array | null } {
  // With a session filter, only those sessions' labels can pass: no need to look at the rest.
  const pool = options.sessionIds ? options.sessionIds.flatMap((id) => index.labelsOf(id)) : null;
  const labels = pool ? Uint32Array.from(pool.filter(accept)) : liveLabels(index, accept);
  return { count: labels.length, labels };
}

/** The labels that pass `accept`, in order, as the exact scan takes them. */
function liveLabels(index: UserIndex, accept: (label: number) => boolean): Uint32Array {
  const labels = new Uint32Array(index.labelCount);
  let count = 0;
  for (let label = 0; label < index.labelCount; label++) if (accept(label)) labels[count++] = label;
  return labels.subarray(0, count);
}

/** Reads the picked chunks back from their sessions' `vector_index.jsonl`. */
async function hydrate(index: UserIndex, store: Store, userId: string, ranked: Candidate<number>[]): Promise<SearchHit[]> {
  const bySession = new Map<string, { rows: number[]; candidates: Candidate<number>[]; chunkIds: string[] }>();
  for (const candidate of ranked) {
    const info = index.describe(candidate.ref);
    if (!info) continue;
    const group = bySession.get(info.sessionId) ?? { rows: [], candidates: [], chunkIds: [] };
    group.rows.push(info.row);
    group.candidates.push(candidate);
    group.chunkIds.push(info.chunkId);
    bySession.set(info.sessionId, group);
  }
  const hits = new Map<number, SearchHit>();
  for (const [sessionId, group] of bySession) {
    // A session deleted, rewritten or broken since the sync reads as nothing rather than failing the search.
    const lines = await store.readVectorLines(userId, sessionId, group.rows).catch((cause: unknown) => {
      if (isMemexError(cause) && (cause.code === 'MEMEX_SESSION_NOT_FOUND' || cause.code === 'MEMEX_SESSION_CORRUPT' || cause.code === 'MEMEX_INVALID_INPUT')) return [];
      throw cause;
    });
    lines.forEach((line, i) => {
      const candidate = group.candidates[i] as Candidate<number>;
      // The index was synced just before; a mismatch means the session changed since, so skip the row.
      if (line.chunkId !== group.chunkIds[i]) return;
      hits.set(candidate.ref, {
        sessionId,
        chunkId: line.chunkId,
        text: line.text,
        source: line.source,
        span: line.span,
        part: line.part,
        score: candidate.score,
        relevance: candidate.relevance,
        scores: { vector: candidate.vector, vectorRank: candidate.vectorRank, context: candidate.context, contextRank: candidate.contextRank, lexical: candidate.lexical, lexicalRank: candidate.lexicalRank, recency: candidate.recency },
      });
    });
  }
  return ranked.flatMap((candidate) => hits.get(candidate.ref) ?? []);
}
