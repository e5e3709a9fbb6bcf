import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileTextSchema, isMemexError, Memex, MemexError, type IngestResult, type MemexErrorCode, type OcrEngine } from '../../src/index.js';
import { expectCode } from '../helpers/errors.js';
import { EVAL_FILES_MISSING, hasEvalFiles, IMAGES, PDFS } from '../helpers/eval.js';
import { hasSharedModel, modelEnv, SHARED_MODEL_MISSING } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

const USER = 'reader';

/** Character error rate: edit distance over the reference length, whitespace runs counted as one space. */
function cer(reference: string, read: string): number {
  const a = reference.replace(/\s+/g, ' ').trim();
  const b = read.replace(/\s+/g, ' ').trim();
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((previous[j] as number) + 1, (row[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return (previous[b.length] as number) / a.length;
}

describe.skipIf(!hasEvalFiles)('ingestFile with the real eval files', () => {
  let memex: Memex;
  let session: string;
  let dataDir: string;

  // One data dir for the whole group (tempDir() would remove it after the first test).
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'memex-ingest-'));
    memex = await Memex.open({ dataDir, env: modelEnv, onWarning: () => undefined });
    await memex.users.create({ id: USER });
    session = (await memex.sessions.create(USER)).id;
  }, 60_000);
  afterAll(async () => {
    await memex.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const ingest = (path: string, options: Parameters<Memex['ingestFile']>[3] = {}): Promise<IngestResult> =>
    memex.ingestFile(USER, session, { path }, { name: path.split('/').pop() ?? '', ...options });
  const textOf = async (fileId: string): Promise<string> => {
    const text = FileTextSchema.parse(JSON.parse((await memex.files.artifact(USER, session, fileId, 'text.json')).toString('utf8')));
    return text.units.map((unit) => unit.text).join('\n\n');
  };
  const stored = async (): Promise<string[]> => (await memex.files.list(USER, session)).map((file) => file.name);

  it('reads a two-column paper in reading order, with its metadata, and search finds a sentence of it', async () => {
    const result = await ingest(join(PDFS, 'tracemonkey.pdf'));
    expect(result).toMatchObject({ kind: 'pdf', ingested: true, pages: 14, warnings: [] });
    expect(result.file.content).toMatchObject({ kind: 'pdf', pages: 14, ocrPages: [], encrypted: false });
    expect(result.chunks).toBeGreaterThan(100);
    const text = await textOf(result.file.id);
    // A sentence that runs across a line break in the left column of page 2.
    expect(text).toContain('recording and compiling a trace speculates that the path and typing will be exactly as they were');
    const { hits } = await memex.search(USER, 'compiling a trace speculates that the path and typing will be exactly as during recording', { k: 3 });
    expect(hits[0]?.source).toMatchObject({ kind: 'file', fileId: result.file.id, page: 2 });
  });

  it('stores, parses and embeds the same bytes once', async () => {
    const path = join(PDFS, 'tracemonkey.pdf');
    const rowsBefore = (await memex.vectors.status(USER, session)).rows;
    const again = await ingest(path);
    expect(again.ingested).toBe(false);
    expect(again.chunks).toBeGreaterThan(100);
    expect((await memex.vectors.status(USER, session)).rows).toBe(rowsBefore);
    expect((await stored()).filter((name) => name === 'tracemonkey.pdf')).toHaveLength(1);
  });

  it('reads every page of a 352-page book', async () => {
    // Reading is what is tested: the hashed embedder keeps the real model's minute of embedding out of the suite.
    const dir = await mkdtemp(join(tmpdir(), 'memex-ingest-book-'));
    const hashed = await Memex.open({ dataDir: dir, env: { MEMEX_MODEL: 'hashed' }, onWarning: () => undefined });
    const result = await (async () => {
      try {
        await hashed.users.create({ id: USER });
        const book = (await hashed.sessions.create(USER)).id;
        return await hashed.ingestFile(USER, book, { path: join(PDFS, 'freeculture.pdf') }, { name: 'freeculture.pdf' });
      } finally {
        await hashed.close();
        await rm(dir, { recursive: true, force: true });
      }
    })();
    expect(result.pages).toBe(352);
    expect(result.characters).toBeGreaterThan(600_000);
    expect(result.warnings.filter((w) => w.code === 'page-unreadable')).toEqual([]);
  }, 120_000);

  it('reads Arabic, Hebrew, Japanese and Chinese text layers', async () => {
    const scripts: [string, RegExp, string?][] = [
      ['ArabicCIDTrueType.pdf', /\p{Script=Arabic}{3}/u],
      ['issue11656.pdf', /\p{Script=Hebrew}{3}/u],
      ['issue16538.pdf', /\p{Script=Han}/u, 'リスク中立確率'],
      ['issue12823.pdf', /\p{Script=Han}/u, '知识库'],
    ];
    for (const [name, script, phrase] of scripts) {
      const result = await ingest(join(PDFS, name));
      const text = await textOf(result.file.id);
      expect(text, name).toMatch(script);
      if (phrase) expect(text, name).toContain(phrase);
      expect(result.chunks, name).toBeGreaterThan(0);
    }
  });

  it('sends a page with no text layer through OCR', async () => {
    const result = await ingest(join(PDFS, 'issue7200.pdf'));
    expect(result.file.content).toMatchObject({ kind: 'pdf', ocrPages: [1] });
    const text = await textOf(result.file.id);
    expect(text.toLowerCase()).toMatch(/lorem ipsum/);
    const units = FileTextSchema.parse(JSON.parse((await memex.files.artifact(USER, session, result.file.id, 'text.json')).toString('utf8'))).units;
    expect(units[0]).toMatchObject({ method: 'ocr', page: 1 });
    expect(units[0]?.lines?.[0]?.bbox.x1).toBeGreaterThan(0);
  }, 60_000);

  it.each([
    ['issue6010_1.pdf', 'abc'],
    ['issue6010_2.pdf', 'æøå'],
    ['issue3371.pdf', 'ELXRTQWS'],
    ['issue21579.pdf', 'pässwört'],
  ])('refuses %s without its password, keeps nothing, then ingests it with the password', async (name, password) => {
    const path = join(PDFS, name);
    await expectCode(ingest(path), 'MEMEX_PDF_ENCRYPTED');
    await expectCode(ingest(path, { password: 'not-the-password' }), 'MEMEX_PDF_PASSWORD_INCORRECT');
    expect(await stored()).not.toContain(name);
    const result = await ingest(path, { password });
    expect(result.file.content).toMatchObject({ kind: 'pdf', encrypted: true });
    expect(result.pages).toBeGreaterThan(0);
    expect(result.chunks).toBeGreaterThan(0);
  });

  it('ingests the pages of encrypted-attachment.pdf, whose only encrypted part is an embedded file, and reports the attachment as skipped (regression: refused as password-protected)', async () => {
    const result = await ingest(join(PDFS, 'encrypted-attachment.pdf'));
    expect(result).toMatchObject({ kind: 'pdf', ingested: true, pages: 1 });
    expect(result.chunks).toBeGreaterThan(0);
    expect(result.warnings.map((w) => w.code)).toEqual(['attachments-skipped']);
    expect((await textOf(result.file.id)).trim()).not.toBe('');
  });

  it('gives a corrupt PDF a coded error or a partial result with warnings, never a crash, and keeps nothing of a refused one', async () => {
    for (const name of ['REDHAT-1531897-0.pdf', 'bug1978317.pdf', 'issue9418.pdf', 'poppler-395-0-fuzzed.pdf', 'bug1020226.pdf', 'Brotli-Prototype-FileA.pdf']) {
      try {
        const result = await ingest(join(PDFS, name));
        expect(result.kind, name).toBe('pdf');
      } catch (error) {
        expect(isMemexError(error), `${name}: ${String(error)}`).toBe(true);
        expect(['MEMEX_PDF_INVALID', 'MEMEX_PDF_ENCRYPTED'], name).toContain((error as MemexError).code);
        expect(await stored(), name).not.toContain(name);
      }
    }
  }, 60_000);

  it('refuses the decompression bombs before decoding them', async () => {
    const refused: Record<string, MemexErrorCode[]> = {
      'decompression_bomb.gif': ['MEMEX_IMAGE_TOO_LARGE'],
      'reallybig.bmp': ['MEMEX_IMAGE_TOO_LARGE'],
      'broken.png': ['MEMEX_IMAGE_TOO_LARGE', 'MEMEX_IMAGE_INVALID'],
    };
    for (const [name, codes] of Object.entries(refused)) {
      const error = await ingest(join(IMAGES, name)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isMemexError(error) && codes.includes(error.code), `${name}: ${String(error)}`).toBe(true);
      expect(await stored()).not.toContain(name);
    }
  });

  it('reads what there is of a truncated PNG and JPEG, with a warning', async () => {
    for (const name of ['truncated_image.png', 'truncated_jpeg.jpg']) {
      const result = await ingest(join(IMAGES, name));
      expect(result.warnings.map((w) => w.code), name).toContain('image-truncated');
      expect(result.file.content).toMatchObject({ kind: 'image', width: expect.any(Number) as number });
    }
  });

  it('reads every page of a multi-page fax TIFF and the first frame of an animation', async () => {
    const fax = await ingest(join(IMAGES, 'g4-multi.tiff'));
    expect(fax.pages).toBe(3);
    expect(fax.file.content).toMatchObject({ kind: 'image', format: 'tiff', pagesInFile: 3, animated: false, width: 3307, height: 4677 });
    const animation = await ingest(join(IMAGES, 'iss634.webp'));
    expect(animation.pages).toBe(1);
    expect(animation.file.content).toMatchObject({ kind: 'image', pagesInFile: 42, animated: true });
    expect(animation.warnings.map((w) => w.code)).toContain('frames-skipped');
  }, 60_000);

  it('OCRs phototest.tif and eurotext.tif close to their ground truth, and search finds a phrase of each', async () => {
    const measured: Record<string, number> = {};
    for (const [name, phrase, maxCer] of [
      ['phototest.tif', 'the quick brown dog jumped over the lazy fox', 0.03],
      ['eurotext.tif', 'der schnelle braune Fuchs springt', 0.08],
    ] as const) {
      const result = await ingest(join(IMAGES, name));
      const truth = await readFile(join(IMAGES, 'ground_truth', name.replace('.tif', '.txt')), 'utf8');
      measured[name] = cer(truth, await textOf(result.file.id));
      expect(measured[name], name).toBeLessThan(maxCer);
      const content = result.file.content;
      expect(content.kind === 'image' && content.ocrConfidence !== null && content.ocrConfidence > 80, name).toBe(true);
      const { hits } = await memex.search(USER, phrase, { k: 3, sources: ['file'] });
      expect(hits.map((hit) => hit.source.kind === 'file' && hit.source.fileId), name).toContain(result.file.id);
    }
    console.info(`OCR character error rate: ${Object.entries(measured).map(([name, value]) => `${name} ${(value * 100).toFixed(2)}%`).join(', ')}`);
  }, 60_000);

  it('reads an upside-down page the right way up', async () => {
    const result = await ingest(join(IMAGES, 'phototest-rotated-180.png'));
    expect(await textOf(result.file.id)).toContain('quick brown dog');
  }, 60_000);

  it('applies EXIF orientation and keeps no metadata in the display copy and thumbnail', async () => {
    const photo = await sharp({ create: { width: 400, height: 200, channels: 3, background: '#ffffff' } })
      .jpeg()
      .withMetadata({ orientation: 6, exif: { IFD0: { Copyright: 'secret-owner', Artist: 'someone' } } })
      .toBuffer();
    expect((await sharp(photo).metadata()).exif).toBeDefined();
    const result = await memex.ingestFile(USER, session, { bytes: photo }, { name: 'sideways.jpg' });
    expect(result.file.content).toMatchObject({ kind: 'image', orientation: 6, width: 200, height: 400, thumbnail: { width: 128, height: 256 } });
    for (const name of ['display.webp', 'thumb.webp'] as const) {
      const derived = await memex.files.artifact(USER, session, result.file.id, name);
      const metadata = await sharp(derived).metadata();
      expect(metadata.exif, name).toBeUndefined();
      expect(metadata.orientation ?? 1, name).toBe(1);
      expect(derived.includes('secret-owner'), name).toBe(false);
    }
  });
  if (!hasSharedModel) it.skip(SHARED_MODEL_MISSING, () => undefined);
});
if (!hasEvalFiles) describe.skip(EVAL_FILES_MISSING, () => it.skip('needs ../shared/eval', () => undefined));

describe.skipIf(!hasEvalFiles)('ingestFile: cancellation, failure, limits, reindex and delete', () => {
  const open = async (options: Partial<Parameters<typeof Memex.open>[0]> = {}): Promise<{ memex: Memex; session: string }> => {
    const memex = await Memex.open({ dataDir: await tempDir(), env: modelEnv, onWarning: () => undefined, ...options });
    await memex.users.create({ id: USER });
    return { memex, session: (await memex.sessions.create(USER)).id };
  };

  it('a cancelled ingest leaves no rows and no file', async () => {
    const { memex, session } = await open();
    try {
      const controller = new AbortController();
      const ingest = memex.ingestFile(USER, session, { path: join(PDFS, 'tracemonkey.pdf') }, { signal: controller.signal, onProgress: (p) => p.phase === 'embed' && controller.abort() });
      await expectCode(ingest, 'MEMEX_ABORTED');
      expect((await memex.vectors.status(USER, session)).rows).toBe(0);
      expect(await memex.files.list(USER, session)).toEqual([]);
      expect((await memex.search(USER, 'trace tree', { k: 5 })).hits).toEqual([]);
    } finally {
      await memex.close();
    }
  });

  it('a failed OCR engine fails the ingest with its code and keeps nothing (a fake engine)', async () => {
    const failing: OcrEngine = {
      recognize: () => Promise.reject(new MemexError('MEMEX_OCR_UNAVAILABLE', 'fake engine: not installed')),
      close: () => Promise.resolve(),
    };
    const { memex, session } = await open({ ocr: failing });
    try {
      await expectCode(memex.ingestFile(USER, session, { path: join(IMAGES, 'phototest.tif') }), 'MEMEX_OCR_UNAVAILABLE');
      expect(await memex.files.list(USER, session)).toEqual([]);
    } finally {
      await memex.close();
    }
  });

  it('an OCR page past its time limit is a warning; the file is kept', async () => {
    const { memex, session } = await open({ config: { ingest: { ocr: { pageTimeoutMs: 1 } } } });
    try {
      const result = await memex.ingestFile(USER, session, { path: join(IMAGES, 'phototest.tif') });
      expect(result.warnings.map((w) => w.code)).toEqual(['ocr-timeout', 'no-text']);
      expect(result.chunks).toBe(0);
    } finally {
      await memex.close();
    }
  });

  it('enforces the page and size limits before parsing', async () => {
    const { memex, session } = await open({ config: { ingest: { maxPages: 5 }, limits: { maxFileBytes: 2_000_000 } } });
    try {
      await expectCode(memex.ingestFile(USER, session, { path: join(PDFS, 'tracemonkey.pdf') }), 'MEMEX_TOO_MANY_PAGES');
      await expectCode(memex.ingestFile(USER, session, { path: join(PDFS, 'freeculture.pdf') }), 'MEMEX_FILE_TOO_LARGE');
      // Plain text is a document now (see text.test.ts); bytes that are neither are still refused.
      await expectCode(memex.ingestFile(USER, session, { bytes: new Uint8Array([0x00, 0xff, 0x10, 0x80, 0x00, 0x7f]) }), 'MEMEX_FILE_TYPE_UNSUPPORTED');
      expect(await memex.files.list(USER, session)).toEqual([]);
    } finally {
      await memex.close();
    }
  });

  it('keeps file rows through a reindex, and deleting the file removes them from search', async () => {
    const { memex, session } = await open();
    try {
      await memex.messages.append(USER, session, { role: 'user', content: 'Here is the test page I scanned.' });
      const result = await memex.ingestFile(USER, session, { path: join(IMAGES, 'phototest.tif') });
      const before = await memex.vectors.status(USER, session);
      const reindexed = await memex.reindex({ force: true });
      expect(reindexed.chunks).toBe(before.rows);
      expect((await memex.vectors.status(USER, session)).rows).toBe(before.rows);
      const found = await memex.search(USER, 'quick brown dog jumped over the lazy fox', { k: 1 });
      expect(found.hits[0]?.source).toMatchObject({ kind: 'file', fileId: result.file.id });

      await memex.files.delete(USER, session, result.file.id);
      expect((await memex.vectors.status(USER, session)).rows).toBe(before.rows - result.chunks);
      const after = await memex.search(USER, 'quick brown dog jumped over the lazy fox', { k: 5 });
      expect(after.hits.every((hit) => hit.source.kind === 'message')).toBe(true);
      await expectCode(memex.files.artifact(USER, session, result.file.id, 'text.json'), 'MEMEX_FILE_NOT_FOUND');
    } finally {
      await memex.close();
    }
  });
});
