import { createHash, type Hash } from 'node:crypto';

/**
 * JSON with object keys sorted at every level, so two backends that build the same record in a
 * different key order (a row read from Postgres, a line read from a file) give the same text.
 * `undefined` fields are left out, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(record)
        .filter((key) => record[key] !== undefined)
        .sort()
        .map((key) => [key, sortKeys(record[key])]),
    );
  }
  return value;
}

/** A running sha256 over a sequence of records: each one's canonical JSON and a newline. */
export class Digest {
  private readonly hash: Hash = createHash('sha256');
  count = 0;

  add(record: unknown): void {
    this.hash.update(canonicalJson(record));
    this.hash.update('\n');
    this.count++;
  }

  bytes(data: Uint8Array): void {
    this.hash.update(data);
  }

  hex(): string {
    return this.hash.digest('hex');
  }
}
