/**
 * The memory proxy's own cost per request: everything but the model, in one run.
 *
 *  - Upstream: a FAKE OpenAI-compatible server (bench/lib/fake-upstream.ts) answering every request
 *    with the same text streamed in 8 chunks, `--upstream-ms` apart.
 *  - Baseline: the official `openai` client calling the fake directly.
 *  The fake and the client each run in a worker thread of their own (as a model server and an app
 *  would in processes of their own), so the event loop measured is Memex's alone.
 *  - Memex: the same client calling `memex serve`'s app (listening on loopback) with a Memex key,
 *    continuing a session of a whole LoCoMo conversation (every session of it stored and embedded
 *    with the real model, so the window recalls across them), `X-Memex-Budget: 4096`.
 *  Each request streams; measured: time to the first content chunk and to the end, at 1 and
 *  `--concurrency` callers; reported as p50/p99 and Memex's added milliseconds at p50.
 *
 * `--pause MS` waits MS (untimed) between one caller's requests; without it they go back to back,
 * and each also waits for what the one before left running in the background (embedding the reply).
 *
 *   npx tsx bench/proxy.ts [--requests 60] [--concurrency 16] [--upstream-ms 5] [--pause 0]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { Memex } from '../src/index.js';
import { buildApp } from '../src/server/index.js';
import { KeyStore } from '../src/store/index.js';
import { fakeUpstream } from './lib/fake-upstream.js';
import { threadClient } from './lib/thread-client.js';
import { benchModel, locomoSessions, machine } from './locomo.js';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '60' }, concurrency: { type: 'string', default: '16' }, 'upstream-ms': { type: 'string', default: '5' }, pause: { type: 'string', default: '0' } } });
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
const upstreamMs = Number(values['upstream-ms']);
/** Untimed milliseconds between one caller's requests (a person reading the reply); 0 sends them back to back. */
const pauseMs = Math.max(0, Number(values.pause) || 0);

const REPLY = 'That was in Lisbon, in March, with the grey cat. Anything else you want to know about it?';
const fake = await fakeUpstream({ firstMs: 0, chunks: 8, gapMs: upstreamMs, reply: REPLY });

const { model, modelDir } = benchModel();
const dataDir = await mkdtemp(join(tmpdir(), 'memex-bench-proxy-'));
const memex = await Memex.open({ dataDir, env: { MEMEX_MODEL_DIR: modelDir, MEMEX_MODEL: model }, config: { llm: { baseUrl: fake.url, model: 'fake-model', maxRetries: 0 } } });
const keys = new KeyStore(dataDir, { recheckMs: 60_000 });
const { key } = await keys.create('bench', 'bench');
await memex.users.create({ id: 'bench' });
const conversation = locomoSessions().filter((s) => s.conversation === locomoSessions()[0]?.conversation);
let last = '';
for (const session of conversation) {
  const created = await memex.sessions.create('bench', { title: `${session.conversation} session ${session.index}` });
  await memex.messages.appendMany('bench', created.id, session.turns.map((t, i) => ({ role: i % 2 === 0 ? ('user' as const) : ('assistant' as const), content: `${t.speaker}: ${t.text}` })));
  last = created.id;
}
await memex.flush();
const app = await buildApp(memex, { keys, logger: false });
const url = await app.listen({ port: 0, host: '127.0.0.1' });

type Path = 'direct' | 'proxied';

/** The official `openai` client in a worker thread: each request streamed to its end, timed there. */
function clientThread(config: { direct: string; proxied: string; key: string; headers: Record<string, string> }): { once: (path: Path, i: number) => Promise<{ first: number; total: number }>; close: () => Promise<number> } {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const imported = require(workerData.openai);
    const OpenAI = imported.default ?? imported.OpenAI ?? imported;
    const clients = {
      direct: new OpenAI({ baseURL: workerData.direct, apiKey: 'none', maxRetries: 0 }),
      proxied: new OpenAI({ baseURL: workerData.proxied, apiKey: workerData.key, maxRetries: 0, defaultHeaders: workerData.headers }),
    };
    parentPort.on('message', async ({ id, path, i }) => {
      const start = performance.now();
      let first = 0;
      try {
        const stream = await clients[path].chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: 'Where did Caroline move, and when? (question ' + i + ')' }] });
        for await (const chunk of stream) if (first === 0 && chunk.choices[0]?.delta?.content) first = performance.now() - start;
        parentPort.postMessage({ id, first, total: performance.now() - start });
      } catch (cause) {
        parentPort.postMessage({ id, error: String(cause) });
      }
    });
  `;
  const client = threadClient<{ path: Path; i: number }, { first: number; total: number }>(code, { ...config, openai: createRequire(import.meta.url).resolve('openai') });
  return { once: (path, i) => client.call({ path, i }), close: client.close };
}

const client = clientThread({ direct: fake.url, proxied: `${url}/v1`, key, headers: { 'x-memex-session': last, 'x-memex-budget': '4096' } });

async function run(path: Path, callers: number): Promise<{ first: number[]; total: number[] }> {
  const out = { first: [] as number[], total: [] as number[] };
  let next = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < requests) {
        const { first, total } = await client.once(path, next++);
        out.first.push(first);
        out.total.push(total);
        // Work a request left running in the background (embedding the reply) goes on during the pause.
        if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }),
  );
  return out;
}

const pct = (list: number[], p: number): number => {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

try {
  // Warm both paths (model, index, connections) before measuring.
  await run('direct', 2);
  await run('proxied', 2);
  console.log(`\n${machine()}; model ${model}; upstream: fake, 8 chunks ${upstreamMs} ms apart; ${requests} streamed requests per row; session continued in a user with ${conversation.length} sessions; ${pauseMs > 0 ? `${pauseMs} ms pause between a caller's requests` : 'requests back to back'}\n`);
  console.log('| callers | path | first chunk p50 | p99 | whole reply p50 | p99 | added p50 (whole) |\n|---:|---|---:|---:|---:|---:|---:|');
  for (const callers of [1, concurrency]) {
    const base = await run('direct', callers);
    const mem = await run('proxied', callers);
    const row = (name: string, r: typeof base, added: string): string => `| ${callers} | ${name} | ${pct(r.first, 50).toFixed(1)} ms | ${pct(r.first, 99).toFixed(1)} ms | ${pct(r.total, 50).toFixed(1)} ms | ${pct(r.total, 99).toFixed(1)} ms | ${added} |`;
    console.log(row('upstream directly (baseline)', base, ''));
    console.log(row('through the Memex proxy', mem, `${(pct(mem.total, 50) - pct(base.total, 50)).toFixed(1)} ms`));
  }
} finally {
  await app.close();
  await memex.close();
  await fake.close();
  await client.close();
  await rm(dataDir, { recursive: true, force: true });
}
