import { describe, expect, it } from 'vitest';
import { HashedEmbedder, TransformersEmbedder, loadEmbedder, type EmbeddingWarning } from '../../src/embedding/index.js';
import { HASHED_MODEL, loadConfig } from '../../src/core/index.js';
import { expectCode } from '../helpers/errors.js';
import { hasSharedModel, SHARED_MODEL_ID, SHARED_MODEL_MISSING, SHARED_MODELS } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';
import { describeEmbedderConformance } from './conformance.js';

const loadShared = (): Promise<TransformersEmbedder> => TransformersEmbedder.load({ model: SHARED_MODEL_ID, modelDir: SHARED_MODELS });

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += (a[i] as number) * (b[i] as number);
  return dot;
}

describeEmbedderConformance('hashed lexical', () => Promise.resolve(new HashedEmbedder()));

if (hasSharedModel) {
  describeEmbedderConformance(`transformers.js ${SHARED_MODEL_ID}`, loadShared);

  describe('the real model', () => {
    it('scores paraphrases clearly above unrelated pairs', async () => {
      const embedder = await loadShared();
      const paraphrases: [string, string][] = [
        ['How old are you?', 'What is your age?'],
        ['I moved to Denver last year for work.', 'Last year my job took me to Denver.'],
        ['The meeting was postponed until Friday.', 'They pushed the meeting back to Friday.'],
        ['My dog loves playing fetch in the park.', 'At the park my dog enjoys chasing the ball.'],
      ];
      const unrelated: [string, string][] = [
        ['How old are you?', 'The stock market closed higher today.'],
        ['I moved to Denver last year for work.', 'Bake the bread at 220 degrees for forty minutes.'],
        ['The meeting was postponed until Friday.', 'Penguins live mostly in the southern hemisphere.'],
        ['My dog loves playing fetch in the park.', 'The compiler reported a type error on line 12.'],
      ];
      const score = async (pairs: [string, string][]): Promise<number[]> => {
        const rows = await embedder.embed(pairs.flat());
        return pairs.map((_, i) => cosine(rows[2 * i] as Float32Array, rows[2 * i + 1] as Float32Array));
      };
      const close = await score(paraphrases);
      const far = await score(unrelated);
      expect(Math.min(...close)).toBeGreaterThan(Math.max(...far) + 0.3);
      expect(Math.min(...close)).toBeGreaterThan(0.5);
    });

    it('loads once per process and shares the instance', async () => {
      expect(await loadShared()).toBe(await loadShared());
      const embedder = await loadShared();
      expect(embedder.modelId).toBe(SHARED_MODEL_ID);
      expect(embedder.dimension).toBe(512);
      expect(embedder.maxTokens).toBe(128);
    });

    it('also accepts MEMEX_MODEL_DIR pointing at the model folder itself', async () => {
      const embedder = await TransformersEmbedder.load({ model: SHARED_MODEL_ID, modelDir: `${SHARED_MODELS}/${SHARED_MODEL_ID}` });
      expect(embedder.dimension).toBe(512);
    });
  });
} else {
  it.skip(SHARED_MODEL_MISSING, () => undefined);
}

describe('loading the configured embedder', () => {
  it('falls back to the hashed embedder with one warning that says how to get a real model', async () => {
    const empty = await tempDir();
    const config = loadConfig({ env: { MEMEX_MODEL_DIR: empty, MEMEX_MODEL: 'nobody/no-such-model' } }).embedding;
    const warnings: EmbeddingWarning[] = [];
    const embedder = await loadEmbedder(config, { onWarning: (w) => warnings.push(w) });
    expect(embedder.modelId).toBe(HASHED_MODEL);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ kind: 'embedding-fallback', model: 'nobody/no-such-model' });
  });

  it('refuses the fallback for a data dir whose vectors came from a real model', async () => {
    const empty = await tempDir();
    const config = loadConfig({ env: { MEMEX_MODEL_DIR: empty, MEMEX_MODEL: 'nobody/no-such-model' } }).embedding;
    await expectCode(loadEmbedder(config, { recorded: { model: 'nobody/no-such-model', dimension: 384 } }), 'MEMEX_MODEL_UNAVAILABLE');
  });

  it('refuses it when embedding.fallback is "error", and never downloads when offline', async () => {
    const config = loadConfig({ env: { MEMEX_OFFLINE: '1', MEMEX_MODEL_CACHE: await tempDir() }, overrides: { embedding: { fallback: 'error' } } }).embedding;
    expect(config.allowRemote).toBe(false);
    await expectCode(loadEmbedder(config), 'MEMEX_MODEL_UNAVAILABLE');
  });

  it('picks the hashed embedder on purpose with MEMEX_MODEL=hashed, without a warning', async () => {
    const warnings: EmbeddingWarning[] = [];
    const embedder = await loadEmbedder(loadConfig({ env: { MEMEX_MODEL: 'hashed' } }).embedding, { onWarning: (w) => warnings.push(w) });
    expect(embedder).toBeInstanceOf(HashedEmbedder);
    expect(warnings).toEqual([]);
  });
});
