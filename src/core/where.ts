import { z } from 'zod';

/**
 * `where`: a filter over message metadata in the style of MongoDB and Chroma. Each key of the
 * object is a condition, and all must hold:
 *
 * - `{ project: 'x' }` — equality (`$eq`); a metadata array matches when one element is equal;
 * - `{ priority: { $gte: 2, $lt: 5 } }` — ranges (`$gt`, `$gte`, `$lt`, `$lte`) compare numbers with
 *   numbers and strings with strings (ISO dates order as strings), never across types;
 * - `{ status: { $ne: 'done' } }`, `{ tag: { $in: ['a', 'b'] } }`, `{ tag: { $nin: [...] } }`;
 * - `{ reviewed: { $exists: true } }`;
 * - `{ $and: [where, ...] }`, `{ $or: [where, ...] }`, nested.
 *
 * Keys name top-level metadata keys (a dot is part of the key, not a path). A key the metadata
 * lacks fails every condition but `$ne`, `$nin` and `$exists: false`; `null` matches only a stored
 * null. Bounded (depth, conditions, list lengths) so one request cannot make a search do unbounded work.
 */
export type WhereScalar = string | number | boolean | null;
export interface WhereOperators {
  $eq?: WhereScalar;
  $ne?: WhereScalar;
  $in?: WhereScalar[];
  $nin?: WhereScalar[];
  $gt?: number | string;
  $gte?: number | string;
  $lt?: number | string;
  $lte?: number | string;
  $exists?: boolean;
}
export interface Where {
  $and?: Where[];
  $or?: Where[];
  [key: string]: WhereScalar | WhereOperators | Where[] | undefined;
}

const WHERE_LIMITS = Object.freeze({ depth: 5, conditions: 100, listValues: 1000, keyLength: 200, stringLength: 1000 });

const OPERATORS = new Set(['$eq', '$ne', '$in', '$nin', '$gt', '$gte', '$lt', '$lte', '$exists']);
const RANGES = new Set(['$gt', '$gte', '$lt', '$lte']);

/** Why `value` is not a valid `where`, as zod issue paths and messages; empty when it is. */
function problems(value: unknown): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  let conditions = 0;
  const scalar = (v: unknown, path: (string | number)[]): void => {
    if (v === null || typeof v === 'boolean') return;
    if (typeof v === 'number' && Number.isFinite(v)) return;
    if (typeof v === 'string' && v.length <= WHERE_LIMITS.stringLength) return;
    out.push({ path, message: `expected a string (at most ${WHERE_LIMITS.stringLength} characters), a finite number, a boolean or null` });
  };
  const visit = (node: unknown, path: (string | number)[], depth: number): void => {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) {
      out.push({ path, message: 'expected an object of conditions' });
      return;
    }
    if (depth > WHERE_LIMITS.depth) {
      out.push({ path, message: `$and/$or nest at most ${WHERE_LIMITS.depth} deep` });
      return;
    }
    for (const [key, condition] of Object.entries(node as Record<string, unknown>)) {
      const at = [...path, key];
      if (out.length > 20) return;
      if (key === '$and' || key === '$or') {
        if (!Array.isArray(condition) || condition.length === 0) {
          out.push({ path: at, message: `${key} takes a non-empty array of conditions` });
          continue;
        }
        condition.forEach((child, i) => visit(child, [...at, i], depth + 1));
        continue;
      }
      if (++conditions > WHERE_LIMITS.conditions) {
        out.push({ path: at, message: `a filter holds at most ${WHERE_LIMITS.conditions} conditions` });
        return;
      }
      if (key.length === 0 || key.length > WHERE_LIMITS.keyLength || key.startsWith('$')) {
        out.push({ path: at, message: `a metadata key is 1-${WHERE_LIMITS.keyLength} characters and does not start with $ (operators: $and, $or)` });
        continue;
      }
      if (typeof condition !== 'object' || condition === null) {
        scalar(condition, at);
        continue;
      }
      if (Array.isArray(condition)) {
        out.push({ path: at, message: 'a list matches with { $in: [...] }' });
        continue;
      }
      const operators = Object.entries(condition as Record<string, unknown>);
      if (operators.length === 0) out.push({ path: at, message: 'expected at least one operator' });
      for (const [op, operand] of operators) {
        const opAt = [...at, op];
        if (!OPERATORS.has(op)) out.push({ path: opAt, message: `unknown operator; expected one of ${[...OPERATORS].join(', ')}` });
        else if (op === '$in' || op === '$nin') {
          if (!Array.isArray(operand) || operand.length > WHERE_LIMITS.listValues) out.push({ path: opAt, message: `expected an array of at most ${WHERE_LIMITS.listValues} values` });
          else operand.forEach((v, i) => scalar(v, [...opAt, i]));
        } else if (op === '$exists') {
          if (typeof operand !== 'boolean') out.push({ path: opAt, message: 'expected true or false' });
        } else if (RANGES.has(op)) {
          if (!((typeof operand === 'number' && Number.isFinite(operand)) || (typeof operand === 'string' && operand.length <= WHERE_LIMITS.stringLength))) {
            out.push({ path: opAt, message: 'expected a finite number or a string' });
          }
        } else scalar(operand, opAt);
      }
    }
  };
  visit(value, [], 0);
  return out;
}

export const WhereSchema = z
  .record(z.string(), z.unknown())
  .superRefine((value, ctx) => {
    for (const problem of problems(value)) ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
  }) as unknown as z.ZodType<Where, Where>;

type Test = (metadata: Readonly<Record<string, unknown>>) => boolean;

function equal(stored: unknown, wanted: WhereScalar): boolean {
  return Array.isArray(stored) ? stored.some((element) => element === wanted) : stored === wanted;
}

function compare(op: string, stored: unknown, bound: number | string): boolean {
  const one = (v: unknown): boolean => {
    if (typeof v !== typeof bound) return false;
    const x = v as number | string;
    return op === '$gt' ? x > bound : op === '$gte' ? x >= bound : op === '$lt' ? x < bound : x <= bound;
  };
  return Array.isArray(stored) ? stored.some(one) : one(stored);
}

function field(key: string, condition: unknown): Test {
  // A bare value is shorthand for `$eq`.
  if (typeof condition !== 'object' || condition === null) return field(key, { $eq: condition });
  const has = (metadata: Readonly<Record<string, unknown>>): boolean => Object.hasOwn(metadata, key);
  const tests = Object.entries(condition as WhereOperators).map(([op, operand]): Test => {
    switch (op) {
      case '$eq':
        return (metadata) => has(metadata) && equal(metadata[key], operand as WhereScalar);
      case '$ne':
        return (metadata) => !has(metadata) || !equal(metadata[key], operand as WhereScalar);
      case '$in': {
        const values = operand as WhereScalar[];
        return (metadata) => has(metadata) && values.some((v) => equal(metadata[key], v));
      }
      case '$nin': {
        const values = operand as WhereScalar[];
        return (metadata) => !has(metadata) || !values.some((v) => equal(metadata[key], v));
      }
      case '$exists':
        return (metadata) => has(metadata) === operand;
      default:
        return (metadata) => has(metadata) && compare(op, metadata[key], operand as number | string);
    }
  });
  return (metadata) => tests.every((test) => test(metadata));
}

/** A validated `where` as a predicate over a metadata object (pass `{}` for a chunk without metadata). */
export function compileWhere(where: Where): Test {
  const tests: Test[] = Object.entries(where).map(([key, condition]): Test => {
    if (key === '$and') {
      const children = (condition as Where[]).map(compileWhere);
      return (metadata) => children.every((child) => child(metadata));
    }
    if (key === '$or') {
      const children = (condition as Where[]).map(compileWhere);
      return (metadata) => children.some((child) => child(metadata));
    }
    return field(key, condition);
  });
  return (metadata) => tests.every((test) => test(metadata));
}
