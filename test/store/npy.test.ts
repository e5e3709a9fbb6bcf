import { execFileSync, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FlatFileStore, npyHeader } from '../../src/store/index.js';
import type { Chunk, MessageId } from '../../src/core/index.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * An independent reader written from the NumPy format spec (numpy.org/doc/stable/reference/generated/
 * numpy.lib.format.html), not from Memex's code: magic, version, header length, dict literal, data.
 */
function readNpy(bytes: Buffer): { shape: number[]; descr: string; fortran: boolean; data: Float32Array } {
  expect([...bytes.subarray(0, 6)]).toEqual([0x93, ...Buffer.from('NUMPY')]);
  const [major, minor] = [bytes[6], bytes[7]];
  expect(major).toBe(1);
  expect(minor).toBe(0);
  const headerLength = bytes.readUInt16LE(8);
  const dataStart = 10 + headerLength;
  expect(dataStart % 64).toBe(0); // the spec: the total header is padded to a multiple of 64 (16 before NumPy 1.9)
  const header = bytes.subarray(10, dataStart).toString('latin1');
  expect(header.endsWith('\n')).toBe(true);
  // The dict is a Python literal; turn it into JSON to read it.
  const json = header
    .trim()
    .replace(/'/g, '"')
    .replace(/\bFalse\b/g, 'false')
    .replace(/\bTrue\b/g, 'true')
    .replace(/\(([^)]*)\)/g, (_, inner: string) => `[${inner.replace(/,\s*$/, '')}]`)
    .replace(/,\s*}/, '}');
  const dict = JSON.parse(json) as { descr: string; fortran_order: boolean; shape: number[] };
  expect(Object.keys(dict).sort()).toEqual(['descr', 'fortran_order', 'shape']);
  const data = bytes.subarray(dataStart);
  const count = dict.shape.reduce((a, b) => a * b, 1);
  expect(data.length).toBe(count * 4);
  const floats = new Float32Array(count);
  for (let i = 0; i < count; i++) floats[i] = data.readFloatLE(i * 4);
  return { shape: dict.shape, descr: dict.descr, fortran: dict.fortran_order, data: floats };
}

const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

function chunk(messageId: string, text: string, role: 'user' | 'assistant' = 'user'): Chunk {
  return { chunkId: `${messageId}:0`, source: { kind: 'message', messageId: messageId as MessageId, role, createdAt: new Date().toISOString() }, part: { index: 0, count: 1 }, span: { start: 0, end: text.length }, text, tokens: 3 };
}

describe('embeddings.npy', () => {
  it('writes a 128-byte v1.0 header that an independent reader parses', () => {
    const parsed = readNpy(Buffer.concat([npyHeader(0, 512)]));
    expect(parsed).toMatchObject({ shape: [0, 512], descr: '<f4', fortran: false });
    expect(npyHeader(123_456_789, 4096)).toHaveLength(128);
  });

  it('round-trips appended rows through the reader, and through numpy.load where Python has NumPy', async () => {
    const dataDir = await tempDir();
    const store = await FlatFileStore.open({ dataDir, fsync: 'none' });
    await store.createUser({ id: 'alice' });
    const session = await store.createSession('alice');
    const messages = await store.appendMessages('alice', session.id, [
      { role: 'user', content: 'one' },
      { role: 'assistant', content: 'two' },
      { role: 'user', content: 'three' },
    ]);
    const rows = messages.map((_, i) => Float32Array.from({ length: 5 }, (_, j) => i * 10 + j + 0.5));
    // Two appends: the second extends the file and rewrites the shape in place.
    await store.appendVectors('alice', session.id, { model: 'test/fake', chunks: messages.slice(0, 2).map((m) => chunk(m.id, m.content)), vectors: rows.slice(0, 2) });
    await store.appendVectors('alice', session.id, { model: 'test/fake', chunks: [chunk(messages[2]!.id, 'three')], vectors: rows.slice(2) });
    await store.close();
    const path = join(dataDir, 'users', 'alice', 'sessions', session.id, 'embeddings.npy');
    const parsed = readNpy(await readFile(path));
    expect(parsed.shape).toEqual([3, 5]);
    expect([...parsed.data]).toEqual(rows.flatMap((r) => [...r]));
    if (hasNumpy) {
      const out = execFileSync('python3', ['-c', `import numpy, json; a = numpy.load(${JSON.stringify(path)}); print(json.dumps({"shape": list(a.shape), "dtype": str(a.dtype), "data": a.ravel().tolist()}))`]).toString();
      const loaded = JSON.parse(out) as { shape: number[]; dtype: string; data: number[] };
      expect(loaded).toEqual({ shape: [3, 5], dtype: 'float32', data: rows.flatMap((r) => [...r]) });
    } else {
      console.log('numpy.load check skipped: python3 with numpy is not installed');
    }
  });

  it.runIf(hasNumpy)('has an independent reader that agrees with files NumPy writes itself', async () => {
    const path = join(await tempDir(), 'np.npy');
    execFileSync('python3', ['-c', `import numpy; numpy.save(${JSON.stringify(path)}, numpy.arange(6, dtype='<f4').reshape(2, 3))`]);
    const parsed = readNpy(await readFile(path));
    expect(parsed.shape).toEqual([2, 3]);
    expect([...parsed.data]).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
