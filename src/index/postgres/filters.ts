import { MemexError, type ParsedSearchOptions, type Where, type WhereOperators, type WhereScalar } from '../../core/index.js';

/** Positional parameters for one statement: every value from a caller goes through here, never into the SQL text. */
export class SqlParams {
  readonly values: unknown[] = [];

  /** `$n` for the value. */
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/**
 * The FROM clause of every search statement: the user's chunks as `c`, and, when a `where` filter
 * needs it, the metadata of each chunk's message as `m` (a file chunk has none, and is matched as
 * an empty object, as on flat files).
 */
export function chunksFrom(options: ParsedSearchOptions): string {
  if (!hasWhere(options)) return 'memex.chunks c';
  return `memex.chunks c
    LEFT JOIN memex.messages m
      ON c.source_kind = 'message' AND m.user_id = c.user_id AND m.session_id = c.session_id AND m.id = c.message_id`;
}

/**
 * The filters of a search as one SQL condition over `c` (and `m`, see chunksFrom), with the same
 * meaning as the flat files' predicate (flat/search.ts filterOf): every filter must hold, a list
 * matches any of its values, a file chunk has no role, no time and no metadata. Row-level security
 * already limits `c` to the user; `userId` is repeated here only so the planner can use the keys.
 */
export function filterSql(userId: string, options: ParsedSearchOptions, params: SqlParams): string {
  // A trashed session's chunks are out of the lexical postings and statistics already; this keeps
  // them from the vector side. It adds no parameter: the statistics' chunk count, which an
  // unfiltered search takes as the number matching, leaves them out too.
  const parts = [`c.user_id = ${params.add(userId)}`, 'NOT c.trashed'];
  if (options.sessionIds) parts.push(`c.session_id = ANY(${params.add(options.sessionIds)}::text[])`);
  if (options.excludeSessionIds && options.excludeSessionIds.length > 0) parts.push(`NOT (c.session_id = ANY(${params.add(options.excludeSessionIds)}::text[]))`);
  if (options.sources) parts.push(`c.source_kind = ANY(${params.add(options.sources)}::text[])`);
  if (options.roles) parts.push(`coalesce(c.source ->> 'role' = ANY(${params.add(options.roles)}::text[]), false)`);
  if (options.after !== undefined) parts.push(`coalesce(${createdAt} >= ${params.add(isoTime(options.after))}::timestamptz, false)`);
  if (options.before !== undefined) parts.push(`coalesce(${createdAt} < ${params.add(isoTime(options.before))}::timestamptz, false)`);
  if (options.origin === 'native' || options.origin === 'imported') {
    parts.push(`EXISTS (SELECT 1 FROM memex.sessions s WHERE s.user_id = c.user_id AND s.id = c.session_id AND s.origin ->> 'kind' = ${params.add(options.origin)})`);
  } else if (options.origin) {
    parts.push(`EXISTS (SELECT 1 FROM memex.sessions s WHERE s.user_id = c.user_id AND s.id = c.session_id AND s.origin ->> 'kind' = 'imported' AND s.origin ->> 'source' = ${params.add(options.origin)})`);
  }
  if (hasWhere(options)) parts.push(whereSql(options.where as Where, "coalesce(m.metadata, '{}'::jsonb)", params));
  return parts.join('\n  AND ');
}

/** True when the search has no filter: every one of the user's chunks matches. */
export function unfiltered(options: ParsedSearchOptions): boolean {
  // Every filter adds a parameter to filterSql's condition; the user's id is the one that is always there.
  const params = new SqlParams();
  filterSql('', options, params);
  return params.values.length === 1;
}

/** A message chunk's time; NULL for a file chunk, which no time filter lets through. */
const createdAt = "CASE WHEN c.source_kind = 'message' THEN (c.source ->> 'createdAt')::timestamptz END";

function isoTime(input: string): string {
  return new Date(Date.parse(input)).toISOString();
}

function hasWhere(options: ParsedSearchOptions): boolean {
  return options.where !== undefined && Object.keys(options.where).length > 0;
}

/**
 * A validated `where` (core/where.ts) as SQL over a jsonb metadata expression, with the semantics of
 * compileWhere: a key the metadata lacks fails every condition but `$ne`, `$nin` and
 * `$exists: false`; a stored array matches when one of its elements does; ranges compare numbers
 * with numbers and strings with strings, never across types. Strings compare by code point
 * (`COLLATE "C"`), as JavaScript's `<` does except between characters outside the Basic
 * Multilingual Plane and those from U+E000 up, which it orders by UTF-16 code unit.
 * Every condition is a plain boolean (never NULL), so `NOT` means what it says.
 */
export function whereSql(where: Where, metadata: string, params: SqlParams): string {
  const parts = Object.entries(where).map(([key, condition]): string => {
    if (key === '$and' || key === '$or') {
      const children = (condition as Where[]).map((child) => `(${whereSql(child, metadata, params)})`);
      return `(${children.join(key === '$and' ? ' AND ' : ' OR ')})`;
    }
    return fieldSql(`(${metadata} -> ${params.add(key)}::text)`, condition, params);
  });
  return parts.length === 0 ? 'true' : parts.join(' AND ');
}

function fieldSql(value: string, condition: unknown, params: SqlParams): string {
  // A bare value is shorthand for `$eq`.
  if (typeof condition !== 'object' || condition === null) return fieldSql(value, { $eq: condition }, params);
  // The stored value's elements when it is an array, else the value itself (a missing key: none).
  const elements = `jsonb_array_elements(CASE WHEN jsonb_typeof(${value}) = 'array' THEN ${value} ELSE jsonb_build_array(${value}) END)`;
  const some = (test: (element: string) => string): string => `(${value} IS NOT NULL AND EXISTS (SELECT 1 FROM ${elements} AS e(v) WHERE ${test('e.v')}))`;
  const json = (operand: unknown): string => `${params.add(JSON.stringify(operand))}::jsonb`;
  const tests = Object.entries(condition as WhereOperators).map(([op, operand]): string => {
    switch (op) {
      case '$eq':
        return some((element) => `${element} = ${json(operand as WhereScalar)}`);
      case '$ne':
        return `NOT ${some((element) => `${element} = ${json(operand as WhereScalar)}`)}`;
      case '$in':
        return some((element) => `${element} IN (SELECT w.v FROM jsonb_array_elements(${json(operand)}) AS w(v))`);
      case '$nin':
        return `NOT ${some((element) => `${element} IN (SELECT w.v FROM jsonb_array_elements(${json(operand)}) AS w(v))`)}`;
      case '$exists':
        return `((${value} IS NOT NULL) = ${params.add(operand as boolean)}::boolean)`;
      default:
        return some((element) => rangeSql(op, element, operand as number | string, params));
    }
  });
  return `(${tests.join(' AND ')})`;
}

const COMPARISONS: Record<string, string> = { $gt: '>', $gte: '>=', $lt: '<', $lte: '<=' };

function rangeSql(op: string, element: string, bound: number | string, params: SqlParams): string {
  const sign = COMPARISONS[op];
  if (!sign) throw new MemexError('MEMEX_INVALID_INPUT', `unknown where operator ${op}`);
  // CASE, not AND: SQL does not promise to test the type before it casts.
  if (typeof bound === 'number') return `CASE WHEN jsonb_typeof(${element}) = 'number' THEN (${element})::numeric ${sign} ${params.add(String(bound))}::numeric ELSE false END`;
  return `CASE WHEN jsonb_typeof(${element}) = 'string' THEN (${element} #>> '{}') COLLATE "C" ${sign} ${params.add(bound)}::text COLLATE "C" ELSE false END`;
}
