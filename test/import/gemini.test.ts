import { describe, expect, it } from 'vitest';
import { CONVERSATION_GAP_MS, parseGemini } from '../../src/import/gemini.js';
import type { ImportedConversation, ImportSkip } from '../../src/import/model.js';
import { CHAT_EXPORTS_MISSING, hasChatExports, parseAll, readExport } from './values.js';

if (!hasChatExports) console.warn(CHAT_EXPORTS_MISSING);

describe.skipIf(!hasChatExports)('Gemini My Activity (sample)', () => {
  it('skips feedback, non-Gemini and broken-time entries, and groups the rest by time', async () => {
    const items = await parseAll(parseGemini, readExport('gemini/chatlore_MyActivity.json'));
    const skips = items.filter((i): i is ImportSkip => i.kind === 'skip');
    expect(skips.map((s) => [s.reason, s.item])).toEqual([
      ['feedback', 'Gave feedback: Good response'],
      ['bad-time', 'Prompted Entry with a broken time'],
      ['not-gemini', 'Searched for pizza'],
    ]);
    const conversations = items.filter((i): i is ImportedConversation => i.kind === 'conversation');
    // Oldest first; a gap over 30 minutes starts a new conversation (18:00–18:12, 21:30–21:40, two days later).
    expect(conversations.map((c) => [c.conversationId, c.createdAt, c.updatedAt])).toEqual([
      ['gemini-20260310T180000000Z', '2026-03-10T18:00:00.000Z', '2026-03-10T18:12:00.000Z'],
      ['gemini-20260310T213000000Z', '2026-03-10T21:30:00.000Z', '2026-03-10T21:40:00.000Z'],
      ['gemini-20260312T080000000Z', '2026-03-12T08:00:00.000Z', '2026-03-12T08:00:00.000Z'],
    ]);
    const [pizza, canberra, tokyo] = conversations;
    expect(pizza!.messages.map((m) => [m.role, m.content])).toEqual([
      ['user', 'Give me a recipe for Neapolitan pizza dough'],
      // The script is dropped, never run; the list and the entity are read as text.
      ['assistant', 'Here is a simple recipe:\n\n- 500 g flour\n- 325 g water\n\nMix & rest.'],
      ['user', 'And how long does the dough need to rest?'],
      ['assistant', 'At least 24 hours in the fridge.'],
    ]);
    // A prompt with no response is the user's message alone.
    expect(canberra!.messages.map((m) => [m.role, m.content])).toEqual([
      ['user', 'What is the capital of Australia?'],
      ['assistant', 'Canberra.'],
      ['user', 'A question that got no stored response'],
    ]);
    // The German entry: localised header and prefix.
    expect(tokyo!.messages.map((m) => [m.role, m.content])).toEqual([
      ['user', 'Wie spät ist es in Tokio?'],
      ['assistant', 'Es ist 17 Uhr.'],
    ]);
    expect(tokyo!.messages[0]!.metadata).toEqual({ header: 'Gemini-Apps' });
    const ids = conversations.flatMap((c) => c.messages.map((m) => m.sourceId));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('keeps a conversation’s id when a newer export adds later entries', async () => {
    const sample = readExport('gemini/chatlore_MyActivity.json') as unknown[];
    const later = { header: 'Gemini Apps', title: 'Prompted One more thing', time: '2026-03-12T08:10:00.000Z', products: ['Gemini Apps'] };
    const before = (await parseAll(parseGemini, sample)).filter((i): i is ImportedConversation => i.kind === 'conversation');
    const after = (await parseAll(parseGemini, [later, ...sample])).filter((i): i is ImportedConversation => i.kind === 'conversation');
    expect(after.map((c) => c.conversationId)).toEqual(before.map((c) => c.conversationId));
    expect(after[2]!.messages.at(-1)!.content).toBe('One more thing');
  });
});

describe('Gemini entries the sample does not show', () => {
  const entry = (title: string, time: string, extra: Record<string, unknown> = {}) => ({ header: 'Gemini Apps', title, time, products: ['Gemini Apps'], ...extra });

  it('splits at a gap just over the rule, not at one just under it', async () => {
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    const at = (ms: number) => new Date(t0 + ms).toISOString();
    const items = await parseAll(parseGemini, [entry('Prompted a', at(0)), entry('Prompted b', at(CONVERSATION_GAP_MS)), entry('Prompted c', at(2 * CONVERSATION_GAP_MS + 1))]);
    expect(items.map((i) => i.kind === 'conversation' && i.messages.map((m) => m.content))).toEqual([['a', 'b'], ['c']]);
  });

  it('takes a Gemini product under another header, a non-breaking-hyphen header, and names prompts it cannot read', async () => {
    const items = await parseAll(parseGemini, [
      { header: 'Gemini\u2011Apps', title: 'Eingegebener Prompt: eins', time: '2026-01-01T00:00:00Z' },
      { header: 'Something', title: 'Prompted zwei', time: '2026-01-01T00:01:00Z', products: ['Gemini Apps'] },
      entry('Used Gemini in an unknown way', '2026-01-01T00:02:00Z'),
      { title: 7 },
    ]);
    expect(items.map((i) => (i.kind === 'skip' ? i.reason : i.kind))).toEqual(['not-a-prompt', 'invalid', 'conversation']);
    const c = items[2] as ImportedConversation;
    expect(c.messages.map((m) => m.content)).toEqual(['eins', 'zwei']);
  });

  it('reduces hostile response HTML to its text without running it', async () => {
    const html = '<style>p{}</style><p onclick="x()">Safe <img src=x onerror=alert(1)>text</p><iframe src="https://evil">inner</iframe><script>alert(2)</script>';
    const [c] = (await parseAll(parseGemini, [entry('Prompted q', '2026-01-01T00:00:00Z', { safeHtmlItem: [{ html }, { nohtml: 1 }] })])) as ImportedConversation[];
    expect(c!.messages[1]!.content).toBe('Safe text');
  });
});
