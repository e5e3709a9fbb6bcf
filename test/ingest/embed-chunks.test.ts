import { afterEach, describe, expect, it } from 'vitest';
import { chunkMessages, chunkText, UNCHECKED, UNCOUNTED, type ChunkingOptions } from '../../src/chunking/index.js';
import type { Message } from '../../src/core/index.js';
import { HashedEmbedder, TransformersEmbedder, type EmbedOptions } from '../../src/embedding/index.js';
import { embedChunks } from '../../src/ingest/embed-chunks.js';
import { Memex } from '../../src/index.js';
import { BACKENDS, backendConfig } from '../helpers/backends.js';
import { hasLocomo, locomoSessions, LOCOMO_MISSING } from '../helpers/eval.js';
import { hasSharedModel, modelEnv, SHARED_MODEL_ID, SHARED_MODEL_MISSING, SHARED_MODELS } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

function message(content: string, i: number): Message {
  return { v: 1, id: `msg_${i}`, sessionId: 'ses_1', role: 'user', content, createdAt: '2026-01-01T00:00:00.000Z', metadata: {}, attachments: [] } as unknown as Message;
}

/** What chunking without `countLater` gives, every count made. */
function counted(messages: Message[], options: ChunkingOptions): Promise<ReturnType<typeof chunkText>[]> {
  return Promise.resolve(messages.map((m) => chunkText(m.content, options)));
}

/**
 * A FAKE tokenizer at the worst case the bound allows, named as one: a token for every character,
 * one more for a leading word marker, and two special tokens.
 */
const worstCase = (text: string): number => (text === '' ? 2 : text.length + 3);

describe('chunking that leaves whole messages to be counted by the embedding (countLater)', () => {
  const options: ChunkingOptions = { maxTokens: 40, overlapTokens: 5, countTokens: worstCase };

  it('takes a short message whole as exactly the piece chunkText gives: UNCOUNTED when it fits whatever the tokenizer, UNCHECKED when it likely fits', async () => {
    const room = 40 - 2 - 1;
    const texts = ['hi', `  ${'a'.repeat(room)}  `, 'a'.repeat(room + 1), 'caf\u00e9 au lait', 'x '.repeat(60), '   ', '\n\tpadded both ways \n', 'y'.repeat(121), 'z '.repeat(200)];
    const messages = texts.map(message);
    const lazy = await chunkMessages(messages, options, { countLater: true });
    const eager = await chunkMessages(messages, options);
    const expected = (await counted(messages, options)).flat();
    expect(eager.map((c) => [c.span, c.text, c.tokens])).toEqual(expected.map((p) => [{ start: p.start, end: p.end }, p.text, p.tokens]));
    const taken = (tokens: number) => lazy.filter((c) => c.tokens === tokens).map((c) => c.text);
    // Fits by its length alone (ASCII, a token a character at most).
    expect(taken(UNCOUNTED)).toEqual(['hi', 'a'.repeat(room), 'padded both ways']);
    // At most 3 bytes a token: taken whole on trust.
    expect(taken(UNCHECKED)).toEqual(['a'.repeat(room + 1), 'caf\u00e9 au lait', 'x '.repeat(60).trim()]);
    // Longer ones are chunked now, as before.
    const now = lazy.filter((c) => c.tokens >= 0);
    expect(now.map((c) => [c.chunkId, c.span, c.text, c.tokens])).toEqual(eager.filter((c) => c.text.startsWith('y') || c.text.startsWith('z')).map((c) => [c.chunkId, c.span, c.text, c.tokens]));
    // A whole one is the trimmed message, as its only chunk.
    for (const chunk of lazy.filter((c) => c.tokens < 0)) {
      const source = messages.find((m) => chunk.source.kind === 'message' && m.id === chunk.source.messageId) as Message;
      expect(chunk.chunkId).toBe(`${source.id}:0`);
      expect(chunk.part).toEqual({ index: 0, count: 1 });
      expect(source.content.slice(chunk.span.start, chunk.span.end)).toBe(source.content.trim());
      expect(chunk.text).toBe(source.content.trim());
    }
  });

  it("keeps the messages' order when whole ones are taken between ones sent to the model's thread", async () => {
    const sent: string[][] = [];
    const offload = (texts: readonly string[]) => {
      sent.push([...texts]);
      return Promise.resolve(texts.map((text) => chunkText(text, options)));
    };
    const long = (word: string) => `${word} `.repeat(30).trim();
    const messages = ['short one', long('caf\u00e9'), 'short two', long('na\u00efve'), 'short three'].map(message);
    const lazy = await chunkMessages(messages, { ...options, offload }, { countLater: true });
    const eager = await chunkMessages(messages, options);
    expect(lazy.map((c) => c.text)).toEqual(eager.map((c) => c.text));
    expect(lazy[0]?.text).toBe('short one');
    expect(lazy.at(-1)?.text).toBe('short three');
    expect(sent).toEqual([[long('caf\u00e9'), long('na\u00efve')]]);
  });
});

describe('embedChunks', () => {
  it("counts whole messages from the embedding, cuts one taken on trust that does not fit, and gives exactly what chunking with the tokenizer gives", async () => {
    const embedder = new HashedEmbedder();
    // The hashed embedder counts words: ten at most, and a message of 15 one-letter words is under 3 bytes a token.
    const options: ChunkingOptions = { maxTokens: 10, overlapTokens: 2, countTokens: (t) => embedder.countTokens(t) };
    const texts = ['We fly to Lisbon in May.', 'caf\u00e9 on the corner', 'a b c d e f g h i j k l m n o', 'word '.repeat(40), 'Back home by June.'];
    const first = await chunkMessages(texts.slice(0, 3).map(message), options, { countLater: true });
    const second = await chunkMessages(texts.slice(3).map((t, i) => message(t, i + 3)), options, { countLater: true });
    expect(first.map((c) => c.tokens)).toEqual([UNCHECKED, UNCHECKED, UNCHECKED]);
    const rows = await embedChunks(embedder, [first, second], options);
    const eager = await chunkMessages(texts.map(message), options);
    expect([...first, ...second]).toEqual(eager);
    // The 15-word message was cut into pieces, in its place in its group.
    expect(first.length).toBeGreaterThan(3);
    expect(rows).toHaveLength(eager.length);
    const expected = await embedder.embed(eager.map((c) => c.text));
    rows.forEach((row, i) => expect(Array.from(row)).toEqual(Array.from(expected[i] as Float32Array)));
  });

  it('counts with countTokens where the embedder gives no counts', async () => {
    const inner = new HashedEmbedder();
    /** A FAKE embedder that fills nothing in options.tokens, named as one. */
    const silent = {
      modelId: inner.modelId,
      dimension: inner.dimension,
      maxTokens: inner.maxTokens,
      countTokens: (text: string) => inner.countTokens(text),
      embed: (texts: readonly string[], embedOptions: EmbedOptions = {}) => inner.embed(texts, { ...embedOptions, tokens: new Int32Array(0) }),
    };
    const options: ChunkingOptions = { maxTokens: 10, overlapTokens: 2, countTokens: silent.countTokens };
    const chunks = await chunkMessages([message('three short words', 0), message('a b c d e f g h i j k l m n o', 1)], options, { countLater: true });
    await embedChunks(silent, [chunks], options);
    expect(chunks).toEqual(await chunkMessages([message('three short words', 0), message('a b c d e f g h i j k l m n o', 1)], options));
    expect(chunks[0]?.tokens).toBe(3);
  });
});

describe.skipIf(!hasSharedModel || !hasLocomo)(`whole messages counted by the real model's embedding ${hasSharedModel ? (hasLocomo ? '' : LOCOMO_MISSING) : SHARED_MODEL_MISSING}`, () => {
  it('gives every LoCoMo turn of two conversations, and dense texts that turn out too long, the chunks and exact counts chunking with the tokenizer gives', async () => {
    const embedder = await TransformersEmbedder.load({ model: SHARED_MODEL_ID, modelDir: SHARED_MODELS, cacheDir: await tempDir() });
    const options: ChunkingOptions = { maxTokens: Math.min(256, embedder.maxTokens), overlapTokens: 32, countTokens: (t) => embedder.countTokens(t) };
    const turns = locomoSessions()
      .filter((s) => s.conversation === 'conv-26' || s.conversation === 'conv-30')
      .flatMap((s) => s.turns.map((t) => t.text));
    const dense = ['1234567890'.repeat(Math.floor((options.maxTokens * 3) / 10)), 'x9'.repeat(Math.floor((options.maxTokens * 3) / 2))];
    const messages = [...turns, 'Ζωή και ήλιος στη Λισαβόνα.', ...dense, 'We walked along the river. '.repeat(60)].map(message);
    const lazy = await chunkMessages(messages, options, { countLater: true });
    const tokenized = lazy.filter((c) => c.tokens >= 0).length;
    await embedChunks(embedder, [lazy], options, { remember: false });
    const eager = await chunkMessages(messages, options);
    expect(lazy.map((c) => [c.chunkId, c.span, c.text, c.tokens])).toEqual(eager.map((c) => [c.chunkId, c.span, c.text, c.tokens]));
    for (const text of dense) expect(embedder.countTokens(text)).toBeGreaterThan(options.maxTokens);
    expect(eager.length).toBeGreaterThan(messages.length);
    // Nearly every chat turn is chunked without a tokenizer call.
    expect(tokenized).toBeLessThan(messages.length * 0.05);
  });
});

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

describe.each(BACKENDS)('ingest stores exact token counts (%s)', (backend) => {
  it("each stored row has the count of its text in the model's tokens: short turns, long messages, a dense one cut after its embedding", async () => {
    const dataDir = await tempDir();
    const memex = await Memex.open({ dataDir, env: modelEnv, config: await backendConfig(backend, dataDir) });
    opened.push(memex);
    await memex.users.create({ id: 'alice' });
    const session = await memex.sessions.create('alice', {});
    const long = Array.from({ length: 80 }, (_, i) => `Paragraph sentence ${i} is about the weekly planning meeting.`).join(' ');
    const embedder = await memex.embedder();
    // Under 3 bytes a token but over the limit: taken whole on trust, then cut.
    const dense = '1234567890'.repeat(Math.floor((Math.min(256, embedder.maxTokens) * 3) / 10));
    const written = await memex.messages.appendMany('alice', session.id, [
      { role: 'user', content: 'I adopted a golden retriever named Biscuit.' },
      { role: 'assistant', content: long },
      { role: 'user', content: 'Wir fliegen im Mai nach Lissabon, schön!' },
      { role: 'user', content: dense },
    ]);
    await memex.flush();
    const data = await memex.vectors.read('alice', session.id);
    expect(data.lines.length).toBeGreaterThan(4);
    for (const line of data.lines) {
      expect(line.tokens).toBe(embedder.countTokens(line.text));
      expect(line.tokens).toBeLessThanOrEqual(Math.min(256, embedder.maxTokens));
    }
    const denseId = written[3]?.id;
    expect(data.lines.filter((line) => line.source.kind === 'message' && line.source.messageId === denseId).length).toBeGreaterThan(hasSharedModel ? 1 : 0);
  });
});
