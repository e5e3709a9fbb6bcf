import { MemexError, type IngestWarning, type TextUnit } from '../core/index.js';
import { htmlToText } from './html.js';

export type TextFormat = 'plain' | 'markdown' | 'html' | 'json' | 'csv';

export interface TextDocument {
  format: TextFormat;
  title: string | null;
  /** Sections (Markdown and HTML: one per heading; otherwise the whole text), numbered from 1 as `page`. */
  units: TextUnit[];
  warnings: IngestWarning[];
}

/** The file types read as text documents (the store names them from the bytes, then the file name). */
export function isTextType(mimeType: string): boolean {
  return mimeType.startsWith('text/') || mimeType === 'application/json' || mimeType === 'application/jsonl';
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Reads a text document: the whole file must be UTF-8 without NUL bytes (the store only looked at
 * its first bytes), HTML is reduced to its visible text, JSON is rendered as indented lines, and
 * Markdown (and reduced HTML) is cut into sections at its headings, each carrying its heading path.
 */
export function readTextDocument(bytes: Uint8Array, mimeType: string, limits: { maxTextChars: number }): TextDocument {
  let raw: string;
  try {
    raw = utf8.decode(bytes);
  } catch (cause) {
    throw new MemexError('MEMEX_TEXT_INVALID', 'the document is not valid UTF-8 text', { cause });
  }
  if (raw.includes('\u0000')) throw new MemexError('MEMEX_TEXT_INVALID', 'the document has NUL bytes: it is binary, not text');
  const warnings: IngestWarning[] = [];
  const format = formatOf(mimeType, raw);
  let text = raw;
  let title: string | null = null;
  if (format === 'html') ({ text, title } = htmlToText(raw));
  else if (format === 'json') {
    const rendered = renderJson(raw, mimeType === 'application/jsonl');
    if (rendered === null) warnings.push({ code: 'json-invalid', message: 'the document is not valid JSON; it was read as plain text' });
    else text = rendered;
  }
  if (text.length > limits.maxTextChars) {
    throw new MemexError('MEMEX_TEXT_TOO_LARGE', `the document has ${text.length} characters of text; the limit is ${limits.maxTextChars}`, { details: { characters: text.length, maxTextChars: limits.maxTextChars } });
  }
  const sections = format === 'markdown' || format === 'html' ? markdownSections(text) : [{ text, headings: [] }];
  if (format === 'markdown') title = sections.find((s) => s.headings.length > 0)?.headings[0] ?? null;
  const units: TextUnit[] = sections.map((section, i) => ({ page: i + 1, text: section.text, method: 'text', ...(section.headings.length > 0 ? { headings: section.headings } : {}) }));
  return { format, title, units, warnings };
}

function formatOf(mimeType: string, text: string): TextFormat {
  if (mimeType === 'text/html' || /^\s*<(!doctype\s+html|html[\s>])/i.test(text.slice(0, 512))) return 'html';
  if (mimeType === 'text/markdown') return 'markdown';
  if (mimeType === 'application/json' || mimeType === 'application/jsonl') return 'json';
  if (mimeType === 'text/csv') return 'csv';
  return 'plain';
}

interface Section {
  text: string;
  headings: string[];
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const ATX = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;

/**
 * Markdown cut at its headings (ATX `#` lines, and setext `===` / `---` underlines): each section
 * runs from its heading to the next, and knows the headings it sits under. A `#` inside a code
 * fence is code, not a heading. Text before the first heading is a section of its own.
 */
export function markdownSections(text: string): Section[] {
  const sections: Section[] = [];
  const path: { level: number; title: string }[] = [];
  let start = 0;
  let fence: string | null = null;
  let offset = 0;
  let previous: { start: number; text: string } | null = null;
  const cut = (at: number): void => {
    if (at > start) sections.push({ text: text.slice(start, at), headings: path.map((h) => h.title) });
    start = at;
  };
  const enter = (level: number, title: string): void => {
    while (path.length > 0 && (path[path.length - 1] as { level: number }).level >= level) path.pop();
    path.push({ level, title: title.trim() });
  };
  while (offset < text.length) {
    let end = text.indexOf('\n', offset);
    if (end < 0) end = text.length;
    const line = text.slice(offset, end);
    const opening = FENCE.exec(line);
    if (fence !== null) {
      if (opening && (opening[1] as string)[0] === fence[0] && (opening[1] as string).length >= fence.length && line.trim() === opening[1]) fence = null;
    } else if (opening) {
      fence = opening[1] as string;
    } else {
      const atx = line.length <= 1024 ? ATX.exec(line) : null;
      const underline = /^ {0,3}(=+|-+)[ \t]*$/.exec(line);
      if (atx) {
        cut(offset);
        enter((atx[1] as string).length, atx[2] ?? '');
      } else if (underline && previous && previous.text.trim() !== '' && previous.text.length <= 1024 && !/^ {0,3}(?:[-*+] |\d+[.)] |>)/.test(previous.text)) {
        // The line above was a setext heading: the section starts there.
        cut(previous.start);
        enter((underline[1] as string)[0] === '=' ? 1 : 2, previous.text);
      }
    }
    previous = { start: offset, text: line };
    offset = end + 1;
  }
  cut(text.length);
  return sections;
}

/**
 * JSON as readable lines: `key: value` for scalars, a key alone on its line above an object's or
 * array's entries, indented by depth (capped, so a document nested 100,000 deep costs linear text,
 * not quadratic). Walked with an explicit stack: depth never reaches the call stack. Null when the
 * text does not parse.
 */
export function renderJson(text: string, lines: boolean): string | null {
  let values: unknown[];
  try {
    values = lines ? text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as unknown) : [JSON.parse(text) as unknown];
  } catch {
    return null;
  }
  const out: string[] = [];
  for (const value of values) {
    if (out.length > 0) out.push('');
    const stack: { key: string | null; value: unknown; depth: number }[] = [{ key: null, value, depth: 0 }];
    while (stack.length > 0) {
      const { key, value: item, depth } = stack.pop() as { key: string | null; value: unknown; depth: number };
      const indent = '  '.repeat(Math.min(depth, MAX_INDENT));
      const label = key === null ? '' : key === ITEM ? '-' : `${key}:`;
      if (item !== null && typeof item === 'object') {
        const entries: [string, unknown][] = Array.isArray(item) ? item.map((v: unknown): [string, unknown] => [ITEM, v]) : Object.entries(item);
        if (label !== '') out.push(`${indent}${label}`);
        const childDepth = label === '' ? depth : depth + 1;
        for (let i = entries.length - 1; i >= 0; i--) {
          const [k, v] = entries[i] as [string, unknown];
          stack.push({ key: k, value: v, depth: childDepth });
        }
      } else {
        const scalar = typeof item === 'string' ? item : String(item);
        out.push(label === '' ? `${indent}${scalar}` : `${indent}${label} ${scalar}`);
      }
    }
  }
  return out.join('\n');
}

/** The key of an array's items: rendered as a `-` list. */
const ITEM = '\u0000item';
/** Indentation stops growing past this depth. */
const MAX_INDENT = 12;
