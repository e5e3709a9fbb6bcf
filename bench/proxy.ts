/**
 * The memory proxy's own cost per request: everything but the model, in one run.
 *
 *  - Upstream: the test suite's FAKE OpenAI-compatible server (test/helpers/fake-llm.ts) answering
 *    every request with the same text streamed in 8 chunks, `--upstream-ms` apart.
 *  - Baseline: the official `openai` client calling the fake directly.
 *  - Memex: the same client calling `memex serve`'s app (listening on loopback) with a Memex key,
 *    continuing a session of a whole LoCoMo conversation (every session of it stored and embedded
 *    with the real model, so the window recalls across them), `X-Memex-Budget: 4096`.
 *  Each request streams; measured: time to the first content chunk and to the end, at 1 and
 *  `--concurrency` callers; reported as p50/p99 and Memex's added milliseconds at p50.
 *
 *   npx tsx bench/proxy.ts [--requests 60] [--concurrency 16] [--upstream-ms 5]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import { Memex } from '../src/index.js';
import { buildApp } from '../src/server/index.js';
import { KeyStore } from '../src/store/index.js';
import { startFakeLlm } from '../test/helpers/fake-llm.js';
import { benchModel, locomoSessions, machine } from './locomo.js';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '60' }, concurrency: { type: 'string', default: '16' }, 'upstream-ms': { type: 'string', default: '5' } } });
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
const upstreamMs = Number(values['upstream-ms']);

const REPLY = 'That was in Lisbon, in March, with the grey cat. Anything else you want to know about it?';
const fake = await startFakeLlm();
fake.fallback = () => ({ kind: 'text', text: REPLY, chunks: 8, delayMs: upstreamMs });

const { model, modelDir } = benchModel();
const dataDir = await mkdtemp(join(tmpdir(), 'memex-bench-proxy-'));
const memex = await Memex.open({ dataDir, env: { MEMEX_MODEL_DIR: modelDir, MEMEX_MODEL: model }, config: { llm: { baseUrl: fake.baseUrl, model: 'fake-model', maxRetries: 0 } } });
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

const direct = new OpenAI({ baseURL: fake.baseUrl, apiKey: 'none', maxRetries: 0 });
const proxied = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0, defaultHeaders: { 'x-memex-session': last, 'x-memex-budget': '4096' } });

async function once(client: OpenAI, i: number): Promise<{ first: number; total: number }> {
  const start = performance.now();
  let first = 0;
  const stream = await client.chat.completions.create({ model: 'fake-model', stream: true, messages: [{ role: 'user', content: `Where did Caroline move, and when? (question ${i})` }] });
  for await (const chunk of stream) if (first === 0 && chunk.choices[0]?.delta.content) first = performance.now() - start;
  return { first, total: performance.now() - start };
}

async function run(client: OpenAI, callers: number): Promise<{ first: number[]; total: number[] }> {
  const out = { first: [] as number[], total: [] as number[] };
  let next = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < requests) {
        const { first, total } = await once(client, next++);
        out.first.push(first);
        out.total.push(total);
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
  await run(direct, 2);
  await run(proxied, 2);
  console.log(`\n${machine()}; model ${model}; upstream: fake, 8 chunks ${upstreamMs} ms apart; ${requests} streamed requests per row; session continued in a user with ${conversation.length} sessions\n`);
  console.log('| callers | path | first chunk p50 | p99 | whole reply p50 | p99 | added p50 (whole) |\n|---:|---|---:|---:|---:|---:|---:|');
  for (const callers of [1, concurrency]) {
    const base = await run(direct, callers);
    const mem = await run(proxied, callers);
    const row = (name: string, r: typeof base, added: string): string => `| ${callers} | ${name} | ${pct(r.first, 50).toFixed(1)} ms | ${pct(r.first, 99).toFixed(1)} ms | ${pct(r.total, 50).toFixed(1)} ms | ${pct(r.total, 99).toFixed(1)} ms | ${added} |`;
    console.log(row('upstream directly (baseline)', base, ''));
    console.log(row('through the Memex proxy', mem, `${(pct(mem.total, 50) - pct(base.total, 50)).toFixed(1)} ms`));
  }
} finally {
  await app.close();
  await memex.close();
  await fake.close();
  await rm(dataDir, { recursive: true, force: true });
}
