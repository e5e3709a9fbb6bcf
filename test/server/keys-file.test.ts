import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Memex } from '../../src/index.js';
import { KeyStore } from '../../src/server/index.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';
import { startServer } from './setup.js';

describe('a corrupt api_keys.json', () => {
  it('never crashes `memex serve` (it crashed after "listening"): key requests answer a coded 503 until the file is fixed', { timeout: 60_000 }, async () => {
    const dataDir = await tempDir();
    const keysPath = join(dataDir, 'api_keys.json');
    await writeFile(keysPath, '{"v":1,"keys":[{"id":');
    const server = await startServer(dataDir);
    let exitCode: number | null = null;
    server.child.on('exit', (code) => (exitCode = code));
    try {
      // The key file is looked at right after "listening" (where the unhandled rejection was).
      for (let i = 0; i < 200 && !/api_keys\.json/.test(server.stderr()); i++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(server.stderr()).toMatch(/warning: .*api_keys\.json/);
      expect((await fetch(`${server.url}/v1/health`)).status).toBe(200);
      expect(exitCode, server.stderr()).toBeNull();
      const refused = await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer mx_aaaaaaaaaaaa_${'A'.repeat(43)}` } });
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { code: string }).code).toBe('MEMEX_KEYS_UNREADABLE');

      // Fixed while it runs (the bad file moved aside, a new key made): the server takes it up.
      await rename(keysPath, `${keysPath}.bad`);
      const { key } = await new KeyStore(dataDir).create('alice');
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = (await fetch(`${server.url}/v1/me`, { headers: { authorization: `Bearer ${key}` } })).status;
        if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(status).toBe(200);
    } finally {
      server.child.kill('SIGTERM');
      await new Promise((resolve) => (server.child.exitCode !== null ? resolve(null) : server.child.once('exit', resolve)));
    }
    expect(exitCode).toBe(0);
  });

  it('is reported by `memex doctor` (the library), which leaves it as it is', async () => {
    const dataDir = await tempDir();
    await writeFile(join(dataDir, 'api_keys.json'), 'not json');
    const memex = await Memex.open({ dataDir, env: modelEnv });
    try {
      const report = await memex.doctor();
      expect(report.ok).toBe(false);
      expect(report.findings).toEqual(expect.arrayContaining([expect.objectContaining({ severity: 'problem', where: 'data dir', what: expect.stringContaining('MEMEX_KEYS_UNREADABLE') })]));
    } finally {
      await memex.close();
    }
  });
});
