import type { FastifyBodyParser, FastifyRequest } from 'fastify';
import { MemexError } from '../core/index.js';

/**
 * How deep a JSON body may nest. Parsing, the prototype-pollution scan and validation all recurse,
 * so a body of 5,000 nested arrays overflowed the stack and answered 500. Real bodies (messages,
 * metadata, search filters) nest a handful of levels; 100 leaves room for any sane metadata.
 */
export const MAX_JSON_DEPTH = 100;

/**
 * The deepest nesting of a JSON text, counted without recursion in one pass (brackets inside
 * strings do not count), stopping as soon as it passes `limit`.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

type Parse = (request: FastifyRequest, body: string, done: (error: Error | null, value?: unknown) => void) => void;

/** Fastify's own JSON parser (prototype poisoning refused), behind a depth check that cannot overflow. */
export function depthLimitedJson(defaultParser: FastifyBodyParser<string>): Parse {
  // Fastify's default JSON parser is the callback kind of its body-parser union.
  const parse = defaultParser as Parse;
  return (request, text, done) => {
    if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
      done(new MemexError('MEMEX_INVALID_INPUT', `the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`, { details: { maxDepth: MAX_JSON_DEPTH } }));
      return;
    }
    parse(request, text, done);
  };
}
