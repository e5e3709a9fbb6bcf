/**
 * The HTTP service under load: requests/s and p50/p99 latency for search, context and append at
 * concurrency 1, 8 and 32, measured with autocannon from this process against `memex serve` in a
 * second process on loopback. The baseline, in the same run, is the raw library doing the same
 * calls in-process (no HTTP, no JSON, no auth) at the same concurrency: the difference is what the
 * service costs.
 *
 * Data: the 272 sessions of LoCoMo's 10 conversations (5,882 turns) for one user, embedded with the
 * shared model; search queries are LoCoMo's questions, taken in turn; context windows are 4k
 * tokens for a session's next turn (recall for its latest user turn included); appends add a turn
 * to one of the sessions, in turn (durable when answered; embedded in the background).
 *
 *   npx tsx bench/server.ts [--seconds 10]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Memex } from '../src/index.js';
import { KeyStore } from '../src/server/index.js';
import { benchModel, LOCOMO, locomoSessions, machine } from './locomo.js';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] ?? 10) || 10;
const CONCURRENCY = [1, 8, 32];
const BIN = fileURLToPath(new URL('../bin/memex.js', import.meta.url));
const { model, modelDir } = benchModel();
const questions = (JSON.parse(readFileSync(LOCOMO, 'utf8')) as { qa: { question: string }[] }[]).flatMap((s) => s.qa.map((q) => q.question));

interface Row {
  op: string;
  concurrency: number;
  how: 'http' | 'library';
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** The library baseline: `concurrency` loops calling `op` for the same time, in-process. */
async function library(op: (i: number) => Promise<unknown>, concurrency: number): Promise<Omit<Row, 'op' | 'concurrency' | 'how'>> {
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const start = performance.now();
        await op(next++);
        latencies.push(performance.now() - start);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { rps: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors: 0 };
}

/** `memex serve` on the data dir in its own process: its URL, and a stop that waits for it to exit. */
async function serve(dataDir: string, config: string, env: NodeJS.ProcessEnv): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--config', config, '--log-level', 'silent'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const found = /listening on (http:\/\/[\d.]+:\d+)/.exec(stderr)?.[1];
      if (found) resolve(found);
    });
    child.on('exit', (code) => reject(new Error(`memex serve exited with ${code}: ${stderr}`)));
  });
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'memex-bench-server-'));
  const env = { ...process.env, MEMEX_MODEL: model, MEMEX_MODEL_DIR: modelDir, MEMEX_DATA_DIR: '', MEMEX_CONFIG: '' };
  const rows: Row[] = [];
  const config = join(dataDir, '..', `memex-bench-${process.pid}.json`);
  try {
    // Seed: every LoCoMo session as a Memex session of user `bench`.
    let memex = await Memex.open({ dataDir, env });
    await memex.users.ensure('bench');
    const sessionIds: string[] = [];
    for (const session of locomoSessions()) {
      const { id } = await memex.sessions.create('bench', { title: `${session.conversation} #${session.index}` });
      await memex.messages.appendMany('bench', id, session.turns.map((t, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), content: `${t.speaker}: ${t.text}` })));
      sessionIds.push(id);
    }
    await memex.flush();
    await memex.index.prepare('bench');
    const { key } = await new KeyStore(dataDir).create('bench');
    await writeFile(config, JSON.stringify({ server: { rateLimit: { max: 1_000_000 } } }));

    const ops = {
      search: (m: Memex, i: number) => m.search('bench', questions[i % questions.length]!, { k: 10 }),
      context: (m: Memex, i: number) => m.buildContext('bench', { sessionId: sessionIds[i % sessionIds.length]!, budget: 4096 }),
      append: (m: Memex, i: number) => m.messages.append('bench', sessionIds[i % sessionIds.length]!, { role: 'user', content: `bench turn ${i}: ${questions[i % questions.length]}` }),
    };
    const requests: Record<keyof typeof ops, (i: number) => { method: 'POST'; path: string; body: string }> = {
      search: (i) => ({ method: 'POST', path: '/v1/search', body: JSON.stringify({ query: questions[i % questions.length], k: 10 }) }),
      context: (i) => ({ method: 'POST', path: `/v1/sessions/${sessionIds[i % sessionIds.length]}/context`, body: JSON.stringify({ budget: 4096 }) }),
      append: (i) => ({ method: 'POST', path: `/v1/sessions/${sessionIds[i % sessionIds.length]}/messages`, body: JSON.stringify({ role: 'user', content: `bench turn ${i}: ${questions[i % questions.length]}` }) }),
    };
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

    // Both sides measure the same data in the same state, warmed the same way: every session's
    // summary made (one window each) and a round of searches, before the reads; the appends
    // (which grow the sessions and the index) come last, library then service.
    const warm = async (call: (op: 'search' | 'context', i: number) => Promise<unknown>): Promise<void> => {
      for (let i = 0; i < sessionIds.length; i++) await call('context', i);
      for (let i = 0; i < 100; i++) await call('search', i);
    };
    const onLibrary = async (names: (keyof typeof ops)[]): Promise<void> => {
      for (const op of names) {
        for (const concurrency of CONCURRENCY) rows.push({ op, concurrency, how: 'library', ...(await library((i) => ops[op](memex, i), concurrency)) });
        await memex.flush();
      }
    };
    const onService = async (names: (keyof typeof ops)[], warmFirst: boolean): Promise<void> => {
      // The service, in its own process, as users run it (rate limit raised out of the way).
      const { url, stop } = await serve(dataDir, config, env);
      try {
        console.error(`server at ${url}; measuring ${names.join(', ')} over HTTP with autocannon`);
        if (warmFirst) {
          await warm(async (op, i) => {
            const { path, body } = requests[op](i);
            const response = await fetch(`${url}${path}`, { method: 'POST', headers, body });
            if (!response.ok) throw new Error(`warm-up ${op}: HTTP ${response.status}`);
            await response.arrayBuffer();
          });
        }
        for (const op of names) {
          for (const concurrency of CONCURRENCY) {
            let i = 0;
            const result = await autocannon({ url, connections: concurrency, duration: seconds, headers, requests: [{ setupRequest: (request) => ({ ...request, ...requests[op](i++) }) }] });
            const failed = result.errors + result.timeouts + result.non2xx;
            rows.push({ op, concurrency, how: 'http', rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: failed });
          }
        }
      } finally {
        await stop();
      }
    };

    await warm((op, i) => ops[op](memex, i));
    console.error(`seeded ${sessionIds.length} sessions; measuring the library's reads (${seconds} s a run)`);
    await onLibrary(['search', 'context']);
    await memex.close();
    await onService(['search', 'context'], true);
    memex = await Memex.open({ dataDir, env });
    console.error('measuring the library\'s appends');
    await onLibrary(['append']);
    await memex.close();
    await onService(['append'], false);
  } finally {
    await rm(config, { force: true });
    await rm(dataDir, { recursive: true, force: true });
  }

  console.log(`\n${machine()}; ${model}; ${seconds} s per run\n`);
  console.log('| operation | concurrency | HTTP req/s | HTTP p50 ms | HTTP p99 ms | library ops/s | library p50 ms | library p99 ms |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const op of ['search', 'context', 'append']) {
    for (const concurrency of CONCURRENCY) {
      const http = rows.find((r) => r.op === op && r.concurrency === concurrency && r.how === 'http');
      const lib = rows.find((r) => r.op === op && r.concurrency === concurrency && r.how === 'library');
      if (!http || !lib) continue;
      const errors = http.errors ? ` (${http.errors} failed)` : '';
      console.log(`| ${op} | ${concurrency} | ${http.rps.toFixed(0)}${errors} | ${http.p50.toFixed(1)} | ${http.p99.toFixed(1)} | ${lib.rps.toFixed(0)} | ${lib.p50.toFixed(1)} | ${lib.p99.toFixed(1)} |`);
    }
  }
}

await main();
