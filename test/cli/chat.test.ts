import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChatEvent } from '../../src/index.js';
import { json, memex, spawnMemex } from '../helpers/cli.js';
import { startFakeLlm, type FakeLlm } from '../helpers/fake-llm.js';
import { tempDir } from '../helpers/tmp.js';

// `memex chat` as a child process, against a FAKE OpenAI-compatible server (test/helpers/fake-llm.ts).

let fake: FakeLlm;
beforeAll(async () => {
  fake = await startFakeLlm();
});
afterAll(async () => {
  await fake.close();
});
const running = new Set<ChildProcessWithoutNullStreams>();
afterEach(async () => {
  for (const child of running) {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  running.clear();
  fake.reset();
});

async function dataEnv(): Promise<NodeJS.ProcessEnv> {
  return { MEMEX_DATA_DIR: join(await tempDir(), 'data'), MEMEX_LLM_BASE_URL: fake.baseUrl, MEMEX_LLM_MODEL: 'fake-model' };
}

function lines(stdout: string): ChatEvent[] {
  return stdout.trim().split('\n').map((line) => JSON.parse(line) as ChatEvent);
}

describe('memex chat', () => {
  it('-m with --json prints one event per line, and `session show` has the usage totals', async () => {
    const env = await dataEnv();
    fake.script({ kind: 'text', text: 'Hello from the fake.', usage: { prompt: 21, completion: 5 } }, { kind: 'text', text: 'Greetings' });
    const run = await memex(['--json', 'chat', '-m', 'Hello there'], { env });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const events = lines(run.stdout);
    expect(events[0]?.type).toBe('session');
    expect(events.at(-1)?.type).toBe('done');
    const done = events.at(-1);
    if (done?.type !== 'done') throw new Error('no done event');
    expect(done.message.content).toBe('Hello from the fake.');
    const shown = await json<{ title: string; metadata: { usage: unknown } }>(['session', 'show', done.session.id], { env });
    expect(shown.title).toBe('Greetings');
    expect(shown.metadata.usage).toEqual({ promptTokens: 21, completionTokens: 5, replies: 1 });
    const human = await memex(['session', 'show', done.session.id], { env });
    expect(human.stdout).toMatch(/tokens:\s+21 prompt \+ 5 completion/);
  });

  it('interactive: lines from stdin are turns of one session, the replies printed as they stream', async () => {
    const env = await dataEnv();
    fake.script({ kind: 'text', text: 'First answer.' }, { kind: 'text', text: 'A title' }, { kind: 'text', text: 'Second answer.' });
    const run = await memex(['chat'], { env, input: 'first question\n\nsecond question\n' });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('First answer.\nSecond answer.\n');
    const sessionId = /\(session (\S+)\)/.exec(run.stderr)?.[1];
    expect(sessionId).toBeDefined();
    const page = await json<{ messages: { role: string; content: string }[] }>(['messages', '--session', sessionId as string], { env });
    expect(page.messages.map((m) => m.content)).toEqual(['first question', 'First answer.', 'second question', 'Second answer.']);
  });

  it('an upstream failure exits 1 with its code; no model configured is MEMEX_LLM_NOT_CONFIGURED', async () => {
    const env = await dataEnv();
    fake.script({ kind: 'status', status: 500 });
    const config = join(await tempDir(), 'memex.config.json');
    await writeFile(config, JSON.stringify({ llm: { maxRetries: 0 } }));
    const failed = await memex(['chat', '-m', 'Hello?'], { env: { ...env, MEMEX_CONFIG: config } });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('MEMEX_LLM_UNAVAILABLE');
    const bare = await memex(['--json', 'chat', '-m', 'Hello?'], { env: { MEMEX_DATA_DIR: env.MEMEX_DATA_DIR } });
    expect(bare.code).toBe(1);
    expect((JSON.parse(bare.stderr) as { error: { code: string } }).error.code).toBe('MEMEX_LLM_NOT_CONFIGURED');
  });

  it('works beside a running memex serve, through its model', async () => {
    const env = await dataEnv();
    const server = spawnMemex(['serve', '--port', '0', '--log-level', 'silent'], { env });
    running.add(server);
    let stderr = '';
    server.stdout.resume();
    await new Promise<void>((resolve, reject) => {
      server.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/listening on http/.test(stderr)) resolve();
      });
      server.once('exit', (code) => reject(new Error(`memex serve exited with ${code}: ${stderr}`)));
    });
    fake.script({ kind: 'text', text: 'Served reply.' });
    // The CLI itself has no model configured: the server's is used.
    const run = await memex(['--json', 'chat', '-m', 'Through the server'], { env: { MEMEX_DATA_DIR: env.MEMEX_DATA_DIR } });
    expect(run.code, run.stderr).toBe(0);
    const done = lines(run.stdout).at(-1);
    expect(done?.type === 'done' && done.message.content).toBe('Served reply.');
    expect(fake.requests.length).toBeGreaterThan(0);
  });
});
