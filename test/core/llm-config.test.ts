import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/index.js';
import { expectCode } from '../helpers/errors.js';
import { tempDir } from '../helpers/tmp.js';

const KEY = 'sk-config-secret-9876543210';

describe('llm config', () => {
  it('is off by default: no base URL, no model, no key', async () => {
    const { llm, context } = loadConfig({ env: {}, cwd: await tempDir() });
    expect(llm).toMatchObject({ baseUrl: null, model: null, apiKey: null, headers: {} });
    expect(context.summarizer).toBe('extractive');
  });

  it('reads baseUrl, model and headers from the file, the environment winning', async () => {
    const cwd = await tempDir();
    await writeFile(join(cwd, 'memex.config.json'), JSON.stringify({ llm: { baseUrl: 'http://127.0.0.1:11434/v1', model: 'llama3', headers: { 'x-team': 'a' }, maxRetries: 4 } }));
    expect(loadConfig({ env: {}, cwd }).llm).toMatchObject({ baseUrl: 'http://127.0.0.1:11434/v1', model: 'llama3', headers: { 'x-team': 'a' }, maxRetries: 4 });
    const fromEnv = loadConfig({ env: { MEMEX_LLM_BASE_URL: 'http://gpu:8000/v1', MEMEX_LLM_MODEL: 'qwen' }, cwd }).llm;
    expect(fromEnv).toMatchObject({ baseUrl: 'http://gpu:8000/v1', model: 'qwen', maxRetries: 4 });
  });

  it('refuses an API key in the config file, without repeating it', async () => {
    const cwd = await tempDir();
    await writeFile(join(cwd, 'memex.config.json'), JSON.stringify({ llm: { baseUrl: 'http://127.0.0.1:1/v1', apiKey: KEY } }));
    const error = await expectCode(() => loadConfig({ env: {}, cwd }), 'MEMEX_CONFIG_INVALID');
    expect(`${error.message} ${JSON.stringify(error)}`).not.toContain(KEY);
  });

  it('takes the key from MEMEX_LLM_API_KEY or an override, and never prints it', async () => {
    const cwd = await tempDir();
    const fromEnv = loadConfig({ env: { MEMEX_LLM_API_KEY: KEY }, cwd });
    expect(fromEnv.llm.apiKey?.reveal()).toBe(KEY);
    const overridden = loadConfig({ env: {}, cwd, overrides: { llm: { apiKey: KEY } } });
    expect(overridden.llm.apiKey?.reveal()).toBe(KEY);
    for (const config of [fromEnv, overridden]) {
      expect(JSON.stringify(config)).not.toContain(KEY);
      expect(inspect(config, { depth: 10 })).not.toContain(KEY);
      expect(`${String(config.llm.apiKey)}`).toBe('[redacted]');
    }
  });

  it('names a bad base URL with MEMEX_CONFIG_INVALID', async () => {
    await expectCode(() => loadConfig({ env: { MEMEX_LLM_BASE_URL: 'not a url' }, cwd: '/nonexistent-memex-cwd' }), 'MEMEX_CONFIG_INVALID');
    await expectCode(() => loadConfig({ env: { MEMEX_LLM_BASE_URL: 'file:///etc/passwd' }, cwd: '/nonexistent-memex-cwd' }), 'MEMEX_CONFIG_INVALID');
  });
});
