import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MemexError } from '../core/index.js';

/** Bytes of one upload so far, across its files: `limits.maxImportBytes` holds for the whole upload. */
export interface UploadBudget {
  total: number;
  readonly limit: number;
}

function tooLarge(limit: number): MemexError {
  return new MemexError('MEMEX_FILE_TOO_LARGE', `the upload is over limits.maxImportBytes (${limit} bytes)`, { details: { limit } });
}

/** Writes a multipart file part to `path`, stopping with MEMEX_FILE_TOO_LARGE once the upload passes its budget. */
export async function saveUploadPart(file: Readable & { truncated?: boolean }, path: string, budget: UploadBudget): Promise<void> {
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      budget.total += chunk.length;
      if (budget.total > budget.limit) done(tooLarge(budget.limit));
      else done(null, chunk);
    },
  });
  await pipeline(file, count, createWriteStream(path));
  if (file.truncated) throw tooLarge(budget.limit);
}
