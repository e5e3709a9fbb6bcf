/** A sentence of a text, with where it is (UTF-16 offsets, like `String.prototype.slice`). */
export interface Sentence {
  text: string;
  start: number;
  end: number;
}

// Words that end with a period without ending a sentence.
const ABBREVIATIONS = new Set(['mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'vs', 'etc', 'e.g', 'i.e', 'approx', 'no', 'fig', 'inc', 'ltd', 'co', 'a.m', 'p.m', 'u.s']);

/**
 * Splits chat text into sentences: after `.`, `!`, `?` or `…` (and closing quotes or brackets)
 * followed by space, and at line breaks, so list items and short lines stand alone. A period after
 * a common abbreviation or a single letter does not end a sentence. Good enough for choosing summary
 * sentences; not a linguistic segmenter.
 */
export function splitSentences(text: string): Sentence[] {
  const sentences: Sentence[] = [];
  const boundary = /[.!?…]+["'”’)\]]*(?=\s)|\n+/gu;
  let start = 0;
  const push = (end: number): void => {
    const raw = text.slice(start, end);
    const lead = raw.length - raw.trimStart().length;
    const trimmed = raw.trim();
    if (trimmed.length > 0) sentences.push({ text: trimmed, start: start + lead, end: start + lead + trimmed.length });
  };
  for (const match of text.matchAll(boundary)) {
    const end = match.index + match[0].length;
    if (match[0][0] === '.' && match[0].length === 1) {
      const word = /([A-Za-z.]+)$/u.exec(text.slice(Math.max(start, match.index - 12), match.index))?.[1]?.toLowerCase() ?? '';
      if (ABBREVIATIONS.has(word) || /^[a-z]$/u.test(word)) continue;
    }
    push(end);
    start = end;
  }
  push(text.length);
  return sentences;
}

/** Words in a sentence (letters or digits runs), for judging whether it says anything. */
export function wordCount(text: string): number {
  return text.match(/[\p{L}\p{N}]+/gu)?.length ?? 0;
}
