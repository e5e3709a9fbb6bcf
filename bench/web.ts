/**
 * The web session browser (issue 22): time to first render (the first item drawn, and all of them) of the session list (10,000 sessions)
 * and of a 1,000-message session in Debian's Chromium, against the API calls the page makes, timed
 * alone from Node in the same run (the floor for any page over this API); and the page's weight.
 *
 *   npx tsx bench/web.ts [--sessions 10000] [--messages 1000] [--runs 10]
 *
 * The data is made with the hashed embedder (what is rendered does not depend on the model).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Memex } from '../src/index.js';
import { machine, median } from './locomo.js';

const { values: args } = parseArgs({ options: { sessions: { type: 'string', default: '10000' }, messages: { type: 'string', default: '1000' }, runs: { type: 'string', default: '10' } } });
const SESSIONS = Number(args.sessions);
const MESSAGES = Number(args.messages);
const RUNS = Number(args.runs);
const CHROMIUM = process.env.MEMEX_CHROMIUM ?? '/usr/bin/chromium';
const env = { ...process.env, MEMEX_MODEL: 'hashed', MEMEX_DATA_DIR: '', MEMEX_CONFIG: '' };
const log = (line: string): void => void process.stderr.write(`${line}\n`);

const dir = await mkdtemp(join(tmpdir(), 'memex-web-bench-'));
const dataDir = join(dir, 'data');
const memex = await Memex.open({ dataDir, env, config: { fsync: 'none' }, onWarning: () => undefined });
await memex.users.create({ id: 'viewer' });
let next = 0;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (next < SESSIONS) {
      const i = next++;
      const session = await memex.sessions.create('viewer', { title: `Notes ${i}`, ...(i % 5 === 0 ? { tags: ['work'] } : {}) });
      await memex.messages.appendMany('viewer', session.id, [
        { role: 'user', content: `What did we decide about item ${i}?` },
        { role: 'assistant', content: `We agreed to **revisit item ${i}** next week, after the review.` },
      ]);
    }
  }),
);
const long = await memex.sessions.create('viewer', { title: 'A long conversation' });
for (let start = 0; start < MESSAGES; start += 100) {
  await memex.messages.appendMany('viewer', long.id, Array.from({ length: Math.min(100, MESSAGES - start) }, (_, j) => ({
    role: (start + j) % 2 === 0 ? ('user' as const) : ('assistant' as const),
    content: `Turn ${start + j}: a paragraph with *some* Markdown, a [link](https://example.org) and a list:\n\n- one\n- two\n\nThen the end of the turn.`,
  })));
}
const { key } = await memex.keys.create('viewer', 'bench');
await memex.flush();
await memex.close();
log(`made ${SESSIONS} sessions of 2 messages and one of ${MESSAGES}`);

const bin = fileURLToPath(new URL('../bin/memex.js', import.meta.url));
const server = spawn(process.execPath, [bin, 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'silent'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
const url = await new Promise<string>((resolve, reject) => {
  let stderr = '';
  server.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    const found = /listening on (http:\/\/[\d.]+:\d+)/.exec(stderr)?.[1];
    if (found) resolve(found);
  });
  server.on('exit', (code) => reject(new Error(`memex serve exited with ${code}: ${stderr}`)));
});

try {
  const headers = { authorization: `Bearer ${key}` };
  const api = async (path: string): Promise<unknown> => (await fetch(`${url}/v1${path}`, { headers })).json();
  const timed = async (call: () => Promise<unknown>): Promise<number> => {
    const times: number[] = [];
    for (let i = 0; i < RUNS + 2; i++) {
      const start = performance.now();
      await call();
      if (i >= 2) times.push(performance.now() - start);
    }
    return median(times);
  };
  // The calls each view makes before it can draw.
  const listApi = await timed(() => Promise.all([api('/me'), api('/tags')]).then(() => api('/sessions?limit=50&sort=activity&order=desc&origin=all')));
  const sessionApi = await timed(async () => {
    await api('/me');
    await api(`/sessions/${long.id}`);
    await Promise.all([api(`/sessions/${long.id}/files?limit=1000`), api('/personas?limit=1000')]);
    // As the page asks: 25 first (drawn at once), then 500 at a time.
    let cursor: string | null = null;
    let limit = 25;
    do {
      const page = (await api(`/sessions/${long.id}/messages?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`)) as { nextCursor: string | null };
      cursor = page.nextCursor;
      limit = 500;
    } while (cursor);
  });

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  /** Median ms from navigation until `first` is in the page, and until `done` is. */
  const render = async (hash: string, first: string, done: string, signedIn = true): Promise<{ first: number; done: number }> => {
    const firsts: number[] = [];
    const dones: number[] = [];
    for (let i = 0; i < RUNS + 2; i++) {
      const context = await browser.newContext();
      if (signedIn) await context.addInitScript(`sessionStorage.setItem('memex.apiKey', ${JSON.stringify(key)})`);
      const page = await context.newPage();
      await page.goto(`${url}/${hash}`);
      // Locators, not waitForFunction: the page's CSP (no eval) refuses a string predicate.
      await page.locator(first).first().waitFor({ state: 'attached', timeout: 60_000 });
      const firstMs = await page.evaluate(() => performance.now());
      await page.locator(done).waitFor({ state: 'attached', timeout: 60_000 });
      const doneMs = await page.evaluate(() => performance.now());
      if (i >= 2) {
        firsts.push(firstMs);
        dones.push(doneMs);
      }
      await context.close();
    }
    return { first: median(firsts), done: median(dones) };
  };
  const bare = await render('#/', '#api-key', '#api-key', false);
  const listPage = await render('#/', '.session-row', '.session-row >> nth=49');
  const sessionPage = await render(`#/s/${long.id}`, '.message', `.message >> nth=${MESSAGES - 1}`);
  await browser.close();

  const html = await (await fetch(url)).text();
  let raw = Buffer.byteLength(html);
  let gzipped = gzipSync(html).length;
  for (const [, asset] of html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)) {
    const bytes = Buffer.from(await (await fetch(`${url}${asset}`)).arrayBuffer());
    raw += bytes.length;
    gzipped += gzipSync(bytes).length;
  }

  console.log(`\n${machine()}, ${cpus().length} x ${cpus()[0]?.model ?? 'CPU'}, load ${loadavg()[0]!.toFixed(1)}; Chromium headless; median of ${RUNS}\n`);
  console.log('| view | the API calls alone (Node) | first drawn in Chromium | all drawn |');
  console.log('|---|---:|---:|---:|');
  console.log(`| the page alone: its sign-in form, no API data | | ${bare.first.toFixed(0)} ms | |`);
  console.log(`| session list, first 50 of ${SESSIONS.toLocaleString('en')} | ${listApi.toFixed(1)} ms | ${listPage.first.toFixed(0)} ms | ${listPage.done.toFixed(0)} ms |`);
  console.log(`| a session of ${MESSAGES.toLocaleString('en')} messages | ${sessionApi.toFixed(1)} ms | ${sessionPage.first.toFixed(0)} ms | ${sessionPage.done.toFixed(0)} ms |`);
  console.log(`\npage weight: ${(raw / 1024).toFixed(1)} KB, ${(gzipped / 1024).toFixed(1)} KB gzipped (HTML, script, stylesheet)`);
} finally {
  server.kill('SIGTERM');
  await rm(dir, { recursive: true, force: true });
}
