import {
  FORMAT_VERSION,
  FileTextSchema,
  MemexError,
  isMemexError,
  type Chunk,
  type Config,
  type FileContent,
  type FileRecord,
  type FileText,
  type IngestWarning,
  type Metadata,
  type TextUnit,
} from '../core/index.js';
import { chunkSource, chunkingFor, type ChunkingOptions } from '../chunking/index.js';
import type { Embedder } from '../embedding/index.js';
import type { FileSource, Store } from '../store/index.js';
import { decodeImage, loadSharp } from './image.js';
import { OcrStopped, type OcrEngine, type OcrResult } from './ocr.js';
import { PdfDocument } from './pdf.js';
import { isTextType, readTextDocument } from './text.js';

export const INGEST_PHASES = ['store', 'extract', 'ocr', 'chunk', 'embed', 'write', 'index'] as const;
export type IngestPhase = (typeof INGEST_PHASES)[number];

/** Where an ingest is: `done` of `total` in the phase (pages for extract and ocr, chunks for embed). */
export interface IngestProgress {
  phase: IngestPhase;
  done: number;
  total: number;
}

export interface IngestFileOptions {
  /** The name the caller knows the file by; the type is read from the bytes, never from this. */
  name?: string;
  /** Opens a password-protected PDF. */
  password?: string;
  metadata?: Metadata;
  signal?: AbortSignal;
  onProgress?: (progress: IngestProgress) => void;
}

export interface IngestResult {
  /** The file's record, with what ingest learned in `content`. */
  file: FileRecord & { content: FileContent };
  kind: FileContent['kind'];
  /** False when these bytes were already ingested in this session: nothing was parsed or embedded again. */
  ingested: boolean;
  pages: number;
  chunks: number;
  characters: number;
  warnings: IngestWarning[];
  /** Milliseconds spent in each phase of this call. */
  timings: Record<IngestPhase, number>;
}

export interface IngestParts {
  store: Store;
  embedder: () => Promise<Embedder>;
  ocr: () => OcrEngine;
  config: Config;
  /** The session got new rows (the search index takes them in). */
  onIndexed: (userId: string, sessionId: string) => Promise<void>;
}

/** Chunks embedded per model call while reporting progress between calls. */
const EMBED_BATCH = 64;

/**
 * Stores a PDF or image in a session and makes its text searchable: store the original
 * (content-addressed: the same bytes are stored, parsed and embedded once per session), extract
 * text page by page (the text layer, else OCR), chunk, embed, write the rows, update the index.
 *
 * All rows of the file are written in one append after everything else succeeded, so a cancelled
 * or failed ingest leaves no rows behind; a file this call stored is removed again on failure.
 * A page that cannot be read, or OCRed in time, is a warning; the rest of the file is kept.
 */
export async function ingestFile(parts: IngestParts, userId: string, sessionId: string, source: FileSource, options: IngestFileOptions = {}): Promise<IngestResult> {
  const { store, config } = parts;
  const timings = Object.fromEntries(INGEST_PHASES.map((phase) => [phase, 0])) as Record<IngestPhase, number>;
  const clock = new PhaseClock(timings);
  const progress = (phase: IngestPhase, done: number, total: number): void => options.onProgress?.({ phase, done, total });
  checkAborted(options.signal);
  // The model is checked first: a data dir of another model refuses before anything is kept.
  const embedder = await parts.embedder();

  clock.start('store');
  progress('store', 0, 1);
  const put = await store.putFile(userId, sessionId, { source, ...(options.name !== undefined ? { name: options.name } : {}), ...(options.metadata ? { metadata: options.metadata } : {}) });
  progress('store', 1, 1);
  const { file } = put;
  if (file.content) {
    clock.stop();
    return { file: { ...file, content: file.content }, kind: file.content.kind, ingested: false, pages: file.content.pages, chunks: file.content.chunks, characters: file.content.characters, warnings: file.content.warnings, timings };
  }
  try {
    const kind = kindOf(file);
    const bytes = await readAll(await store.readFile(userId, sessionId, file.id));
    const extracted =
      kind === 'pdf' ? await extractPdf(parts, bytes, options, clock, progress) : kind === 'image' ? await extractImage(parts, bytes, options, clock, progress) : extractText(parts, bytes, file.mimeType, clock, progress);

    clock.start('chunk');
    const chunking = chunkingFor(config.chunking, embedder);
    const units = extracted.units.filter((unit) => unit.text.trim() !== '');
    const chunks = await chunksOfFile(file.id, units, chunking);
    const characters = units.reduce((sum, unit) => sum + unit.text.length, 0);
    if (chunks.length === 0) extracted.warnings.push({ code: 'no-text', message: 'no text was found in the file; it is stored, but search cannot find it' });

    clock.start('embed');
    const vectors: Float32Array[] = [];
    for (let i = 0; i < chunks.length; i += EMBED_BATCH) {
      progress('embed', i, chunks.length);
      const batch = chunks.slice(i, i + EMBED_BATCH);
      vectors.push(...(await embedder.embed(batch.map((chunk) => chunk.text), options.signal ? { signal: options.signal } : {})));
    }
    progress('embed', chunks.length, chunks.length);

    clock.start('write');
    checkAborted(options.signal);
    const text: FileText = { v: FORMAT_VERSION, kind: 'memex-file-text', fileId: file.id, units };
    await store.writeFileArtifact(userId, sessionId, file.id, 'text.json', `${JSON.stringify(text)}\n`);
    for (const artifact of extracted.artifacts) await store.writeFileArtifact(userId, sessionId, file.id, artifact.name, artifact.bytes);
    // The commit point: every row of the file in one append.
    if (chunks.length > 0) await store.appendVectors(userId, sessionId, { model: embedder.modelId, chunks, vectors });
    const content = extracted.content({ pages: extracted.pages, chunks: chunks.length, characters, warnings: extracted.warnings, ingestedAt: new Date().toISOString() });
    const record = await store.setFileContent(userId, sessionId, file.id, content);

    clock.start('index');
    // An index that cannot take the rows now syncs them on the next search.
    if (chunks.length > 0) await parts.onIndexed(userId, sessionId).catch(() => undefined);
    clock.stop();
    return { file: { ...record, content }, kind, ingested: true, pages: extracted.pages, chunks: chunks.length, characters, warnings: extracted.warnings, timings };
  } catch (cause) {
    clock.stop();
    if (put.created) await store.deleteFile(userId, sessionId, file.id).catch(() => undefined);
    throw cause;
  }
}

/**
 * The chunks of a file's pages (or a text document's sections), ids `<fileId>:<page>:<index>`: the
 * same text always gives the same ids. A section's chunks carry its heading path; a text
 * document is cut at line breaks before sentence ends (its lines are lists, table rows, code).
 */
export async function chunksOfFile(fileId: FileRecord['id'], units: readonly TextUnit[], chunking: ChunkingOptions): Promise<Chunk[]> {
  const chunks: Chunk[] = [];
  for (const unit of units) {
    const source = { kind: 'file' as const, fileId, page: unit.page, ...(unit.headings && unit.headings.length > 0 ? { headings: unit.headings } : {}) };
    const options = unit.method === 'text' ? { ...chunking, lines: true } : chunking;
    for (const chunk of await chunkSource(source, unit.text, options)) chunks.push(chunk);
  }
  return chunks;
}

/**
 * The chunks of every ingested file of a session, from the text kept at ingest (never parsed or
 * OCRed again): what a reindex embeds beside the messages.
 */
export async function sessionFileChunks(
  store: Store,
  userId: string,
  sessionId: string,
  chunking: ChunkingOptions,
  /** Only these of the session's files (default: all of them). */
  files?: readonly FileRecord[],
): Promise<{ file: FileRecord; chunks: Chunk[] }[]> {
  const out: { file: FileRecord; chunks: Chunk[] }[] = [];
  for (const file of files ?? (await store.listFiles(userId, sessionId))) {
    if (!file.content) continue;
    const raw: unknown = JSON.parse((await store.readFileArtifact(userId, sessionId, file.id, 'text.json')).toString('utf8'));
    const parsed = FileTextSchema.safeParse(raw);
    if (!parsed.success) throw new MemexError('MEMEX_SESSION_CORRUPT', `the extracted text of file ${file.id} in session ${sessionId} cannot be read`, { cause: parsed.error, details: { sessionId, fileId: file.id } });
    out.push({ file, chunks: await chunksOfFile(file.id, parsed.data.units, chunking) });
  }
  return out;
}

type ContentOf = (base: Pick<FileContent, 'pages' | 'chunks' | 'characters' | 'warnings' | 'ingestedAt'>) => FileContent;

interface Extraction {
  pages: number;
  units: TextUnit[];
  warnings: IngestWarning[];
  artifacts: { name: 'thumb.webp' | 'display.webp'; bytes: Uint8Array }[];
  content: ContentOf;
}

type Progress = (phase: IngestPhase, done: number, total: number) => void;

async function extractPdf(parts: IngestParts, bytes: Uint8Array, options: IngestFileOptions, clock: PhaseClock, progress: Progress): Promise<Extraction> {
  const { ingest } = parts.config;
  clock.start('extract');
  const pdf = await PdfDocument.open(bytes, { ...(options.password !== undefined ? { password: options.password } : {}), timeoutMs: ingest.ocr.pageTimeoutMs });
  try {
    const { info } = pdf;
    if (info.pages > ingest.maxPages) {
      throw new MemexError('MEMEX_TOO_MANY_PAGES', `the PDF has ${info.pages} pages; the limit is ${ingest.maxPages}`, { details: { pages: info.pages, maxPages: ingest.maxPages } });
    }
    const warnings: IngestWarning[] = [];
    if (pdf.attachmentsSkipped) {
      warnings.push({ code: 'attachments-skipped', message: 'the PDF encrypts only its embedded files: its pages were read without a password, its attachments were skipped' });
    }
    const units: TextUnit[] = [];
    const scans: number[] = [];
    for (let page = 1; page <= info.pages; page++) {
      checkAborted(options.signal);
      progress('extract', page - 1, info.pages);
      try {
        const text = await pdf.pageText(page);
        if (text.replace(/\s/g, '').length >= ingest.ocr.minPageChars) units.push({ page, text, method: 'text-layer' });
        else if (await pdf.pageHasImages(page)) scans.push(page);
        else if (text.trim() !== '') units.push({ page, text, method: 'text-layer' });
      } catch (cause) {
        if (isMemexError(cause, 'MEMEX_ABORTED')) throw cause;
        warnings.push({ code: 'page-unreadable', page, message: `page ${page} cannot be read (${messageOf(cause)}); the other pages are kept` });
      }
    }
    progress('extract', info.pages, info.pages);

    clock.start('ocr');
    const ocrPages: number[] = [];
    const ocr = new OcrBudget(parts, options.signal, warnings);
    for (const [i, page] of scans.entries()) {
      progress('ocr', i, scans.length);
      if (!ocr.canRun(page)) continue;
      let image;
      try {
        image = await pdf.renderPage(page, ingest.ocr.dpi, { maxSide: ingest.maxImageSide, maxPixels: ingest.maxImagePixels });
      } catch (cause) {
        warnings.push({ code: 'page-unreadable', page, message: `page ${page} has no text layer and cannot be rendered (${messageOf(cause)})` });
        continue;
      }
      if (!image) {
        warnings.push({ code: 'render-unavailable', page, message: `page ${page} has no text layer, and no canvas is installed to render it for OCR (npm install @napi-rs/canvas)` });
        continue;
      }
      const result = await ocr.read(image.png, page, { dpi: ingest.ocr.dpi, retryTurned: false });
      if (result) {
        units.push({ page, text: result.text, method: 'ocr', confidence: result.confidence, lines: result.lines, rotation: result.rotation, imageSize: { width: image.width, height: image.height } });
        ocrPages.push(page);
      }
    }
    progress('ocr', scans.length, scans.length);
    units.sort((a, b) => a.page - b.page);
    return {
      pages: info.pages,
      units,
      warnings,
      artifacts: [],
      content: (base) => ({ ...base, kind: 'pdf', title: info.title, author: info.author, subject: info.subject, creator: info.creator, producer: info.producer, createdAt: info.createdAt, encrypted: info.encrypted, ocrPages }),
    };
  } finally {
    await pdf.close();
  }
}

function extractText(parts: IngestParts, bytes: Uint8Array, mimeType: string, clock: PhaseClock, progress: Progress): Extraction {
  clock.start('extract');
  progress('extract', 0, 1);
  const document = readTextDocument(bytes, mimeType, parts.config.ingest);
  progress('extract', 1, 1);
  return {
    pages: document.units.length,
    units: document.units,
    warnings: document.warnings,
    artifacts: [],
    content: (base) => ({ ...base, kind: 'text', format: document.format, title: document.title }),
  };
}

async function extractImage(parts: IngestParts, bytes: Uint8Array, options: IngestFileOptions, clock: PhaseClock, progress: Progress): Promise<Extraction> {
  const { ingest } = parts.config;
  clock.start('extract');
  progress('extract', 0, 1);
  const image = await decodeImage(bytes, ingest);
  progress('extract', 1, 1);
  const { warnings } = image;

  clock.start('ocr');
  const units: TextUnit[] = [];
  const confidences: number[] = [];
  const ocr = new OcrBudget(parts, options.signal, warnings);
  for (const [i, page] of image.pages.entries()) {
    progress('ocr', i, image.pages.length);
    if (!ocr.canRun(page.page)) continue;
    const result = await ocr.read(page.png, page.page, { retryTurned: true });
    if (!result) continue;
    confidences.push(result.confidence);
    units.push({ page: page.page, text: result.text, method: 'ocr', confidence: result.confidence, lines: result.lines, rotation: result.rotation, imageSize: { width: page.width, height: page.height } });
  }
  progress('ocr', image.pages.length, image.pages.length);
  const ocrConfidence = confidences.length > 0 ? Math.round((confidences.reduce((a, b) => a + b, 0) / confidences.length) * 10) / 10 : null;
  return {
    pages: image.pages.length,
    units,
    warnings,
    artifacts: [
      { name: 'display.webp', bytes: image.display },
      { name: 'thumb.webp', bytes: image.thumbnail.bytes },
    ],
    content: (base) => ({
      ...base,
      kind: 'image',
      format: image.format,
      width: image.width,
      height: image.height,
      pagesInFile: image.pagesInFile,
      animated: image.animated,
      orientation: image.orientation,
      ocrConfidence,
      thumbnail: { width: image.thumbnail.width, height: image.thumbnail.height },
    }),
  };
}

/** OCR of one file's pages under the per-page timeout and the per-file budget; failures become warnings. */
class OcrBudget {
  private spent = 0;
  private exhausted = false;

  constructor(
    private readonly parts: IngestParts,
    private readonly signal: AbortSignal | undefined,
    private readonly warnings: IngestWarning[],
  ) {}

  canRun(page: number): boolean {
    const { ocr } = this.parts.config.ingest;
    checkAborted(this.signal);
    if (!ocr.enabled) {
      this.warnings.push({ code: 'ocr-disabled', page, message: `page ${page} is an image and OCR is off (ingest.ocr.enabled)` });
      return false;
    }
    if (this.exhausted || this.spent >= ocr.fileTimeoutMs) {
      this.exhausted = true;
      this.warnings.push({ code: 'ocr-budget-exhausted', page, message: `page ${page} was not OCRed: the file used its ${ocr.fileTimeoutMs} ms of OCR (ingest.ocr.fileTimeoutMs)` });
      return false;
    }
    return true;
  }

  /** `retryTurned`: read a doubtful page again upside down (images; a rendered PDF page is upright far more often, and twice the OCR of a page costs seconds). */
  async read(png: Uint8Array, page: number, { dpi, retryTurned }: { dpi?: number; retryTurned: boolean }): Promise<(OcrResult & { rotation: 0 | 180 }) | null> {
    const { ocr } = this.parts.config.ingest;
    const started = performance.now();
    const read = (image: Uint8Array): Promise<OcrResult> => {
      const timeoutMs = Math.max(1, Math.min(ocr.pageTimeoutMs, ocr.fileTimeoutMs - (this.spent + performance.now() - started)));
      return this.parts.ocr().recognize(image, { timeoutMs, minLineConfidence: ocr.minLineConfidence, ...(dpi ? { dpi } : {}), ...(this.signal ? { signal: this.signal } : {}) });
    };
    try {
      const upright = await read(png);
      if (!retryTurned || upright.confidence >= ocr.retryUpsideDownBelow) return { ...upright, rotation: 0 };
      const sharp = await loadSharp();
      const turned = await read(await sharp(png).rotate(180).png({ compressionLevel: 1 }).toBuffer());
      return turned.confidence > upright.confidence && turned.text.length > 0 ? { ...turned, rotation: 180 } : { ...upright, rotation: 0 };
    } catch (cause) {
      if (cause instanceof OcrStopped && cause.reason === 'aborted') checkAborted(this.signal, cause);
      if (isMemexError(cause, 'MEMEX_OCR_UNAVAILABLE')) throw cause;
      if (cause instanceof OcrStopped) {
        this.warnings.push({ code: 'ocr-timeout', page, message: `OCR of page ${page} took longer than ${ocr.pageTimeoutMs} ms and was stopped (ingest.ocr.pageTimeoutMs)` });
      } else {
        this.warnings.push({ code: 'ocr-failed', page, message: `OCR of page ${page} failed: ${messageOf(cause)}` });
      }
      return null;
    } finally {
      this.spent += performance.now() - started;
    }
  }
}

/** Adds the time since the last `start` to that phase. */
class PhaseClock {
  private phase: IngestPhase | null = null;
  private since = 0;

  constructor(private readonly timings: Record<IngestPhase, number>) {}

  start(phase: IngestPhase): void {
    this.stop();
    this.phase = phase;
    this.since = performance.now();
  }

  stop(): void {
    if (this.phase) this.timings[this.phase] += Math.round((performance.now() - this.since) * 10) / 10;
    this.phase = null;
  }
}

function kindOf(file: FileRecord): FileContent['kind'] {
  if (file.mimeType === 'application/pdf') return 'pdf';
  if (file.mimeType.startsWith('image/')) return 'image';
  if (isTextType(file.mimeType)) return 'text';
  throw new MemexError('MEMEX_FILE_TYPE_UNSUPPORTED', `${file.name || 'the file'} is ${file.mimeType}; ingest reads PDFs, images (PNG, JPEG, GIF, WebP, TIFF) and UTF-8 text (.txt, .md, .html, .json)`, {
    details: { mimeType: file.mimeType },
  });
}

function checkAborted(signal: AbortSignal | undefined, cause?: unknown): void {
  if (signal?.aborted || cause !== undefined) {
    throw new MemexError('MEMEX_ABORTED', 'the ingest was cancelled; no rows of the file were written', { cause: cause ?? signal?.reason });
  }
}

async function readAll(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message.split('\n')[0] ?? '' : String(cause);
}
