import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { z } from 'zod';
import { FORMAT_VERSION, MemexError, ioCode, type FsyncPolicy } from '../core/index.js';
import { Coalescer } from './serial.js';

export interface WriteOptions {
  /** fsync before the rename (default true; never under the `none` policy). */
  durable?: boolean;
  /** The file's permission bits (default 0o666, less the umask). */
  mode?: number;
}

/**
 * Writes that survive crashes, under one fsync policy (see `fsync` in core/config.ts):
 *
 * - JSON files are replaced atomically: written to a temp file beside the target, fsynced (unless
 *   the policy is `none`), then renamed over it. A reader sees the old file or the new, never half.
 * - Logs are appended with one write() per batch, so concurrent appenders (serialised per file by
 *   the caller) never interleave. `append` writes; `commit` makes what was written durable:
 *   under `always` the fsync already happened inside `append`; under `group` concurrent commits to
 *   one file share an fsync; under `none` it returns at once.
 */
export class Durability {
  private readonly syncers = new Map<string, Coalescer>();
  /** The last append to each path, which the next one waits for. */
  private readonly appending = new Map<string, Promise<void>>();

  constructor(readonly policy: FsyncPolicy) {}

  async writeJsonAtomic(path: string, value: unknown, options: WriteOptions = {}): Promise<void> {
    await this.writeAtomic(path, jsonText(value), options);
  }

  /**
   * Writes a JSON file inside a folder no reader sees yet (a hidden staging folder, renamed into
   * place whole): no temp file of its own, fsynced under the policy before that rename.
   */
  async writeJsonStaged(path: string, value: unknown): Promise<void> {
    await writeSynced(path, jsonText(value), this.policy !== 'none');
  }

  /** Replaces the file at `path` whole: a temp file, fsynced (per the policy), renamed over it. */
  async writeAtomic(path: string, data: string | Uint8Array, options: WriteOptions = {}): Promise<void> {
    const durable = (options.durable ?? true) && this.policy !== 'none';
    const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      // Created with its mode, so a secret is never readable by others, not even before the rename.
      const handle = await open(temp, 'wx', options.mode ?? 0o666);
      try {
        await handle.writeFile(data);
        if (durable) await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, path);
    } catch (cause) {
      await unlink(temp).catch(() => undefined);
      throw wrapIo(cause, `cannot write ${path}`);
    }
  }

  /**
   * Appends `text` (whole lines) to the log at `path`, creating it if missing. Appends to one path land whole and in call order: each waits for the
   * one before (two at once could interleave a long line's pieces with a short one, or swap lines).
   */
  append(path: string, text: string): Promise<void> {
    const mine = (this.appending.get(path) ?? Promise.resolve()).then(() => this.appendNow(path, text));
    const settled = mine.catch(() => undefined);
    this.appending.set(path, settled);
    void settled.then(() => {
      if (this.appending.get(path) === settled) this.appending.delete(path);
    });
    return mine;
  }

  private async appendNow(path: string, text: string): Promise<void> {
    try {
      const handle = await open(path, 'a');
      try {
        await handle.writeFile(text, 'utf8');
        if (this.policy === 'always') await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (cause) {
      throw wrapIo(cause, `cannot append to ${path}`);
    }
  }

  /** Resolves once everything appended to `path` before the call is on disk (per the policy). */
  async commit(path: string): Promise<void> {
    if (this.policy !== 'group') return;
    let syncer = this.syncers.get(path);
    if (!syncer) {
      syncer = new Coalescer(() => fsyncPath(path));
      this.syncers.set(path, syncer);
    }
    try {
      await syncer.run();
    } catch (cause) {
      throw wrapIo(cause, `cannot sync ${path}`);
    }
  }

  /** Makes a new directory entry (a created or renamed file) durable. */
  async syncDir(path: string): Promise<void> {
    if (this.policy === 'none') return;
    await fsyncPath(path).catch((cause: unknown) => {
      throw wrapIo(cause, `cannot sync directory ${path}`);
    });
  }

  /** Creates a directory (and parents), durably linking the new entries under the policy. */
  async mkdirp(path: string): Promise<void> {
    const created = await mkdir(path, { recursive: true }).catch((cause: unknown) => {
      throw wrapIo(cause, `cannot create ${path}`);
    });
    if (created !== undefined) await this.syncDir(dirname(created));
  }

  forget(pathPrefix: string): void {
    for (const path of this.syncers.keys()) if (path.startsWith(pathPrefix)) this.syncers.delete(path);
  }
}

/** How Memex writes a JSON file: indented, ending in a newline. */
function jsonText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes a whole file (replacing it), fsynced when `sync`; not atomic: callers rename or journal. */
export async function writeSynced(path: string, data: string | Uint8Array, sync: boolean): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(data);
    if (sync) await handle.sync();
  } finally {
    await handle.close();
  }
}

export function wrapIo(cause: unknown, message: string): MemexError {
  if (cause instanceof MemexError) return cause;
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
  const code = ioCode(errno);
  return new MemexError(code, `${message}${code === 'MEMEX_DISK_FULL' ? ': the disk is full' : ''}${errno ? ` (${errno})` : ''}`, { cause, details: { errno } });
}

export function isNotFound(cause: unknown): boolean {
  return (cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/**
 * Reads and validates a saved JSON record. Missing file: null. Unreadable, invalid, or from a newer
 * format version: the error `corrupt(reason, cause)` makes, so each caller names its own code.
 */
export async function readJsonRecord<S extends z.ZodType>(
  path: string,
  schema: S,
  corrupt: (reason: string, cause?: unknown) => MemexError,
): Promise<z.output<S> | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    if (isNotFound(cause)) return null;
    throw wrapIo(cause, `cannot read ${path}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw corrupt(`${path} is not valid JSON`, cause);
  }
  const version = (raw as { v?: unknown } | null)?.v;
  if (typeof version === 'number' && version > FORMAT_VERSION) {
    throw new MemexError('MEMEX_FORMAT_UNSUPPORTED', `${path} has format version ${version}; this Memex reads up to ${FORMAT_VERSION}`, {
      details: { path, version },
    });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw corrupt(`${path} does not match its schema (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'})`, parsed.error);
  }
  return parsed.data;
}

/** Whether `path` exists; an error other than "not found" is the caller's. */
export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (cause: unknown) => {
      if (isNotFound(cause)) return false;
      throw cause;
    },
  );
}
