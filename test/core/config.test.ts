import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/index.js';
import { expectCode } from '../helpers/errors.js';
import { tempDir } from '../helpers/tmp.js';

describe('config', () => {
  it('has defaults, resolved against the working directory', async () => {
    const cwd = await tempDir();
    const config = loadConfig({ env: {}, cwd });
    expect(config.dataDir).toBe(join(cwd, 'memex-data'));
    expect(config.fsync).toBe('group');
    expect(config.limits.maxFileBytes).toBeGreaterThan(0);
  });

  it('layers file < environment < overrides', async () => {
    const cwd = await tempDir();
    await writeFile(join(cwd, 'memex.config.json'), JSON.stringify({ dataDir: 'from-file', fsync: 'always', limits: { maxMessageChars: 10 } }));
    expect(loadConfig({ env: {}, cwd }).dataDir).toBe(join(cwd, 'from-file'));
    const fromEnv = loadConfig({ env: { MEMEX_DATA_DIR: '/env/dir', MEMEX_FSYNC: 'none' }, cwd });
    expect(fromEnv.dataDir).toBe('/env/dir');
    expect(fromEnv.fsync).toBe('none');
    expect(fromEnv.limits.maxMessageChars).toBe(10);
    const overridden = loadConfig({ env: { MEMEX_DATA_DIR: '/env/dir' }, cwd, overrides: { dataDir: '/flag/dir', limits: { maxFileBytes: 5 } } });
    expect(overridden.dataDir).toBe('/flag/dir');
    expect(overridden.limits).toEqual({ maxMessageChars: 10, maxFileBytes: 5, maxImportBytes: 4 * 1024 ** 3 });
  });

  it('is frozen', async () => {
    const config = loadConfig({ env: {}, cwd: await tempDir() });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.limits)).toBe(true);
  });

  it('names bad settings with MEMEX_CONFIG_INVALID', async () => {
    const cwd = await tempDir();
    await expectCode(() => loadConfig({ env: { MEMEX_FSYNC: 'sometimes' }, cwd }), 'MEMEX_CONFIG_INVALID');
    await expectCode(() => loadConfig({ env: { MEMEX_CONFIG: 'missing.json' }, cwd }), 'MEMEX_CONFIG_INVALID');
    await writeFile(join(cwd, 'memex.config.json'), '{ not json');
    await expectCode(() => loadConfig({ env: {}, cwd }), 'MEMEX_CONFIG_INVALID');
    await writeFile(join(cwd, 'memex.config.json'), JSON.stringify({ typo: 1 }));
    await expectCode(() => loadConfig({ env: {}, cwd }), 'MEMEX_CONFIG_INVALID');
  });

  it("takes the shared job queue's heartbeat and staleness from a file field by field, and refuses a staleness under three heartbeats", async () => {
    const cwd = await tempDir();
    await writeFile(join(cwd, 'memex.config.json'), JSON.stringify({ server: { jobs: { staleMs: 3000 } } }));
    expect(loadConfig({ env: {}, cwd }).server.jobs).toEqual({ heartbeatMs: 1000, staleMs: 3000 });
    expect(loadConfig({ env: {}, cwd, overrides: { server: { jobs: { heartbeatMs: 500 } } } }).server.jobs).toEqual({ heartbeatMs: 500, staleMs: 3000 });
    await expectCode(Promise.resolve().then(() => loadConfig({ env: {}, cwd, overrides: { server: { jobs: { heartbeatMs: 2000 } } } })), 'MEMEX_CONFIG_INVALID');
  });

  it('reads retention policies (each off by default) and refuses an unknown action or a limit under 1', async () => {
    const cwd = await tempDir();
    expect(loadConfig({ env: {}, cwd }).retention).toEqual({ intervalMs: 3_600_000, maxAgeDays: null, maxSessionsPerUser: null, maxMessagesPerSession: null });
    await writeFile(join(cwd, 'memex.config.json'), JSON.stringify({ retention: { maxAgeDays: { limit: 90, action: 'archive' }, maxMessagesPerSession: { limit: 500, action: 'trash' } } }));
    expect(loadConfig({ env: {}, cwd }).retention).toMatchObject({ maxAgeDays: { limit: 90, action: 'archive' }, maxMessagesPerSession: { limit: 500, action: 'trash' }, maxSessionsPerUser: null });
    await writeFile(join(cwd, 'memex.config.json'), JSON.stringify({ retention: { maxAgeDays: { limit: 90, action: 'shred' } } }));
    await expectCode(() => loadConfig({ env: {}, cwd }), 'MEMEX_CONFIG_INVALID');
    await writeFile(join(cwd, 'memex.config.json'), JSON.stringify({ retention: { maxSessionsPerUser: { limit: 0, action: 'trash' } } }));
    await expectCode(() => loadConfig({ env: {}, cwd }), 'MEMEX_CONFIG_INVALID');
  });
});
