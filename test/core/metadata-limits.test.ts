import { describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex } from '../../src/index.js';
import { METADATA_LIMITS } from '../../src/core/inputs.js';
import { expectCode } from '../helpers/errors.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: true };
  for (let i = 1; i < depth; i++) value = { next: value };
  return value;
}

describe('metadata limits', () => {
  it('refuses session, message and note metadata over 64 KiB or nested too deep, and stores nothing', async () => {
    const memex = await Memex.open({ dataDir: await tempDir(), env: modelEnv, embedder: new HashedEmbedder(), onWarning: () => undefined });
    try {
      await memex.users.create({ id: 'alice' });
      const big = { blob: 'x'.repeat(METADATA_LIMITS.bytes) };
      await expectCode(memex.sessions.create('alice', { metadata: big }), 'MEMEX_INVALID_INPUT');
      await expectCode(memex.sessions.create('alice', { metadata: nested(METADATA_LIMITS.depth + 1) }), 'MEMEX_INVALID_INPUT');
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      await expectCode(memex.sessions.create('alice', { metadata: cyclic }), 'MEMEX_INVALID_INPUT');
      expect((await memex.sessions.list('alice')).sessions).toHaveLength(0);

      // At the limits, accepted.
      const session = await memex.sessions.create('alice', { metadata: nested(METADATA_LIMITS.depth) });
      await expectCode(memex.sessions.update('alice', session.id, { metadata: big }), 'MEMEX_INVALID_INPUT');
      await expectCode(memex.messages.append('alice', session.id, { role: 'user', content: 'hi', metadata: big }), 'MEMEX_INVALID_INPUT');
      await expectCode(memex.notes.add('alice', { text: 'likes tea', metadata: big }), 'MEMEX_INVALID_INPUT');
      expect((await memex.messages.list('alice', session.id)).messages).toHaveLength(0);
      const fits = { blob: 'x'.repeat(METADATA_LIMITS.bytes - 20) };
      await memex.messages.append('alice', session.id, { role: 'user', content: 'hi', metadata: fits });
      expect((await memex.messages.list('alice', session.id)).messages[0]!.metadata).toEqual(fits);
    } finally {
      await memex.close();
    }
  });
});
