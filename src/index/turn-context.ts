/**
 * Context from the turn before (issue 20). In a conversation an answer often shares neither words
 * nor meaning with the question asked of it later ("Yes, a basket of peaches"), while the turn it
 * answers does ("Did you go to the farmers' market?"). So hybrid search fuses a third list: the
 * chunks ranked by the cosine of the query to each chunk read with the row before it in its session,
 * the unit-length sum of the two rows' vectors:
 *
 *   context(q, row) = (q·row + q·previous) / |row + previous| = (q·row + q·previous) / sqrt(2 + 2 row·previous)
 *
 * Nothing more is embedded or stored: both backends compute it from the stored vectors, at query
 * time, for the vector list's chunks and the row after each (the answer to a question that matched).
 * bench/quality.ts measured it against embedding "previous turn\n this turn" as one text: as good
 * on LoCoMo (recall@10 0.697 against 0.696 at weight 0.5), at no cost at ingest.
 *
 * Only conversations: a session whose consecutive messages follow on from each other. Where they do
 * not (a collection of passages stored as messages: MS MARCO), the row before is noise and the third
 * list only weighs the vectors more, which cost MS MARCO nDCG@10 0.753 to 0.724. A session is a
 * conversation when at least half of its recent pairs of consecutive messages (rows of two different
 * messages, the last `COHERENCE_ROWS` rows) have a cosine of at least `search.contextCoherence`.
 * File chunks take no context.
 */

/** How many of a session's last rows its coherence is judged on: bounded work per session, however long. */
export const COHERENCE_ROWS = 64;

/** One candidate for the contextual list: its cosine to the query, the previous row's, and the two rows' cosine. */
export interface ContextRow<K> {
  key: K;
  own: number;
  previous: number;
  pair: number;
}

/** The contextual cosine of one row (see the module comment). */
export function contextCosine(row: Pick<ContextRow<unknown>, 'own' | 'previous' | 'pair'>): number {
  return (row.own + row.previous) / Math.sqrt(Math.max(1e-9, 2 + 2 * row.pair));
}

/** The contextual list: the rows by their contextual cosine, best first, at most `depth`; ties keep the input order. */
export function contextList<K>(rows: readonly ContextRow<K>[], depth: number): { key: K; score: number }[] {
  return rows
    .map((row, i) => ({ key: row.key, score: contextCosine(row), i }))
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .slice(0, depth)
    .map(({ key, score }) => ({ key, score }));
}

/** Whether pairs of consecutive messages with these cosines make a conversation: at least half at `threshold` or above. */
export function isConversation(pairCosines: readonly number[], threshold: number): boolean {
  if (pairCosines.length === 0) return false;
  let above = 0;
  for (const cosine of pairCosines) if (cosine >= threshold) above++;
  return above * 2 >= pairCosines.length;
}

/** A message chunk's message id: its chunk id less the trailing `:<index>`. */
export function messageOfChunk(chunkId: string): string {
  const cut = chunkId.lastIndexOf(':');
  return cut < 0 ? chunkId : chunkId.slice(0, cut);
}
