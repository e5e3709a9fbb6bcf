import { describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/embedding/index.js';
import { expectCode } from '../helpers/errors.js';

function norm(row: Float32Array): number {
  return Math.sqrt(row.reduce((sum, x) => sum + x * x, 0));
}

/** What every Embedder promises; each implementation runs this suite. */
export function describeEmbedderConformance(name: string, make: () => Promise<Embedder>): void {
  describe(`Embedder conformance: ${name}`, () => {
    it('gives one unit-length row of `dimension` floats per text, in order', async () => {
      const embedder = await make();
      const texts = ['The cat sat on the mat.', 'Quarterly revenue grew by four percent.', 'x'];
      const rows = await embedder.embed(texts);
      expect(rows).toHaveLength(3);
      for (const row of rows) {
        expect(row).toBeInstanceOf(Float32Array);
        expect(row).toHaveLength(embedder.dimension);
        expect(norm(row)).toBeCloseTo(1, 4);
      }
      expect(await embedder.embed([])).toEqual([]);
    });

    it('gives the zero vector, never NaN, for empty and whitespace-only text', async () => {
      const embedder = await make();
      const rows = await embedder.embed(['', '   ', '\n\t', 'real words']);
      for (const row of rows.slice(0, 3)) {
        expect(row.every((x) => x === 0)).toBe(true);
      }
      expect(rows.flatMap((row) => [...row]).some((x) => Number.isNaN(x))).toBe(false);
      expect(norm(rows[3] as Float32Array)).toBeCloseTo(1, 4);
    });

    it('embeds a text the same alone and inside a batch of different lengths', async () => {
      const embedder = await make();
      const text = 'My sister moved to Denver for a nursing job.';
      const [alone] = await embedder.embed([text]);
      const batch = await embedder.embed(['short', text, 'a much longer sentence that pads the batch out with many more tokens than the others have']);
      const inBatch = batch[1] as Float32Array;
      for (let i = 0; i < embedder.dimension; i++) expect(inBatch[i]).toBeCloseTo((alone as Float32Array)[i] as number, 4);
    });

    it('counts tokens, and a longer text has more', async () => {
      const embedder = await make();
      expect(embedder.countTokens('one two three four five six')).toBeGreaterThan(embedder.countTokens('one two'));
      expect(embedder.maxTokens).toBeGreaterThan(8);
    });

    it("fills options.tokens, where it fills it, with each text's countTokens, and leaves it as long as it was", async () => {
      const embedder = await make();
      const texts = ['The cat sat on the mat.', 'Quarterly revenue grew by four percent, the report said.', 'x'];
      const tokens = new Int32Array(texts.length).fill(-1);
      await embedder.embed(texts, { tokens, remember: false });
      for (const [i, text] of texts.entries()) if (tokens[i] !== -1) expect(tokens[i]).toBe(embedder.countTokens(text));
      const short = new Int32Array(1).fill(-1);
      await embedder.embed(texts, { tokens: short });
      expect(short).toHaveLength(1);
    });

    it('stops with MEMEX_ABORTED when its signal is aborted', async () => {
      const embedder = await make();
      const controller = new AbortController();
      controller.abort();
      await expectCode(embedder.embed(['anything'], { signal: controller.signal }), 'MEMEX_ABORTED');
    });

    it('refuses anything but an array of strings', async () => {
      const embedder = await make();
      await expectCode(embedder.embed([1 as unknown as string]), 'MEMEX_INVALID_INPUT');
    });
  });
}
