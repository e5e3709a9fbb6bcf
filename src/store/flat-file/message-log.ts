import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { open, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { MemexError, MessageSchema, type Message, type MessageId, type SessionId } from '../../core/index.js';
import { isNotFound, wrapIo, type Durability } from '../durable.js';

/** What opening a log fixed, for the store to report. */
export interface TornLineRepair {
  path: string;
  /** Bytes after the last complete line. */
  bytes: number;
  /** True when the torn bytes were a whole message missing only its newline, so it was kept. */
  kept: boolean;
  /** Where the discarded bytes were saved, so nothing is lost. */
  savedTo: string | null;
}

/** Lines of a log that are not messages (hand edits, disk damage): skipped on read, quarantined by `doctor`. */
export interface CorruptLines {
  path: string;
  sessionId: SessionId;
  /** 1-based line numbers, counting non-blank lines. */
  lines: number[];
  /** Why the first one was refused. */
  reason: string;
}

const READ_CHUNK = 1 << 20;
const NEWLINE = 0x0a;

/**
 * One session's `messages.jsonl`: one message per line, append-only.
 *
 * Opening checks only the tail (a torn last line from a crash mid-append is repaired), so opening
 * is cheap however long the history. The first read that needs positions scans the file once,
 * validating every line and remembering where each starts; after that, pages and lookups by id
 * read just the bytes they need, and appends extend the positions in place.
 */
export class MessageLog {
  size: number;
  private starts: number[] | null = null;
  private ids: Map<string, number> | null = null;
  /** This log object's own, so a log opened again never repeats an earlier one's stamp. */
  private readonly opened = randomBytes(6).toString('hex');
  /** Counts the changes other than appends (a message taken out or put back, a failed append cut off). */
  private changes = 0;
  /** Set when a failed append's fragment could not be cut off: cut it before the next append. */
  private tornTail = false;

  /** Lines skipped as corrupt by the last full scan, reported once through `onCorrupt`. */
  private corrupt: CorruptLines | null = null;

  private constructor(
    readonly path: string,
    private readonly sessionId: SessionId,
    size: number,
    private readonly onCorrupt: (found: CorruptLines) => void,
  ) {
    this.size = size;
  }

  static async open(
    path: string,
    sessionId: SessionId,
    durability: Durability,
    onCorrupt: (found: CorruptLines) => void = () => undefined,
  ): Promise<{ log: MessageLog; repair: TornLineRepair | null }> {
    const repair = await repairTornTail(path, sessionId, durability);
    let size = 0;
    try {
      size = (await stat(path)).size;
    } catch (cause) {
      if (!isNotFound(cause)) throw wrapIo(cause, `cannot read ${path}`);
    }
    return { log: new MessageLog(path, sessionId, size, onCorrupt), repair };
  }

  /** The log of a session just created: no file yet, so nothing to repair or scan. */
  static empty(path: string, sessionId: SessionId, onCorrupt: (found: CorruptLines) => void = () => undefined): MessageLog {
    const log = new MessageLog(path, sessionId, 0, onCorrupt);
    log.starts = [];
    log.ids = new Map();
    return log;
  }

  /** The same while the log only grows at its end; another after any other change. */
  get stamp(): string {
    return `${this.opened}.${this.changes}`;
  }

  /** Number of messages; scans the log if it has not been scanned yet. */
  async count(): Promise<number> {
    return (await this.positions()).starts.length;
  }

  async last(): Promise<Message | null> {
    const { starts } = await this.positions();
    return starts.length === 0 ? null : ((await this.range(starts.length - 1, starts.length))[0] ?? null);
  }

  async has(id: string): Promise<boolean> {
    return (await this.positions()).ids.has(id);
  }

  async get(id: MessageId): Promise<Message | null> {
    const { ids } = await this.positions();
    const index = ids.get(id);
    return index === undefined ? null : ((await this.range(index, index + 1))[0] ?? null);
  }

  async indexOf(id: string): Promise<number | undefined> {
    return (await this.positions()).ids.get(id);
  }

  /** Messages [from, to) in log order. */
  async range(from: number, to: number): Promise<Message[]> {
    const { starts } = await this.positions();
    to = Math.min(to, starts.length);
    if (from >= to) return [];
    const begin = starts[from] ?? 0;
    const end = to < starts.length ? (starts[to] ?? this.size) : this.size;
    const buffer = await readBytes(this.path, begin, end);
    const out: Message[] = [];
    for (let index = from; index < to; index++) out.push(this.parseIn(buffer, begin, starts, index));
    return out;
  }

  /**
   * The messages at `positions` (any order; those past the end are left out), keyed by position:
   * one read of the bytes that span the ones less than `PICK_GAP` bytes apart, parsing only their
   * lines. Neighbours of a window's recalled turns are scattered over a session: a read per turn
   * cost more than the bytes between them, but a long session's whole file would cost more still.
   */
  async pick(positions: readonly number[]): Promise<Map<number, Message>> {
    const { starts } = await this.positions();
    const wanted = [...new Set(positions)].filter((at) => at >= 0 && at < starts.length).sort((a, b) => a - b);
    const out = new Map<number, Message>();
    const endOf = (at: number): number => (at + 1 < starts.length ? (starts[at + 1] ?? this.size) : this.size);
    for (let first = 0; first < wanted.length; ) {
      const begin = starts[wanted[first] as number] ?? 0;
      let last = first;
      while (
        last + 1 < wanted.length &&
        (starts[wanted[last + 1] as number] ?? 0) - endOf(wanted[last] as number) <= PICK_GAP &&
        endOf(wanted[last + 1] as number) - begin <= SMALL_READ
      ) {
        last++;
      }
      const buffer = await readBytes(this.path, begin, endOf(wanted[last] as number));
      for (let i = first; i <= last; i++) {
        const at = wanted[i] as number;
        out.set(at, this.parseIn(buffer, begin, starts, at));
      }
      first = last + 1;
    }
    return out;
  }

  /** Every message, oldest first, reading the file in chunks; a snapshot of the log as of the call. */
  async *stream(signal?: AbortSignal): AsyncGenerator<Message> {
    let index = 0;
    for await (const line of readLines(this.path, this.size, signal)) {
      const message = this.tryParse(line.bytes, index++);
      if (message) yield message;
    }
  }

  /** The corrupt lines the last scan skipped, or null when every line is a message. */
  async corruptLines(): Promise<CorruptLines | null> {
    await this.positions();
    return this.corrupt;
  }

  async append(messages: readonly Message[], durability: Durability): Promise<void> {
    if (messages.length === 0) return;
    if (this.tornTail) {
      if (!(await truncateTo(this.path, this.size, durability))) {
        throw new MemexError('MEMEX_IO', `cannot cut a failed append off ${this.path}; nothing more is appended until it can be (reopening repairs it)`);
      }
      this.tornTail = false;
    }
    const positions = this.starts && this.ids ? { starts: this.starts, ids: this.ids } : null;
    let offset = this.size;
    const lines: string[] = [];
    for (const message of messages) {
      const line = `${JSON.stringify(message)}\n`;
      if (positions) {
        positions.ids.set(message.id, positions.starts.length);
        positions.starts.push(offset);
      }
      offset += Buffer.byteLength(line);
      lines.push(line);
    }
    try {
      await durability.append(this.path, lines.join(''));
    } catch (cause) {
      // A failed write (a full disk) may have left part of a line: cut the log back to the last
      // good offset, or the next append would be glued onto the fragment. The positions may
      // describe lines that did not reach the file: forget them and rescan.
      this.starts = null;
      this.ids = null;
      this.changes++;
      this.tornTail = !(await truncateTo(this.path, this.size, durability));
      throw cause;
    }
    this.size = offset;
  }

  /**
   * Rewrites the log without message `id`: a new file beside the old, synced, renamed over it. The
   * one change to a line an append-only log allows; rare (a user deleting a message), so it costs a copy.
   */
  async remove(id: string, durability: Durability): Promise<boolean> {
    const { starts, ids } = await this.positions();
    const index = ids.get(id);
    if (index === undefined) return false;
    const begin = starts[index] ?? 0;
    const end = starts[index + 1] ?? this.size;
    await this.replace(Buffer.concat([await readBytes(this.path, 0, begin), await readBytes(this.path, end, this.size)]), durability);
    return true;
  }

  /** The stored line of message `id` (without its newline) and its position, or null: what the trash keeps, byte for byte. */
  async line(id: string): Promise<{ index: number; bytes: Buffer } | null> {
    const { starts, ids } = await this.positions();
    const index = ids.get(id);
    if (index === undefined) return null;
    const bytes = await readBytes(this.path, starts[index] ?? 0, starts[index + 1] ?? this.size);
    const nl = bytes.indexOf(NEWLINE);
    return { index, bytes: nl < 0 ? bytes : bytes.subarray(0, nl) };
  }

  /** Puts a line back before the message now at `index` (at the end past the last): a rewrite, like `remove`. */
  async insert(index: number, line: Buffer, durability: Durability): Promise<void> {
    const { starts } = await this.positions();
    const at = index < starts.length ? (starts[index] ?? this.size) : this.size;
    const before = await readBytes(this.path, 0, at);
    // A log always ends with a newline after an append; one cut short by hand gets one here.
    const joint = before.length > 0 && before[before.length - 1] !== NEWLINE ? Buffer.from('\n') : Buffer.alloc(0);
    await this.replace(Buffer.concat([before, joint, line, Buffer.from('\n'), await readBytes(this.path, at, this.size)]), durability);
  }

  /** Replaces the whole log: a new file beside the old, synced, renamed over it. */
  private async replace(kept: Buffer, durability: Durability): Promise<void> {
    const temp = `${this.path}.${process.pid}.rewrite.tmp`;
    try {
      const handle = await open(temp, 'w');
      try {
        await handle.writeFile(kept);
        if (durability.policy !== 'none') await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.path);
      await durability.syncDir(dirname(this.path));
    } catch (cause) {
      await unlink(temp).catch(() => undefined);
      throw wrapIo(cause, `cannot rewrite ${this.path}`);
    }
    this.size = kept.length;
    this.starts = null;
    this.ids = null;
    this.changes++;
  }

  /**
   * Scans the log once for where each message starts. A line that is not a message costs only
   * itself: it is left out of the positions (so pages, lookups and appends go on) and reported.
   */
  private async positions(): Promise<{ starts: number[]; ids: Map<string, number> }> {
    if (this.starts && this.ids) return { starts: this.starts, ids: this.ids };
    const starts: number[] = [];
    const ids = new Map<string, number>();
    const bad: number[] = [];
    let reason = '';
    let lineNo = 0;
    for await (const line of readLines(this.path, this.size)) {
      lineNo++;
      let message: Message;
      try {
        message = this.parse(line.bytes, lineNo - 1);
      } catch (cause) {
        if (bad.length === 0) reason = (cause as Error).message;
        bad.push(lineNo);
        continue;
      }
      ids.set(message.id, starts.length);
      starts.push(line.offset);
    }
    this.starts = starts;
    this.ids = ids;
    const before = this.corrupt?.lines.length ?? 0;
    this.corrupt = bad.length > 0 ? { path: this.path, sessionId: this.sessionId, lines: bad, reason } : null;
    if (bad.length > before) this.onCorrupt(this.corrupt as CorruptLines);
    return { starts, ids };
  }

  /**
   * Rewrites the log without its corrupt lines, which are saved beside it
   * (`messages.jsonl.quarantine-<time>`) so nothing is thrown away. Returns where, or null when
   * every line was a message.
   */
  async quarantine(durability: Durability): Promise<{ lines: number; savedTo: string } | null> {
    const corrupt = await this.corruptLines();
    if (!corrupt) return null;
    const wanted = new Set(corrupt.lines);
    const kept: Uint8Array[] = [];
    const dropped: Uint8Array[] = [];
    let lineNo = 0;
    for await (const line of readLines(this.path, this.size)) {
      lineNo++;
      (wanted.has(lineNo) ? dropped : kept).push(Buffer.concat([line.bytes, Buffer.from('\n')]));
    }
    const savedTo = `${this.path}.quarantine-${new Date().toISOString().replace(/[:.]/g, '')}`;
    await durability.writeAtomic(savedTo, Buffer.concat(dropped));
    await this.replace(Buffer.concat(kept), durability);
    this.corrupt = null;
    return { lines: dropped.length, savedTo };
  }

  private tryParse(bytes: Uint8Array, index: number): Message | null {
    try {
      return this.parse(bytes, index);
    } catch {
      return null;
    }
  }

  /** The message at position `index`, from `buffer` (the log's bytes from offset `begin`). */
  private parseIn(buffer: Buffer, begin: number, starts: readonly number[], index: number): Message {
    const relative = (starts[index] ?? 0) - begin;
    const nl = buffer.indexOf(NEWLINE, relative);
    return this.parse(buffer.subarray(relative, nl < 0 ? buffer.length : nl), index);
  }

  private parse(bytes: Uint8Array, index: number): Message {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (cause) {
      throw corruptLine(this.path, this.sessionId, index, 'is not valid JSON', cause);
    }
    const parsed = MessageSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw corruptLine(this.path, this.sessionId, index, `is not a message (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'})`, parsed.error);
    }
    if (parsed.data.sessionId !== this.sessionId) {
      throw corruptLine(this.path, this.sessionId, index, `belongs to session ${parsed.data.sessionId}`);
    }
    return parsed.data;
  }
}

/**
 * Cuts a log back to `size` bytes after a failed append. Shrinking needs no free space, so it
 * works on the full disk that failed the append; if it still fails, the torn tail is repaired
 * the next time the log is opened.
 */
async function truncateTo(path: string, size: number, durability: Durability): Promise<boolean> {
  try {
    const handle = await open(path, 'r+');
    try {
      if ((await handle.stat()).size > size) {
        await handle.truncate(size);
        if (durability.policy !== 'none') await handle.sync();
      }
    } finally {
      await handle.close();
    }
    return true;
  } catch {
    return false;
  }
}

function corruptLine(path: string, sessionId: SessionId, index: number, what: string, cause?: unknown): MemexError {
  return new MemexError('MEMEX_SESSION_CORRUPT', `session ${sessionId}: message ${index + 1} in ${path} ${what}`, {
    cause,
    details: { sessionId, path, message: index + 1 },
  });
}

/** Reads up to this many bytes in place (synchronously): a page of turns, not a whole history. */
const SMALL_READ = 256 * 1024;
/** Bytes between two wanted lines that are read through rather than read apart (about a page cache page or four). */
const PICK_GAP = 16 * 1024;

async function readBytes(path: string, begin: number, end: number): Promise<Buffer> {
  const buffer = Buffer.alloc(end - begin);
  // A window reads a few pages of recent turns every chat turn: an asynchronous open, read and
  // close each cost more main-thread time, and more waiting on the thread pool, than the reads.
  if (buffer.length <= SMALL_READ) return readSmall(path, begin, buffer);
  try {
    const handle = await open(path, 'r');
    try {
      let done = 0;
      while (done < buffer.length) {
        const { bytesRead } = await handle.read(buffer, done, buffer.length - done, begin + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } finally {
      await handle.close();
    }
  } catch (cause) {
    throw wrapIo(cause, `cannot read ${path}`);
  }
  return buffer;
}

function readSmall(path: string, begin: number, buffer: Buffer): Buffer {
  try {
    const fd = openSync(path, 'r');
    try {
      let done = 0;
      while (done < buffer.length) {
        const read = readSync(fd, buffer, done, buffer.length - done, begin + done);
        if (read === 0) break;
        done += read;
      }
    } finally {
      closeSync(fd);
    }
  } catch (cause) {
    throw wrapIo(cause, `cannot read ${path}`);
  }
  return buffer;
}

/** Non-blank lines of the first `limit` bytes of a file, with the byte offset each starts at. */
async function* readLines(path: string, limit: number, signal?: AbortSignal): AsyncGenerator<{ bytes: Uint8Array; offset: number }> {
  if (limit === 0) return;
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    if (isNotFound(cause)) return;
    throw wrapIo(cause, `cannot read ${path}`);
  }
  try {
    const chunk = Buffer.alloc(READ_CHUNK);
    let carry: Buffer = Buffer.alloc(0);
    let carryOffset = 0;
    let position = 0;
    while (position < limit) {
      signal?.throwIfAborted();
      const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, limit - position), position);
      if (bytesRead === 0) break;
      const data = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
      const dataOffset = carry.length > 0 ? carryOffset : position;
      let lineStart = 0;
      for (let nl = data.indexOf(NEWLINE); nl >= 0; nl = data.indexOf(NEWLINE, lineStart)) {
        const bytes = data.subarray(lineStart, nl);
        if (!isBlank(bytes)) yield { bytes, offset: dataOffset + lineStart };
        lineStart = nl + 1;
      }
      carry = Buffer.from(data.subarray(lineStart));
      carryOffset = dataOffset + lineStart;
      position += bytesRead;
    }
    if (!isBlank(carry)) yield { bytes: carry, offset: carryOffset };
  } finally {
    await handle.close();
  }
}

function isBlank(bytes: Uint8Array): boolean {
  for (const byte of bytes) if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d && byte !== NEWLINE) return false;
  return true;
}

/**
 * A crash mid-append can leave a last line without its newline. If those bytes are a whole valid
 * message, the newline is added and the message kept; otherwise they are saved beside the log
 * (`messages.jsonl.torn-<time>`) and cut off, so the log is valid again and nothing is thrown away.
 */
async function repairTornTail(path: string, sessionId: SessionId, durability: Durability): Promise<TornLineRepair | null> {
  let handle;
  try {
    handle = await open(path, 'r+');
  } catch (cause) {
    if (isNotFound(cause)) return null;
    throw wrapIo(cause, `cannot open ${path}`);
  }
  try {
    const { size } = await handle.stat();
    if (size === 0) return null;
    const lastByte = Buffer.alloc(1);
    await handle.read(lastByte, 0, 1, size - 1);
    if (lastByte[0] === NEWLINE) return null;

    let tailStart = 0;
    const block = Buffer.alloc(64 * 1024);
    for (let end = size; end > 0; ) {
      const begin = Math.max(0, end - block.length);
      const { bytesRead } = await handle.read(block, 0, end - begin, begin);
      const nl = block.subarray(0, bytesRead).lastIndexOf(NEWLINE);
      if (nl >= 0) {
        tailStart = begin + nl + 1;
        break;
      }
      end = begin;
    }
    const tail = Buffer.alloc(size - tailStart);
    await handle.read(tail, 0, tail.length, tailStart);

    if (isWholeMessage(tail, sessionId)) {
      await handle.write('\n', size);
      if (durability.policy !== 'none') await handle.sync();
      return { path, bytes: tail.length, kept: true, savedTo: null };
    }
    const savedTo = `${path}.torn-${new Date().toISOString().replace(/[:.]/g, '')}`;
    await writeFile(savedTo, tail);
    await handle.truncate(tailStart);
    if (durability.policy !== 'none') await handle.sync();
    return { path, bytes: tail.length, kept: false, savedTo };
  } catch (cause) {
    throw wrapIo(cause, `cannot repair ${path}`);
  } finally {
    await handle.close();
  }
}

function isWholeMessage(bytes: Buffer, sessionId: SessionId): boolean {
  try {
    const parsed = MessageSchema.safeParse(JSON.parse(bytes.toString('utf8')));
    return parsed.success && parsed.data.sessionId === sessionId;
  } catch {
    return false;
  }
}
