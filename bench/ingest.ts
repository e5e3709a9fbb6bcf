/**
 * Ingest speed on the real eval files (../shared/eval), each file into a fresh session:
 * - text PDFs: pages/s of Memex's extraction (pdf.js in a worker thread, lines joined) against
 *   raw pdf.js (getTextContent on the main thread, strings concatenated) in the same run, and of
 *   the whole ingest (extract, chunk, embed, write);
 * - OCR: seconds per page through Memex against one raw tesseract.js `recognize` of the same image;
 * - peak memory (max RSS of this process) over the largest file.
 *
 *   npx tsx bench/ingest.ts [--json]
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';
import sharp from 'sharp';
import { Memex, type IngestResult } from '../src/index.js';
import { TesseractOcr } from '../src/ingest/index.js';
import { PdfDocument } from '../src/ingest/pdf.js';
import { IMAGES, PDFS, hasEvalFiles } from '../test/helpers/eval.js';
import { benchModel, machine } from './locomo.js';

if (!hasEvalFiles) {
  console.error('no eval files at ../shared/eval: nothing to measure');
  process.exit(1);
}
const asJson = process.argv.includes('--json');
const { model, modelDir } = benchModel();
const dataDir = await mkdtemp(join(tmpdir(), 'memex-bench-ingest-'));
const memex = await Memex.open({ dataDir, env: { MEMEX_MODEL_DIR: modelDir, MEMEX_MODEL: model }, onWarning: () => undefined });
await memex.users.create({ id: 'bench' });

async function ingestOnce(path: string): Promise<IngestResult> {
  const session = await memex.sessions.create('bench');
  return memex.ingestFile('bench', session.id, { path });
}

async function rawPdfjs(path: string): Promise<{ ms: number; pages: number; chars: number }> {
  const started = performance.now();
  const doc = await getDocument({ data: new Uint8Array(readFileSync(path)), verbosity: 0, isEvalSupported: false }).promise;
  let chars = 0;
  for (let i = 1; i <= doc.numPages; i++) {
    const page = await doc.getPage(i);
    const content = await page.getTextContent();
    for (const item of content.items) if ('str' in item) chars += item.str.length;
    page.cleanup();
  }
  const pages = doc.numPages;
  await doc.destroy();
  return { ms: performance.now() - started, pages, chars };
}

async function memexExtract(path: string): Promise<number> {
  const started = performance.now();
  const pdf = await PdfDocument.open(new Uint8Array(readFileSync(path)), { timeoutMs: 60_000 });
  for (let i = 1; i <= pdf.info.pages; i++) await pdf.pageText(i);
  await pdf.close();
  return performance.now() - started;
}

const text: Record<string, unknown>[] = [];
await memexExtract(join(PDFS, 'TAMReview.pdf')); // warm both paths once
await rawPdfjs(join(PDFS, 'TAMReview.pdf'));
for (const name of ['tracemonkey.pdf', 'TAMReview.pdf', 'Brotli-Prototype-FileA.pdf', 'freeculture.pdf']) {
  const path = join(PDFS, name);
  const raw = await rawPdfjs(path);
  const extract = await memexExtract(path);
  const full = await ingestOnce(path);
  const fullMs = Object.values(full.timings).reduce((a, b) => a + b, 0);
  text.push({
    file: name,
    pages: raw.pages,
    rawPagesPerS: round(raw.pages / (raw.ms / 1000)),
    extractPagesPerS: round(raw.pages / (extract / 1000)),
    ingestPagesPerS: round(raw.pages / (fullMs / 1000)),
    chunks: full.chunks,
    embedShare: round(full.timings.embed / fullMs),
  });
}

const engine = new TesseractOcr();
async function rawOcrSeconds(png: Uint8Array): Promise<number> {
  const started = performance.now();
  await engine.recognize(png, { timeoutMs: 600_000 });
  return (performance.now() - started) / 1000;
}
await rawOcrSeconds(await sharp(join(IMAGES, 'phototest.tif')).greyscale().png().toBuffer()); // load the model once

const ocr: Record<string, unknown>[] = [];
for (const [dir, name] of [
  [IMAGES, 'phototest.tif'],
  [IMAGES, 'eurotext.tif'],
  [IMAGES, '8087_054.3B.tif'],
  [IMAGES, 'pport_g4.tif'],
  [PDFS, 'issue7200.pdf'],
  [PDFS, 'issue7229.pdf'],
] as const) {
  const path = join(dir, name);
  const result = await ingestOnce(path);
  const pages = result.kind === 'pdf' ? result.file.content.kind === 'pdf' && result.file.content.ocrPages.length : result.pages;
  const raw = result.kind === 'image' ? await rawOcrSeconds(await sharp(path).greyscale().png().toBuffer()) : null;
  ocr.push({
    file: name,
    ocrPages: pages,
    secondsPerPage: round(result.timings.ocr / 1000 / Math.max(1, Number(pages))),
    rawTesseractSeconds: raw === null ? null : round(raw),
    chars: result.characters,
  });
}
await engine.close();
await memex.close();
await rm(dataDir, { recursive: true, force: true });

const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
const report = { machine: `${machine()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`, model, text, ocr, peakRssMb };
if (asJson) {
  console.log(JSON.stringify(report, null, 2));
} else {
  console.log(report.machine);
  console.table(text);
  console.table(ocr);
  console.log(`peak RSS of the whole run (largest file: freeculture.pdf, 352 pages, 2.6 MB): ${peakRssMb} MB`);
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
