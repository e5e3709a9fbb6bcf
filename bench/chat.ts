/**
 * Memex's own cost per chat turn: everything but the model. In one run, the same FAKE
 * OpenAI-compatible upstream (an http server in a worker thread, with a fixed latency: FIRST_MS before
 * the first streamed chunk, then CHUNKS chunks GAP_MS apart, usage in the last) is called
 *
 *  - directly: `ChatModel.stream` with a request the size of a chat window (the baseline), and
 *  - through `memex.chat` (library) and `POST /v1/chat` (HTTP, SSE over loopback, the client in a
 *    thread of its own): store the user
 *    turn (durable), embed it, build the window (recall over the user's history, summary, recent
 *    turns), stream the reply, store the assistant turn with usage and the session's totals;
 *  - and, for reference, the same library calls without a model (append, buildContext, append):
 *    what a caller gluing the turn together would pay (its "first text" column: up to the window).
 *
 * For each: p50/p99 of the whole turn and of the time to the first streamed text, at concurrency
 * 1 and 16 (each concurrent chat a different user's, in its own session). "Added" is Memex minus
 * the baseline at the same percentile. Each user's history: SESSIONS older sessions of TURNS turns
 * (recall has something to search), embedded with the shared model.
 *
 * `--pause MS` waits MS (untimed) between one chat's turns, as a person reading the reply would;
 * without it turns run back to back, and each also waits for the work the one before left running
 * in the background (embedding the reply, taking its rows into the index).
 *
 *   npx tsx bench/chat.ts [--turns 100] [--pause 0]
 */
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ChatModel, Memex } from '../src/index.js';
import { buildApp, KeyStore } from '../src/server/index.js';
import { benchModel, machine } from './locomo.js';
import { fakeUpstream } from './lib/fake-upstream.js';
import { threadClient } from './lib/thread-client.js';

const FIRST_MS = 50;
const CHUNKS = 8;
const GAP_MS = 5;
/** Each user's history: SESSIONS older sessions of TURNS turns. */
const SESSIONS = 10;
const TURNS = 20;
const USERS = 16;
const CONCURRENCY = [1, 16];
const REPLY = 'Alfama is the oldest district, with steep lanes, fado bars and views over the river. ';

const { values } = parseArgs({ options: { turns: { type: 'string', default: '100' }, pause: { type: 'string', default: '0' } } });
const turnsPerRun = Number(values.turns) || 100;
/** Untimed milliseconds between one chat's turns (a person reading the reply); 0 runs them back to back. */
const pauseMs = Math.max(0, Number(values.pause) || 0);

const TOPICS = ['the Lisbon trip in May', 'the hotel budget', 'my sister Ottilie and her bees', 'the tax return', 'learning Portuguese', 'the garden and the ferns', 'the new bike', 'the book club'];

/**
 * The HTTP client, in a worker thread: its own event loop, as a real client in its own process would
 * have, so reading the stream and parsing its events is not counted as the server's time. Each
 * request: POST /v1/chat, read the SSE stream to its end, parse every event; times from the worker.
 */
function httpClient(): { post: (url: string, key: string, body: string) => Promise<Sample>; close: () => Promise<number> } {
  const code = `
    const { parentPort } = require('node:worker_threads');
    parentPort.on('message', async ({ id, url, key, body }) => {
      const start = performance.now();
      let firstMs = -1;
      try {
        const response = await fetch(url, { method: 'POST', headers: { authorization: 'Bearer ' + key, 'content-type': 'application/json' }, body });
        if (!response.ok || !response.body) throw new Error('HTTP ' + response.status + ': ' + (await response.text()));
        const decoder = new TextDecoder();
        let buffered = '';
        for await (const bytes of response.body) {
          buffered += decoder.decode(bytes, { stream: true });
          let end;
          while ((end = buffered.indexOf('\\n\\n')) >= 0) {
            const frame = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            const data = frame.split('\\n').filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trimStart()).join('\\n');
            if (data === '') continue;
            const event = JSON.parse(data);
            if (event.type === 'delta' && firstMs < 0) firstMs = performance.now() - start;
            if (event.type === 'error') throw new Error(event.error.code + ': ' + event.error.message);
          }
        }
        parentPort.postMessage({ id, totalMs: performance.now() - start, firstMs });
      } catch (cause) {
        parentPort.postMessage({ id, error: String(cause) });
      }
    });
  `;
  const client = threadClient<{ url: string; key: string; body: string }, Sample>(code);
  return { post: (url, key, body) => client.call({ url, key, body }), close: client.close };
}

interface Sample {
  totalMs: number;
  firstMs: number;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** `turns` turns spread over `concurrency` workers, each turn timed. */
async function run(concurrency: number, turns: number, turn: (worker: number, i: number) => Promise<Sample>): Promise<Sample[]> {
  const samples: Sample[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let i = next++; i < turns; i = next++) {
        samples.push(await turn(worker, i));
        // Work a turn left running in the background (embedding the reply) goes on during the pause.
        if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }),
  );
  return samples;
}

function question(i: number): string {
  return `What did we say about ${TOPICS[i % TOPICS.length]}? (${i})`;
}

async function main(): Promise<void> {
  const { model, modelDir } = benchModel();
  const upstream = await fakeUpstream({ firstMs: FIRST_MS, chunks: CHUNKS, gapMs: GAP_MS, reply: REPLY });
  const client = httpClient();
  const dataDir = await mkdtemp(join(tmpdir(), 'memex-bench-chat-'));
  const memex = await Memex.open({ dataDir, env: { MEMEX_MODEL: model, MEMEX_MODEL_DIR: modelDir }, config: { llm: { baseUrl: upstream.url, model: 'bench-fake', titles: false } }, onWarning: () => undefined });
  const app = await buildApp(memex, { keys: new KeyStore(dataDir, { recheckMs: 0 }) });
  const keys = new KeyStore(dataDir, { recheckMs: 0 });
  try {
    const users = Array.from({ length: USERS }, (_, u) => `user${u}`);
    const keyOf = new Map<string, string>();
    for (const user of users) {
      await memex.users.create({ id: user });
      keyOf.set(user, (await keys.create(user, 'bench')).key);
    }
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

    // Each user's history: older sessions to recall from.
    for (const user of users) {
      for (let s = 0; s < SESSIONS; s++) {
        const session = await memex.sessions.create(user, { title: `History ${s}` });
        await memex.messages.appendMany(
          user,
          session.id,
          Array.from({ length: TURNS }, (_, t) => ({ role: t % 2 === 0 ? ('user' as const) : ('assistant' as const), content: `About ${TOPICS[(s + t) % TOPICS.length]}: note ${s}.${t}, we agreed on detail number ${s * TURNS + t} and will revisit it next week.` })),
        );
      }
    }
    await memex.flush();
    for (const user of users) await memex.index.prepare(user);

    const direct = new ChatModel({ baseUrl: upstream.url, model: 'bench-fake' });
    // A request the size of a real window, built once (the baseline pays nothing for it).
    const seed = await memex.sessions.create('user0');
    await memex.messages.append('user0', seed.id, { role: 'user', content: question(0) });
    const window = await memex.buildContext('user0', { sessionId: seed.id, budget: memex.config.llm.contextTokens });
    const request = { messages: window.messages.map((m) => ({ ...m })) };

    const directTurn = async (): Promise<Sample> => {
      const start = performance.now();
      let firstMs = -1;
      for await (const chunk of direct.stream(request)) {
        if (firstMs < 0 && chunk.choices?.[0]?.delta?.content) firstMs = performance.now() - start;
      }
      return { totalMs: performance.now() - start, firstMs };
    };

    const sessionsFor = async (concurrency: number): Promise<string[]> => Promise.all(Array.from({ length: concurrency }, async (_, worker) => (await memex.sessions.create(users[worker] as string)).id));

    const libraryTurn = (sessions: string[]) => async (worker: number, i: number): Promise<Sample> => {
      const start = performance.now();
      let firstMs = -1;
      for await (const event of memex.chat(users[worker] as string, { text: question(i), sessionId: sessions[worker] })) {
        if (event.type === 'delta' && firstMs < 0) firstMs = performance.now() - start;
        if (event.type === 'error') throw new Error(`${event.error.code}: ${event.error.message}`);
      }
      return { totalMs: performance.now() - start, firstMs };
    };

    const httpTurn = (sessions: string[]) => (worker: number, i: number): Promise<Sample> =>
      client.post(`${base}/v1/chat`, keyOf.get(users[worker] as string) ?? '', JSON.stringify({ text: question(i), sessionId: sessions[worker] }));

    // What a caller gluing it together pays without a model: append, window, append.
    const partsTurn = (sessions: string[]) => async (worker: number, i: number): Promise<Sample> => {
      const user = users[worker] as string;
      const sessionId = sessions[worker] as string;
      const start = performance.now();
      await memex.messages.append(user, sessionId, { role: 'user', content: question(i) });
      await memex.buildContext(user, { sessionId, budget: memex.config.llm.contextTokens });
      const firstMs = performance.now() - start;
      await memex.messages.append(user, sessionId, { role: 'assistant', content: REPLY.repeat(CHUNKS) });
      return { totalMs: performance.now() - start, firstMs };
    };

    // Warm up every path (model, tokenizer, index, connections).
    await run(2, 10, directTurn);
    const warm = await sessionsFor(2);
    await run(2, 10, libraryTurn(warm));
    await run(2, 10, httpTurn(warm));
    await run(2, 10, partsTurn(warm));

    console.log(`chat turn cost, ${machine()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; embedding model ${model}; flat-file store`);
    console.log(`fake upstream: ${FIRST_MS} ms to the first chunk, ${CHUNKS} chunks ${GAP_MS} ms apart; history ${SESSIONS} sessions x ${TURNS} turns per user; window budget ${memex.config.llm.contextTokens} tokens; ${turnsPerRun} turns per cell; ${pauseMs > 0 ? `${pauseMs} ms pause between a chat's turns` : 'turns back to back'}\n`);
    console.log('| concurrency | path | turn p50 | turn p99 | added p50 | added p99 | first text p50 | first text p99 | added to first text p50 |');
    console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|');
    const f = (ms: number): string => ms.toFixed(1);
    for (const concurrency of CONCURRENCY) {
      const baseline = await run(concurrency, turnsPerRun, directTurn);
      const library = await run(concurrency, turnsPerRun, libraryTurn(await sessionsFor(concurrency)));
      const http = await run(concurrency, turnsPerRun, httpTurn(await sessionsFor(concurrency)));
      const parts = await run(concurrency, turnsPerRun, partsTurn(await sessionsFor(concurrency)));
      const b = { p50: percentile(baseline.map((s) => s.totalMs), 50), p99: percentile(baseline.map((s) => s.totalMs), 99), f50: percentile(baseline.map((s) => s.firstMs), 50), f99: percentile(baseline.map((s) => s.firstMs), 99) };
      console.log(`| ${concurrency} | upstream directly | ${f(b.p50)} | ${f(b.p99)} | | | ${f(b.f50)} | ${f(b.f99)} | |`);
      const p = (samples: Sample[], key: keyof Sample, at: number): string => f(percentile(samples.map((x) => x[key]), at));
      console.log(`| ${concurrency} | no model: append + buildContext + append | ${p(parts, 'totalMs', 50)} | ${p(parts, 'totalMs', 99)} | | | ${p(parts, 'firstMs', 50)} | ${p(parts, 'firstMs', 99)} | |`);
      for (const [name, samples] of [['memex.chat (library)', library], ['POST /v1/chat (SSE)', http]] as const) {
        const p50 = percentile(samples.map((s) => s.totalMs), 50);
        const p99 = percentile(samples.map((s) => s.totalMs), 99);
        const f50 = percentile(samples.map((s) => s.firstMs), 50);
        const f99 = percentile(samples.map((s) => s.firstMs), 99);
        console.log(`| ${concurrency} | ${name} | ${f(p50)} | ${f(p99)} | ${f(p50 - b.p50)} | ${f(p99 - b.p99)} | ${f(f50)} | ${f(f99)} | ${f(f50 - b.f50)} |`);
      }
    }
  } finally {
    await app.close();
    await memex.close();
    await upstream.close();
    await client.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
