import { createHash } from 'node:crypto';
import type { ExportSource, ImportSkip } from './model.js';

/**
 * Small pieces every parser shares: tolerant readers for the loosely typed fields of an export
 * (a field of the wrong type reads as absent rather than failing the whole conversation), times,
 * stable ids for things the service gave none.
 */

/** A short stable id: the same input always gives the same id, in every export and every run. */
export function stableHash(...parts: string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\u0000');
  return hash.digest('hex').slice(0, 24);
}

/** The hash of a JSON value, for a conversation that carries no id of its own. */
export function hashOfValue(value: unknown): string {
  return stableHash(JSON.stringify(value) ?? 'undefined');
}

export function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** A non-empty string, or null. */
export function nonEmpty(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value : null;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Years outside this range are garbage in an export (a zero, a millisecond value read as seconds).
const MIN_TIME = Date.UTC(1990, 0, 1);
const MAX_TIME = Date.UTC(2200, 0, 1);

function iso(ms: number): string | null {
  if (!Number.isFinite(ms) || ms < MIN_TIME || ms > MAX_TIME) return null;
  return new Date(ms).toISOString();
}

/** ChatGPT's times: float seconds since the epoch. Anything else (null, a string, NaN) is no time. */
export function isoFromSeconds(value: unknown): string | null {
  return typeof value === 'number' ? iso(value * 1000) : null;
}

/** An ISO-8601 date-time (Claude, Gemini), normalised to UTC with milliseconds; null when it does not parse. */
export function isoFromString(value: unknown): string | null {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value)) return null;
  return iso(Date.parse(value));
}

export function skip(source: ExportSource, item: string | null, reason: string, detail: string): ImportSkip {
  return { kind: 'skip', source, item, reason, detail };
}

/** The first lines of a zod error, for a skip's detail (never the offending value itself). */
export function issuesOf(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.map(String).join('.') || '(value)'}: ${issue.message}`)
    .join('; ');
}
