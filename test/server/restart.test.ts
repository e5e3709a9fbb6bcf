import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeyStore } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { exited, multipart, startServer } from './setup.js';

async function staged(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((name) => name.startsWith('.upload.'));
}

describe('temp files of an upload cut by SIGKILL', () => {
  it('are swept when the server starts again (they stayed until the next upload to that session)', { timeout: 60_000 }, async () => {
    const dataDir = await tempDir();
    const { key } = await new KeyStore(dataDir).create('alice');
    let server = await startServer(dataDir);
    const created = await fetch(`${server.url}/v1/sessions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{}' });
    const sid = ((await created.json()) as { id: string }).id;

    const upload = multipart({ name: 'big.bin', bytes: randomBytes(4 * 1024 * 1024) });
    const { hostname, port } = new URL(server.url);
    const cut = httpRequest({ host: hostname, port, method: 'POST', path: `/v1/sessions/${sid}/files`, headers: { ...upload.headers, authorization: `Bearer ${key}`, 'content-length': String(upload.payload.length) } });
    cut.on('error', () => undefined);
    cut.write(upload.payload.subarray(0, upload.payload.length >> 1));
    const dir = join(dataDir, 'users', 'alice', 'sessions', sid, 'files');
    for (let i = 0; i < 400 && (await staged(dir)).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(await staged(dir)).toHaveLength(1);
    server.child.kill('SIGKILL');
    await exited(server.child);
    cut.destroy();
    expect(await staged(dir)).toHaveLength(1);

    server = await startServer(dataDir);
    try {
      // Nothing is uploaded again: the start alone removes what the killed server left.
      expect(await staged(dir)).toEqual([]);
    } finally {
      server.child.kill('SIGTERM');
      await exited(server.child);
    }
  });
});
