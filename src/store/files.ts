import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { MemexError, type FileId } from '../core/index.js';
import { isNotFound, wrapIo, type Durability } from './durable.js';
import { isAlive } from './lock.js';

/** A file to add: bytes in memory, a path on disk, or a stream (an upload). */
export type FileSource = { bytes: Uint8Array } | { path: string } | { stream: Readable | AsyncIterable<Uint8Array> };

export interface SniffedType {
  mimeType: string;
  ext: string;
}

const TEXT_EXTS: Record<string, string> = {
  txt: 'text/plain',
  md: 'text/markdown',
  markdown: 'text/markdown',
  csv: 'text/csv',
  json: 'application/json',
  jsonl: 'application/jsonl',
  html: 'text/html',
};

function startsWith(head: Uint8Array, signature: number[], at = 0): boolean {
  return signature.every((byte, i) => head[at + i] === byte);
}

/**
 * The file's type from its first bytes, never from its name: a name only picks among text kinds
 * once the bytes are known to be text. Unknown binary is `application/octet-stream`.
 */
export function sniffType(head: Uint8Array, name = ''): SniffedType {
  if (startsWith(head, [0x25, 0x50, 0x44, 0x46, 0x2d])) return { mimeType: 'application/pdf', ext: 'pdf' };
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { mimeType: 'image/png', ext: 'png' };
  if (startsWith(head, [0xff, 0xd8, 0xff])) return { mimeType: 'image/jpeg', ext: 'jpg' };
  if (startsWith(head, [0x47, 0x49, 0x46, 0x38])) return { mimeType: 'image/gif', ext: 'gif' };
  if (startsWith(head, [0x52, 0x49, 0x46, 0x46]) && startsWith(head, [0x57, 0x45, 0x42, 0x50], 8)) return { mimeType: 'image/webp', ext: 'webp' };
  if (startsWith(head, [0x49, 0x49, 0x2a, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2a])) return { mimeType: 'image/tiff', ext: 'tiff' };
  if (startsWith(head, [0x42, 0x4d]) && head.length >= 26 && [12, 40, 52, 56, 64, 108, 124].includes(readU32LE(head, 14))) return { mimeType: 'image/bmp', ext: 'bmp' };
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) return { mimeType: 'application/zip', ext: 'zip' };
  if (looksLikeText(head)) {
    const declared = extname(name).slice(1).toLowerCase();
    const mimeType = TEXT_EXTS[declared];
    return mimeType ? { mimeType, ext: declared } : { mimeType: 'text/plain', ext: 'txt' };
  }
  return { mimeType: 'application/octet-stream', ext: 'bin' };
}

function readU32LE(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8) | ((bytes[at + 2] ?? 0) << 16) | ((bytes[at + 3] ?? 0) << 24)) >>> 0;
}

function looksLikeText(head: Uint8Array): boolean {
  if (head.length === 0) return true;
  if (head.includes(0)) return false;
  try {
    // A multi-byte character may be cut at the end of the sniffed head; ignore the last 3 bytes.
    new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(0, Math.max(0, head.length - 3)));
    return true;
  } catch {
    return false;
  }
}

async function* chunksOf(source: FileSource): AsyncGenerator<Uint8Array> {
  if ('bytes' in source) {
    yield source.bytes;
  } else if ('path' in source) {
    yield* createReadStream(source.path) as AsyncIterable<Uint8Array>;
  } else {
    try {
      yield* source.stream as AsyncIterable<Uint8Array>;
    } catch (cause) {
      // A caller's stream (an upload) that breaks off or is malformed is bad input, not a disk fault.
      if (cause instanceof MemexError) throw cause;
      throw new MemexError('MEMEX_INVALID_INPUT', `the file's stream failed before its end: ${(cause as Error).message}; nothing was kept`, { cause });
    }
  }
}

export interface StagedFile {
  id: FileId;
  size: number;
  type: SniffedType;
  /** Where the staged bytes are until `commit` or `discard` (a backend that keeps bytes elsewhere reads them here). */
  stagedPath: string;
  /** The stored copy's final path, once `commit` has run. */
  commit(finalPath: (type: SniffedType) => string): Promise<{ path: string; created: boolean }>;
  discard(): Promise<void>;
}

/**
 * Streams a source into a temp file in `dir` while hashing it, refusing it as soon as it passes
 * `maxBytes`. Nothing is visible under its final name until `commit`, which keeps the first copy
 * of identical bytes and drops the rest.
 */
const STAGED = /^\.upload\.(\d+)\.[0-9a-f]+\.tmp$/;

/**
 * Removes what uploads of processes that died mid-stream (killed, crashed) left in `dir`: their
 * bytes were never acknowledged, so nothing is lost. Uploads of live processes are left alone.
 */
export async function sweepStaleUploads(dir: string, options: { othersAreDead?: boolean } = {}): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    const pid = Number(STAGED.exec(name)?.[1]);
    // With the data dir's lock held, no other process can be uploading: a live pid is only a reused one.
    if (!Number.isInteger(pid) || pid === process.pid || (!options.othersAreDead && isAlive(pid))) continue;
    await unlink(join(dir, name)).then(
      () => removed++,
      () => undefined,
    );
  }
  return removed;
}

export async function stageFile(dir: string, source: FileSource, name: string, maxBytes: number, durability: Durability): Promise<StagedFile> {
  const temp = join(dir, `.upload.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const hash = createHash('sha256');
  const head: Uint8Array[] = [];
  let headBytes = 0;
  let size = 0;
  let handle;
  try {
    handle = await open(temp, 'wx');
  } catch (cause) {
    throw wrapIo(cause, `cannot stage upload in ${dir}`);
  }
  try {
    for await (const chunk of chunksOf(source)) {
      size += chunk.byteLength;
      if (size > maxBytes) {
        throw new MemexError('MEMEX_FILE_TOO_LARGE', `file ${name || '(unnamed)'} is over the ${maxBytes}-byte limit`, { details: { maxBytes } });
      }
      hash.update(chunk);
      if (headBytes < 4096) {
        head.push(chunk.subarray(0, 4096 - headBytes));
        headBytes += Math.min(chunk.byteLength, 4096 - headBytes);
      }
      await handle.write(chunk);
    }
    if (durability.policy !== 'none') await handle.sync();
  } catch (cause) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    if (cause instanceof MemexError) throw cause;
    if ('path' in source && isNotFound(cause)) {
      throw new MemexError('MEMEX_INVALID_INPUT', `no such file: ${source.path}`, { cause, details: { path: source.path } });
    }
    throw wrapIo(cause, `cannot store upload ${name}`);
  }
  await handle.close();

  const id = hash.digest('hex') as FileId;
  const type = sniffType(Buffer.concat(head), name);
  return {
    id,
    size,
    type,
    stagedPath: temp,
    async commit(finalPath) {
      const path = finalPath(type);
      const exists = await stat(path).then(
        () => true,
        (cause: unknown) => {
          if (isNotFound(cause)) return false;
          throw wrapIo(cause, `cannot read ${path}`);
        },
      );
      if (exists) {
        await unlink(temp).catch(() => undefined);
        return { path, created: false };
      }
      await rename(temp, path).catch((cause: unknown) => {
        throw wrapIo(cause, `cannot store ${path}`);
      });
      await durability.syncDir(dir);
      return { path, created: true };
    },
    async discard() {
      await unlink(temp).catch(() => undefined);
    },
  };
}
