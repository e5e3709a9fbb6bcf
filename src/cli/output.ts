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
