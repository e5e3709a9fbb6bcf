import { describe, expect, it } from 'vitest';
import { ModelThread, transformersUrl } from '../../src/embedding/model-thread.js';
import { expectCode } from '../helpers/errors.js';
import { hasSharedModel, SHARED_MODEL_ID, SHARED_MODEL_MISSING, SHARED_MODELS } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

async function sharedThread(): Promise<ModelThread> {
  return new ModelThread({ root: SHARED_MODELS, id: SHARED_MODEL_ID, cacheDir: await tempDir(), allowRemote: false, transformersUrl: transformersUrl() });
}

describe.skipIf(!hasSharedModel)(`the embedding model's thread ${hasSharedModel ? '' : SHARED_MODEL_MISSING}`, () => {
  it('runs a query (urgent) before bulk batches queued earlier, after the batch under way', async () => {
    const thread = await sharedThread();
    try {
      const info = await thread.start();
      const order: string[] = [];
      const bulk = (name: string): Promise<void> =>
        thread.run(Array.from({ length: 16 }, (_, i) => `bulk ${name} text number ${i}`)).then((rows) => {
          expect(rows.length).toBe(16 * info.dimension);
          order.push(name);
        });
      const work = [bulk('b1'), bulk('b2'), bulk('b3')];
      work.push(thread.run(['where did I move?'], true).then(() => void order.push('query')));
      await Promise.all(work);
      expect(order).toEqual(['b1', 'query', 'b2', 'b3']);
    } finally {
      await thread.close();
    }
  });

  it('runs queries waiting together as one batch, each getting its own rows', async () => {
    const thread = await sharedThread();
    try {
      const info = await thread.start();
      const queries = ['where did I move?', 'what is my sister called', 'when is the tax return due', 'bees'];
      const alone = await Promise.all(queries.map((q) => thread.run([q], true)));
      const before = thread.requests;
      const bulk = thread.run(Array.from({ length: 16 }, (_, i) => `bulk text number ${i}`));
      const together = await Promise.all(queries.map((q) => thread.run([q], true)));
      await bulk;
      // The bulk batch, then one run for the four queries.
      expect(thread.requests - before).toBe(2);
      for (const [i, rows] of together.entries()) {
        expect(rows.length).toBe(info.dimension);
        const single = alone[i] as Float32Array;
        let dot = 0;
        let norms = 0;
        for (let d = 0; d < info.dimension; d++) {
          dot += (rows[d] as number) * (single[d] as number);
          norms += (single[d] as number) ** 2;
        }
        expect(dot / norms).toBeGreaterThan(0.999);
      }
    } finally {
      await thread.close();
    }
  });

  it('fails the work in hand with MEMEX_MODEL_UNAVAILABLE when the thread dies, and starts a new thread for the next', async () => {
    const thread = await sharedThread();
    try {
      await thread.start();
      const inHand = thread.run(Array.from({ length: 64 }, (_, i) => `a longer text to keep the model busy for a while, number ${i}`));
      const queued = thread.run(['queued behind it']);
      await thread.close();
      await expectCode(() => inHand, 'MEMEX_MODEL_UNAVAILABLE');
      await expectCode(() => queued, 'MEMEX_MODEL_UNAVAILABLE');
      const rows = await thread.run(['after a restart']);
      expect(rows.length).toBeGreaterThan(0);
    } finally {
      await thread.close();
    }
  });

  it('refuses a model folder without the model with MEMEX_MODEL_UNAVAILABLE, and ends its thread', async () => {
    const thread = new ModelThread({ root: await tempDir(), id: 'no/such-model', cacheDir: await tempDir(), allowRemote: false, transformersUrl: transformersUrl() });
    await expectCode(() => thread.run(['x']), 'MEMEX_MODEL_UNAVAILABLE');
  });
});
