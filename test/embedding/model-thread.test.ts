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
