/**
 * Backup and restore throughput (`memex backup` / `memex restore`, src/backup): all of LoCoMo (272
 * sessions, 5,882 turns, with the real model's vector rows) plus the eval PDFs (ingested: bytes,
 * extracted text, rows; OCR off, so the build stays minutes, not hours), backed up into one ZIP and
 * restored into an empty data dir (and, unless --no-postgres, into PGlite). The baseline in the same
 * run is plain `tar` of the data dir (`tar -cf`, and `tar -czf` since the ZIP is compressed too) and
 * its extraction. MB/s is over the data dir's bytes (what is protected); messages/s over LoCoMo's
 * messages. The restore's time includes verifying every checksum first.
 *
 *   npx tsx bench/backup.ts [--no-postgres] [--hashed]
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { restoreBackup, writeBackup } from '../src/backup/index.js';
import { HashedEmbedder, Memex } from '../src/index.js';
import { FlatFileStore, PostgresStore, type Store } from '../src/store/index.js';
import { resetMemexSchema, startTestDatabase } from '../test/helpers/postgres.js';
import { PDFS } from '../test/helpers/eval.js';
import { benchModel, locomoSessions, machine } from './locomo.js';

const hashed = process.argv.includes('--hashed');
const root = await mkdtemp(join(tmpdir(), 'memex-bench-backup-'));

async function buildSource(dataDir: string): Promise<{ messages: number; pdfs: number; pdfBytes: number }> {
  const { model, modelDir } = benchModel();
  const memex = await Memex.open({
    dataDir,
    env: { MEMEX_MODEL_DIR: modelDir, MEMEX_MODEL: model },
    ...(hashed ? { embedder: new HashedEmbedder() } : {}),
    config: { ingest: { ocr: { enabled: false } } },
    onWarning: () => undefined,
  });
  let messages = 0;
  for (const s of locomoSessions()) {
    const speakers = [...new Set(s.turns.map((t) => t.speaker))];
    await memex.users.ensure(s.conversation);
    const session = await memex.sessions.create(s.conversation, { metadata: { locomoSession: s.index } });
    await memex.messages.appendMany(s.conversation, session.id, s.turns.map((t) => ({ role: t.speaker === speakers[0] ? ('user' as const) : ('assistant' as const), content: `${t.speaker}: ${t.text}`, metadata: { diaId: t.diaId } })));
    messages += s.turns.length;
  }
  await memex.users.ensure('docs');
  const docs = await memex.sessions.create('docs', { title: 'eval PDFs' });
  let pdfs = 0;
  let pdfBytes = 0;
  for (const name of (await readdir(PDFS)).filter((n) => n.endsWith('.pdf')).sort()) {
    const bytes = await readFile(join(PDFS, name));
    // Encrypted and broken PDFs are kept as bytes: a backup carries them all the same.
    await memex.files.ingest('docs', docs.id, { bytes }, { name }).catch(() => memex.files.put('docs', docs.id, { source: { bytes }, name }));
    pdfs++;
    pdfBytes += bytes.length;
  }
  await memex.flush();
  await memex.close();
  return { messages, pdfs, pdfBytes };
}

async function duBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

function timed<T>(work: () => Promise<T>): Promise<{ value: T; s: number }> {
  const start = performance.now();
  return work().then((value) => ({ value, s: (performance.now() - start) / 1000 }));
}

try {
  const source = join(root, 'source');
  const build = await timed(() => buildSource(source));
  const dataBytes = await duBytes(source);
  const messages = build.value.messages;
  const mb = dataBytes / 1024 ** 2;
  const rows: string[] = [];
  const row = (label: string, s: number, outBytes: number | null): void => {
    rows.push(`| ${label} | ${s.toFixed(2)} | ${(mb / s).toFixed(1)} | ${Math.round(messages / s).toLocaleString('en')} | ${outBytes === null ? '–' : (outBytes / 1024 ** 2).toFixed(1)} |`);
  };

  const tarFile = join(root, 'plain.tar');
  const tgzFile = join(root, 'plain.tar.gz');
  const tar = await timed(async () => execFileSync('tar', ['-cf', tarFile, '-C', source, '.']));
  row('`tar -cf` of the data dir (baseline)', tar.s, (await stat(tarFile)).size);
  const tgz = await timed(async () => execFileSync('tar', ['-czf', tgzFile, '-C', source, '.']));
  row('`tar -czf` of the data dir (baseline, compressed)', tgz.s, (await stat(tgzFile)).size);

  const zip = join(root, 'backup.zip');
  const backup = await timed(async () => {
    const store = await FlatFileStore.open({ dataDir: source, onWarning: () => undefined });
    try {
      const writer = writeBackup(store);
      await Promise.all([pipeline(writer.stream, createWriteStream(zip)), writer.manifest]);
      return writer.manifest;
    } finally {
      await store.close();
    }
  });
  row('`memex backup` (flat files → ZIP)', backup.s, (await stat(zip)).size);

  const untarDir = join(root, 'untar');
  await mkdir(untarDir);
  const untar = await timed(async () => execFileSync('tar', ['-xf', tarFile, '-C', untarDir]));
  row('`tar -xf` (baseline)', untar.s, null);

  const restoreInto = async (open: () => Promise<Store>): Promise<number> => {
    const store = await open();
    try {
      return (await timed(() => restoreBackup(store, zip))).s;
    } finally {
      await store.close();
    }
  };
  row('`memex restore` (ZIP → flat files, fsync group; verify included)', await restoreInto(() => FlatFileStore.open({ dataDir: join(root, 'restored'), onWarning: () => undefined })), null);
  if (!process.argv.includes('--no-postgres')) {
    const database = await startTestDatabase();
    try {
      await resetMemexSchema(database.url);
      const kind = database.kind === 'pglite' ? 'PGlite (WASM, one session)' : 'PostgreSQL';
      row(`\`memex restore\` (ZIP → ${kind})`, await restoreInto(() => PostgresStore.open({ url: database.url, onWarning: () => undefined })), null);
    } finally {
      await database.stop();
    }
  }

  const { counts } = backup.value;
  console.log(`# Backup and restore: LoCoMo (${counts.sessions - 1} sessions, ${messages} messages) + ${build.value.pdfs} eval PDFs (${(build.value.pdfBytes / 1024 ** 2).toFixed(1)} MB); ${counts.vectorRows} vector rows of ${hashed ? 'the hashed embedder' : benchModel().model}`);
  console.log(`machine: ${machine()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; data dir ${mb.toFixed(1)} MB in ${counts.users} users; source built in ${build.s.toFixed(1)} s`);
  console.log('| run | seconds | MB/s (data dir) | messages/s | output MB |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const line of rows) console.log(line);
} finally {
  await rm(root, { recursive: true, force: true });
}
