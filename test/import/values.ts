import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExportParser, ImportItem, ParseContext } from '../../src/import/model.js';
import { CHAT_EXPORTS } from '../helpers/export-samples.js';

export { CHAT_EXPORTS, CHAT_EXPORTS_MISSING, hasChatExports } from '../helpers/export-samples.js';

export function readExport(relative: string): unknown {
  return JSON.parse(readFileSync(join(CHAT_EXPORTS, relative), 'utf8')) as unknown;
}

/**
 * A parsed JSON document as the parsers receive it: its array's elements (key null) or its
 * object's properties by name. Test-only; the real reader streams the file instead.
 */
export async function* valuesOf(document: unknown): AsyncGenerator<{ key: string | null; value: unknown }> {
  if (Array.isArray(document)) {
    for (const value of document) yield { key: null, value };
  } else if (typeof document === 'object' && document !== null) {
    for (const [key, value] of Object.entries(document)) yield { key, value };
  } else {
    throw new Error('a JSON document is an array or an object');
  }
}

export async function parseAll(parser: ExportParser, document: unknown, context: ParseContext = { zipEntries: new Set() }): Promise<ImportItem[]> {
  const items: ImportItem[] = [];
  for await (const item of parser(valuesOf(document), context)) items.push(item);
  return items;
}
