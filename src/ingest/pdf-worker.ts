/**
 * The whole of pdf.js, in a worker thread of its own (started by pdf.ts): its legacy build replaces
 * globals when it loads (`JSON.stringify`, `JSON.parse`, `Array.prototype.push`, ... through
 * core-js, making them many times slower), so it must never load in the main thread. Here it only
 * changes this thread's globals, which end with the thread. The display layer and the parser
 * share the thread (pdf.js's in-thread "fake worker"); the main thread asks for one thing at a time.
 */
import { parentPort } from 'node:worker_threads';
import { getDocument, OPS, PDFDateString, type PDFDocumentProxy } from 'pdfjs-dist/legacy/build/pdf.mjs';
import { joinTextRuns, type TextRun } from './pdf-text.js';
import type { PdfInfo, PdfReply, PdfRequest } from './pdf-protocol.js';

// pdf.js runs its parser in this thread when it finds the handler here, instead of starting a worker.
// (A specifier in a variable: the worker build ships no types, and only this one export is used.)
const PARSER: string = 'pdfjs-dist/legacy/build/pdf.worker.mjs';
const { WorkerMessageHandler } = (await import(PARSER)) as { WorkerMessageHandler: unknown };
(globalThis as { pdfjsWorker?: unknown }).pdfjsWorker = { WorkerMessageHandler };

let doc: PDFDocumentProxy | null = null;

const port = parentPort;
if (!port) throw new Error('pdf-worker.ts runs as a worker thread (see pdf.ts)');

port.on('message', (request: PdfRequest) => {
  handle(request).then(
    ({ value, transfer }) => port.postMessage({ id: request.id, ok: true, value } satisfies PdfReply, transfer),
    (cause: unknown) => port.postMessage({ id: request.id, ok: false, error: describe(cause) } satisfies PdfReply),
  );
});

async function handle(request: PdfRequest): Promise<{ value: unknown; transfer: ArrayBuffer[] }> {
  switch (request.op) {
    case 'open': {
      const task = getDocument({
        data: request.data,
        ...(request.password !== undefined ? { password: request.password } : {}),
        isEvalSupported: false,
        useSystemFonts: false,
        verbosity: 0,
        cMapUrl: request.cMapUrl,
        cMapPacked: true,
        standardFontDataUrl: request.standardFontDataUrl,
      });
      doc = await task.promise;
      return { value: await readInfo(doc), transfer: [] };
    }
    case 'pageText':
      return { value: await onPage(request.page, async (page) => {
        const content = await page.getTextContent();
        return joinTextRuns(content.items.filter((item): item is TextRun & typeof item => 'str' in item));
      }), transfer: [] };
    case 'pageHasImages':
      return { value: await onPage(request.page, async (page) => {
        const { fnArray } = await page.getOperatorList();
        return fnArray.some((op) => op === OPS.paintImageXObject || op === OPS.paintInlineImageXObject || op === OPS.paintImageMaskXObject || op === OPS.paintImageXObjectRepeat);
      }), transfer: [] };
    case 'renderPage': {
      const image = await renderPage(request.page, request.dpi, request.maxSide, request.maxPixels);
      return { value: image, transfer: image ? [image.png.buffer as ArrayBuffer] : [] };
    }
  }
}

async function onPage<T>(number: number, work: (page: Awaited<ReturnType<PDFDocumentProxy['getPage']>>) => Promise<T>): Promise<T> {
  if (!doc) throw new Error('no document is open');
  const page = await doc.getPage(number);
  try {
    return await work(page);
  } finally {
    page.cleanup();
  }
}

/** The page as PNG, scaled to fit the limits; null when no canvas is installed (@napi-rs/canvas is optional). */
async function renderPage(number: number, dpi: number, maxSide: number, maxPixels: number): Promise<{ png: Uint8Array; width: number; height: number } | null> {
  const canvasModule = await import('@napi-rs/canvas').catch(() => null);
  if (!canvasModule) return null;
  return onPage(number, async (page) => {
    const base = page.getViewport({ scale: 1 });
    const scale = Math.min(dpi / 72, maxSide / Math.max(base.width, base.height), Math.sqrt(maxPixels / (base.width * base.height)));
    const viewport = page.getViewport({ scale });
    const width = Math.max(1, Math.floor(viewport.width));
    const height = Math.max(1, Math.floor(viewport.height));
    const canvas = canvasModule.createCanvas(width, height);
    const context = canvas.getContext('2d');
    context.fillStyle = '#ffffff';
    context.fillRect(0, 0, width, height);
    // pdf.js draws on any canvas with the DOM's 2D API; @napi-rs/canvas provides it.
    await page.render({ canvas, canvasContext: context, viewport }).promise;
    return { png: new Uint8Array(await canvas.encode('png')), width, height };
  });
}

async function readInfo(document: PDFDocumentProxy): Promise<PdfInfo> {
  const metadata = await document.getMetadata().catch(() => null);
  const info = (metadata?.info ?? {}) as Record<string, unknown>;
  const text = (key: string): string | null => {
    const value = info[key];
    return typeof value === 'string' && value.trim() !== '' ? value.trim() : null;
  };
  const created = text('CreationDate');
  const date = created ? PDFDateString.toDateObject(created) : null;
  const xmp: unknown = metadata?.metadata?.get('dc:title');
  return {
    pages: document.numPages,
    // The XMP `dc:title` is often better than the Info dictionary's.
    title: (typeof xmp === 'string' && xmp.trim() !== '' ? xmp.trim() : null) ?? text('Title'),
    author: text('Author'),
    subject: text('Subject'),
    creator: text('Creator'),
    producer: text('Producer'),
    createdAt: date && !Number.isNaN(date.getTime()) ? date.toISOString() : created,
    encrypted: typeof info.EncryptFilterName === 'string',
  };
}

/** What the main thread needs of an error to give it a code: pdf.js names its exceptions. */
function describe(cause: unknown): { name: string | null; code: number | null; message: string } {
  const name = (cause as { name?: unknown } | null)?.name;
  const code = (cause as { code?: unknown } | null)?.code;
  return {
    name: typeof name === 'string' ? name : null,
    code: typeof code === 'number' ? code : null,
    message: cause instanceof Error ? cause.message : String(cause),
  };
}
