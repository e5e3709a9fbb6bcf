import { MemexError } from '../core/index.js';

/** A chunk of a chat reply is a few hundred bytes; an event this long is a server gone wrong, not a reply. */
const MAX_EVENT_CHARS = 4 * 1024 * 1024;

/**
 * Server-sent events, as the Chat Completions API streams them: lines split at LF, CRLF or CR,
 * `data:` lines joined with newlines into one event, a blank line ending it, `:` lines (comments,
 * keep-alives) and other fields ignored. Bytes arrive cut anywhere, even inside a UTF-8 character
 * or between a CR and its LF, so both the decoder and the line splitter carry state across reads.
 */
export async function* sseData(body: AsyncIterable<Uint8Array>, maxEventChars = MAX_EVENT_CHARS): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8');
  let buffer = '';
  let data: string[] = [];
  // A CR that ended the previous read: an LF starting the next one belongs to it.
  let pendingCr = false;
  const line = (text: string): string | null => {
    if (text === '') {
      if (data.length === 0) return null;
      const event = data.join('\n');
      data = [];
      return event;
    }
    if (text.startsWith(':')) return null;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    if (field !== 'data') return null;
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    data.push(value);
    return null;
  };
  const drain = function* (final: boolean): Generator<string> {
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const ch = buffer.charCodeAt(i);
      if (ch !== 10 && ch !== 13) continue;
      const event = line(buffer.slice(start, i));
      if (event !== null) yield event;
      if (ch === 13) {
        if (i + 1 < buffer.length) {
          if (buffer.charCodeAt(i + 1) === 10) i++;
        } else if (!final) {
          pendingCr = true;
        }
      }
      start = i + 1;
    }
    buffer = buffer.slice(start);
  };
  for await (const bytes of body) {
    let text = decoder.decode(bytes, { stream: true });
    if (pendingCr) {
      pendingCr = false;
      if (text.startsWith('\n')) text = text.slice(1);
    }
    buffer += text;
    yield* drain(false);
    const pending = buffer.length + data.reduce((sum, part) => sum + part.length, 0);
    if (pending > maxEventChars) throw new MemexError('MEMEX_LLM_BAD_RESPONSE', `the chat model's server sent a stream event longer than ${maxEventChars} characters`);
  }
  buffer += decoder.decode();
  yield* drain(true);
  // A stream that ends without its final blank line still delivers its last event.
  if (buffer !== '') {
    const event = line(buffer);
    buffer = '';
    if (event !== null) yield event;
  }
  const last = line('');
  if (last !== null) yield last;
}
