import { createHash } from 'node:crypto';
import { get_encoding, type Tiktoken } from 'tiktoken';
import { MemexError, TOKEN_ENCODINGS as ENCODINGS, type ContentPart, type TokenEncoding as Encoding, type ToolCall } from '../core/index.js';

/** Counts text the way a model will: the seam between the context manager and a model family. */
export interface Tokenizer {
  readonly encoding: string;
  /** Tokens of `text` as plain text (strings like `<|endoftext|>` in it count as text, as the chat APIs treat them). */
  count(text: string): number;
  /** The longest prefix of `text` that is at most `maxTokens` tokens, cut at a token boundary. */
  truncate(text: string, maxTokens: number): string;
}

/** One message of a chat request, as the OpenAI-style chat APIs take it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  /** Text, or content parts as the message was sent (text and images); null for an assistant message that only calls tools. */
  content: string | ContentPart[] | null;
  /** A participant name (OpenAI's `name` field); costs `perName` extra tokens. */
  name?: string;
  /** For `assistant` messages: the tools it calls. */
  tool_calls?: ToolCall[];
  /** For `tool` messages: the call this result answers. */
  tool_call_id?: string;
}

/**
 * What an image part is counted as. Its real cost depends on its size and `detail`, which a URL
 * does not tell: OpenAI's vision models take 85 tokens at `low` detail and 765 for a 1024 x 1024
 * image at `high` (more for larger ones), so `high` and `auto` are counted as the latter. An estimate:
 * leave slack in the budget for windows with large images.
 */
const IMAGE_TOKENS = Object.freeze({ low: 85, high: 765 });
/** Per tool call, the frame around its id, name and arguments (an estimate, like the image cost). */
const PER_TOOL_CALL = 4;

/** Tokens of a message's content: its text, or its parts' text and images. */
function contentTokens(count: Count, content: ChatMessage['content']): number {
  if (content === null) return 0;
  if (typeof content === 'string') return count(content);
  let tokens = 0;
  for (const part of content) tokens += part.type === 'text' ? count(part.text) : part.image_url.detail === 'low' ? IMAGE_TOKENS.low : IMAGE_TOKENS.high;
  return tokens;
}

/**
 * What the chat format adds around the text, in tokens (OpenAI's "counting tokens for chat
 * completions" recipe, which holds for the GPT-3.5-turbo-0613 / GPT-4 / GPT-4o families):
 * each message is framed as `<|start|>{role}<|message|>{content}<|end|>`, 3 tokens plus the role's
 * own tokens and the content's; a `name` adds its tokens and 1 more; and every reply is primed
 * with `<|start|>assistant<|message|>`, 3 tokens counted once per request. Other model families
 * frame messages differently: override these (and leave slack) when counting for them.
 */
export interface ChatFormat {
  perMessage: number;
  perName: number;
  replyPriming: number;
}

export const OPENAI_CHAT_FORMAT: Readonly<ChatFormat> = Object.freeze({ perMessage: 3, perName: 1, replyPriming: 3 });

/** Counts text: a tokenizer's `count`, or a cached one. */
export type Count = (text: string) => number;

/** Tokens one message costs in a request: its frame, role, content and name. */
export function messageTokens(count: Count, message: ChatMessage, format: ChatFormat = OPENAI_CHAT_FORMAT): number {
  let tokens = format.perMessage + count(message.role) + contentTokens(count, message.content);
  for (const call of message.tool_calls ?? []) tokens += PER_TOOL_CALL + count(call.id) + count(call.function.name) + count(call.function.arguments);
  if (message.name !== undefined) tokens += format.perName + count(message.name);
  if (message.tool_call_id !== undefined) tokens += count(message.tool_call_id);
  return tokens;
}

/** Tokens a whole request costs before the reply: every message plus the reply priming. */
export function requestTokens(tokenizer: Tokenizer, messages: readonly ChatMessage[], format: ChatFormat = OPENAI_CHAT_FORMAT): number {
  const count = (text: string): number => tokenizer.count(text);
  return messages.reduce((sum, message) => sum + messageTokens(count, message, format), format.replyPriming);
}

const decoder = new TextDecoder('utf-8', { fatal: false });

class TiktokenTokenizer implements Tokenizer {
  constructor(
    readonly encoding: Encoding,
    private readonly bpe: Tiktoken,
  ) {}

  count(text: string): number {
    if (text.length === 0) return 0;
    // Ordinary: `<|endoftext|>` in a message is text, not a control token.
    return this.bpe.encode_ordinary(text).length;
  }

  truncate(text: string, maxTokens: number): string {
    if (maxTokens <= 0) return '';
    const tokens = this.bpe.encode_ordinary(text);
    if (tokens.length <= maxTokens) return text;
    // A cut inside a multi-byte character leaves a replacement character: drop it.
    return decoder.decode(this.bpe.decode(tokens.subarray(0, maxTokens))).replace(/\uFFFD+$/u, '');
  }
}

const loaded = new Map<Encoding, TiktokenTokenizer>();

/**
 * The tiktoken tokenizer for an encoding: exact counts for OpenAI models (`o200k_base` for GPT-4o
 * and later, `cl100k_base` for GPT-4 and GPT-3.5). Loading one takes about 150 ms, so each is
 * loaded once per process and shared (its WASM memory lives as long as the process).
 */
export function tiktokenTokenizer(encoding: string): Tokenizer {
  if (!(ENCODINGS as readonly string[]).includes(encoding)) {
    throw new MemexError('MEMEX_INVALID_INPUT', `unknown tokenizer encoding ${JSON.stringify(encoding)}; use one of ${ENCODINGS.join(', ')}`);
  }
  const name = encoding as Encoding;
  let tokenizer = loaded.get(name);
  if (!tokenizer) {
    tokenizer = new TiktokenTokenizer(name, get_encoding(name));
    loaded.set(name, tokenizer);
  }
  return tokenizer;
}

/**
 * Remembers token counts of texts seen before (stored turns, notes, summary sentences), so a window
 * for a long session counts only what is new. Keyed by the text itself (a digest of long texts),
 * so a count is never reused for other text; bounded, forgetting the oldest entries first.
 *
 * A long text of several lines is counted line by line (`lineSegments`), each line through the
 * cache: the blocks a window renders (memories, notes, the summary) are mostly lines counted before,
 * in an earlier window or an earlier try at fitting this one, and a block is counted again each
 * time a line is added or dropped.
 */
export class CountCache {
  private readonly counts = new Map<string, number>();

  constructor(private readonly capacity = 50_000) {}

  count(tokenizer: Tokenizer, text: string): number {
    const key = `${tokenizer.encoding}\u0000${text.length <= 200 ? text : createHash('sha1').update(text).digest('base64')}`;
    const known = this.counts.get(key);
    if (known !== undefined) return known;
    const segments = text.length > SPLIT_CHARS ? lineSegments(text) : null;
    const tokens = segments ? segments.reduce((sum, segment) => sum + this.count(tokenizer, segment), 0) : tokenizer.count(text);
    if (this.counts.size >= this.capacity) {
      const oldest = this.counts.keys().next();
      if (!oldest.done) this.counts.delete(oldest.value);
    }
    this.counts.set(key, tokens);
    return tokens;
  }
}

/** Texts longer than this are counted by lines when they have several. */
const SPLIT_CHARS = 300;

/**
 * `text` cut after line breaks where the count of the whole is the sum of the parts' counts, or
 * null when it has no such place. cl100k_base and o200k_base first split text into pieces by a
 * pattern, then encode each piece alone; a piece never runs past a `\n` into a next line that
 * starts with something other than whitespace, a line break or (o200k's `[\r\n/]*` after
 * punctuation) a slash. So at such places the pieces, and the tokens, are the same whether the text
 * is encoded whole or in parts. Text with `\r` is left whole. `test/context/tokenizer.test.ts`
 * checks the sums against whole counts on real conversations and on hostile text.
 */
export function lineSegments(text: string): string[] | null {
  if (text.includes('\r')) return null;
  const segments: string[] = [];
  let start = 0;
  for (let at = text.indexOf('\n'); at >= 0 && at < text.length - 1; at = text.indexOf('\n', at + 1)) {
    const next = text[at + 1] as string;
    if (next === '/' || /[\s\u0085]/u.test(next)) continue;
    segments.push(text.slice(start, at + 1));
    start = at + 1;
  }
  if (segments.length === 0) return null;
  segments.push(text.slice(start));
  return segments;
}
