import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type Tesseract from 'tesseract.js';
import { MemexError, type OcrLine } from '../core/index.js';

export interface OcrResult {
  /** Lines joined by newlines, paragraphs by blank lines; `lines` hold spans into it. */
  text: string;
  /** Mean word confidence, 0-100. */
  confidence: number;
  lines: OcrLine[];
}

export interface RecognizeOptions {
  signal?: AbortSignal;
  /** The worker is stopped (and restarted on the next call) when a page takes longer. */
  timeoutMs: number;
  /** The image's resolution, when known (a rendered PDF page); 300 otherwise. */
  dpi?: number;
  /** Lines read with less confidence (0-100) are left out. */
  minLineConfidence?: number;
}

/** Reads text from an image (PNG, JPEG, TIFF bytes). One interface so ingest can be tested around a fake. */
export interface OcrEngine {
  recognize(image: Uint8Array, options: RecognizeOptions): Promise<OcrResult>;
  close(): Promise<void>;
}

/** Why a page was not read: a timeout or a cancel stops the worker; anything else is the engine's error. */
export class OcrStopped extends Error {
  constructor(readonly reason: 'timeout' | 'aborted') {
    super(reason === 'timeout' ? 'OCR took too long' : 'OCR was cancelled');
  }
}

const require = createRequire(import.meta.url);
/** How long an OCR worker may sit unused before it is ended (see `stopWhenIdle`). */
const IDLE_MS = 5_000;

/**
 * tesseract.js with the English LSTM model from `@tesseract.js-data/eng` (installed from npm; the
 * worker is pointed at the package folder and never fetches or caches anything). One worker, made
 * on first use and reused: loading the model takes about 300 ms, reading a 640 x 480 page about 0.5 s
 * here. Calls take turns, because one worker reads one page at a time.
 */
export class TesseractOcr implements OcrEngine {
  private worker: Promise<Tesseract.Worker> | null = null;
  private turn: Promise<unknown> = Promise.resolve();
  private idle: NodeJS.Timeout | null = null;

  recognize(image: Uint8Array, options: RecognizeOptions): Promise<OcrResult> {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    const run = this.turn.then(() => this.read(image, options));
    this.turn = run.catch(() => undefined);
    void this.turn.then(() => this.stopWhenIdle());
    return run;
  }

  /**
   * The worker's WebAssembly memory grows to the largest page it has read and never shrinks (a
   * hostile or huge scan leaves hundreds of MB behind): a worker left idle for `IDLE_MS` is ended,
   * which gives it all back; the next page pays the 300 ms of loading the model again.
   */
  private stopWhenIdle(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = setTimeout(() => {
      this.idle = null;
      this.turn = this.turn.then(() => this.stop());
    }, IDLE_MS);
    this.idle.unref();
  }

  async close(): Promise<void> {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    await this.turn;
    await this.stop();
  }

  private async read(image: Uint8Array, options: RecognizeOptions): Promise<OcrResult> {
    if (options.signal?.aborted) throw new OcrStopped('aborted');
    const worker = await this.start();
    // Without it tesseract guesses from the file (often a bogus 72) and warns on stderr.
    await worker.setParameters({ user_defined_dpi: String(options.dpi ?? 300) });
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const stopped = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new OcrStopped('timeout')), options.timeoutMs);
      onAbort = () => reject(new OcrStopped('aborted'));
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
    stopped.catch(() => undefined);
    try {
      const result = await Promise.race([worker.recognize(Buffer.from(image.buffer, image.byteOffset, image.byteLength), {}, { text: true, blocks: true }), stopped]);
      return toResult(result.data, options.minLineConfidence ?? 0);
    } catch (cause) {
      // A stopped page leaves the worker busy with it: drop the worker, the next page gets a new one.
      if (cause instanceof OcrStopped) await this.stop();
      throw cause;
    } finally {
      clearTimeout(timer);
      if (onAbort) options.signal?.removeEventListener('abort', onAbort);
    }
  }

  private start(): Promise<Tesseract.Worker> {
    if (!this.worker) {
      const starting = createWorker();
      this.worker = starting;
      starting.catch(() => {
        if (this.worker === starting) this.worker = null;
      });
    }
    return this.worker;
  }

  private async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    if (worker) await (await worker.catch(() => null))?.terminate().catch(() => undefined);
  }
}

async function createWorker(): Promise<Tesseract.Worker> {
  let langPath: string;
  try {
    langPath = join(dirname(require.resolve('@tesseract.js-data/eng/package.json')), '4.0.0_best_int');
  } catch (cause) {
    throw new MemexError('MEMEX_OCR_UNAVAILABLE', 'the English OCR model (@tesseract.js-data/eng) is not installed', { cause });
  }
  try {
    const { default: tesseract } = await import('tesseract.js');
    return await tesseract.createWorker('eng', tesseract.OEM.LSTM_ONLY, { langPath, cacheMethod: 'none', gzip: true, errorHandler: () => undefined });
  } catch (cause) {
    throw new MemexError('MEMEX_OCR_UNAVAILABLE', `tesseract.js could not start: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

function toResult(page: Tesseract.Page, minLineConfidence: number): OcrResult {
  const lines: OcrLine[] = [];
  let text = '';
  for (const block of page.blocks ?? []) {
    for (const paragraph of block.paragraphs) {
      if (text !== '' && !text.endsWith('\n\n')) text += '\n';
      for (const line of paragraph.lines) {
        const words = line.text.replace(/\s+/g, ' ').trim();
        if (words === '' || line.confidence < minLineConfidence) continue;
        const start = text.length;
        text += `${words}\n`;
        lines.push({ text: words, start, end: start + words.length, bbox: { ...line.bbox }, confidence: round(line.confidence) });
      }
    }
  }
  return { text: text.trimEnd(), confidence: round(page.confidence), lines };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
