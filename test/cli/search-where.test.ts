import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Memex } from '../../src/index.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

const BIN = fileURLToPath(new URL('../../bin/memex.js', import.meta.url));

function memex(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, MEMEX_CONFIG: '', ...modelEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('memex search --where', () => {
  it('filters on message metadata, and refuses a filter that is not JSON or not valid', async () => {
    const dataDir = join(await tempDir(), 'data');
    const library = await Memex.open({ dataDir, env: modelEnv, onWarning: () => undefined });
    await library.users.ensure('default');
    const session = await library.sessions.create('default');
    const [bread] = await library.messages.appendMany('default', session.id, [
      { role: 'user', content: 'feed the sourdough starter', metadata: { project: 'bread', priority: 3 } },
      { role: 'user', content: 'sourdough for the cake stall', metadata: { project: 'cake', priority: 1 } },
    ]);
    await library.close();
    const env = { MEMEX_DATA_DIR: dataDir };
    const run = await memex(['search', '--where', '{"priority":{"$gte":2}}', '--json', 'sourdough'], env);
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as { hits: { source: { messageId: string } }[] }).hits.map((hit) => hit.source.messageId)).toEqual([bread?.id]);
    expect((await memex(['search', '--where', 'project=bread', 'sourdough'], env)).code).not.toBe(0);
    const invalid = await memex(['search', '--where', '{"project":{"$regex":"b"}}', 'sourdough'], env);
    expect(invalid.code).not.toBe(0);
    expect(invalid.stderr).toContain('MEMEX_INVALID_INPUT');
  }, 60_000);
});
