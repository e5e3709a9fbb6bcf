import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { MemexError, isMemexError, toMemexError } from '../core/index.js';
import { DETECT_MAX_VALUES, detectFormat, isDecided } from './detect.js';
import { JsonValueStream, type TopLevelValue } from './json-stream.js';
import type { ExportFormat, ExportSource } from './model.js';
import { ZipArchive, isZipMagic, type ZipLimits } from './zip.js';

/**
 * The way in for an export: a plain JSON file or the ZIP the service sent, told apart by their
 * first bytes (never the extension). It hands the parsers one JSON document at a time with its
 * format already detected, and the importer the file's hash and the ZIP's entries for attachments.
 */

export interface OpenExportOptions {
  /** The caller's hint (`--source`): only this service's formats are accepted. */
  source?: ExportSource | undefined;
  limits?: Partial<ZipLimits> | undefined;
  signal?: AbortSignal | undefined;
}

export interface ExportDocument {
  /** The ZIP entry it came from; null for a plain JSON file. */
  entry: string | null;
  format: ExportFormat;
  /** Its top-level values, for the format's ExportParser. Read once; memory holds one value at a time. */
  values: AsyncIterable<TopLevelValue>;
}

/** A ZIP entry left out of `documents()`, and why (`not-json`, `unknown-format`, `other-source`, `empty`). */
export interface SkippedEntry {
  entry: string;
  reason: 'not-json' | 'unknown-format' | 'other-source' | 'empty';
  detail: string;
}

export interface ExportReader {
  readonly kind: 'json' | 'zip';
  /** The file's path as given. */
  readonly path: string;
  /** Bytes of the input file. */
  readonly size: number;
  /** SHA-256 (hex) of the whole input file, for the import's manifest. */
  readonly sha256: string;
  /** Entry names of the ZIP (directories left out); empty for a plain JSON file. */
  readonly zipEntries: ReadonlySet<string>;
  /** ZIP entries `documents()` passed over so far. */
  readonly skipped: readonly SkippedEntry[];
  /**
   * Each JSON document of a known format, in the ZIP's order. A plain file is one document, or
   * MEMEX_IMPORT_FORMAT_UNKNOWN; a ZIP with no known document is MEMEX_IMPORT_FORMAT_UNKNOWN once
   * its entries are all seen. Moving on to the next document closes the previous one's stream.
   */
  documents(): AsyncIterable<ExportDocument>;
  /** The bytes of a ZIP entry (an attachment), with the archive's limits enforced as it inflates. */
  openEntry(name: string): Promise<Readable>;
  close(): Promise<void>;
}

const HEAD_BYTES = 4;

export async function openExport(path: string, options: OpenExportOptions = {}): Promise<ExportReader> {
  const signal = options.signal;
  checkAborted(signal, path);
  let size: number;
  let head: Buffer;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new MemexError('MEMEX_PATH_NOT_FOUND', `${path} is not a file`, { details: { path } });
    size = info.size;
    const handle = await open(path, 'r');
    try {
      head = Buffer.alloc(HEAD_BYTES);
      const { bytesRead } = await handle.read(head, 0, HEAD_BYTES, 0);
      head = head.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (cause) {
    if (isMemexError(cause)) throw cause;
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new MemexError('MEMEX_PATH_NOT_FOUND', `no file at ${path}`, { cause, details: { path } });
    throw toMemexError(cause, `opening ${path}`);
  }
  const sha256 = await hashFile(path, signal);
  if (isZipMagic(head)) {
    const zip = await ZipArchive.open(path, { limits: options.limits, signal });
    return new ZipExport(path, size, sha256, zip, options);
  }
  return new JsonExport(path, size, sha256, options);
}

async function hashFile(path: string, signal: AbortSignal | undefined): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path, signal ? { signal } : {}) as AsyncIterable<Buffer>) hash.update(chunk);
  } catch (cause) {
    checkAborted(signal, path, cause);
    throw toMemexError(cause, `reading ${path}`);
  }
  return hash.digest('hex');
}

function checkAborted(signal: AbortSignal | undefined, path: string, cause?: unknown): void {
  if (signal?.aborted) throw new MemexError('MEMEX_ABORTED', `reading ${path} was cancelled`, { cause: cause ?? signal.reason });
}

/** Peeks until detection is decided; the values read stay in the stream and are replayed to the parser. */
async function detect(stream: JsonValueStream, name: string, source: ExportSource | undefined): Promise<ExportFormat> {
  const shape = await stream.readShape();
  let values = await stream.peek(1);
  while (!isDecided({ shape, values, complete: stream.ended })) {
    values = await stream.peek(Math.min(values.length + 1, DETECT_MAX_VALUES));
  }
  return detectFormat({ shape, values, complete: stream.ended && values.length < DETECT_MAX_VALUES }, { source, name });
}

abstract class BaseExport implements ExportReader {
  abstract readonly kind: 'json' | 'zip';
  readonly skipped: SkippedEntry[] = [];
  protected readonly streams = new Set<JsonValueStream>();
  protected closed = false;

  constructor(
    readonly path: string,
    readonly size: number,
    readonly sha256: string,
    protected readonly options: OpenExportOptions,
  ) {}

  abstract get zipEntries(): ReadonlySet<string>;
  abstract documents(): AsyncIterable<ExportDocument>;
  abstract openEntry(name: string): Promise<Readable>;

  protected track(stream: JsonValueStream): JsonValueStream {
    this.streams.add(stream);
    return stream;
  }

  protected async release(stream: JsonValueStream): Promise<void> {
    this.streams.delete(stream);
    await stream.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.streams].map((stream) => this.release(stream)));
  }
}

class JsonExport extends BaseExport {
  readonly kind = 'json';
  readonly zipEntries: ReadonlySet<string> = new Set();

  async *documents(): AsyncGenerator<ExportDocument> {
    const { signal, source } = this.options;
    const input = createReadStream(this.path, signal ? { signal } : {});
    const stream = this.track(new JsonValueStream(input, { name: this.path, signal }));
    try {
      const format = await detect(stream, this.path, source);
      yield { entry: null, format, values: stream };
    } finally {
      await this.release(stream);
    }
  }

  openEntry(name: string): Promise<Readable> {
    return Promise.reject(new MemexError('MEMEX_IMPORT_INVALID', `${this.path} is a JSON file, not a ZIP: it has no entry ${JSON.stringify(name)}`, { details: { entry: name } }));
  }
}

class ZipExport extends BaseExport {
  readonly kind = 'zip';
  readonly #zip: ZipArchive;

  constructor(path: string, size: number, sha256: string, zip: ZipArchive, options: OpenExportOptions) {
    super(path, size, sha256, options);
    this.#zip = zip;
  }

  get zipEntries(): ReadonlySet<string> {
    return this.#zip.names;
  }

  openEntry(name: string): Promise<Readable> {
    return this.#zip.openEntry(name, { signal: this.options.signal });
  }

  async *documents(): AsyncGenerator<ExportDocument> {
    const { signal, source } = this.options;
    let found = 0;
    for (const name of this.#zip.entries.keys()) {
      checkAborted(signal, `${this.path}: ${name}`);
      const stream = this.track(new JsonValueStream(await this.openEntry(name), { name, signal }));
      try {
        const format = await this.#detectEntry(stream, name, source);
        if (format === null) continue;
        found += 1;
        yield { entry: name, format, values: stream };
      } finally {
        await this.release(stream);
      }
    }
    if (found === 0) {
      throw new MemexError('MEMEX_IMPORT_FORMAT_UNKNOWN', `${this.path} is a ZIP with no known chat export in it${source ? ` from ${source}` : ''}`, {
        details: { path: this.path, entries: [...this.#zip.entries.keys()].slice(0, 20), skipped: this.skipped.slice(0, 20), ...(source ? { source } : {}) },
      });
    }
  }

  /** The entry's format, or null (recorded in `skipped`) when it is no export document: images, HTML, other JSON. */
  async #detectEntry(stream: JsonValueStream, name: string, source: ExportSource | undefined): Promise<ExportFormat | null> {
    try {
      const shape = await stream.readShape();
      const values = await stream.peek(1);
      if (values.length === 0 && stream.ended) {
        this.skipped.push({ entry: name, reason: 'empty', detail: `an empty JSON ${shape}` });
        return null;
      }
      return await detect(stream, name, source);
    } catch (cause) {
      // Bytes that only look like JSON at first (a binary entry starting with `{`) are no export document either.
      if (isMemexError(cause, 'MEMEX_IMPORT_INVALID')) {
        this.skipped.push({ entry: name, reason: 'not-json', detail: cause.message });
        return null;
      }
      if (!isMemexError(cause, 'MEMEX_IMPORT_FORMAT_UNKNOWN')) throw cause;
      const detected = cause.details.detected;
      // The JSON reader names what it saw as a string (`empty`, `starts with …`); detection as a list of values.
      const reason = typeof detected === 'string' ? 'other-source' : typeof cause.details.seen === 'string' ? 'not-json' : 'unknown-format';
      this.skipped.push({ entry: name, reason, detail: cause.message });
      return null;
    }
  }

  override async close(): Promise<void> {
    await super.close();
    await this.#zip.close();
  }
}
