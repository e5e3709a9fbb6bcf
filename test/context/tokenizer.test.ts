import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CountCache, OPENAI_CHAT_FORMAT, messageTokens, requestTokens, tiktokenTokenizer, type ChatMessage } from '../../src/context/index.js';
import { lineSegments } from '../../src/context/tokenizer.js';
import { TOKEN_ENCODINGS } from '../../src/core/index.js';
import { expectCode } from '../helpers/errors.js';
import { hasLocomo, LOCOMO_MISSING, locomoSessions } from '../helpers/eval.js';

// The worked example of OpenAI's "How to count tokens with tiktoken" cookbook, which the API
// reported as 129 prompt tokens for gpt-3.5-turbo-0613 / gpt-4-0613 and 124 for gpt-4o.
const COOKBOOK: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful, pattern-following assistant that translates corporate jargon into plain English.' },
  { role: 'system', name: 'example_user', content: 'New synergies will help drive top-line growth.' },
  { role: 'system', name: 'example_assistant', content: 'Things working well together will increase revenue.' },
  { role: 'system', name: 'example_user', content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage." },
  { role: 'system', name: 'example_assistant', content: "Let's talk later when we're less busy about how to do better." },
  { role: 'user', content: "This late pivot means we don't have time to boil the ocean for the client deliverable." },
];

describe('tiktoken counts', () => {
  it('match what the OpenAI API counted for the cookbook example, frame and names included', () => {
    expect(requestTokens(tiktokenTokenizer('cl100k_base'), COOKBOOK)).toBe(129);
    expect(requestTokens(tiktokenTokenizer('o200k_base'), COOKBOOK)).toBe(124);
  });

  it('count a message as its frame, role and content; a reply priming once per request', () => {
    const tokenizer = tiktokenTokenizer('cl100k_base');
    const count = (text: string): number => tokenizer.count(text);
    expect(tokenizer.count('hello world')).toBe(2);
    expect(messageTokens(count, { role: 'user', content: 'hello world' })).toBe(OPENAI_CHAT_FORMAT.perMessage + 1 + 2);
    expect(requestTokens(tokenizer, [])).toBe(OPENAI_CHAT_FORMAT.replyPriming);
  });

  it('count special-token text in a message as plain text, never as a control token', () => {
    const tokenizer = tiktokenTokenizer('o200k_base');
    expect(tokenizer.count('<|endoftext|>')).toBeGreaterThan(1);
  });

  it('truncate at a token boundary without splitting a character', () => {
    const tokenizer = tiktokenTokenizer('cl100k_base');
    const text = 'Grüße aus Lisboa 🌞🌞🌞 and more words after them';
    for (let n = 0; n <= tokenizer.count(text); n++) {
      const cut = tokenizer.truncate(text, n);
      expect(text.startsWith(cut)).toBe(true);
      expect(tokenizer.count(cut)).toBeLessThanOrEqual(n);
      expect(cut).not.toContain('\uFFFD');
    }
    expect(tokenizer.truncate(text, 10_000)).toBe(text);
  });

  it('refuse an unknown encoding with a coded error', async () => {
    await expectCode(() => tiktokenTokenizer('p50k_whatever'), 'MEMEX_INVALID_INPUT');
  });

  it('cache counts by text, never reusing one for another text', () => {
    const tokenizer = tiktokenTokenizer('cl100k_base');
    const cache = new CountCache(2);
    const long = 'word '.repeat(300);
    expect(cache.count(tokenizer, long)).toBe(tokenizer.count(long));
    expect(cache.count(tokenizer, `${long}x`)).toBe(tokenizer.count(`${long}x`));
    expect(cache.count(tokenizer, 'a b')).toBe(2);
    expect(cache.count(tokenizer, long)).toBe(tokenizer.count(long));
  });

  describe('counted line by line (CountCache on long texts)', () => {
    /** Pieces that stress the encodings' split pattern at line breaks. */
    const PIECES = ['.', '!', '?', ':', '/', '//', ' ', '  ', '\t', '\n', '\n\n', '\u00a0', '\u0085', '\u2028', '\u3000', "'s", "'LL", '42', '1234567', 'word', 'Word', 'WORD', 'über', 'Ωμέγα', '東京', '🌞', '👩‍💻', '-', '- [2026-01-02] user:', '```', '<|endoftext|>', '\u200b', '\ufeff'];
    const line = fc.array(fc.constantFrom(...PIECES), { maxLength: 12 }).map((parts) => parts.join(''));

    it.each(TOKEN_ENCODINGS)('a long text counts the same by lines as whole, %s (property)', (encoding) => {
      const tokenizer = tiktokenTokenizer(encoding);
      fc.assert(
        fc.property(fc.array(line, { minLength: 2, maxLength: 60 }), (lines) => {
          const text = lines.join('\n').padEnd(301, 'x');
          const segments = lineSegments(text);
          if (segments) expect(segments.join('')).toBe(text);
          expect(new CountCache().count(tokenizer, text)).toBe(tokenizer.count(text));
        }),
        { numRuns: 300 },
      );
    });

    it.skipIf(!hasLocomo)(`a real conversation counts the same by lines as whole, both encodings ${hasLocomo ? '' : LOCOMO_MISSING}`, () => {
      const sessions = locomoSessions().slice(0, 40);
      for (const encoding of TOKEN_ENCODINGS) {
        const tokenizer = tiktokenTokenizer(encoding);
        const cache = new CountCache();
        for (const session of sessions) {
          const text = session.turns.map((turn) => `- [${session.startedAt.slice(0, 10)}] ${turn.speaker}: ${turn.text}`).join('\n');
          expect(lineSegments(text)?.length ?? 0).toBeGreaterThan(1);
          expect(cache.count(tokenizer, text)).toBe(tokenizer.count(text));
        }
      }
    });
  });
});
