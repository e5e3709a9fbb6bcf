import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkMessage, chunkMessages, chunkText, chunkTextAsync, chunkingFor, OFFLOAD_CHARS, type ChunkingOptions, type TextPiece } from '../../src/chunking/index.js';
import { TransformersEmbedder } from '../../src/embedding/index.js';
import type { Message } from '../../src/core/index.js';
import { expectCode } from '../helpers/errors.js';
import { hasSharedModel, SHARED_MODEL_ID, SHARED_MODEL_MISSING, SHARED_MODELS } from '../helpers/model.js';

/** A fake tokenizer for the unit tests, named as one: a token per word or punctuation mark, plus two specials like [CLS] [SEP]. */
const fakeWordTokens = (text: string): number => (text.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu)?.length ?? 0) + 2;

function options(maxTokens: number, overlapTokens: number, countTokens = fakeWordTokens): ChunkingOptions {
  return { maxTokens, overlapTokens, countTokens };
}

/** The invariants every chunking must keep, whatever the text. */
function checkPieces(text: string, pieces: TextPiece[], opts: ChunkingOptions): void {
  let previousStart = -1;
  for (const piece of pieces) {
    expect(text.slice(piece.start, piece.end)).toBe(piece.text);
    expect(piece.tokens).toBe(opts.countTokens(piece.text));
    expect(piece.tokens).toBeLessThanOrEqual(opts.maxTokens);
    expect(piece.start).toBeGreaterThan(previousStart);
    expect(piece.text.trim()).toBe(piece.text);
    previousStart = piece.start;
  }
  // Nothing but whitespace is left out.
  const covered = new Uint8Array(text.length);
  for (const piece of pieces) covered.fill(1, piece.start, piece.end);
  for (let i = 0; i < text.length; i++) if (!covered[i]) expect(text[i]).toMatch(/\s/);
}

const sentence = fc
  .array(fc.constantFrom('alpha', 'beta', 'gamma', 'delta', 'Denver', 'x', '42', 'café', '日本語のテキスト', 'https://example.com/a/very/long/path', 'a'.repeat(90)), { minLength: 1, maxLength: 25 })
  .map((words) => `${words.join(' ')}.`);
const paragraph = fc.array(sentence, { minLength: 1, maxLength: 6 }).map((s) => s.join(' '));
const document = fc.array(paragraph, { minLength: 1, maxLength: 6 }).map((p) => p.join('\n\n'));

describe('chunkText', () => {
  it('keeps a short chat turn as one chunk, trimmed, with its exact span', () => {
    const text = '  I adopted a dog named Biscuit.\n';
    const pieces = chunkText(text, options(64, 8));
    expect(pieces).toEqual([{ start: 2, end: 32, text: 'I adopted a dog named Biscuit.', tokens: fakeWordTokens('I adopted a dog named Biscuit.') }]);
  });

  it('gives nothing for empty or whitespace-only text', () => {
    expect(chunkText('', options(64, 8))).toEqual([]);
    expect(chunkText(' \n\t ', options(64, 8))).toEqual([]);
  });

  it('cuts at paragraph breaks before sentences, and at sentences before words', () => {
    const first = 'First paragraph one. It has two sentences.';
    const second = 'Second paragraph here. With more words in it than fit together.';
    const text = `${first}\n\n${second}`;
    const pieces = chunkText(text, options(fakeWordTokens(second), 0));
    expect(pieces.map((p) => p.text)).toEqual([first, second]);
    const long = 'One two three four five. Six seven eight nine ten. Eleven twelve.';
    const bySentence = chunkText(long, options(9, 0));
    expect(bySentence.map((p) => p.text)).toEqual(['One two three four five.', 'Six seven eight nine ten.', 'Eleven twelve.']);
  });

  it('repeats about overlapTokens of one chunk at the start of the next', () => {
    const text = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
    const pieces = chunkText(text, options(12, 4));
    expect(pieces.length).toBeGreaterThan(3);
    for (let i = 1; i < pieces.length; i++) {
      const previous = pieces[i - 1] as TextPiece;
      const current = pieces[i] as TextPiece;
      expect(current.start).toBeLessThan(previous.end);
      expect(fakeWordTokens(text.slice(current.start, previous.end)) - 2).toBeLessThanOrEqual(4);
    }
  });

  it('cuts a single run longer than the limit between characters, never inside a surrogate pair', () => {
    const text = '😀'.repeat(50);
    const count = (t: string): number => [...t].length;
    const pieces = chunkText(text, options(7, 0, count));
    checkPieces(text, pieces, options(7, 0, count));
    for (const piece of pieces) expect(piece.text).not.toMatch(/^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/);
  });

  it('refuses an overlap above half the size', async () => {
    await expectCode(() => chunkText('text', options(10, 6)), 'MEMEX_CONFIG_INVALID');
  });

  it('keeps its invariants on any text (property)', () => {
    fc.assert(
      fc.property(document, fc.integer({ min: 8, max: 80 }), fc.integer({ min: 0, max: 4 }), (text, max, overlap) => {
        const opts = options(max, overlap);
        checkPieces(text, chunkText(text, opts), opts);
      }),
      { numRuns: 150 },
    );
  });
});

describe('chunkMessage', () => {
  it('gives each chunk its provenance: message, role, part and the span of the content it came from', () => {
    const content = Array.from({ length: 30 }, (_, i) => `Sentence number ${i} talks about topic ${i % 4}.`).join(' ');
    const message = { v: 1, id: 'msg_1', sessionId: 's1', role: 'assistant', content, createdAt: '2026-11-21T10:00:00.000Z', metadata: {}, attachments: [] } as unknown as Message;
    const chunks = chunkMessage(message, options(40, 5));
    expect(chunks.length).toBeGreaterThan(1);
    for (const [i, chunk] of chunks.entries()) {
      expect(chunk.chunkId).toBe(`msg_1:${i}`);
      expect(chunk.source).toEqual({ kind: 'message', messageId: 'msg_1', role: 'assistant', createdAt: '2026-11-21T10:00:00.000Z' });
      expect(chunk.part).toEqual({ index: i, count: chunks.length });
      expect(content.slice(chunk.span.start, chunk.span.end)).toBe(chunk.text);
    }
  });

  it('sizes chunks by the model: never above what it reads, an eighth of the size as overlap by default', () => {
    const model = { maxTokens: 128, countTokens: fakeWordTokens };
    expect(chunkingFor({ maxTokens: null, overlapTokens: null }, model)).toMatchObject({ maxTokens: 128, overlapTokens: 16 });
    expect(chunkingFor({ maxTokens: 1000, overlapTokens: null }, model)).toMatchObject({ maxTokens: 128 });
    expect(chunkingFor({ maxTokens: null, overlapTokens: null }, { ...model, maxTokens: 8192 })).toMatchObject({ maxTokens: 256, overlapTokens: 32 });
  });
});

if (hasSharedModel) {
  describe('with the real tokenizer', () => {
    it('keeps every chunk within the model input, spans exact (property)', async () => {
      const embedder = await TransformersEmbedder.load({ model: SHARED_MODEL_ID, modelDir: SHARED_MODELS });
      const opts = chunkingFor({ maxTokens: null, overlapTokens: null }, embedder);
      expect(opts.maxTokens).toBe(128);
      fc.assert(
        fc.property(document, (text) => checkPieces(text, chunkText(text, opts), opts)),
        { numRuns: 60 },
      );
    });
  });
} else {
  it.skip(SHARED_MODEL_MISSING, () => undefined);
}

/**
 * A long token froze the server: a 100k-character message without a space took 41.5 s to chunk
 * (quadratic in its length, on the main thread). The work is measured in characters handed to the
 * token counter, not in time: it must stay a small multiple of the text's length.
 */
describe('a long token (regression: chunking was quadratic in the length of a run without spaces)', () => {
  /** A fake counter (one token per character, plus two specials) that tallies the characters it was given. */
  function meteredCounter(budget: number): ChunkingOptions['countTokens'] & { work: number; calls: number } {
    const count = Object.assign(
      (text: string): number => {
        count.calls += 1;
        count.work += text.length;
        if (count.work > budget) throw new Error(`chunking counted ${count.work} characters, more than ${budget}: not linear`);
        return [...text].length + 2;
      },
      { work: 0, calls: 0 },
    );
    return count;
  }

  for (const length of [100_000, 1_000_000]) {
    it(`chunks ${length.toLocaleString('en')} characters without a space with work linear in the length`, () => {
      const text = 'x'.repeat(length);
      const counter = meteredCounter(20 * length);
      const opts = options(128, 16, counter);
      const pieces = chunkText(text, opts);
      expect(counter.work).toBeLessThanOrEqual(20 * length);
      expect(pieces.length).toBeGreaterThanOrEqual(length / 126);
      for (const piece of pieces.slice(0, 50)) expect(piece.tokens).toBeLessThanOrEqual(128);
      expect(pieces[pieces.length - 1]?.end).toBe(length);
    });
  }

  it('gives the event loop turns while a long text is chunked', async () => {
    const text = 'y'.repeat(1_000_000);
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns += 1;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const before = turns;
    const pieces = await chunkTextAsync(text, options(128, 16, (t) => [...t].length + 2));
    ticking = false;
    expect(pieces.length).toBeGreaterThan(7000);
    // The budget is measured in counted characters, so the number of turns does not depend on speed.
    expect(turns - before).toBeGreaterThanOrEqual(50);
  });

  it('chunks asynchronously exactly as it does synchronously', async () => {
    const text = Array.from({ length: 400 }, (_, i) => `Sentence ${i} is about ${'z'.repeat(i % 300)} things.${i % 7 === 0 ? '\n\n' : ' '}`).join('');
    const opts = options(40, 5);
    expect(await chunkTextAsync(text, opts)).toEqual(chunkText(text, opts));
  });
});

describe('chunkMessages with chunking offloaded (to the model thread)', () => {
  it('sends short messages together in jobs of at most OFFLOAD_CHARS, chunks a longer one here, and keeps the order', async () => {
    const message = (i: number, content: string): Message => ({ v: 1, id: `msg_${String(i).padStart(26, '0')}`, sessionId: 'ses_x', role: 'user', content, createdAt: '2026-01-01T00:00:00.000Z', metadata: {}, attachments: [] }) as unknown as Message;
    const long = 'A sentence of a few words here. '.repeat(400); // longer than OFFLOAD_CHARS
    expect(long.length).toBeGreaterThan(OFFLOAD_CHARS);
    const messages = [message(0, 'hello there'), ...Array.from({ length: 30 }, (_, i) => message(i + 1, `turn ${i} `.repeat(80))), message(31, long), message(32, 'bye')];
    const jobs: number[] = [];
    const local = options(32, 4);
    const offloaded: ChunkingOptions = {
      ...local,
      offload: (texts) => {
        jobs.push(texts.reduce((sum, text) => sum + text.length, 0));
        return Promise.resolve(texts.map((text) => chunkText(text, local)));
      },
    };
    expect(await chunkMessages(messages, offloaded)).toEqual(await chunkMessages(messages, local));
    expect(jobs.length).toBeGreaterThan(1);
    for (const chars of jobs) expect(chars).toBeLessThanOrEqual(OFFLOAD_CHARS);
    // The long message was not sent: every job's characters plus it make the whole.
    expect(jobs.reduce((a, b) => a + b, 0) + long.length).toBe(messages.reduce((sum, m) => sum + m.content.length, 0));
  });
});
