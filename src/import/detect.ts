import { MemexError } from '../core/index.js';
import type { JsonShape, TopLevelValue } from './json-stream.js';
import { FORMAT_SOURCE, type ExportFormat, type ExportSource } from './model.js';

/**
 * Which parser reads a JSON document, decided from its content: the top-level shape and the first
 * values, never the file's name. Each value is classified on its own; a document's format is the
 * first value that shows its kind clearly ("strong"), with the values before it compatible. A
 * ChatGPT conversation with no `mapping` (the 2025 export's corrupted entry) is only weak evidence,
 * so it neither decides a document alone nor contradicts one.
 */

/** How many top-level values detection reads at most before it gives up (they are replayed to the parser). */
export const DETECT_MAX_VALUES = 16;

interface Evidence {
  format: ExportFormat;
  strong: boolean;
}

export interface DetectSample {
  shape: JsonShape;
  /** The first values of the document, in order (up to DETECT_MAX_VALUES). */
  values: readonly TopLevelValue[];
  /** Whether `values` is the whole document. */
  complete: boolean;
}

export interface DetectOptions {
  /** The caller's hint: only this source's formats are accepted. */
  source?: ExportSource | undefined;
  /** The file or ZIP entry, named in errors. */
  name?: string | undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isString = (value: unknown): value is string => typeof value === 'string';

/** What one top-level value looks like, or null when it looks like nothing known. */
export function classifyValue(value: unknown): Evidence | null {
  if (!isRecord(value)) return null;
  if (Array.isArray(value.chat_messages) && isString(value.uuid)) return { format: 'claude-conversations', strong: true };
  if (Array.isArray(value.docs) && (isString(value.prompt_template) || isString(value.uuid))) return { format: 'claude-projects', strong: true };
  if ('conversations_memory' in value || 'project_memories' in value) return { format: 'claude-memories', strong: true };
  if (isString(value.uuid) && (isString(value.email_address) || 'full_name' in value)) return { format: 'claude-users', strong: true };
  if (isString(value.header) && (Array.isArray(value.products) || (isString(value.title) && isString(value.time)))) return { format: 'gemini-activity', strong: true };
  if (Array.isArray(value.products) && isString(value.title) && isString(value.time)) return { format: 'gemini-activity', strong: true };
  if (isRecord(value.mapping) || (isString(value.current_node) && ('title' in value || 'create_time' in value))) {
    return { format: 'chatgpt-conversations', strong: true };
  }
  if ('create_time' in value && 'title' in value && ('conversation_id' in value || 'id' in value || 'update_time' in value)) {
    return { format: 'chatgpt-conversations', strong: false };
  }
  return null;
}

/** A short, safe description of a value for error details: its type and first keys, never its content. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `array(${value.length})`;
  if (isRecord(value)) {
    const keys = Object.keys(value);
    return `object {${keys.slice(0, 12).join(', ')}${keys.length > 12 ? ', …' : ''}}`;
  }
  return typeof value;
}

/**
 * The format of a document, or null when the sample shows none (or none of the hinted source's).
 * Throws nothing: `detectFormat` turns null into the coded error.
 */
export function classifyDocument(sample: DetectSample, source?: ExportSource): ExportFormat | null {
  const accept = (format: ExportFormat) => source === undefined || FORMAT_SOURCE[format] === source;
  if (sample.shape === 'object') {
    const format = sample.values.find((entry) => entry.key === 'format')?.value;
    if (format === 'memex-session') return accept('memex-session') ? 'memex-session' : null;
  }
  let weak: ExportFormat | null = null;
  for (const { value } of sample.values) {
    const evidence = classifyValue(value);
    if (evidence === null) continue;
    if (!accept(evidence.format)) {
      if (evidence.strong) return null;
      continue;
    }
    if (evidence.strong) return evidence.format;
    weak ??= evidence.format;
  }
  // Only weak evidence (conversations without a mapping) names a format when the caller said which source it is.
  return source !== undefined && weak !== null ? weak : null;
}

/** Whether the sample is enough to decide: the first strong evidence (of any source) settles it. */
export function isDecided(sample: DetectSample): boolean {
  if (sample.complete || sample.values.length >= DETECT_MAX_VALUES) return true;
  if (sample.shape === 'object' && sample.values.some((entry) => entry.key === 'format' && entry.value === 'memex-session')) return true;
  return sample.values.some(({ value }) => classifyValue(value)?.strong === true);
}

/** The format of a document; MEMEX_IMPORT_FORMAT_UNKNOWN, with what was seen, when it is no known export (or not of the hinted source). */
export function detectFormat(sample: DetectSample, options: DetectOptions = {}): ExportFormat {
  const format = classifyDocument(sample, options.source);
  if (format !== null) return format;
  const unhinted = options.source === undefined ? null : classifyDocument(sample);
  const name = options.name ?? 'the document';
  const seen = sample.values.slice(0, 5).map(({ key, value }) => (key === null ? describeValue(value) : `${JSON.stringify(key)}: ${describeValue(value)}`));
  const message =
    unhinted !== null
      ? `${name} is a ${unhinted} export, not ${options.source ?? ''}`
      : sample.values.length === 0
        ? `${name} is an empty JSON ${sample.shape}: nothing tells which export it is`
        : `${name} is no known chat export (a JSON ${sample.shape} of ${seen[0] ?? 'values'}${seen.length > 1 ? ', …' : ''})`;
  throw new MemexError('MEMEX_IMPORT_FORMAT_UNKNOWN', message, {
    details: { name: options.name ?? null, shape: sample.shape, seen, ...(options.source ? { source: options.source } : {}), ...(unhinted ? { detected: unhinted } : {}) },
  });
}
