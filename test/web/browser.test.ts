import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { ChildProcess } from 'node:child_process';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Memex } from '../../src/index.js';
import { hasEvalFiles, hasLocomo, IMAGES, locomoSessions, PDFS } from '../helpers/eval.js';
import { modelEnv } from '../helpers/model.js';
import { exited, startServer } from '../server/setup.js';

// The session browser as a person uses it: Debian's Chromium, driven by playwright-core, against a
// real `memex serve`. `.ci/run` installs the chromium package where it is missing.
const CHROMIUM = process.env.MEMEX_CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const ready = hasChromium && hasLocomo && hasEvalFiles;
if (!ready) {
  const missing = [!hasChromium && `Chromium at ${CHROMIUM} (apt-get install chromium, or set MEMEX_CHROMIUM)`, !hasLocomo && 'LoCoMo', !hasEvalFiles && 'the eval PDFs'].filter(Boolean).join(', ');
  process.stderr.write(`memex tests: web browser tests skipped: no ${missing}\n`);
}
const SHOTS = join(tmpdir(), 'memex-web-screenshots');

const HOSTILE = 'Look: <img src=x onerror="window.pwned=1"> and <script>window.pwned=2</script> **bold** [link](javascript:window.pwned=3)';


describe.skipIf(!ready)('the web session browser in Chromium', () => {
  let server: { child: ChildProcess; url: string };
  let home = '';
  let browser: Browser;
  let key: string;
  const ids: { first: string; hostile: string; bobs: string; papers: string; titles: string[] } = { first: '', hostile: '', bobs: '', papers: '', titles: [] };

  beforeAll(async () => {
    // Not tempDir(): that one is removed after each test, and the server lives for the whole file.
    home = await mkdtemp(join(tmpdir(), 'memex-web-'));
    const dataDir = join(home, 'data');
    const memex = await Memex.open({ dataDir, env: modelEnv, config: { fsync: 'none' }, onWarning: () => undefined });
    try {
      await memex.users.create({ id: 'alice', name: 'Alice' });
      const sessions = locomoSessions().filter((s) => s.conversation === 'conv-26' && s.index <= 6);
      for (const s of sessions) {
        const title = `${s.speakerA} and friends, part ${s.index}`;
        const session = await memex.sessions.create('alice', { title, createdAt: s.startedAt });
        ids.titles.push(title);
        if (!ids.first) ids.first = session.id;
        const start = Date.parse(s.startedAt);
        await memex.messages.appendMany(
          'alice',
          session.id,
          s.turns.map((turn, i) => ({ role: turn.speaker === s.speakerA ? ('user' as const) : ('assistant' as const), content: turn.text, name: turn.speaker, createdAt: new Date(start + i * 60_000).toISOString() })),
        );
      }
      const hostile = await memex.sessions.create('alice', { title: 'Hostile content' });
      await memex.messages.append('alice', hostile.id, { role: 'user', content: HOSTILE });
      ids.hostile = hostile.id;
      const papers = await memex.sessions.create('alice', { title: 'Papers' });
      ids.papers = papers.id;
      const image = await memex.ingestFile('alice', papers.id, { path: join(IMAGES, 'phototest.tif') }, { name: 'phototest.tif' });
      await memex.messages.append('alice', papers.id, { role: 'user', content: 'A scan of a test page.', attachments: [{ fileId: image.file.id, name: 'phototest.tif', mimeType: image.file.mimeType }] });
      await memex.users.create({ id: 'bob' });
      ids.bobs = (await memex.sessions.create('bob', { title: "Bob's secret" })).id;
      key = (await memex.keys.create('alice', 'browser')).key;
      await memex.flush();
    } finally {
      await memex.close();
    }
    server = await startServer(dataDir);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    await mkdir(SHOTS, { recursive: true });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    if (server) {
      server.child.kill('SIGTERM');
      await exited(server.child);
    }
    if (home) await rm(home, { recursive: true, force: true });
  });

  /** A new tab, signed in as alice; fails the test on any page error or dialog. */
  async function signedIn(): Promise<{ page: Page; problems: string[] }> {
    const context = await browser.newContext({ acceptDownloads: true });
    // Shorter than the test's own timeout, so a step that waits in vain names itself.
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('dialog', (dialog) => {
      problems.push(`dialog: ${dialog.message()}`);
      void dialog.dismiss();
    });
    page.on('console', (message) => {
      if (message.type() === 'error' && !/404|Failed to load resource/.test(message.text())) problems.push(`console: ${message.text()}`);
    });
    await page.goto(server.url);
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Sessions' }).waitFor();
    return { page, problems };
  }

  it('serves the page with a strict CSP, hashed assets cached for good, and under 150 KB gzipped', async () => {
    const response = await fetch(server.url);
    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await response.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toHaveLength(2);
    let gzipped = gzipSync(html).length;
    for (const asset of assets) {
      const answer = await fetch(new URL(asset, server.url));
      expect(answer.headers.get('cache-control')).toContain('immutable');
      gzipped += gzipSync(Buffer.from(await answer.arrayBuffer())).length;
    }
    expect(gzipped).toBeLessThan(150 * 1024);
    expect((await fetch(new URL('/assets/..%2Fmanifest.json', server.url))).status).toBe(404);
  });

  it('refuses a wrong key, then signs in and lists, sorts and searches sessions', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(server.url);
    await page.getByLabel('API key').fill('mx_notakey');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('not valid');
    expect(await page.evaluate<string>('location.href')).not.toContain('mx_');
    await context.close();

    const { page: signed, problems } = await signedIn();
    const rows = signed.locator('.session-row .title');
    await expect.poll(() => rows.count()).toBe(ids.titles.length + 2);
    await signed.screenshot({ path: join(SHOTS, 'sessions.png'), fullPage: true });
    await signed.getByLabel('Sort by').selectOption('title');
    await expect.poll(() => rows.first().textContent()).toBe([...ids.titles, 'Hostile content', 'Papers'].sort((a, b) => a.localeCompare(b))[0]);
    await signed.getByLabel('Search sessions').fill('part 3');
    await signed.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => rows.allTextContents()).toEqual([ids.titles[2]]);
    expect(problems).toEqual([]);
  });

  it('searches across sessions with highlighted matches; a hit opens its session scrolled to the message', async () => {
    const { page, problems } = await signedIn();
    await page.getByRole('link', { name: 'Search' }).click();
    await page.getByLabel('Search all sessions').fill('LGBTQ support group');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator('.hit mark').first().waitFor();
    expect((await page.locator('.hit mark').allTextContents()).map((t) => t.toLowerCase())).toContain('support');
    await page.screenshot({ path: join(SHOTS, 'search.png'), fullPage: true });
    const hit = page.locator('.hit a').first();
    const messageId = new URL((await hit.getAttribute('href'))!.replace('#', ''), 'http://x').searchParams.get('m');
    await hit.click();
    const target = page.locator(`#m-${messageId}`);
    await expect.poll(() => target.getAttribute('class')).toContain('target');
    expect(await target.isVisible()).toBe(true);
    const box = await target.boundingBox();
    const viewport = page.viewportSize();
    expect(box && viewport && box.y >= 0 && box.y + box.height <= viewport.height).toBe(true);
    expect(problems).toEqual([]);
  });

  it('renames, deletes with confirmation and undoes, and exports Markdown', async () => {
    const { page, problems } = await signedIn();
    await page.goto(`${server.url}/#/s/${ids.first}`);
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByLabel('New title').fill('Caroline, renamed');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'Caroline, renamed' }).waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'Caroline, renamed' }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'session.png'), fullPage: false });

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export Markdown' }).click()]);
    const markdown = await readFile(await download.path(), 'utf8');
    expect(markdown).toMatch(/^# Caroline, renamed\n/);
    expect(download.suggestedFilename()).toBe(`${ids.first}.md`);

    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('heading', { name: 'Sessions' }).waitFor();
    await expect.poll(() => page.locator(`[data-session-id="${ids.first}"]`).count()).toBe(0);
    await page.getByRole('button', { name: 'Undo' }).click();
    await page.getByRole('heading', { name: 'Caroline, renamed' }).waitFor();
    await page.getByRole('link', { name: '← Sessions' }).click();
    await expect.poll(() => page.locator(`[data-session-id="${ids.first}"]`).count()).toBe(1);
    expect(problems).toEqual([]);
  });

  it('uploads a PDF with progress to done, then search finds its text', async () => {
    const { page, problems } = await signedIn();
    await page.goto(`${server.url}/#/s/${ids.papers}`);
    await page.locator('.attachment img').first().waitFor();
    await page.getByLabel('Add a PDF or image').setInputFiles(join(PDFS, 'tracemonkey.pdf'));
    await expect.poll(() => page.locator('.upload-state').getAttribute('data-state'), { timeout: 120_000 }).toBe('done');
    await page.screenshot({ path: join(SHOTS, 'upload.png') });
    await page.goto(`${server.url}/#/search?q=${encodeURIComponent('trace-based just-in-time compilation')}`);
    await page.locator('.match h2').first().waitFor();
    expect(await page.locator('.match h2').first().textContent()).toBe('Papers');
    expect(problems).toEqual([]);
  }, 180_000);

  it('shows a hostile message as text: no element, no script, no dialog', async () => {
    const { page, problems } = await signedIn();
    await page.goto(`${server.url}/#/s/${ids.hostile}`);
    const content = page.locator('.message .content').first();
    await content.waitFor();
    expect(await content.textContent()).toContain('<img src=x onerror="window.pwned=1">');
    expect(await content.textContent()).toContain('<script>window.pwned=2</script>');
    expect(await content.locator('img, script').count()).toBe(0);
    expect(await content.locator('strong').textContent()).toBe('bold');
    expect(await content.locator('a[href^="javascript"]').count()).toBe(0);
    await page.waitForTimeout(200);
    expect(await page.evaluate<unknown>('window.pwned')).toBeUndefined();
    await page.screenshot({ path: join(SHOTS, 'hostile.png') });
    expect(problems).toEqual([]);
  });

  it("says not found for another user's session id, and the context panel never exceeds its budget", async () => {
    const { page, problems } = await signedIn();
    await page.goto(`${server.url}/#/s/${ids.bobs}`);
    await page.getByRole('heading', { name: 'Session not found' }).waitFor();
    expect(await page.content()).not.toContain("Bob's secret");

    await page.goto(`${server.url}/#/s/${ids.first}`);
    await page.getByRole('button', { name: 'Context window' }).click();
    for (const budget of [4096, 1024]) {
      await page.getByLabel('Token budget').fill(String(budget));
      await page.getByRole('button', { name: 'Build' }).click();
      const shown = page.locator('[data-budget]');
      await expect.poll(() => shown.textContent()).toBe(String(budget));
      const tokens = Number(await page.locator('[data-tokens]').getAttribute('data-tokens'));
      const usable = Number(await page.locator('[data-usable]').getAttribute('data-usable'));
      expect(tokens).toBeGreaterThan(0);
      expect(tokens).toBeLessThanOrEqual(usable);
      expect(usable).toBeLessThanOrEqual(budget);
    }
    await page.screenshot({ path: join(SHOTS, 'context.png'), fullPage: true });
    expect(problems).toEqual([]);
  });

  it('is readable at phone width: nothing wider than the screen', async () => {
    const { page } = await signedIn();
    await page.setViewportSize({ width: 375, height: 740 });
    for (const hash of ['#/', `#/s/${ids.first}`, '#/search?q=painting']) {
      await page.goto(`${server.url}/${hash}`);
      await page.locator('h1').first().waitFor();
      await page.waitForLoadState('networkidle');
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    }
    await page.screenshot({ path: join(SHOTS, 'phone.png'), fullPage: false });
  });
});
