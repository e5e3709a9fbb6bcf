import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FORMAT_VERSION, MemexError, loadConfig, newImportJobId, type ImportJob, type ImportProgress, type ImportReport } from '../../src/core/index.js';
import { Memex } from '../../src/index.js';
import { ImportJobs, runImport, type ImportDeps, type ImportJobEvent, type ImportOptions } from '../../src/import/index.js';
import { IMPORT_JOB_KEEP_MS, openStore, type Store } from '../../src/store/index.js';
import { BACKENDS, backendConfig, type Backend } from '../helpers/backends.js';
import { expectCode } from '../helpers/errors.js';
import { CHAT_EXPORTS, hasChatExports } from '../helpers/export-samples.js';
import { tempDir } from '../helpers/tmp.js';

const stores: Store[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close()));
});

async function openStores(backend: Backend): Promise<{ first: Store; second: Store }> {
  const dir = await tempDir();
  const config = loadConfig({ env: {}, overrides: { dataDir: dir, ...(await backendConfig(backend, dir)) } });
  const first = await openStore(config, () => undefined);
  stores.push(first);
  await first.createUser({ id: 'alice' });
  await first.createUser({ id: 'bob' });
  // On PostgreSQL a second instance has its own connections; flat files have one process, so "another instance" is the same one after a restart.
  const second = backend === 'postgres' ? await openStore(config, () => undefined) : first;
  if (second !== first) stores.push(second);
  return { first, second };
}

/**
 * A FAKE import (the job machinery is under test, not the importer): reports progress, then waits
 * until released or cancelled.
 */
function fakeImport(): { run: (userId: string, paths: readonly string[], options: ImportOptions) => Promise<ImportReport>; progress: (p: ImportProgress) => void; release: () => void } {
  let onProgress: ((p: ImportProgress) => void) | undefined;
  let release = (): void => undefined;
  return {
    run: (_userId, _paths, options) =>
      new Promise<ImportReport>((resolve, reject) => {
        onProgress = options.onProgress;
        options.signal?.addEventListener('abort', () => reject(new MemexError('MEMEX_ABORTED', 'cancelled')));
        release = () => resolve(report);
      }),
    progress: (p) => onProgress?.(p),
    release: () => release(),
  };
}

const report: ImportReport = {
  dryRun: true,
  saved: false,
  conversations: [],
  record: {
    v: FORMAT_VERSION,
    id: 'imp_01jz0000000000000000000000',
    source: 'chatgpt',
    files: [],
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:00:01.000Z',
    state: 'done',
    account: null,
    counts: {
      conversations: { added: 0, updated: 0, unchanged: 3, skipped: 0 },
      messages: { added: 0, unchanged: 9 },
      documents: { added: 0, unchanged: 0 },
      notes: { added: 0, unchanged: 0 },
      attachments: { stored: 0, ingested: 0, missing: 0 },
    },
    sessions: [],
    notes: [],
    skipped: [],
    skippedTotal: 0,
  },
};

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
  for (const deadline = Date.now() + 10_000; ; ) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`never reached: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(BACKENDS)('import jobs on %s', (backend) => {
  it('another instance reads a running job’s progress, follows it and cancels it (regression: jobs lived in the memory of one instance, lost by a restart)', async () => {
    const { first, second } = await openStores(backend);
    const fake = fakeImport();
    const running = new ImportJobs({ store: first, run: fake.run }, { saveMs: 30, pollMs: 20 });
    const elsewhere = new ImportJobs({ store: second, run: () => Promise.reject(new Error('never runs here')) }, { saveMs: 30, pollMs: 20 });

    const job = await running.start('alice', ['/nowhere'], ['export.zip'], { dryRun: true });
    expect(await elsewhere.get('alice', job.id)).toMatchObject({ id: job.id, state: 'running', files: ['export.zip'], progress: null });
    fake.progress({ phase: 'store', done: 2, total: 5, messages: 40 });
    const seen = await until(
      () => elsewhere.get('alice', job.id),
      (j) => j.progress?.done === 2,
    );
    expect(seen.progress).toEqual({ phase: 'store', done: 2, total: 5, messages: 40 });
    // Another user's job is as missing as one that never was.
    await expectCode(elsewhere.get('bob', job.id), 'MEMEX_JOB_NOT_FOUND');
    await expectCode(elsewhere.cancel('bob', job.id), 'MEMEX_JOB_NOT_FOUND');

    const events: ImportJobEvent[] = [];
    const unfollow = await elsewhere.follow('alice', job.id, (event) => events.push(event));
    await elsewhere.cancel('alice', job.id);
    const ended = await until(
      () => elsewhere.get('alice', job.id),
      (j) => j.finishedAt !== null,
    );
    expect(ended, JSON.stringify(ended)).toMatchObject({ state: 'cancelled', error: { code: 'MEMEX_ABORTED' } });
    await until(
      async () => events,
      (list) => list.some((event) => event.type === 'end'),
    );
    expect(events.at(-1)).toMatchObject({ type: 'end', job: { state: 'cancelled' } });
    unfollow();
  });

  it('a finished job keeps its report for any instance; ended jobs are forgotten after a week', async () => {
    const { first, second } = await openStores(backend);
    const fake = fakeImport();
    const running = new ImportJobs({ store: first, run: fake.run }, { saveMs: 30, pollMs: 20 });
    let ended = false;
    const job = await running.start('alice', ['/nowhere'], ['a.json'], { dryRun: true, onEnd: async () => void (ended = true) });
    fake.release();
    const done = await until(
      () => new ImportJobs({ store: second, run: fake.run }).get('alice', job.id),
      (j) => j.finishedAt !== null,
    );
    expect(done).toMatchObject({ state: 'done', report: { record: { counts: { conversations: { unchanged: 3 } } } }, error: null });
    expect(ended).toBe(true);

    const old = new Date(Date.now() - IMPORT_JOB_KEEP_MS - 60_000).toISOString();
    const stale: ImportJob = { ...done, id: newImportJobId(Date.now() - IMPORT_JOB_KEEP_MS), createdAt: old, updatedAt: old, finishedAt: old };
    // Saved first while it ran (saving a new job prunes), then ended more than a week ago.
    await first.saveImportJob('alice', { ...stale, state: 'running', finishedAt: null });
    await first.saveImportJob('alice', stale);
    expect((await first.getImportJob('alice', stale.id)).state).toBe('done');
    // Saving a new job forgets the ones that ended more than a week ago, and only those.
    const next = await running.start('alice', ['/nowhere'], ['b.json'], { dryRun: true });
    await expectCode(first.getImportJob('alice', stale.id), 'MEMEX_JOB_NOT_FOUND');
    expect((await first.getImportJob('alice', job.id)).state).toBe('done');
    await running.cancel('alice', next.id);
    await running.stop();
  });

  it('a running job whose instance stopped saving it reads as interrupted, and following it ends at once', async () => {
    const { first, second } = await openStores(backend);
    const minuteAgo = new Date(Date.now() - 60_000).toISOString();
    const orphan: ImportJob = {
      v: FORMAT_VERSION,
      id: newImportJobId(),
      state: 'running',
      dryRun: false,
      files: ['conversations.json'],
      createdAt: minuteAgo,
      updatedAt: minuteAgo,
      finishedAt: null,
      progress: { phase: 'store', done: 10, total: 100, messages: 300 },
      report: null,
      error: null,
      cancelRequested: false,
    };
    await first.saveImportJob('alice', orphan);
    const jobs = new ImportJobs({ store: second, run: () => Promise.reject(new Error('never runs here')) }, { staleMs: 30_000 });
    expect(await jobs.get('alice', orphan.id)).toMatchObject({ state: 'failed', finishedAt: minuteAgo, error: { code: 'MEMEX_IMPORT_INTERRUPTED' }, progress: { done: 10 } });
    const events: ImportJobEvent[] = [];
    await jobs.follow('alice', orphan.id, (event) => events.push(event));
    expect(events).toMatchObject([{ type: 'end', job: { error: { code: 'MEMEX_IMPORT_INTERRUPTED' } } }]);
  });

  it('a cancel asked for is kept when the running job saves again (regression guard: the save replaced the whole job)', async () => {
    const { first, second } = await openStores(backend);
    const now = new Date().toISOString();
    const job: ImportJob = { v: FORMAT_VERSION, id: newImportJobId(), state: 'running', dryRun: true, files: [], createdAt: now, updatedAt: now, finishedAt: null, progress: null, report: null, error: null, cancelRequested: false };
    expect(await first.saveImportJob('alice', job)).toEqual({ cancelRequested: false });
    await second.requestImportJobCancel('alice', job.id);
    expect(await first.saveImportJob('alice', { ...job, progress: { phase: 'scan', done: 1, total: null, messages: 1 } })).toEqual({ cancelRequested: true });
    expect(await second.getImportJob('alice', job.id)).toMatchObject({ cancelRequested: true, progress: { done: 1 } });
    await expectCode(second.requestImportJobCancel('bob', job.id), 'MEMEX_JOB_NOT_FOUND');
    await expectCode(second.getImportJob('alice', 'ijob_../../etc'), 'MEMEX_JOB_NOT_FOUND');
  });
});

describe.skipIf(!hasChatExports).each(BACKENDS)('an import’s record on %s', (backend) => {
  it('is saved while the import runs, so a process that dies part-way leaves what it wrote listed and deletable (regression: the record was written only at the end)', async () => {
    const { first } = await openStores(backend);
    let release = (): void => undefined;
    const embedding = new Promise<void>((resolve) => (release = resolve));
    let reachedEmbed = (): void => undefined;
    const atEmbed = new Promise<void>((resolve) => (reachedEmbed = resolve));
    const deps: ImportDeps = {
      store: first,
      schedule: () => undefined,
      // Held until the test has looked: the import is "running" with its sessions written.
      flush: () => embedding,
      ingest: () => Promise.reject(new Error('no documents in this export')),
    };
    const importing = runImport(deps, 'alice', [join(CHAT_EXPORTS, 'chatgpt', 'librechat_chatgpt-tree.json')], {
      onProgress: (progress) => {
        if (progress.phase === 'embed') reachedEmbed();
      },
    });
    await atEmbed;
    const [running] = await first.listImports('alice');
    expect(running).toMatchObject({ state: 'running', sessions: [expect.stringMatching(/^chatgpt\./)] });
    release();
    const report = await importing;
    expect(await first.listImports('alice')).toEqual([{ ...report.record, finishedAt: expect.any(String) }]);
    expect(report.record.state).toBe('done');
  });

  it('lists as interrupted when it stopped being saved while running', async () => {
    const dir = await tempDir();
    const memex = await Memex.open({ dataDir: dir, env: { MEMEX_MODEL: 'hashed' }, config: await backendConfig(backend, dir) });
    try {
      await memex.users.create({ id: 'alice' });
      const old = new Date(Date.now() - 10 * 60_000).toISOString();
      await memex['store'].saveImport('alice', { ...report.record, id: 'imp_01jz0000000000000000000001', state: 'running', startedAt: old, finishedAt: old });
      await memex['store'].saveImport('alice', { ...report.record, id: 'imp_01jz0000000000000000000002', state: 'running', finishedAt: new Date().toISOString() });
      expect((await memex.imports.list('alice')).map((record) => record.state)).toEqual(['interrupted', 'running']);
    } finally {
      await memex.close();
    }
  });
});
