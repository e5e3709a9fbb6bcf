import { describe, expect, it } from 'vitest';
import { sseData } from '../../src/llm/index.js';
import { expectCode } from '../helpers/errors.js';

async function* bytes(parts: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield typeof part === 'string' ? new TextEncoder().encode(part) : part;
}

async function events(parts: (string | Uint8Array)[]): Promise<string[]> {
  const out: string[] = [];
  for await (const data of sseData(bytes(parts))) out.push(data);
  return out;
}

describe('sseData', () => {
  it('reads events whatever the reads cut: mid-line, mid-field, between CR and LF', async () => {
    const text = 'data: {"a":1}\r\n\r\ndata: {"b":2}\n\ndata: [DONE]\n\n';
    const expected = ['{"a":1}', '{"b":2}', '[DONE]'];
    for (let cut = 1; cut < text.length; cut++) {
      expect(await events([text.slice(0, cut), text.slice(cut)])).toEqual(expected);
    }
    expect(await events([...text])).toEqual(expected);
  });

  it('keeps a UTF-8 character split between reads whole', async () => {
    const encoded = new TextEncoder().encode('data: {"t":"café ☕"}\n\n');
    for (let cut = 1; cut < encoded.length; cut++) {
      expect(await events([encoded.subarray(0, cut), encoded.subarray(cut)])).toEqual(['{"t":"café ☕"}']);
    }
  });

  it('skips comments, keep-alives and other fields; joins multi-line data; handles bare CR', async () => {
    expect(await events([': keep-alive\n\n', 'event: message\nid: 7\nretry: 10\ndata: one\ndata: two\n\n', 'data:three\r\rdata: [DONE]\n\n'])).toEqual(['one\ntwo', 'three', '[DONE]']);
  });

  it('delivers a last event that lacks its blank line', async () => {
    expect(await events(['data: {"a":1}\n\ndata: [DONE]'])).toEqual(['{"a":1}', '[DONE]']);
  });

  it('refuses an event that grows past the limit with MEMEX_LLM_BAD_RESPONSE instead of buffering it all', async () => {
    const endless = async function* (): AsyncGenerator<Uint8Array> {
      yield new TextEncoder().encode('data: ');
      for (;;) yield new TextEncoder().encode('x'.repeat(1000));
    };
    await expectCode(async () => {
      for await (const data of sseData(endless(), 10_000)) expect(data).toBe('never');
    }, 'MEMEX_LLM_BAD_RESPONSE');
  });
});
