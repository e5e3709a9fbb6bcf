import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { JsonValueStream, type TopLevelValue } from '../../src/import/json-stream.js';
import { expectCode } from '../helpers/errors.js';
import { tempDir } from '../helpers/tmp.js';

/** Feeds the text in chunks of `size` bytes, so values, strings and multi-byte characters straddle chunk boundaries. */
function chunked(text: string | Buffer, size = 7): Readable {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return Readable.from(chunks);
}

async function all(stream: AsyncIterable<TopLevelValue>): Promise<TopLevelValue[]> {
  const values: TopLevelValue[] = [];
  for await (const value of stream) values.push(value);
  return values;
}

describe('JsonValueStream', () => {
  it('streams the elements of a top-level array with a null key, whatever the chunking', async () => {
    const doc = [{ a: 1, nested: { deep: [1, 2, { x: 'ü€😀' }] } }, 'two', 3, null, [4, [5]], 1.5e-3];
    const text = `${JSON.stringify(doc).slice(0, -1)},{"__proto__":{"polluted":true}}]`;
    for (const size of [1, 3, 7, 64 * 1024]) {
      const values = await all(new JsonValueStream(chunked(text, size)));
      expect(values.map(({ key }) => key)).toEqual([...doc, null].map(() => null));
      expect(values.map(({ value }) => value)).toEqual(JSON.parse(text));
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('streams the properties of a top-level object as key and value', async () => {
    const doc = { first: { title: 'a', mapping: { n: { id: 'n' } } }, 'sec"ond': [1, 2], third: 'x', fourth: null };
    const values = await all(new JsonValueStream(chunked(JSON.stringify(doc, null, 2), 5)));
    expect(values).toEqual(Object.entries(doc).map(([key, value]) => ({ key, value })));
  });

  it('tolerates a byte-order mark and whitespace before the document', async () => {
    const values = await all(new JsonValueStream(chunked(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('\n  [1,2]\n')]), 1)));
    expect(values.map(({ value }) => value)).toEqual([1, 2]);
  });

  it('replays the peeked values before the rest, and knows the shape', async () => {
    const stream = new JsonValueStream(chunked('[10,20,30,40]', 2));
    expect(stream.shape).toBeNull();
    expect((await stream.peek(2)).map(({ value }) => value)).toEqual([10, 20]);
    expect(stream.shape).toBe('array');
    expect((await stream.peek(1)).map(({ value }) => value)).toEqual([10]);
    expect((await all(stream)).map(({ value }) => value)).toEqual([10, 20, 30, 40]);
  });

  it('raises MEMEX_IMPORT_INVALID with the byte offset for truncated and damaged JSON, from the iterator', async () => {
    const good = JSON.stringify([{ title: 'one' }, { title: 'two', text: 'x'.repeat(100) }]);
    for (const text of [good.slice(0, 40), good.slice(0, -1), `${good}garbage`, '[{"a":1},{"a":}]', '{"a":1,"b"}']) {
      const stream = new JsonValueStream(chunked(text, 16), { name: 'broken.json' });
      const seen: unknown[] = [];
      const error = await expectCode(async () => {
        for await (const { value } of stream) seen.push(value);
      }, 'MEMEX_IMPORT_INVALID');
      expect(error.details).toMatchObject({ name: 'broken.json' });
      expect(typeof error.details.byteOffset).toBe('number');
      expect(error.details.byteOffset as number).toBeLessThanOrEqual(text.length);
    }
  });

  it('says MEMEX_IMPORT_FORMAT_UNKNOWN for a document that is no JSON array or object', async () => {
    for (const text of ['', '   ', '"text"', '42', 'PK\u0003\u0004', 'hello']) {
      await expectCode(all(new JsonValueStream(chunked(text))), 'MEMEX_IMPORT_FORMAT_UNKNOWN');
    }
  });

  it('closes the file when the consumer stops early', async () => {
    const path = join(await tempDir(), 'many.json');
    await writeFile(path, JSON.stringify(Array.from({ length: 50_000 }, (_, i) => ({ i, text: 'some text' }))));
    const input = createReadStream(path, { highWaterMark: 1024 });
    const stream = new JsonValueStream(input);
    let count = 0;
    for await (const _ of stream) {
      if (++count === 3) break;
    }
    expect(count).toBe(3);
    expect(input.destroyed).toBe(true);
    // Breaking out of Node's stream iterator destroys the stream (it records an AbortError, nobody sees it).
    if (!input.closed) await new Promise((resolve) => input.once('close', () => resolve(undefined)));
    expect(input.closed).toBe(true);
  });

  it('closes the input when closed before it was ever iterated', async () => {
    const input = chunked('[1,2,3]');
    const stream = new JsonValueStream(input);
    await stream.peek(1);
    await stream.close();
    expect(input.destroyed).toBe(true);
  });

  it('stops with MEMEX_ABORTED when the signal fires mid-document', async () => {
    const controller = new AbortController();
    const input = new Readable({ read() {} });
    input.push('[1,2,');
    const stream = new JsonValueStream(input, { signal: controller.signal });
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toEqual({ key: null, value: 1 });
    expect((await iterator.next()).value).toEqual({ key: null, value: 2 });
    const pending = iterator.next();
    controller.abort();
    await expectCode(pending, 'MEMEX_ABORTED');
    expect(input.destroyed).toBe(true);
  });
});
