import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex } from '../../src/index.js';
import { UserIndex, type UserIndexOptions } from '../../src/index/flat/user-index.js';
import { DEFAULT_HNSW } from '../../src/index/hnsw.js';
import { HnswBuilder } from '../../src/index/hnsw-builder.js';
import { DEFAULT_BM25 } from '../../src/index/lexical.js';
import { FlatFileStore } from '../../src/store/index.js';
import { expectCode } from '../helpers/errors.js';
import { tempDir } from '../helpers/tmp.js';

/** A data dir with one user's rows in several sessions (the hashed embedder: fast, and real vectors of words). */
async function seeded(): Promise<string> {
  const dataDir = join(await tempDir(), 'data');
  const memex = await Memex.open({ dataDir, embedder: new HashedEmbedder(), config: { fsync: 'none' }, onWarning: () => undefined });
  try {
    await memex.users.create({ id: 'ana', name: 'Ana' });
    const words = ['roof', 'invoice', 'garden', 'Lisbon', 'piano', 'tuna', 'vet', 'train', 'budget', 'recipe', 'passport', 'bicycle'];
    for (let s = 0; s < 6; s++) {
      const session = await memex.sessions.create('ana', { title: `s${s}` });
      await memex.messages.appendMany('ana', session.id, Array.from({ length: 60 }, (_, i) => ({ role: 'user' as const, content: `${words[(i + s) % 12]} ${words[(i * 5 + s) % 12]} note ${i} of session ${s} about the ${words[(i * 7) % 12]}` })));
    }
    await memex.flush();
  } finally {
    await memex.close();
  }
  return dataDir;
}

describe('building the HNSW graph in a worker thread', () => {
  it('gives the graph a build in the calling thread gives, on one thread: the same neighbours for every query', async () => {
    const store = await FlatFileStore.open({ dataDir: await seeded(), fsync: 'none' });
    try {
      const embedder = new HashedEmbedder();
      const options = (buildInThreadRows: number): UserIndexOptions => ({
        store,
        userId: 'ana',
        dir: null,
        model: { model: embedder.modelId, dimension: embedder.dimension },
        hnsw: DEFAULT_HNSW,
        bm25: DEFAULT_BM25,
        compactAt: 0.2,
        sync: false,
        buildInThreadRows,
        buildThreads: 1,
      });
      const here = UserIndex.empty(options(Number.POSITIVE_INFINITY));
      await here.sync();
      const threaded = UserIndex.empty(options(1));
      await threaded.sync();
      expect(threaded.size).toBe(360);
      expect(threaded.vectors.size).toBe(here.vectors.size);
      const queries = await embedder.embed(['roof invoice', 'piano lesson in Lisbon', 'the vet and the tuna', 'budget for the train']);
      for (const query of queries) expect(threaded.vectors.search(query, 10)).toEqual(here.vectors.search(query, 10));
      // It grows as any index does after the build.
      const [extra] = await embedder.embed(['a brand new row']);
      threaded.vectors.add(10_000, extra!);
      expect(threaded.vectors.search(extra!, 1)[0]?.label).toBe(10_000);
    } finally {
      await store.close();
    }
  });

  it('reports a thread that is gone with a coded error (the index then builds the graph itself)', async () => {
    const builder = new HnswBuilder({ dimension: 4, params: DEFAULT_HNSW, capacity: 16, threads: 1 });
    builder.add(0, new Float32Array([1, 0, 0, 0]));
    await builder.close();
    await expectCode(builder.finish(join(await tempDir(), 'graph.hnsw')), 'MEMEX_INTERNAL');
  });
});
