import type { Writable } from 'node:stream';

/** Where a command writes: stdout for results, stderr for warnings and errors. */
export interface Io {
  out: Writable;
  err: Writable;
  json: boolean;
}

export function print(io: Io, human: string, data: unknown): void {
  io.out.write(io.json ? `${JSON.stringify(data, null, 2)}\n` : `${human}\n`);
}

/** A plain text table: columns padded to their widest cell, the last column left free. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function clip(text: string | null, max: number): string {
  if (text === null) return '';
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** `2026-11-21T15:30:12.345Z` → `2026-11-21 15:30` (UTC), short enough for a table. */
export function shortTime(iso: string | null): string {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : '';
}

export interface Progress {
  update(done: number, total: number, detail?: string): void;
  finish(): void;
}

/**
 * A one-line progress bar on stderr, redrawn in place at most ten times a second. Only on a
 * terminal and without --json: piped output and scripts get the final result alone.
 */
export function progress(io: Io, label: string): Progress {
  const stream = io.err as Writable & { isTTY?: boolean; columns?: number };
  if (io.json || !stream.isTTY) return { update: () => undefined, finish: () => undefined };
  let last = 0;
  let drawn = false;
  return {
    update(done, total, detail = '') {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const width = 24;
      const filled = total > 0 ? Math.round((done / total) * width) : 0;
      const percent = total > 0 ? Math.floor((done / total) * 100) : 0;
      const line = `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} ${percent}% ${detail}`;
      // A terminal that reports 0 columns (some do, when unknown) gets the usual 100.
      const columns = stream.columns || 100;
      stream.write(`\r${line.slice(0, columns - 1).padEnd(Math.min(columns, 100) - 1)}`);
      drawn = true;
    },
    finish() {
      if (drawn) stream.write('\n');
    },
  };
}

/**
 * Writes `text`, waiting while the stream's buffer is full. Rejects when the stream closes or
 * fails first (a reader that went away: `memex export | head`), rather than waiting forever.
 */
export async function write(stream: Writable, text: string): Promise<void> {
  if (stream.destroyed) throw Object.assign(new Error('the output was closed'), { code: 'ERR_STREAM_DESTROYED' });
  if (stream.write(text)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (error?: Error): void => {
      stream.off('drain', onDrain).off('close', onClose).off('error', done);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = (): void => done();
    const onClose = (): void => done(Object.assign(new Error('the output was closed'), { code: 'ERR_STREAM_DESTROYED' }));
    stream.on('drain', onDrain).on('close', onClose).on('error', done);
  });
}
