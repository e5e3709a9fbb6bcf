import type { TagCount } from './store.js';

/** Tags as a session keeps them: unique and sorted, so two sessions with the same tags compare equal. */
export function normalTags(tags: readonly string[]): string[] {
  return [...new Set(tags)].sort();
}

/** `current` with `add` added and `remove` removed (a tag in both is removed). */
export function patchTags(current: readonly string[], add: readonly string[] = [], remove: readonly string[] = []): string[] {
  const gone = new Set(remove);
  return normalTags([...current, ...add].filter((tag) => !gone.has(tag)));
}

/** Most used first, then by name: the order every backend lists tags in. */
export function sortTagCounts(counts: Map<string, number>): TagCount[] {
  return [...counts].map(([tag, sessions]) => ({ tag, sessions })).sort((a, b) => b.sessions - a.sessions || (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
}
