import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { getDocument, OPS, PDFDateString, PDFWorker, type PDFDocumentProxy } from 'pdfjs-dist/legacy/build/pdf.mjs';
import { MemexError, isMemexError } from '../core/index.js';
import { joinTextRuns, type TextRun } from './pdf-text.js';

const require = createRequire(import.meta.url);
const PDFJS_ROOT = dirname(require.resolve('pdfjs-dist/package.json'));
const WORKER_URL = pathToFileURL(require.resolve('pdfjs-dist/legacy/build/pdf.worker.mjs')).href;
/** Started with `eval`, so it needs no file of its own in src/ or dist/: it only hands pdf.js the port. */
const WORKER_CODE = `const { workerData } = require('node:worker_threads');
import(${JSON.stringify(WORKER_URL)}).then(({ WorkerMessageHandler }) => WorkerMessageHandler.initializeFromPort(workerData.port));`;

export interface PdfInfo {
  pages: number;
  title: string | null;
  author: string | null;
  subject: string | null;
  creator: string | null;
  producer: string | null;
  createdAt: string | null;
  encrypted: boolean;
}

export interface PdfOpenOptions {
  password?: string;
  /** How long opening the document, or reading one page, may take before the parser is stopped. */
  timeoutMs: number;
}

/**
 * A PDF opened with pdf.js, parsed in its own worker thread: a file that sends the parser into a
 * loop, or blows its memory, stops that thread (after `timeoutMs`, or at its heap limit), never
 * the process. A page the parser cannot read throws for that page only; a page that hangs
 * restarts the thread for the pages after it.
 */
export class PdfDocument {
  private constructor(
    private readonly bytes: Uint8Array,
    private readonly options: PdfOpenOptions,
    private session: ParserSession,
    readonly info: PdfInfo,
  ) {}

  static async open(bytes: Uint8Array, options: PdfOpenOptions): Promise<PdfDocument> {
    const forms = passwordForms(options.password);
    let session: ParserSession | undefined;
    for (const [i, password] of forms.entries()) {
      options = { timeoutMs: options.timeoutMs, ...(password !== undefined ? { password } : {}) };
      try {
        session = await ParserSession.open(bytes, options);
        break;
      } catch (cause) {
        if (!isMemexError(cause, 'MEMEX_PDF_PASSWORD_INCORRECT') || i === forms.length - 1) throw cause;
      }
    }
    if (!session) throw new MemexError('MEMEX_INTERNAL', 'no way to open the PDF was tried');
    try {
      const info = await session.timed(readInfo(session.doc), 'reading the document information');
      return new PdfDocument(bytes, options, session, info);
    } catch (cause) {
      await session.close();
      throw cause;
    }
  }

  /** The page's text, lines and columns joined (see pdf-text.ts). */
  async pageText(page: number): Promise<string> {
    return this.onPage(page, async (doc) => {
      const proxy = await doc.getPage(page);
      try {
        const content = await proxy.getTextContent();
        return joinTextRuns(content.items.filter((item): item is TextRun & typeof item => 'str' in item));
      } finally {
        proxy.cleanup();
      }
    });
  }

  /** Whether the page paints any image: a page with no text and no image is blank, not a scan. */
  async pageHasImages(page: number): Promise<boolean> {
    return this.onPage(page, async (doc) => {
      const proxy = await doc.getPage(page);
      try {
        const { fnArray } = await proxy.getOperatorList();
        return fnArray.some((op) => op === OPS.paintImageXObject || op === OPS.paintInlineImageXObject || op === OPS.paintImageMaskXObject || op === OPS.paintImageXObjectRepeat);
      } finally {
        proxy.cleanup();
      }
    });
  }

  /**
   * The page rendered to PNG at `dpi`, scaled down to stay within `maxSide` and `maxPixels`; null
   * when no canvas is installed (@napi-rs/canvas, an optional dependency of pdfjs-dist).
   */
  async renderPage(page: number, dpi: number, limits: { maxSide: number; maxPixels: number }): Promise<{ png: Uint8Array; width: number; height: number } | null> {
    const canvasModule = await import('@napi-rs/canvas').catch(() => null);
    if (!canvasModule) return null;
    return this.onPage(page, async (doc) => {
      const proxy = await doc.getPage(page);
      try {
        const base = proxy.getViewport({ scale: 1 });
        let scale = dpi / 72;
        scale = Math.min(scale, limits.maxSide / Math.max(base.width, base.height), Math.sqrt(limits.maxPixels / (base.width * base.height)));
        const viewport = proxy.getViewport({ scale });
        const width = Math.max(1, Math.floor(viewport.width));
        const height = Math.max(1, Math.floor(viewport.height));
        const canvas = canvasModule.createCanvas(width, height);
        const context = canvas.getContext('2d');
        context.fillStyle = '#ffffff';
        context.fillRect(0, 0, width, height);
        // pdf.js draws on any canvas with the DOM's 2D API; @napi-rs/canvas provides it.
        await proxy.render({ canvas, canvasContext: context, viewport }).promise;
        return { png: await canvas.encode('png'), width, height };
      } finally {
        proxy.cleanup();
      }
    });
  }

  async close(): Promise<void> {
    await this.session.close();
  }

  private async onPage<T>(page: number, work: (doc: PDFDocumentProxy) => Promise<T>): Promise<T> {
    try {
      return await this.session.timed(work(this.session.doc), `reading page ${page}`);
    } catch (cause) {
      if (cause instanceof ParserTimeout) {
        // The thread may still be busy with that page: start over on a fresh one for the next.
        await this.session.close();
        this.session = await ParserSession.open(this.bytes, this.options);
      }
      throw cause;
    }
  }
}

class ParserTimeout extends Error {}

/** One worker thread and the document pdf.js opened in it. */
class ParserSession {
  private constructor(
    private readonly thread: Worker,
    private readonly port: MessagePort,
    private readonly worker: PDFWorker,
    readonly doc: PDFDocumentProxy,
    private readonly timeoutMs: number,
    private readonly died: Promise<never>,
  ) {}

  static async open(bytes: Uint8Array, options: PdfOpenOptions): Promise<ParserSession> {
    const { port1, port2 } = new MessageChannel();
    // The heap limit bounds what a hostile file can make the parser allocate.
    const thread = new Worker(WORKER_CODE, { eval: true, workerData: { port: port2 }, transferList: [port2], resourceLimits: { maxOldGenerationSizeMb: 2048 } });
    const died = new Promise<never>((_, reject) => {
      thread.once('error', (cause) => reject(new MemexError('MEMEX_PDF_INVALID', `the PDF parser stopped: ${cause.message}`, { cause })));
      thread.once('exit', () => reject(new MemexError('MEMEX_PDF_INVALID', 'the PDF parser stopped')));
    });
    died.catch(() => undefined);
    const port = port1;
    // pdf.js expects a DOM MessagePort; Node's has the same addEventListener / postMessage.
    const worker = new PDFWorker({ port: port as unknown as NonNullable<ConstructorParameters<typeof PDFWorker>[0]>['port'], verbosity: 0 });
    const task = getDocument({
      // pdf.js takes ownership of (and detaches) the buffer it is given, and refuses a Buffer: a plain copy.
      data: new Uint8Array(bytes),
      worker,
      ...(options.password !== undefined ? { password: options.password } : {}),
      isEvalSupported: false,
      useSystemFonts: false,
      verbosity: 0,
      cMapUrl: join(PDFJS_ROOT, 'cmaps') + '/',
      cMapPacked: true,
      standardFontDataUrl: join(PDFJS_ROOT, 'standard_fonts') + '/',
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      const doc = await Promise.race([
        task.promise,
        died,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new MemexError('MEMEX_PDF_INVALID', `the PDF did not open within ${options.timeoutMs} ms`)), options.timeoutMs);
        }),
      ]);
      return new ParserSession(thread, port, worker, doc, options.timeoutMs, died);
    } catch (cause) {
      await task.destroy().catch(() => undefined);
      worker.destroy();
      port1.close();
      await thread.terminate();
      throw openError(cause, options.password !== undefined);
    } finally {
      clearTimeout(timer);
    }
  }

  async timed<T>(work: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        work,
        this.died,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new ParserTimeout(`${what} took longer than ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.race([this.doc.destroy(), new Promise((resolve) => setTimeout(resolve, 1_000))]).catch(() => undefined);
    this.worker.destroy();
    this.port.close();
    await this.thread.terminate();
  }
}

/**
 * The password as given, then (when it has non-ASCII characters) as its UTF-8 bytes, one per char:
 * pdf.js reads an AES-256 revision 5 password that way (revision 6 and older ones it encodes itself).
 */
function passwordForms(password: string | undefined): (string | undefined)[] {
  if (password === undefined || [...password].every((char) => char.charCodeAt(0) < 0x80)) return [password];
  return [password, Buffer.from(password.normalize('NFC'), 'utf8').toString('latin1')];
}

function openError(cause: unknown, passwordGiven: boolean): MemexError {
  if (cause instanceof MemexError) return cause;
  const name = (cause as { name?: unknown } | null)?.name;
  const code = (cause as { code?: unknown } | null)?.code;
  const message = cause instanceof Error ? cause.message : String(cause);
  if (name === 'PasswordException') {
    // pdf.js: 1 = a password is needed, 2 = the one given is wrong.
    if (code === 2 || passwordGiven) return new MemexError('MEMEX_PDF_PASSWORD_INCORRECT', 'the password given does not open this PDF', { cause });
    return new MemexError('MEMEX_PDF_ENCRYPTED', 'the PDF is password-protected; give its password to ingest it', { cause });
  }
  return new MemexError('MEMEX_PDF_INVALID', `the PDF cannot be read: ${message}`, { cause, details: { parserError: typeof name === 'string' ? name : null } });
}

async function readInfo(doc: PDFDocumentProxy): Promise<PdfInfo> {
  const metadata = await doc.getMetadata().catch(() => null);
  const info = (metadata?.info ?? {}) as Record<string, unknown>;
  const text = (key: string): string | null => {
    const value = info[key];
    return typeof value === 'string' && value.trim() !== '' ? value.trim() : null;
  };
  const created = text('CreationDate');
  const date = created ? PDFDateString.toDateObject(created) : null;
  return {
    pages: doc.numPages,
    title: xmpTitle(metadata?.metadata) ?? text('Title'),
    author: text('Author'),
    subject: text('Subject'),
    creator: text('Creator'),
    producer: text('Producer'),
    createdAt: date && !Number.isNaN(date.getTime()) ? date.toISOString() : created,
    encrypted: typeof info.EncryptFilterName === 'string',
  };
}

/** The XMP `dc:title` (often better than the Info dictionary's), when the document has one. */
function xmpTitle(xmp: { get(name: string): unknown } | null | undefined): string | null {
  const title: unknown = xmp?.get('dc:title');
  return typeof title === 'string' && title.trim() !== '' ? title.trim() : null;
}
