import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { getManyValues, none } from 'stream-chain/defs.js';
import Assembler from 'stream-json/assembler.js';
import { jsonParser } from 'stream-json/parser.js';
import { MemexError, isMemexError, toMemexError } from '../core/index.js';

/** One top-level value of a JSON document: an array element (`key` null) or an object property. */
export interface TopLevelValue {
  key: string | null;
  value: unknown;
}

export type JsonShape = 'array' | 'object';

export interface JsonStreamOptions {
  /** Named in errors: the file or ZIP entry being read. */
  name?: string | undefined;
  signal?: AbortSignal | undefined;
}

const BOM = 0xfeff;

/**
 * V8 makes a substring of 13 or more characters a slice of its parent, and the parser cuts every
 * key and string out of its text buffer. One id kept from a conversation (the importer keeps ids)
 * would keep the whole buffer it came from alive: in the large-export test, 1,008 kept ids held
 * 140 MB. Prefixing and slicing off makes V8 flatten the string into a copy of its own.
 */
function detach(text: string): string {
  return text.length < 13 ? text : ` ${text}`.slice(1);
}

/** An assembler whose keys and strings share no memory with the parser's buffer (see `detach`). */
class DetachedAssembler extends Assembler {
  override keyValue(value: string): void {
    super.keyValue(detach(value));
  }

  override stringValue(value: string): void {
    super.stringValue(detach(value));
  }
}

/**
 * The top-level values of one JSON document, read from a byte stream one value at a time with
 * stream-json's tokenizer and assembler, so memory holds the largest single value (one
 * conversation), never the document. `peek()` reads the first values ahead for detection; iterating
 * replays them before the rest. Single consumer: iterate once. Stopping early (`break`, `return()`)
 * or `close()` destroys the input, releasing its file handle.
 */
export class JsonValueStream implements AsyncIterable<TopLevelValue> {
  #shape: JsonShape | null = null;
  readonly #input: Readable;
  readonly #name: string;
  readonly #signal: AbortSignal | undefined;
  readonly #head: TopLevelValue[] = [];
  readonly #source: AsyncGenerator<TopLevelValue, void, undefined>;
  #ended = false;
  #iterated = false;

  constructor(input: Readable, options: JsonStreamOptions = {}) {
    this.#input = input;
    this.#name = options.name ?? 'input';
    this.#signal = options.signal;
    this.#source = this.#values();
  }

  /** `array` or `object` once the first token has been read (after a `peek`), else null. */
  get shape(): JsonShape | null {
    return this.#shape;
  }

  /** Whether the whole document has been read (a short document can end while peeking). */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Reads ahead until `count` values are buffered (or the document ends) and returns them; they are
   * yielded again by the iterator. Reading at least one token also settles `shape`.
   */
  async peek(count: number): Promise<readonly TopLevelValue[]> {
    while (this.#head.length < count && !this.#ended) {
      const next = await this.#source.next();
      if (next.done === true) break;
      this.#head.push(next.value);
    }
    return this.#head.slice(0, count);
  }

  /** Reads until the shape is known (the first token); a document that is no JSON container throws MEMEX_IMPORT_FORMAT_UNKNOWN. */
  async readShape(): Promise<JsonShape> {
    while (this.#shape === null) {
      await this.peek(this.#head.length + 1);
      if (this.#ended && this.#shape === null) break;
    }
    if (this.#shape === null) throw new MemexError('MEMEX_INTERNAL', `${this.#name}: the JSON reader ended without a shape`);
    return this.#shape;
  }

  /** Stops reading and releases the input; safe to call more than once. */
  async close(): Promise<void> {
    await this.#source.return(undefined);
    await this.#release();
  }

  /** Destroys the input and waits until it has closed, so its file descriptor is really gone when this returns. */
  async #release(): Promise<void> {
    if (!this.#input.destroyed) this.#input.destroy();
    await finished(this.#input).catch(() => undefined);
  }

  [Symbol.asyncIterator](): AsyncIterator<TopLevelValue> {
    if (this.#iterated) throw new MemexError('MEMEX_INTERNAL', `${this.#name}: a JSON value stream can be iterated only once`);
    this.#iterated = true;
    const head = this.#head;
    const source = this.#source;
    const close = () => this.close();
    return {
      async next(): Promise<IteratorResult<TopLevelValue>> {
        const buffered = head.shift();
        if (buffered !== undefined) return { done: false, value: buffered };
        const next = await source.next();
        return next.done === true ? { done: true, value: undefined } : next;
      },
      async return(): Promise<IteratorResult<TopLevelValue>> {
        head.length = 0;
        await close();
        return { done: true, value: undefined };
      },
    };
  }

  async *#values(): AsyncGenerator<TopLevelValue, void, undefined> {
    const decoder = new StringDecoder('utf8');
    // Packed tokens only (streamValues off): the assembler reads packed tokens, and skipping the
    // chunk tokens roughly halves the tokenizer's work on long strings.
    // Called with `none` to flush at the end, as stream-chain's pipelines do; its type names only strings.
    const parse = jsonParser({ streamValues: false }) as (text: string | typeof none) => ReturnType<ReturnType<typeof jsonParser>>;
    const assembler = new DetachedAssembler();
    let bytesRead = 0;
    let chunkStart = 0;
    let started = false;
    let key: string | null = null;
    const onAbort = () => this.#input.destroy();
    this.#signal?.addEventListener('abort', onAbort, { once: true });
    try {
      this.#checkAborted();
      const out: TopLevelValue[] = [];
      const feed = (text: string) => {
        if (!started) {
          const from = text.charCodeAt(0) === BOM ? 1 : 0;
          const first = /\S/.exec(text.slice(from));
          if (first === null) return;
          started = true;
          const opener = first[0];
          if (opener !== '[' && opener !== '{') throw this.#unknown(opener);
          this.#shape = opener === '[' ? 'array' : 'object';
          text = text.slice(from + first.index);
        }
        const tokens = parse(text);
        if (tokens === none) return;
        for (const token of getManyValues(tokens)) {
          assembler.consume(token);
          if (assembler.depth !== 1) continue;
          // Depth 1 is inside the top-level container: a finished element or property value sits in `current`.
          if (this.#shape === 'array') {
            const current = assembler.current as unknown[];
            if (current.length > 0) out.push({ key: null, value: current.pop() });
          } else if (token.name === 'keyValue') {
            key = token.value;
          } else if (key !== null) {
            const current = assembler.current as Record<string, unknown>;
            out.push({ key, value: current[key] });
            assembler.current = {};
            key = null;
          }
        }
      };
      const parseOrThrow = (text: string | typeof none) => {
        try {
          if (text === none) {
            if (!started) throw this.#unknown(null);
            const tail = parse(none);
            if (tail !== none) throw new Error('Parser has tokens after the end');
          } else {
            feed(text);
          }
        } catch (cause) {
          if (isMemexError(cause)) throw cause;
          throw new MemexError('MEMEX_IMPORT_INVALID', `${this.#name} is not valid JSON (truncated or damaged) near byte ${chunkStart}-${bytesRead}: ${(cause as Error).message}`, {
            cause,
            details: { name: this.#name, byteOffset: chunkStart, bytesRead, reason: (cause as Error).message },
          });
        }
      };
      for await (const chunk of this.#input as AsyncIterable<Buffer | string>) {
        this.#checkAborted();
        chunkStart = bytesRead;
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        bytesRead += bytes.length;
        parseOrThrow(decoder.write(bytes));
        while (out.length > 0) {
          this.#checkAborted();
          yield out.shift() as TopLevelValue;
        }
      }
      this.#checkAborted();
      chunkStart = bytesRead;
      const rest = decoder.end();
      if (rest) parseOrThrow(rest);
      parseOrThrow(none);
      while (out.length > 0) yield out.shift() as TopLevelValue;
      this.#ended = true;
    } catch (cause) {
      this.#ended = true;
      this.#checkAborted(cause);
      if (isMemexError(cause)) throw cause;
      throw toMemexError(cause, `reading ${this.#name}`);
    } finally {
      this.#signal?.removeEventListener('abort', onAbort);
      await this.#release();
    }
  }

  #checkAborted(cause?: unknown): void {
    if (this.#signal?.aborted) {
      throw new MemexError('MEMEX_ABORTED', `reading ${this.#name} was cancelled`, { cause: cause ?? this.#signal.reason });
    }
  }

  #unknown(opener: string | null): MemexError {
    const seen = opener === null ? 'an empty document' : `a document starting with ${JSON.stringify(opener)}, not a JSON array or object`;
    return new MemexError('MEMEX_IMPORT_FORMAT_UNKNOWN', `${this.#name} is not a chat export: ${seen}`, {
      details: { name: this.#name, seen: opener === null ? 'empty' : `starts with ${JSON.stringify(opener)}` },
    });
  }
}
