import { closeSync, openSync, readSync } from 'node:fs';
import { open, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { dirname } from 'node:path';
import { FORMAT_VERSION, MemexError, VectorLineSchema, type Chunk, type VectorLine } from '../../core/index.js';
import { exists, isNotFound, wrapIo, writeSynced, type Durability } from '../durable.js';
import type { SessionVectorData, VectorBatch, VectorRepair, VectorStatus } from '../store.js';
import { NPY_HEADER_BYTES, npyHeader, parseNpyHeader } from './npy.js';
import { checkVectorBatch } from '../vector-batch.js';

if (endianness() !== 'LE') throw new Error('Memex writes little-endian .npy files and needs a little-endian CPU');

export interface VectorPaths {
  /** `vector_index.jsonl`: one line per row. */
  index: string;
  /** `embeddings.npy`: float32 [rows, dimension]. */
  npy: string;
  /** Present only while a rewrite swaps both files in; see `replace`. */
  journal: string;
}

interface Loaded {
  rows: number;
  model: string | null;
  dimension: number | null;
  /** Per row, the message it came from when its source is a message; the "embedded up to" mark. */
  messageIds: (string | null)[];
  /** Per row, its chunk id. */
  chunkIds: string[];
  /** Per row, the byte offset just past its line in `vector_index.jsonl`, so a row's line reads alone. */
  ends: number[];
}

const EMPTY: Loaded = { rows: 0, model: null, dimension: null, messageIds: [], chunkIds: [], ends: [] };

const SWAP = '.swap';

/**
 * Crash points for the tests: with MEMEX_FAILPOINT set to a name, the process kills itself there
 * (a real SIGKILL, no cleanup), so tests can stop a write exactly between two of its steps.
 */
function failpoint(name: string): void {
  if (process.env.MEMEX_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}

/**
 * One session's vectors: `vector_index.jsonl` (line i describes row i) beside `embeddings.npy`.
 *
 * The two files cannot change together, so every change is ordered to leave a state the next open
 * can tell apart and fix: an append writes the rows' bytes, then their lines, then the row count in
 * the .npy header, and opening keeps only rows that have both a line and their bytes, and only whole
 * sources (all chunks of a message or none). A rewrite (deleting a message's rows, reindexing)
 * writes both new files beside the old, records a journal, then renames them in; opening finishes a
 * journaled swap or discards an unjournaled one. Vectors are derived data: whatever is dropped is
 * re-embedded from the message log, so these files are synced only under the `always` policy.
 */
export class SessionVectors {
  private constructor(
    private readonly paths: VectorPaths,
    private readonly durability: Durability,
    private state: Loaded,
  ) {}

  static async open(paths: VectorPaths, durability: Durability): Promise<{ vectors: SessionVectors; repair: VectorRepair | null }> {
    const { loaded, repair } = await load(paths);
    return { vectors: new SessionVectors(paths, durability, loaded), repair };
  }

  /** The vectors of a session just created: no files yet, so nothing to check. */
  static empty(paths: VectorPaths, durability: Durability): SessionVectors {
    return new SessionVectors(paths, durability, EMPTY);
  }

  get status(): VectorStatus {
    const { rows, model, dimension, chunkIds } = this.state;
    return { rows, model, dimension, tail: chunkIds[rows - 1] ?? null };
  }

  /** The last message whose chunks have rows: messages after it in the log are not embedded yet. */
  get lastEmbeddedMessageId(): string | null {
    const ids = this.state.messageIds;
    for (let i = ids.length - 1; i >= 0; i--) if (ids[i] !== null) return ids[i] as string;
    return null;
  }

  hasMessage(messageId: string): boolean {
    return this.state.messageIds.includes(messageId);
  }

  /** `checked`: the caller ran `checkVectorBatch` on these rows, or on a batch they were taken from. */
  async append(batch: VectorBatch, checked = false): Promise<void> {
    const dimension = dimensionOf(batch, checked);
    if (dimension === null) return;
    const { rows, model } = this.state;
    if (model !== null && (model !== batch.model || this.state.dimension !== dimension)) {
      throw new MemexError('MEMEX_MODEL_MISMATCH', `${this.paths.npy} holds ${this.state.dimension}-d rows of ${model}; cannot add ${dimension}-d rows of ${batch.model}`, {
        details: { recorded: model, given: batch.model },
      });
    }
    // A new file gets its header (of no rows yet) in the same write as its first rows.
    const fresh = rows === 0;
    const data = packRows(batch.vectors, dimension, fresh ? NPY_HEADER_BYTES : 0);
    if (fresh) npyHeader(0, dimension).copy(data, 0);
    const text = linesOf(batch, rows);
    try {
      const handle = await open(this.paths.npy, fresh ? 'w' : 'r+');
      try {
        await handle.write(data, 0, data.length, fresh ? 0 : NPY_HEADER_BYTES + rows * dimension * 4);
        failpoint('vectors:after-rows');
        if (fresh) await writeFile(this.paths.index, text);
        else await this.durability.append(this.paths.index, text);
        failpoint('vectors:after-lines');
        await handle.write(npyHeader(rows + batch.chunks.length, dimension), 0, NPY_HEADER_BYTES, 0);
        if (this.durability.policy === 'always') await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (cause) {
      // Whatever reached the disk, the next state is what a fresh open makes of it.
      this.state = (await load(this.paths)).loaded;
      throw wrapIo(cause, `cannot append vectors to ${this.paths.npy}`);
    }
    this.state = {
      rows: rows + batch.chunks.length,
      model: batch.model,
      dimension,
      messageIds: [...this.state.messageIds, ...batch.chunks.map(messageIdOf)],
      chunkIds: [...this.state.chunkIds, ...batch.chunks.map((chunk) => chunk.chunkId)],
      ends: [...this.state.ends, ...lineEnds(text, this.state.ends.at(-1) ?? 0)],
    };
  }

  /** Rows `from` (default 0) to the last (at most `limit` of them), each with its line, read from disk. */
  async read(options: { from?: number; limit?: number } = {}): Promise<SessionVectorData> {
    const { rows, dimension, ends } = this.state;
    const status = this.status;
    const from = Math.max(0, Math.min(options.from ?? 0, rows));
    const to = options.limit === undefined ? rows : Math.min(rows, from + Math.max(0, Math.floor(options.limit)));
    if (from === to || dimension === null) return { ...status, from, lines: [], vectors: new Float32Array(0) };
    const start = from === 0 ? 0 : (ends[from - 1] as number);
    const [indexBytes, npyBytes] = await Promise.all([
      readRange(this.paths.index, start, (ends[to - 1] as number) - start),
      readRange(this.paths.npy, NPY_HEADER_BYTES + from * dimension * 4, (to - from) * dimension * 4),
    ]).catch((cause: unknown) => {
      throw wrapIo(cause, `cannot read vectors of ${dirname(this.paths.npy)}`);
    });
    const lines = parseLines(indexBytes, from);
    const vectors = new Float32Array(npyBytes.length / 4);
    new Uint8Array(vectors.buffer).set(npyBytes);
    return { ...status, from, lines, vectors };
  }

  /** The rows of the given messages with their lines, in row order; messages without rows give none. */
  async readMessages(messageIds: ReadonlySet<string>): Promise<Omit<SessionVectorData, 'from'>> {
    const { rows, dimension, ends } = this.state;
    const status = this.status;
    const wanted: number[] = [];
    this.state.messageIds.forEach((id, row) => {
      if (id !== null && messageIds.has(id)) wanted.push(row);
    });
    const first = wanted[0];
    const last = wanted.at(-1);
    if (first === undefined || last === undefined || dimension === null) return { ...status, lines: [], vectors: new Float32Array(0) };
    // The rows of a stretch of messages sit together (vectors follow the log): one read spans them.
    const start = first === 0 ? 0 : (ends[first - 1] as number);
    const [indexBytes, npyBytes] = await Promise.all([
      readRange(this.paths.index, start, (ends[last] as number) - start),
      readRange(this.paths.npy, NPY_HEADER_BYTES + first * dimension * 4, (last - first + 1) * dimension * 4),
    ]).catch((cause: unknown) => {
      throw wrapIo(cause, `cannot read vectors of ${dirname(this.paths.npy)}`);
    });
    const span = parseLines(indexBytes, first);
    const all = new Float32Array(npyBytes.buffer.slice(npyBytes.byteOffset, npyBytes.byteOffset + npyBytes.length));
    const vectors = new Float32Array(wanted.length * dimension);
    const lines = wanted.map((row, i) => {
      vectors.set(all.subarray((row - first) * dimension, (row - first + 1) * dimension), i * dimension);
      return span[row - first] as VectorLine;
    });
    return { ...status, rows, lines, vectors };
  }

  /** The lines of the given rows (no vectors), in the order asked; a row past the end is an error. */
  lines(rows: readonly number[]): Promise<VectorLine[]> {
    try {
      return Promise.resolve(this.readLines(rows));
    } catch (cause) {
      return Promise.reject(cause instanceof Error ? cause : new Error(String(cause)));
    }
  }

  private readLines(rows: readonly number[]): VectorLine[] {
    const { ends } = this.state;
    for (const row of rows) {
      if (!Number.isInteger(row) || row < 0 || row >= this.state.rows) throw new MemexError('MEMEX_INVALID_INPUT', `no row ${row} in ${this.paths.index}`);
    }
    // A search reads a few short lines from each session it hits: read in place, synchronously. An
    // asynchronous open, read and close per session cost more main-thread time than the reads and
    // queued behind each other on the thread pool (profiled: about 5 ms of an 11-session search).
    let fd: number;
    try {
      fd = openSync(this.paths.index, 'r');
    } catch (cause) {
      throw wrapIo(cause, `cannot read ${this.paths.index}`);
    }
    try {
      const result: VectorLine[] = [];
      for (const row of rows) {
        const start = row === 0 ? 0 : (ends[row - 1] as number);
        const bytes = Buffer.allocUnsafe((ends[row] as number) - start);
        const read = readSync(fd, bytes, 0, bytes.length, start);
        if (read !== bytes.length) throw new MemexError('MEMEX_IO', `${this.paths.index} is shorter than its rows (changed by another program?)`);
        result.push(...parseLines(bytes, row));
      }
      return result;
    } catch (cause) {
      throw cause instanceof MemexError ? cause : wrapIo(cause, `cannot read ${this.paths.index}`);
    } finally {
      closeSync(fd);
    }
  }

  /** Replaces every row at once (a reindex, or dropping some rows); atomic across both files. */
  async replace(batch: VectorBatch, checked = false): Promise<void> {
    const dimension = dimensionOf(batch, checked);
    const sync = this.durability.policy !== 'none';
    const text = linesOf(batch, 0);
    try {
      if (dimension === null) {
        // The index first: an .npy without its lines is dropped on open, and so is an empty pair.
        await rm(this.paths.index, { force: true });
        await rm(this.paths.npy, { force: true });
        this.state = EMPTY;
        return;
      }
      const data = packRows(batch.vectors, dimension, NPY_HEADER_BYTES);
      npyHeader(batch.vectors.length, dimension).copy(data, 0);
      await writeSynced(this.paths.npy + SWAP, data, sync);
      await writeSynced(this.paths.index + SWAP, text, sync);
      failpoint('vectors:swap-written');
      await this.durability.writeJsonAtomic(this.paths.journal, { v: FORMAT_VERSION, kind: 'memex-vectors-swap', files: ['embeddings.npy', 'vector_index.jsonl'] });
      failpoint('vectors:swap-journaled');
      await rename(this.paths.npy + SWAP, this.paths.npy);
      failpoint('vectors:swap-half-renamed');
      await rename(this.paths.index + SWAP, this.paths.index);
      await this.durability.syncDir(dirname(this.paths.npy));
      await rm(this.paths.journal, { force: true });
    } catch (cause) {
      this.state = (await load(this.paths)).loaded;
      throw wrapIo(cause, `cannot rewrite vectors of ${dirname(this.paths.npy)}`);
    }
    this.state = {
      rows: batch.chunks.length,
      model: batch.model,
      dimension,
      messageIds: batch.chunks.map(messageIdOf),
      chunkIds: batch.chunks.map((chunk) => chunk.chunkId),
      ends: lineEnds(text, 0),
    };
  }

  /** Drops the rows of one message; returns how many there were. */
  async removeMessage(messageId: string): Promise<number> {
    if (!this.hasMessage(messageId)) return 0;
    return this.removeWhere((line) => messageIdOf(line) === messageId);
  }

  /** Drops the rows of every message whose id `gone` accepts, in one rewrite; returns how many there were. */
  async removeMessagesWhere(gone: (messageId: string) => boolean): Promise<number> {
    return this.removeWhere((line) => {
      const messageId = messageIdOf(line);
      return messageId !== null && gone(messageId);
    });
  }

  /** Drops the rows of one file; returns how many there were. */
  async removeFile(fileId: string): Promise<number> {
    return this.removeWhere((line) => line.source.kind === 'file' && line.source.fileId === fileId);
  }

  /** Chunk ids that have rows, for skipping chunks already stored. */
  chunkIdSet(): Set<string> {
    return new Set(this.state.chunkIds);
  }

  private async removeWhere(drop: (line: VectorLine) => boolean): Promise<number> {
    const data = await this.read();
    const keep: number[] = [];
    for (const [i, line] of data.lines.entries()) if (!drop(line)) keep.push(i);
    if (keep.length === data.rows) return 0;
    const dimension = data.dimension ?? 0;
    await this.replace({
      model: data.model ?? '',
      chunks: keep.map((i) => data.lines[i] as VectorLine),
      vectors: keep.map((i) => data.vectors.subarray(i * dimension, (i + 1) * dimension)),
    });
    return data.rows - keep.length;
  }
}

function messageIdOf(chunk: Chunk): string | null {
  return chunk.source.kind === 'message' ? chunk.source.messageId : null;
}

/** The batch's lines for `vector_index.jsonl`, numbered from `firstRow`. */
function linesOf(batch: VectorBatch, firstRow: number): string {
  return batch.chunks
    .map((chunk, i) => {
      const line: VectorLine = { v: FORMAT_VERSION, row: firstRow + i, chunkId: chunk.chunkId, source: chunk.source, part: chunk.part, span: chunk.span, text: chunk.text, tokens: chunk.tokens, model: batch.model };
      return `${JSON.stringify(line)}\n`;
    })
    .join('');
}

/** The rows as little-endian float32 bytes, after `offset` bytes left free (for a header). */
function packRows(vectors: readonly Float32Array[], dimension: number, offset: number): Buffer {
  const data = Buffer.alloc(offset + vectors.length * dimension * 4);
  for (const [i, vector] of vectors.entries()) Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).copy(data, offset + i * dimension * 4);
  return data;
}

/** The batch's dimension (null when empty), checking it unless its caller already did. */
function dimensionOf(batch: VectorBatch, checked: boolean): number | null {
  return checked ? (batch.vectors[0]?.length ?? null) : checkVectorBatch(batch);
}

/** Byte offsets just past each line of `text`, counting from `base`. */
function lineEnds(text: string, base: number): number[] {
  const ends: number[] = [];
  let offset = base;
  for (const line of text.split('\n').slice(0, -1)) {
    offset += Buffer.byteLength(line) + 1;
    ends.push(offset);
  }
  return ends;
}

async function readRange(path: string, position: number, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const bytes = Buffer.alloc(length);
    const { bytesRead } = await handle.read(bytes, 0, length, position);
    if (bytesRead !== length) throw new MemexError('MEMEX_IO', `${path} is shorter than its rows (changed by another program?)`);
    return bytes;
  } finally {
    await handle.close();
  }
}

/** Lines Memex wrote and has checked on open, numbered from `firstRow`; anything else is an IO error. */
function parseLines(bytes: Buffer, firstRow: number): VectorLine[] {
  const lines: VectorLine[] = [];
  for (const text of bytes.toString('utf8').split('\n').slice(0, -1)) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = null;
    }
    // Every line was checked against its schema on open; here only that it is still the line for its row.
    const line = value as VectorLine | null;
    if (line === null || typeof line !== 'object' || line.row !== firstRow + lines.length || typeof line.text !== 'string' || typeof line.source !== 'object') {
      throw new MemexError('MEMEX_IO', `vector_index.jsonl changed under Memex at row ${firstRow + lines.length}; reopen the data dir to repair it`);
    }
    lines.push(line);
  }
  return lines;
}

interface ParsedLine {
  value: VectorLine;
  /** Byte offset just past this line's newline. */
  end: number;
}

/** Whole, valid lines up to the first torn or invalid one, and why it stopped there. */
function splitLines(bytes: Buffer): { lines: ParsedLine[]; problem: string | null } {
  const lines: ParsedLine[] = [];
  let start = 0;
  let model: string | null = null;
  while (start < bytes.length) {
    const newline = bytes.indexOf(0x0a, start);
    if (newline === -1) return { lines, problem: `a torn last line (${bytes.length - start} bytes)` };
    let value: VectorLine;
    try {
      value = VectorLineSchema.parse(JSON.parse(bytes.subarray(start, newline).toString('utf8')));
    } catch {
      return { lines, problem: `line ${lines.length + 1} is not a valid vector line` };
    }
    if (value.row !== lines.length) return { lines, problem: `line ${lines.length + 1} says row ${value.row}` };
    if (model !== null && value.model !== model) return { lines, problem: `line ${lines.length + 1} is from model ${value.model}, not ${model}` };
    model = value.model;
    lines.push({ value, end: newline + 1 });
    start = newline + 1;
  }
  return { lines, problem: null };
}

/** Finishes or discards an interrupted rewrite, then keeps the rows both files agree on. */
async function load(paths: VectorPaths): Promise<{ loaded: Loaded; repair: VectorRepair | null }> {
  try {
    if (await exists(paths.journal)) {
      for (const path of [paths.npy, paths.index]) if (await exists(path + SWAP)) await rename(path + SWAP, path);
      await rm(paths.journal, { force: true });
    } else {
      await rm(paths.npy + SWAP, { force: true });
      await rm(paths.index + SWAP, { force: true });
    }
    const indexBytes = await readFile(paths.index).catch((cause: unknown) => {
      if (isNotFound(cause)) return Buffer.alloc(0);
      throw cause;
    });
    const { lines, problem } = splitLines(indexBytes);
    let npySize = 0;
    let shape = null;
    const handle = await open(paths.npy, 'r').catch((cause: unknown) => {
      if (isNotFound(cause)) return null;
      throw cause;
    });
    if (handle) {
      try {
        npySize = (await handle.stat()).size;
        const head = Buffer.alloc(Math.min(npySize, NPY_HEADER_BYTES));
        await handle.read(head, 0, head.length, 0);
        shape = parseNpyHeader(head);
      } finally {
        await handle.close();
      }
    }
    const usableShape = shape && shape.headerBytes === NPY_HEADER_BYTES ? shape : null;
    const rowsOnDisk = usableShape ? Math.floor((npySize - NPY_HEADER_BYTES) / (usableShape.dimension * 4)) : 0;
    const agreed = Math.min(lines.length, rowsOnDisk);
    let keep = agreed;
    // Keep whole sources only: a message with some of its chunks missing is embedded again in full.
    const last = lines[keep - 1]?.value;
    if (last && last.part.index + 1 < last.part.count) keep -= last.part.index + 1;

    const reasons: string[] = [];
    if (problem) reasons.push(problem);
    if (lines.length > rowsOnDisk) reasons.push(`${lines.length - rowsOnDisk} lines without rows`);
    if (rowsOnDisk > lines.length) reasons.push(`${rowsOnDisk - lines.length} rows without lines`);
    if (handle && !usableShape) reasons.push('embeddings.npy has no header Memex can extend');
    if (keep < agreed) reasons.push('a source with only some of its chunks');
    if (keep === 0) {
      if (indexBytes.length > 0 || handle) {
        await rm(paths.index, { force: true });
        await rm(paths.npy, { force: true });
      }
    } else {
      const dimension = (usableShape as { dimension: number }).dimension;
      const indexEnd = (lines[keep - 1] as ParsedLine).end;
      if (indexBytes.length !== indexEnd) await truncate(paths.index, indexEnd);
      const npyEnd = NPY_HEADER_BYTES + keep * dimension * 4;
      if (npySize !== npyEnd || usableShape?.rows !== keep) {
        await truncate(paths.npy, npyEnd);
        const fix = await open(paths.npy, 'r+');
        try {
          await fix.write(npyHeader(keep, dimension), 0, NPY_HEADER_BYTES, 0);
        } finally {
          await fix.close();
        }
      }
    }
    const kept = lines.slice(0, keep).map((line) => line.value);
    const loaded: Loaded = {
      rows: keep,
      model: kept[0]?.model ?? null,
      dimension: keep > 0 ? (usableShape?.dimension ?? null) : null,
      messageIds: kept.map(messageIdOf),
      chunkIds: kept.map((line) => line.chunkId),
      ends: lines.slice(0, keep).map((line) => line.end),
    };
    const repair =
      reasons.length > 0
        ? { path: paths.index, rows: keep, droppedLines: lines.length - keep, droppedRows: Math.max(0, rowsOnDisk - keep), reason: reasons.join('; ') }
        : null;
    return { loaded, repair };
  } catch (cause) {
    throw wrapIo(cause, `cannot open vectors of ${dirname(paths.npy)}`);
  }
}
