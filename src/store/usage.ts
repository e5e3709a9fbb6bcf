import type { AppendOptions } from './store.js';

export interface UsageTotals {
  promptTokens: number;
  completionTokens: number;
  /** Model replies counted. */
  replies: number;
}

/** The session's totals with one more reply's usage; a missing or unreadable total starts from zero. */
export function addUsage(previous: unknown, usage: NonNullable<AppendOptions['usage']>): UsageTotals {
  const record = previous !== null && typeof previous === 'object' ? (previous as Record<string, unknown>) : {};
  const count = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0);
  return {
    promptTokens: count(record.promptTokens) + usage.promptTokens,
    completionTokens: count(record.completionTokens) + usage.completionTokens,
    replies: count(record.replies) + 1,
  };
}
