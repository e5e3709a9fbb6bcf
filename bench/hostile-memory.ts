/**
 * Memory under hostile files: the resident size (RSS) of a real `memex serve` process, read from
 * /proc after each pass of the bad-file corpus (every PDF and image of ../shared/eval, corrupt,
 * encrypted and bomb files among them) uploaded through `POST /v1/sessions/:id/files`, one file at
 * a time, each pass into a new session so nothing is deduplicated. The baseline, in the same run,
 * is the same server idle for as long (what the process holds without the uploads).
 *
 *   npx tsx bench/hostile-memory.ts [--passes 8] [--all]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeyStore } from '../src/server/index.js';
import { benchModel, machine } from './locomo.js';

const passes = Number(process.argv[process.argv.indexOf('--passes') + 1] ?? 8) || 8;
/** `bad` (default): the bad-file corpus alone. `all`: every eval PDF and image, so good files are ingested (and indexed) again each pass. */
const corpus = process.argv.includes('--all') ? 'all' : 'bad';
const BIN = fileURLToPath(new URL('../bin/memex.js', import.meta.url));
const EVAL = fileURLToPath(new URL('../../shared/eval', import.meta.url));
/** Corrupt, encrypted and bomb files, as ../shared/eval/README.md names them. */
const BAD = new Set([
  'REDHAT-1531897-0.pdf', 'bug1978317.pdf', 'issue9418.pdf', 'poppler-395-0-fuzzed.pdf', 'bug1020226.pdf',
  'issue6010_1.pdf', 'issue6010_2.pdf', 'issue3371.pdf', 'issue21579.pdf', 'issue7665.pdf', 'encrypted-attachment.pdf',
  'bug1815476.pdf', 'issue9972-2.pdf',
  'truncated_image.png', 'truncated_jpeg.jpg', 'broken.png', 'decompression_bomb.gif', 'reallybig.bmp', 'total-pages-zero.tif',
]);
const files = ['pdfs', 'images'].flatMap((dir) =>
  readdirSync(join(EVAL, dir))
    .filter((name) => /\.(pdf|png|jpe?g|gif|webp|tiff?|bmp)$/i.test(name) && (corpus === 'all' || BAD.has(name)))
    .map((name) => join(EVAL, dir, name)),
);

function rssMb(child: ChildProcess): number {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function startServer(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const { model, modelDir } = benchModel();
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'silent'], {
    env: { ...process.env, MEMEX_MODEL: model, ...(modelDir ? { MEMEX_MODEL_DIR: modelDir } : {}) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr?.on('data', (data: Buffer) => {
      stderr += data.toString();
      const found = /listening on (http:\/\/[\d.]+:\d+)/.exec(stderr)?.[1];
      if (found) resolve(found);
    });
    child.on('exit', (code) => reject(new Error(`memex serve exited with ${code}: ${stderr}`)));
  });
  return { child, url };
}

async function upload(url: string, key: string, sessionId: string, path: string): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([readFileSync(path)]), path.split('/').pop() ?? 'file');
  const response = await fetch(`${url}/v1/sessions/${sessionId}/files`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
  const body = (await response.json()) as { job?: { id: string }; code?: string };
  if (!body.job) return body.code ?? `HTTP ${response.status}`;
  for (;;) {
    const job = (await (await fetch(`${url}/v1/jobs/${body.job.id}`, { headers: { authorization: `Bearer ${key}` } })).json()) as { state: string; error?: { code: string } };
    if (job.state === 'done') return 'ingested';
    if (job.state === 'failed' || job.state === 'cancelled') return job.error?.code ?? job.state;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const dataDir = await mkdtemp(join(tmpdir(), 'memex-bench-memory-'));
try {
  const { key } = await new KeyStore(dataDir).create('bench');
  const server = await startServer(dataDir);
  const rows: { pass: number; rss: number; seconds: number }[] = [{ pass: 0, rss: rssMb(server.child), seconds: 0 }];
  const outcomes = new Map<string, number>();
  for (let pass = 1; pass <= passes; pass++) {
    const started = performance.now();
    const session = (await (
      await fetch(`${server.url}/v1/sessions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{}' })
    ).json()) as { id: string };
    for (const path of files) {
      const outcome = await upload(server.url, key, session.id, path);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    rows.push({ pass, rss: rssMb(server.child), seconds: (performance.now() - started) / 1000 });
    process.stderr.write(`pass ${pass}: RSS ${rows.at(-1)?.rss.toFixed(0)} MB\n`);
  }
  // Baseline: the same process, idle for as long as one pass took.
  const idleFrom = rssMb(server.child);
  await new Promise((resolve) => setTimeout(resolve, 10_000));
  const idle = rssMb(server.child);
  server.child.kill('SIGTERM');
  await new Promise((resolve) => server.child.on('exit', resolve));

  console.log(`\n${machine()}; ${corpus} corpus, ${files.length} files a pass (${[...outcomes].map(([k, v]) => `${k} ${v / passes}`).join(', ')})\n`);
  console.log('| after pass | server RSS (MB) | seconds |');
  console.log('|---:|---:|---:|');
  for (const row of rows) console.log(`| ${row.pass === 0 ? 'start' : row.pass} | ${row.rss.toFixed(0)} | ${row.seconds.toFixed(1)} |`);
  console.log(`| idle 10 s after (baseline) | ${idle.toFixed(0)} (from ${idleFrom.toFixed(0)}) | |`);
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
