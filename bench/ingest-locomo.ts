/**
 * End-to-end ingest of all of LoCoMo (10 conversations, 272 sessions, 5,882 turns) into a fresh
 * data dir: sessions created, turns appended one session at a time, chunked, embedded and written
 * as vector rows; the clock stops when flush() says every row is on disk. The store alone (the same
 * appends with embedding left to do) is timed in the same run as the baseline.
 *
 *   npx tsx bench/ingest-locomo.ts
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Memex } from '../src/index.js';
import { FlatFileStore } from '../src/store/index.js';
import { benchModel, locomoSessions, machine } from './locomo.js';

const { model, modelDir } = benchModel();
const sessions = locomoSessions();
const turns = sessions.reduce((n, s) => n + s.turns.length, 0);

function messagesOf(session: (typeof sessions)[number]) {
  const speakers = [...new Set(session.turns.map((t) => t.speaker))];
  return session.turns.map((t) => ({ role: t.speaker === speakers[0] ? ('user' as const) : ('assistant' as const), content: `${t.speaker}: ${t.text}`, metadata: { diaId: t.diaId } }));
}

async function storeOnly(): Promise<number> {
  const dataDir = await mkdtemp(join(tmpdir(), 'memex-bench-'));
  const store = await FlatFileStore.open({ dataDir, fsync: 'group' });
  const start = performance.now();
  for (const s of sessions) {
    await store.getUser(s.conversation).catch(() => store.createUser({ id: s.conversation }));
    const session = await store.createSession(s.conversation);
    await store.appendMessages(s.conversation, session.id, messagesOf(s));
  }
  const ms = performance.now() - start;
  await store.close();
  await rm(dataDir, { recursive: true, force: true });
  return ms;
}

async function endToEnd(): Promise<{ ms: number; rows: number }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'memex-bench-'));
  const memex = await Memex.open({ dataDir, env: { MEMEX_MODEL_DIR: modelDir, MEMEX_MODEL: model } });
  await memex.embedder(); // load the model before the clock starts: loading is timed separately
  const start = performance.now();
  const ids: { user: string; session: string }[] = [];
  for (const s of sessions) {
    await memex.users.ensure(s.conversation);
    const session = await memex.sessions.create(s.conversation);
    await memex.messages.appendMany(s.conversation, session.id, messagesOf(s));
    ids.push({ user: s.conversation, session: session.id });
  }
  await memex.flush();
  const ms = performance.now() - start;
  let rows = 0;
  for (const { user, session } of ids) rows += (await memex.vectors.status(user, session)).rows;
  await memex.close();
  await rm(dataDir, { recursive: true, force: true });
  return { ms, rows };
}

const loadStart = performance.now();
const probe = await Memex.open({ dataDir: await mkdtemp(join(tmpdir(), 'memex-bench-')), env: { MEMEX_MODEL_DIR: modelDir, MEMEX_MODEL: model } });
await probe.embedder();
const loadMs = performance.now() - loadStart;
await probe.close();

const baseline = await storeOnly();
const full = await endToEnd();
console.log(`# LoCoMo ingest: ${sessions.length} sessions, ${turns} turns, ${model}`);
console.log(`machine: ${machine()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`);
console.log('| path | seconds | messages/s |');
console.log('| --- | ---: | ---: |');
console.log(`| store only (append, no embedding), fsync group | ${(baseline / 1000).toFixed(1)} | ${((turns / baseline) * 1000).toFixed(0)} |`);
console.log(`| Memex end to end (append, chunk, embed, write rows) | ${(full.ms / 1000).toFixed(1)} | ${((turns / full.ms) * 1000).toFixed(0)} |`);
console.log(`rows written: ${full.rows}; model load (once per process): ${loadMs.toFixed(0)} ms`);
