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

/** The session's models, in the order first used, in `metadata.models`. */
export const MODELS_KEY = 'models';

/**
 * The session metadata after appending `messages`: the models named by their `metadata.model`
 * added to `models`, and the reply's usage (`options.usage`, else the sum of the messages'
 * `metadata.usage`, so a caller appending a model's reply itself is counted too) added to `usage`.
 * Null when nothing changes.
 */
export function appendTotals(metadata: Record<string, unknown>, messages: readonly { metadata?: Record<string, unknown> | undefined }[], options: AppendOptions): Record<string, unknown> | null {
  const before = Array.isArray(metadata[MODELS_KEY]) ? (metadata[MODELS_KEY] as unknown[]).filter((m): m is string => typeof m === 'string') : [];
  const models = [...before];
  let usage = options.usage ? addUsage(metadata[USAGE], options.usage) : null;
  for (const message of messages) {
    const model = message.metadata?.model;
    if (typeof model === 'string' && model !== '' && model.length <= 200 && !models.includes(model)) models.push(model);
    if (!options.usage) {
      const reported = readUsage(message.metadata?.usage);
      if (reported) usage = addUsage(usage ?? metadata[USAGE], reported);
    }
  }
  if (models.length === before.length && usage === null) return null;
  return { ...metadata, ...(models.length > before.length ? { [MODELS_KEY]: models } : {}), ...(usage ? { [USAGE]: usage } : {}) };
}

const USAGE = 'usage';

function readUsage(value: unknown): NonNullable<AppendOptions['usage']> | null {
  if (value === null || typeof value !== 'object') return null;
  const { promptTokens, completionTokens } = value as Record<string, unknown>;
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  return ok(promptTokens) && ok(completionTokens) ? { promptTokens, completionTokens } : null;
}
