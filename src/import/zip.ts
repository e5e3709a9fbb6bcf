import { Transform, type Readable, type TransformCallback } from 'node:stream';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { MemexError, isMemexError, toMemexError } from '../core/index.js';

/**
 * A ZIP export (as ChatGPT and Claude deliver them) read with yauzl, which reads the central
 * directory and streams one entry at a time, never extracting to disk. Every limit is checked on
 * the central directory before any entry is opened, and again on the bytes as they inflate, since
 * the declared sizes are the attacker's to choose.
 */
export interface ZipLimits {
  /** Entries in the archive. Default 10,000: a years-long ChatGPT export with its images has a few thousand. */
  maxEntries: number;
  /** Uncompressed bytes of all entries together (declared, and actually inflated). Default 4 GiB. */
  maxTotalBytes: number;
  /** Uncompressed : compressed ratio of one entry. Default 200: JSON compresses about 5-20:1, a zip bomb 1000:1 and more. */
  maxRatio: number;
  /** The ratio is checked only for entries larger than this (tiny entries compress wildly). Default 1 MiB. */
  ratioMinBytes: number;
}

export const DEFAULT_ZIP_LIMITS: Readonly<ZipLimits> = Object.freeze({
  maxEntries: 10_000,
  maxTotalBytes: 4 * 1024 ** 3,
  maxRatio: 200,
  ratioMinBytes: 1024 ** 2,
});

export interface ZipEntryInfo {
  name: string;
  compressedSize: number;
  uncompressedSize: number;
}

/** Local file header, or the end of central directory of an empty archive. */
export function isZipMagic(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 0x03 && head[3] === 0x04) || (head[2] === 0x05 && head[3] === 0x06));
}

/** Why an entry name is refused (it could point outside the folder it is extracted to), or null. */
export function unsafeEntryName(name: string): string | null {
  if (name.length === 0) return 'empty name';
  if (name.includes('\0')) return 'NUL in name';
  if (name.includes('\\')) return 'backslash in name';
  if (name.startsWith('/')) return 'absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'drive letter';
  if (name.split('/').includes('..')) return '".." segment';
  return null;
}

function unsafe(limit: string, message: string, details: Record<string, unknown> = {}): MemexError {
  return new MemexError('MEMEX_ARCHIVE_UNSAFE', message, { details: { limit, ...details } });
}

function aborted(signal: AbortSignal | undefined, what: string): MemexError {
  return new MemexError('MEMEX_ABORTED', `${what} was cancelled`, { cause: signal?.reason });
}

export interface OpenZipOptions {
  limits?: Partial<ZipLimits> | undefined;
  signal?: AbortSignal | undefined;
}

export class ZipArchive {
  readonly limits: Readonly<ZipLimits>;
  /** File entries (directories left out), in central-directory order. */
  readonly entries: ReadonlyMap<string, ZipEntryInfo>;
  /** The file entries' names, for parsers looking up attachments. */
  readonly names: ReadonlySet<string>;
  readonly #zip: ZipFile;
  readonly #raw: ReadonlyMap<string, Entry>;
  readonly #open = new Set<Readable>();
  /** Bytes actually inflated from every entry opened so far. */
  #inflated = 0;
  #closed = false;

  private constructor(zip: ZipFile, raw: Map<string, Entry>, limits: ZipLimits) {
    this.#zip = zip;
    this.#raw = raw;
    this.limits = Object.freeze(limits);
    this.entries = new Map([...raw].map(([name, entry]) => [name, { name, compressedSize: entry.compressedSize, uncompressedSize: entry.uncompressedSize }]));
    this.names = new Set(raw.keys());
  }

  /** Opens the archive and checks its central directory against the limits; nothing is inflated yet. */
  static async open(path: string, options: OpenZipOptions = {}): Promise<ZipArchive> {
    const limits = { ...DEFAULT_ZIP_LIMITS, ...options.limits };
    const zip = await new Promise<ZipFile>((resolve, reject) => {
      // decodeStrings off: yauzl would turn backslashes into slashes and throw uncoded errors;
      // names are decoded and judged here instead.
      yauzl.open(path, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true, strictFileNames: true }, (error, file) =>
        error ? reject(invalidZip(path, error)) : resolve(file),
      );
    });
    try {
      if (zip.entryCount > limits.maxEntries) {
        throw unsafe('maxEntries', `the ZIP has ${zip.entryCount} entries, more than the ${limits.maxEntries} allowed`, { entries: zip.entryCount, max: limits.maxEntries });
      }
      const raw = await readCentralDirectory(zip, path, limits, options.signal);
      return new ZipArchive(zip, raw, limits);
    } catch (cause) {
      await closeZip(zip);
      throw cause;
    }
  }


  /**
   * The bytes of one entry, inflating as they are read, with the limits enforced on the stream:
   * more bytes than declared, than the archive's total, or than the ratio allows end the stream
   * with MEMEX_ARCHIVE_UNSAFE. Destroy the stream to stop early.
   */
  async openEntry(name: string, options: { signal?: AbortSignal | undefined } = {}): Promise<Readable> {
    if (this.#closed) throw new MemexError('MEMEX_INTERNAL', 'the ZIP was closed');
    const entry = this.#raw.get(name);
    if (entry === undefined) throw new MemexError('MEMEX_IMPORT_INVALID', `the ZIP has no entry ${JSON.stringify(name)}`, { details: { entry: name } });
    if (!entry.canDecodeFileData()) {
      throw new MemexError('MEMEX_IMPORT_INVALID', `ZIP entry ${name} is encrypted or uses an unsupported compression method`, { details: { entry: name, compressionMethod: entry.compressionMethod } });
    }
    const signal = options.signal;
    if (signal?.aborted) throw aborted(signal, `reading ${name}`);
    const source = await new Promise<Readable>((resolve, reject) => {
      this.#zip.openReadStream(entry, (error, stream) => (error ? reject(entryError(name, error)) : resolve(stream)));
    });
    const limits = this.limits;
    let bytes = 0;
    const archive = { add: (n: number) => (this.#inflated += n) };
    const guard = new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        bytes += chunk.length;
        const total = archive.add(chunk.length);
        if (bytes > entry.uncompressedSize) {
          callback(unsafe('declaredSize', `ZIP entry ${name} inflates to more than its declared ${entry.uncompressedSize} bytes`, { entry: name, declared: entry.uncompressedSize }));
        } else if (total > limits.maxTotalBytes) {
          callback(unsafe('maxTotalBytes', `the ZIP inflates to more than ${limits.maxTotalBytes} bytes`, { entry: name, max: limits.maxTotalBytes }));
        } else if (bytes > limits.ratioMinBytes && bytes > limits.maxRatio * Math.max(entry.compressedSize, 1)) {
          callback(unsafe('maxRatio', `ZIP entry ${name} inflates more than ${limits.maxRatio}:1`, { entry: name, compressed: entry.compressedSize, max: limits.maxRatio }));
        } else {
          callback(null, chunk);
        }
      },
    });
    const onAbort = () => guard.destroy(aborted(signal, `reading ${name}`));
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#open.add(guard);
    // yauzl's own size checks and zlib's failures reach the reader coded.
    source.on('error', (error) => guard.destroy(entryError(name, error)));
    guard.once('close', () => {
      signal?.removeEventListener('abort', onAbort);
      this.#open.delete(guard);
      // Stopping early: yauzl asks for unpipe before destroy, which lets go of the file descriptor.
      source.unpipe(guard);
      if (!source.destroyed) source.destroy();
    });
    source.pipe(guard);
    return guard;
  }

  /** Closes the archive: open entry streams are destroyed and the file handle released. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const stream of this.#open) stream.destroy();
    this.#open.clear();
    return closeZip(this.#zip);
  }
}

/** Resolves once the descriptor is closed: yauzl closes it when every pending read has let go of it. */
function closeZip(zip: ZipFile): Promise<void> {
  return new Promise((resolve) => {
    zip.once('close', () => resolve());
    zip.close();
  });
}

function invalidZip(path: string, cause: Error): MemexError {
  if ((cause as NodeJS.ErrnoException).code !== undefined) return toMemexError(cause, `opening ${path}`);
  return new MemexError('MEMEX_IMPORT_INVALID', `not a readable ZIP: ${cause.message}`, { cause, details: { reason: cause.message } });
}

function entryError(name: string, cause: Error): MemexError {
  if (isMemexError(cause)) return cause;
  // yauzl's validateEntrySizes: the data disagrees with the central directory's size.
  if (/too many bytes|too few bytes|size mismatch/i.test(cause.message)) {
    return new MemexError('MEMEX_ARCHIVE_UNSAFE', `ZIP entry ${name}: ${cause.message}`, { cause, details: { limit: 'declaredSize', entry: name } });
  }
  if ((cause as NodeJS.ErrnoException).code?.startsWith('ERR_STREAM') || (cause as NodeJS.ErrnoException).code === 'ABORT_ERR') {
    return new MemexError('MEMEX_ABORTED', `reading ZIP entry ${name} stopped`, { cause, details: { entry: name } });
  }
  return new MemexError('MEMEX_IMPORT_INVALID', `ZIP entry ${name} cannot be read: ${cause.message}`, { cause, details: { entry: name, reason: cause.message } });
}

async function readCentralDirectory(zip: ZipFile, path: string, limits: ZipLimits, signal: AbortSignal | undefined): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  let total = 0;
  await new Promise<void>((resolve, reject) => {
    const fail = (error: unknown) => {
      zip.removeAllListeners('entry');
      reject(error instanceof MemexError ? error : invalidZip(path, error as Error));
    };
    zip.on('error', fail);
    zip.once('end', () => resolve());
    zip.on('entry', (entry: Entry) => {
      try {
        if (signal?.aborted) throw aborted(signal, `reading ${path}`);
        const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
        const why = unsafeEntryName(name);
        if (why !== null) throw unsafe('entryName', `ZIP entry ${JSON.stringify(name)} is refused: ${why}`, { entry: name, reason: why });
        if (entries.size + 1 > limits.maxEntries) throw unsafe('maxEntries', `the ZIP has more than ${limits.maxEntries} entries`, { max: limits.maxEntries });
        total += entry.uncompressedSize;
        if (total > limits.maxTotalBytes) {
          throw unsafe('maxTotalBytes', `the ZIP declares more than ${limits.maxTotalBytes} uncompressed bytes`, { entry: name, max: limits.maxTotalBytes });
        }
        if (entry.uncompressedSize > limits.ratioMinBytes && entry.uncompressedSize > limits.maxRatio * Math.max(entry.compressedSize, 1)) {
          throw unsafe('maxRatio', `ZIP entry ${name} declares a compression ratio above ${limits.maxRatio}:1`, {
            entry: name,
            compressed: entry.compressedSize,
            uncompressed: entry.uncompressedSize,
            max: limits.maxRatio,
          });
        }
        if (!name.endsWith('/')) {
          if (entries.has(name)) throw unsafe('duplicateName', `the ZIP holds ${name} twice`, { entry: name });
          entries.set(name, entry);
        }
        zip.readEntry();
      } catch (error) {
        fail(error);
      }
    });
    zip.readEntry();
  });
  return entries;
}
