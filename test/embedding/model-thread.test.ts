import { describe, expect, it } from 'vitest';
import { chunkText } from '../../src/chunking/index.js';
import { ModelThread, transformersUrl } from '../../src/embedding/model-thread.js';
import { TransformersEmbedder } from '../../src/embedding/transformers.js';
import { expectCode } from '../helpers/errors.js';
import { hasSharedModel, SHARED_MODEL_ID, SHARED_MODEL_MISSING, SHARED_MODELS } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

async function sharedThread(): Promise<ModelThread> {
  return new ModelThread({ root: SHARED_MODELS, id: SHARED_MODEL_ID, cacheDir: await tempDir(), allowRemote: false, transformersUrl: transformersUrl() });
}

describe.skipIf(!hasSharedModel)(`the embedding model's thread ${hasSharedModel ? '' : SHARED_MODEL_MISSING}`, () => {
  it('runs a query (urgent) before bulk batches asked for earlier, after at most the batch under way', async () => {
    const thread = await sharedThread();
    try {
      const info = await thread.start();
      const order: string[] = [];
      const bulk = (name: string): Promise<void> =>
        thread.run(Array.from({ length: 16 }, (_, i) => `bulk ${name} text number ${i}`)).then((rows) => {
          expect(rows.data.length).toBe(16 * info.dimension);
          expect(rows.tokens.length).toBe(16);
          order.push(name);
        });
      const work = [bulk('b1'), bulk('b2'), bulk('b3')];
      work.push(thread.run(['where did I move?'], true).then(() => void order.push('query')));
      await Promise.all(work);
      // Two bulk batches were sent to the thread before the query; it still goes before the second.
      expect(order.filter((name) => name !== 'query')).toEqual(['b1', 'b2', 'b3']);
      expect(order.indexOf('query')).toBeLessThanOrEqual(1);
    } finally {
      await thread.close();
    }
  });

  it('sends the next bulk batch before the one under way is answered, so the model never waits for this thread; at most two', async () => {
    const thread = await sharedThread();
    try {
      await thread.start();
      const state = thread as unknown as { sent: Map<number, unknown>; queue: unknown[] };
      const work = [1, 2, 3].map((n) => thread.run(Array.from({ length: 8 }, (_, i) => `bulk ${n} text ${i}`)));
      expect([state.sent.size, state.queue.length]).toEqual([2, 1]);
      await work[0];
      expect([state.sent.size, state.queue.length]).toEqual([2, 0]);
      await Promise.all(work);
      expect([state.sent.size, state.queue.length]).toEqual([0, 0]);
    } finally {
      await thread.close();
    }
  });

  it('chunks texts with its copy of the tokenizer into exactly the pieces chunking here gives, a query still going first', async () => {
    const embedder = await TransformersEmbedder.load({ model: SHARED_MODEL_ID, modelDir: SHARED_MODELS, cacheDir: await tempDir() });
    const sizes = { maxTokens: Math.min(64, embedder.maxTokens), overlapTokens: 8, lines: false };
    // Short turns, a long paragraph, prose without breaks, line-structured text, a long "word", non-Latin text and blanks.
    const sentence = 'We walked along the river to the old market, where my sister bought bread and figs. ';
    const texts = [
      'Where did Caroline move, and when?',
      sentence.repeat(12),
      `${sentence.repeat(3)}\n\n${'a table | of | cells\n'.repeat(30)}`,
      `https://example.com/${'x'.repeat(900)}`,
      'Ζωή και ήλιος στη Λισαβόνα. 東京で桜を見ました。 '.repeat(10),
      '',
      '   \n  ',
    ];
    const here = (lines: boolean) => texts.map((text) => chunkText(text, { ...sizes, lines, countTokens: (t) => embedder.countTokens(t) }));
    const thread = embedder.chunk(texts, sizes);
    const query = embedder.embed(['what did my sister buy?'], { urgent: true });
    expect(await thread).toEqual(here(false));
    expect(await embedder.chunk(texts, { ...sizes, lines: true })).toEqual(here(true));
    expect((await query)[0]).toHaveLength(embedder.dimension);
  });

  it("gives the rows transformers.js's pipeline gives, and each text's length in tokens as countTokens counts it (from memory too; a text over the limit as read)", async () => {
    const embedder = await TransformersEmbedder.load({ model: SHARED_MODEL_ID, modelDir: SHARED_MODELS, cacheDir: await tempDir() });
    const { env, pipeline } = await import('@huggingface/transformers');
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = `${SHARED_MODELS}/`;
    const pipe = await pipeline('feature-extraction', SHARED_MODEL_ID, { dtype: 'fp32' });
    const texts = ['Where did Caroline move, and when?', 'ok', 'Ζωή και ήλιος στη Λισαβόνα. 東京で桜を見ました。', 'We walked along the river to the old market. '.repeat(8), 'word '.repeat(embedder.maxTokens * 2), '   '];
    const tokens = new Int32Array(texts.length).fill(-1);
    const rows = await embedder.embed(texts, { tokens, remember: false });
    const expected = await pipe(texts.slice(0, 5), { pooling: 'mean', normalize: true });
    for (let i = 0; i < 5; i++) {
      const want = (expected.data as Float32Array).subarray(i * embedder.dimension, (i + 1) * embedder.dimension);
      expect(Math.max(...Array.from(rows[i] as Float32Array, (x, d) => Math.abs(x - (want[d] as number))))).toBeLessThan(1e-5);
    }
    expect(Array.from(tokens)).toEqual([...texts.slice(0, 4).map((text) => embedder.countTokens(text)), embedder.maxTokens, -1]);
    expect(embedder.countTokens(texts[4] as string)).toBeGreaterThan(embedder.maxTokens);
    // A remembered text's count comes from memory with its row.
    await embedder.embed(['the roof repair invoice is 4471']);
    const again = new Int32Array(1).fill(-1);
    await embedder.embed(['the roof repair invoice is 4471'], { tokens: again });
    expect(again[0]).toBe(embedder.countTokens('the roof repair invoice is 4471'));
  });

  it('answers a text it embedded lately from memory, and through the model again with remember: false (what a benchmark of the model needs)', async () => {
    const embedder = await TransformersEmbedder.load({ model: SHARED_MODEL_ID, modelDir: SHARED_MODELS, cacheDir: await tempDir(), batchSize: 31 });
    const thread = (embedder as unknown as { thread: { run: (texts: string[], urgent?: boolean) => Promise<Float32Array> } }).thread;
    const run = thread.run.bind(thread);
    let calls = 0;
    thread.run = (texts, urgent) => {
      calls++;
      return run(texts, urgent);
    };
    const [first] = await embedder.embed(['the roof repair invoice is 4471']);
    expect(calls).toBe(1);
    const [again] = await embedder.embed(['the roof repair invoice is 4471']);
    expect(calls).toBe(1);
    const [fresh] = await embedder.embed(['the roof repair invoice is 4471'], { remember: false });
    expect(calls).toBe(2);
    expect(Array.from(again as Float32Array)).toEqual(Array.from(first as Float32Array));
    expect(Array.from(fresh as Float32Array).every((x, i) => Math.abs(x - (first as Float32Array)[i]!) < 1e-5)).toBe(true);
    // Nor does it keep what it embedded so.
    await embedder.embed(['a text only seen without memory'], { remember: false });
    await embedder.embed(['a text only seen without memory']);
    expect(calls).toBe(4);
  });

  it('runs queries waiting together as one batch, each getting its own rows', async () => {
    const embedder = await TransformersEmbedder.load({ model: SHARED_MODEL_ID, modelDir: SHARED_MODELS, cacheDir: await tempDir() });
    const thread = await sharedThread();
    try {
      const info = await thread.start();
      const queries = ['where did I move?', 'what is my sister called', 'when is the tax return due', 'bees'];
      const alone = (await Promise.all(queries.map((q) => thread.run([q], true)))).map((rows) => rows.data);
      const before = thread.runs;
      const bulk = thread.run(Array.from({ length: 16 }, (_, i) => `bulk text number ${i}`));
      const together = await Promise.all(queries.map((q) => thread.run([q], true)));
      await bulk;
      // The bulk batch, then one run for the four queries.
      expect(thread.runs - before).toBe(2);
      for (const [i, { data: rows, tokens }] of together.entries()) {
        expect(rows.length).toBe(info.dimension);
        // Each query's own count, not the batch's padded length.
        expect(Array.from(tokens)).toEqual([embedder.countTokens(queries[i] as string)]);
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
      expect(rows.data.length).toBeGreaterThan(0);
    } finally {
      await thread.close();
    }
  });

  it('refuses a model folder without the model with MEMEX_MODEL_UNAVAILABLE, and ends its thread', async () => {
    const thread = new ModelThread({ root: await tempDir(), id: 'no/such-model', cacheDir: await tempDir(), allowRemote: false, transformersUrl: transformersUrl() });
    await expectCode(() => thread.run(['x']), 'MEMEX_MODEL_UNAVAILABLE');
  });
});
