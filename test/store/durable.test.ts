import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Durability } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';

describe('Durability.append', () => {
  it('lands concurrent appends to one file whole and in call order (regression: a job journal line written during another could land first or torn: the flaky "deleting a user cancels their ingest jobs" left a cancelled job "running")', async () => {
    const durability = new Durability('none');
    const path = join(await tempDir(), 'log.jsonl');
    // Long lines among short ones: a long write is split into pieces a short one could slip between.
    const lines = Array.from({ length: 200 }, (_, i) => `${JSON.stringify({ i, pad: 'x'.repeat(i % 10 === 0 ? 2_000_000 : 10) })}\n`);
    await Promise.all(lines.map((line) => durability.append(path, line)));
    const order = (await readFile(path, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { i: number }).i);
    expect(order).toEqual(lines.map((_, i) => i));
  });
});
