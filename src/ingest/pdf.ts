import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { MemexError, isMemexError } from '../core/index.js';
import { encryptsOnlyAttachments, withoutEncryption } from './pdf-encryption.js';
import type { PdfInfo, PdfReply, PdfRequest } from './pdf-protocol.js';

export type { PdfInfo } from './pdf-protocol.js';

const require = createRequire(import.meta.url);
const PDFJS_ROOT = dirname(require.resolve('pdfjs-dist/package.json'));
/** Built, the worker is pdf-worker.js beside this file; from the TypeScript sources (tests, tsx) it is pdf-worker.ts. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(FROM_SOURCE ? './pdf-worker.ts' : './pdf-worker.js', import.meta.url);
/** The heap limit bounds what a hostile file can make the parser allocate. */
const RESOURCE_LIMITS = { maxOldGenerationSizeMb: 2048 };

function startThread(): Worker {
  if (!FROM_SOURCE) return new Worker(WORKER_URL, { resourceLimits: RESOURCE_LIMITS });
  // From the sources, tsx (a dev dependency) compiles the worker in its thread. pdf.js is loaded
  // first, natively: through tsx's hooks its 4 MB would be transformed again in every thread (2 s).
  const preload = ['pdfjs-dist/legacy/build/pdf.mjs', 'pdfjs-dist/legacy/build/pdf.worker.mjs'].map((name) => `import(${JSON.stringify(pathToFileURL(require.resolve(name)).href)})`);
  // `require.resolve` finds tsx's CommonJS entry; its ES module one sits beside it.
  const tsx = pathToFileURL(require.resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const code = `Promise.all([${preload.join(', ')}]).then(() => import(${JSON.stringify(tsx)})).then(({ register }) => { register(); return import(${JSON.stringify(WORKER_URL.href)}); });`;
  return new Worker(code, { eval: true, resourceLimits: RESOURCE_LIMITS });
}

export interface PdfOpenOptions {
  password?: string;
  /** How long opening the document, or reading one page, may take before the parser is stopped. */
  timeoutMs: number;
}

/**
 * A PDF opened with pdf.js, which runs entirely in a worker thread of its own (pdf-worker.ts):
 * pdf.js never loads in the calling thread, so its polyfills never replace that thread's globals;
 * a file that sends the parser into a loop, or blows its memory, stops that thread (after
 * `timeoutMs`, or at its heap limit), never the process; and closing the document ends the thread,
 * which gives back everything pdf.js held. A page the parser cannot read throws for that page
 * only; a page that hangs restarts the thread for the pages after it.
 */
export class PdfDocument {
  private constructor(
    private readonly bytes: Uint8Array,
    private readonly options: PdfOpenOptions,
    private session: ParserSession,
    readonly info: PdfInfo,
    /** The file encrypts only its embedded files: its pages were read without a password, the attachments were not. */
    readonly attachmentsSkipped: boolean,
  ) {}

  static async open(bytes: Uint8Array, options: PdfOpenOptions): Promise<PdfDocument> {
    try {
      return await PdfDocument.openWith(bytes, options, false);
    } catch (cause) {
      if (options.password !== undefined || !isMemexError(cause, 'MEMEX_PDF_ENCRYPTED') || !encryptsOnlyAttachments(bytes)) throw cause;
      return PdfDocument.openWith(withoutEncryption(bytes), options, true);
    }
  }

  private static async openWith(bytes: Uint8Array, options: PdfOpenOptions, attachmentsSkipped: boolean): Promise<PdfDocument> {
    const forms = passwordForms(options.password);
    for (const [i, password] of forms.entries()) {
      const tried: PdfOpenOptions = { timeoutMs: options.timeoutMs, ...(password !== undefined ? { password } : {}) };
      try {
        const { session, info } = await ParserSession.open(bytes, tried);
        return new PdfDocument(bytes, tried, session, attachmentsSkipped ? { ...info, encrypted: true } : info, attachmentsSkipped);
      } catch (cause) {
        if (!isMemexError(cause, 'MEMEX_PDF_PASSWORD_INCORRECT') || i === forms.length - 1) throw cause;
      }
    }
    throw new MemexError('MEMEX_INTERNAL', 'no way to open the PDF was tried');
  }

  /** The page's text, lines and columns joined (see pdf-text.ts). */
  async pageText(page: number): Promise<string> {
    return this.onPage(page, { op: 'pageText', page }) as Promise<string>;
  }

  /** Whether the page paints any image: a page with no text and no image is blank, not a scan. */
  async pageHasImages(page: number): Promise<boolean> {
    return this.onPage(page, { op: 'pageHasImages', page }) as Promise<boolean>;
  }

  /**
   * The page rendered to PNG at `dpi`, scaled down to stay within `maxSide` and `maxPixels`; null
   * when no canvas is installed (@napi-rs/canvas, an optional dependency of pdfjs-dist).
   */
  async renderPage(page: number, dpi: number, limits: { maxSide: number; maxPixels: number }): Promise<{ png: Uint8Array; width: number; height: number } | null> {
    return this.onPage(page, { op: 'renderPage', page, dpi, ...limits }) as Promise<{ png: Uint8Array; width: number; height: number } | null>;
  }

  async close(): Promise<void> {
    await this.session.close();
  }

  private async onPage(page: number, request: DistributiveOmit<PdfRequest, 'id'>): Promise<unknown> {
    try {
      return await this.session.call(request, `reading page ${page}`);
    } catch (cause) {
      if (cause instanceof ParserTimeout) {
        // The thread may still be busy with that page: start over on a fresh one for the next.
        await this.session.close();
        this.session = (await ParserSession.open(this.bytes, this.options)).session;
      }
      throw cause;
    }
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

class ParserTimeout extends Error {}

/** An error pdf.js threw in the worker, with the name and code it gave. */
class ParserError extends Error {
  constructor(
    message: string,
    readonly parserName: string | null,
    readonly code: number | null,
  ) {
    super(message);
  }
}

/** One worker thread running pdf.js, and the document open in it. */
class ParserSession {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (cause: unknown) => void }>();
  private readonly died: Promise<never>;

  private constructor(
    private readonly thread: Worker,
    private readonly timeoutMs: number,
  ) {
    this.died = new Promise<never>((_, reject) => {
      thread.once('error', (cause) => reject(new MemexError('MEMEX_PDF_INVALID', `the PDF parser stopped: ${cause.message}`, { cause })));
      thread.once('exit', () => reject(new MemexError('MEMEX_PDF_INVALID', 'the PDF parser stopped')));
    });
    this.died.catch(() => undefined);
    thread.on('message', (reply: PdfReply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiting.resolve(reply.value);
      else waiting.reject(new ParserError(reply.error.message, reply.error.name, reply.error.code));
    });
  }

  static async open(bytes: Uint8Array, options: PdfOpenOptions): Promise<{ session: ParserSession; info: PdfInfo }> {
    const session = new ParserSession(startThread(), options.timeoutMs);
    // pdf.js takes ownership of (and detaches) the buffer it is given, and refuses a Buffer: a plain copy, moved to the thread.
    const data = new Uint8Array(bytes);
    try {
      const info = (await session.call(
        { op: 'open', data, ...(options.password !== undefined ? { password: options.password } : {}), cMapUrl: join(PDFJS_ROOT, 'cmaps') + '/', standardFontDataUrl: join(PDFJS_ROOT, 'standard_fonts') + '/' },
        'opening the document',
        [data.buffer],
      )) as PdfInfo;
      return { session, info };
    } catch (cause) {
      await session.close();
      if (cause instanceof ParserTimeout) throw new MemexError('MEMEX_PDF_INVALID', `the PDF did not open within ${options.timeoutMs} ms`, { cause });
      throw openError(cause, options.password !== undefined);
    }
  }

  async call(request: DistributiveOmit<PdfRequest, 'id'>, what: string, transfer: ArrayBuffer[] = []): Promise<unknown> {
    const id = this.nextId++;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        new Promise((resolve, reject) => {
          this.pending.set(id, { resolve, reject });
          this.thread.postMessage({ ...request, id }, transfer);
        }),
        this.died,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new ParserTimeout(`${what} took longer than ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.pending.delete(id);
    }
  }

  /** Ends the thread: everything pdf.js held goes with it. */
  async close(): Promise<void> {
    this.pending.clear();
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
  const name = cause instanceof ParserError ? cause.parserName : null;
  const code = cause instanceof ParserError ? cause.code : null;
  const message = cause instanceof Error ? cause.message : String(cause);
  if (name === 'PasswordException') {
    // pdf.js: 1 = a password is needed, 2 = the one given is wrong.
    if (code === 2 || passwordGiven) return new MemexError('MEMEX_PDF_PASSWORD_INCORRECT', 'the password given does not open this PDF', { cause });
    return new MemexError('MEMEX_PDF_ENCRYPTED', 'the PDF is password-protected; give its password to ingest it', { cause });
  }
  return new MemexError('MEMEX_PDF_INVALID', `the PDF cannot be read: ${message}`, { cause, details: { parserError: name } });
}

