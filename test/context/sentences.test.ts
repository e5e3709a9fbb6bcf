import { describe, expect, it } from 'vitest';
import { splitSentences, wordCount } from '../../src/context/index.js';

describe('splitSentences', () => {
  it('splits at sentence ends and line breaks, keeping offsets into the text', () => {
    const text = 'Hey Mel! I met Dr. Smith at 5 p.m. yesterday. Was it fun?\n- first item\n- second item';
    const sentences = splitSentences(text);
    expect(sentences.map((s) => s.text)).toEqual(['Hey Mel!', 'I met Dr. Smith at 5 p.m. yesterday.', 'Was it fun?', '- first item', '- second item']);
    for (const s of sentences) expect(text.slice(s.start, s.end)).toBe(s.text);
  });

  it('returns nothing for blank text and counts words in any script', () => {
    expect(splitSentences('  \n ')).toEqual([]);
    expect(wordCount('Grüße, 東京 and 42!')).toBe(4);
  });
});
