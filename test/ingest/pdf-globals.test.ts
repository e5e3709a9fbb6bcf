import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EVAL_FILES_MISSING, hasEvalFiles, PDFS } from '../helpers/eval.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

const run = promisify(execFile);
const ENTRY = pathToFileURL(join(import.meta.dirname, '../../dist/index.js')).href;

/**
 * pdf.js's legacy build replaced JSON.stringify (9-13x slower), JSON.parse, Array.prototype.push
 * and more in every Memex process. A fresh process (its globals untouched by vitest) records the
 * built-ins, imports the package and ingests a PDF, then compares: each must be the same function.
 * (`toString()` is no test: core-js makes its replacements print `[native code]` too.)
 */
describe.skipIf(!hasEvalFiles)('pdf.js and the main thread (regression: pdf.js replaced JSON.stringify and other globals)', () => {
  it('leaves JSON, Array, Set, Map, Promise and the other globals of the importing process as they were, after a PDF is ingested', async () => {
    const dir = await tempDir();
    const dataDir = join(dir, 'data');
    const script = `
      const watched = { 'JSON.stringify': JSON.stringify, 'JSON.parse': JSON.parse, 'Array.prototype.push': Array.prototype.push,
        'Promise.withResolvers': Promise.withResolvers, 'Set.prototype.union': Set.prototype.union, 'Map.prototype.getOrInsert': Map.prototype.getOrInsert,
        'Uint8Array.prototype.toHex': Uint8Array.prototype.toHex, 'ArrayBuffer.prototype.transfer': Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'transfer')?.value,
        'globalThis.DOMMatrix': globalThis.DOMMatrix, 'globalThis.pdfjsLib': globalThis.pdfjsLib, 'globalThis.Iterator': globalThis.Iterator,
        'globalThis.Blob': globalThis.Blob, 'globalThis.MessageChannel': globalThis.MessageChannel, 'globalThis.DOMException': globalThis.DOMException };
      const now = () => ({ ...watched, 'JSON.stringify': JSON.stringify, 'JSON.parse': JSON.parse, 'Array.prototype.push': Array.prototype.push,
        'Promise.withResolvers': Promise.withResolvers, 'Set.prototype.union': Set.prototype.union, 'Map.prototype.getOrInsert': Map.prototype.getOrInsert,
        'Uint8Array.prototype.toHex': Uint8Array.prototype.toHex, 'ArrayBuffer.prototype.transfer': Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'transfer')?.value,
        'globalThis.DOMMatrix': globalThis.DOMMatrix, 'globalThis.pdfjsLib': globalThis.pdfjsLib, 'globalThis.Iterator': globalThis.Iterator,
        'globalThis.Blob': globalThis.Blob, 'globalThis.MessageChannel': globalThis.MessageChannel, 'globalThis.DOMException': globalThis.DOMException });
      const { Memex } = await import(${JSON.stringify(ENTRY)});
      const memex = await Memex.open({ dataDir: ${JSON.stringify(dataDir)}, onWarning: () => undefined });
      await memex.users.create({ id: 'u' });
      const session = await memex.sessions.create('u');
      const result = await memex.ingestFile('u', session.id, { path: ${JSON.stringify(join(PDFS, 'issue11656.pdf'))} }, { name: 'issue11656.pdf' });
      await memex.close();
      const after = now();
      const changed = Object.keys(watched).filter((key) => after[key] !== watched[key]);
      process.stdout.write(JSON.stringify({ kind: result.kind, pages: result.pages, changed }));
    `;
    await writeFile(join(dir, 'check.mjs'), script);
    const { stdout } = await run(process.execPath, [join(dir, 'check.mjs')], { env: { ...process.env, ...modelEnv }, timeout: 60_000 });
    const report = JSON.parse(stdout) as { kind: string; pages: number; changed: string[] };
    expect(report.kind).toBe('pdf');
    expect(report.pages).toBeGreaterThan(0);
    expect(report.changed).toEqual([]);
  }, 90_000);
});
it.skipIf(hasEvalFiles)(EVAL_FILES_MISSING, () => undefined);
