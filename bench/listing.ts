/**
 * Listing and archive cost (issue 19).
 *
 * 1. Listing 10,000 sessions of one user, p50 over repeated calls, on the flat files and on
 *    PostgreSQL (PGlite with pgvector over the wire protocol, unless MEMEX_TEST_DATABASE_URL names a
 *    real server): the first page in the default order (last activity), a page deep in the order
 *    (offset), filtered by title, and filtered by archived state with a tenth of them archived. The
 *    baseline in the same run is sorting and filtering the same number of plain objects in memory,
 *    the floor for any listing.
 * 2. Archive cost on one LoCoMo conversation (19 sessions, 419 turns) with the real model's vector
 *    rows: archive and unarchive time per session, and the bytes before and after.
 *
 *   npx tsx bench/listing.ts [--sessions 10000] [--samples 100] [--no-postgres]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Memex } from '../src/index.js';
import { FlatFileStore, PostgresStore, type ListOptions, type Store } from '../src/store/index.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../test/helpers/postgres.js';
import { benchModel, locomoSessions, machine, median } from './locomo.js';

const { values: args } = parseArgs({
  options: { sessions: { type: 'string', default: '10000' }, samples: { type: 'string', default: '100' }, 'no-postgres': { type: 'boolean', default: false } },
});
const SESSIONS = Number(args.sessions);
const SAMPLES = Number(args.samples);
const CONCURRENCY = 16;
const WORDS = ['garden', 'invoice', 'lisbon', 'violin', 'boiler', 'kayak', 'sourdough', 'marimba', 'taxes', 'zeppelin'];

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function drive(count: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) await one(next++);
  }));
}

async function p50(call: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 5; i++) await call();
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const start = performance.now();
    await call();
    times.push(performance.now() - start);
  }
  return median(times);
}

const QUERIES: { what: string; options: ListOptions }[] = [
  { what: 'first page (20), by last activity', options: { limit: 20 } },
  { what: `a page from the middle (offset ${Math.floor(SESSIONS / 2).toLocaleString('en')})`, options: { limit: 20, offset: Math.floor(SESSIONS / 2) } },
  { what: 'title contains "kayak" (1 in 10), first page', options: { limit: 20, title: 'kayak' } },
  { what: 'archived only (1 in 10), first page', options: { limit: 20, archived: 'only' } },
  { what: 'archived excluded, first page', options: { limit: 20, archived: 'exclude' } },
  { what: 'sorted by title, ascending, first page', options: { limit: 20, sort: 'title', order: 'asc' } },
  { what: 'tag "work" (1 in 5), by creation time, first page', options: { limit: 20, tags: ['work'], sort: 'created' } },
];

async function listingOn(name: string, store: Store): Promise<Record<string, number>> {
  await store.createUser({ id: 'lister' });
  const ids: string[] = new Array<string>(SESSIONS);
  const base = Date.parse('2024-01-01T00:00:00Z');
  await drive(SESSIONS, async (i) => {
    // Spread over time, so the order by activity is not the order of creation.
    const session = await store.createSession('lister', { title: `${WORDS[i % WORDS.length] as string} notes ${i}`, createdAt: new Date(base + ((i * 7919) % SESSIONS) * 60_000).toISOString(), ...(i % 5 === 1 ? { tags: ['work'] } : {}) });
    ids[i] = session.id;
  });
  // A tenth archived (the ones whose title is "kayak": filters cross).
  await drive(Math.ceil(SESSIONS / 10), async (j) => {
    const id = ids[j * 10 + 3];
    if (id) await store.archiveSession('lister', id);
  });
  if (store instanceof PostgresStore) await store.database.pool.query('ANALYZE');
  log(`${name}: ${SESSIONS} sessions made, a tenth archived`);
  const out: Record<string, number> = {};
  for (const { what, options } of QUERIES) out[what] = await p50(() => store.listSessions('lister', options));
  return out;
}

/** The floor: the same sort and filters over plain objects in memory. */
async function inMemory(): Promise<Record<string, number>> {
  const rows = Array.from({ length: SESSIONS }, (_, i) => ({ id: `s${i}`, title: `${WORDS[i % WORDS.length] as string} notes ${i}`, activity: new Date(Date.parse('2024-01-01T00:00:00Z') + ((i * 7919) % SESSIONS) * 60_000).toISOString(), archived: i % 10 === 3, tags: i % 5 === 1 ? ['work'] : [] }));
  type Row = (typeof rows)[number];
  const byActivity = (a: Row, b: Row): number => b.activity.localeCompare(a.activity) || b.id.localeCompare(a.id);
  const list = (keep: (row: Row) => boolean, offset: number, order: (a: Row, b: Row) => number = byActivity) => Promise.resolve(rows.filter(keep).sort(order).slice(offset, offset + 20));
  const all = () => true;
  return {
    [QUERIES[0]?.what as string]: await p50(() => list(all, 0)),
    [QUERIES[1]?.what as string]: await p50(() => list(all, Math.floor(SESSIONS / 2))),
    [QUERIES[2]?.what as string]: await p50(() => list((r) => r.title.includes('kayak'), 0)),
    [QUERIES[3]?.what as string]: await p50(() => list((r) => r.archived, 0)),
    [QUERIES[4]?.what as string]: await p50(() => list((r) => !r.archived, 0)),
    [QUERIES[5]?.what as string]: await p50(() => list(all, 0, (a, b) => a.title.toLowerCase().localeCompare(b.title.toLowerCase()) || a.id.localeCompare(b.id))),
    [QUERIES[6]?.what as string]: await p50(() => list((r) => r.tags.includes('work'), 0)),
  };
}

interface ArchiveCost {
  sessions: number;
  turns: number;
  archiveMsPerSession: number;
  unarchiveMsPerSession: number;
  rawBytes: number;
  archiveBytes: number;
}

async function archiveCost(name: string, memex: Memex): Promise<ArchiveCost> {
  const conversation = locomoSessions().filter((s) => s.conversation === locomoSessions()[0]?.conversation);
  await memex.users.ensure('locomo');
  const ids: string[] = [];
  let turns = 0;
  for (const s of conversation) {
    const session = await memex.sessions.create('locomo', { title: `${s.conversation} session ${s.index}` });
    await memex.messages.appendMany('locomo', session.id, s.turns.map((t) => ({ role: 'user' as const, name: t.speaker.replace(/[^A-Za-z0-9_-]/g, '_'), content: `${t.speaker}: ${t.text}` })));
    ids.push(session.id);
    turns += s.turns.length;
  }
  await memex.flush();
  log(`${name}: LoCoMo ${conversation[0]?.conversation ?? ''} stored and embedded (${ids.length} sessions, ${turns} turns)`);
  let rawBytes = 0;
  let archiveBytes = 0;
  let start = performance.now();
  for (const id of ids) {
    const result = await memex.sessions.archive('locomo', id);
    rawBytes += result.rawBytes;
    archiveBytes += result.archiveBytes;
  }
  const archiveMs = performance.now() - start;
  start = performance.now();
  for (const id of ids) await memex.sessions.unarchive('locomo', id);
  const unarchiveMs = performance.now() - start;
  return { sessions: ids.length, turns, archiveMsPerSession: archiveMs / ids.length, unarchiveMsPerSession: unarchiveMs / ids.length, rawBytes, archiveBytes };
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'memex-bench-listing-'));
  let database: TestDatabase | null = null;
  try {
    const results: Record<string, Record<string, number>> = { 'in memory (floor)': await inMemory() };
    const flat = await FlatFileStore.open({ dataDir: join(root, 'flat'), fsync: 'group', onWarning: () => undefined });
    results['flat files'] = await listingOn('flat files', flat);
    await flat.close();
    if (!args['no-postgres']) {
      database = await startTestDatabase();
      await resetMemexSchema(database.url);
      const pg = await PostgresStore.open({ url: database.url, maxConnections: 10, onWarning: () => undefined });
      results['PostgreSQL (PGlite)'] = await listingOn('PostgreSQL (PGlite)', pg);
      await pg.close();
    }
    const { model, modelDir } = benchModel();
    const costs: Record<string, ArchiveCost> = {};
    for (const backend of database ? ['flat files', 'PostgreSQL (PGlite)'] : ['flat files']) {
      const dataDir = join(root, `locomo-${backend === 'flat files' ? 'flat' : 'pg'}`);
      if (database && backend !== 'flat files') await resetMemexSchema(database.url);
      const memex = await Memex.open({
        dataDir,
        config: { embedding: { model, modelDir, allowRemote: false }, ...(backend === 'flat files' ? {} : { store: { kind: 'postgres' as const, url: database?.url ?? null } }) },
        onWarning: () => undefined,
      });
      costs[backend] = await archiveCost(backend, memex);
      await memex.close();
    }

    console.log(`Listing ${SESSIONS.toLocaleString('en')} sessions of one user, p50 of ${SAMPLES} calls (ms)`);
    console.log(`machine: ${machine()}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    const names = Object.keys(results);
    console.log(`| query | ${names.join(' | ')} |\n|---|${names.map(() => '---:').join('|')}|`);
    for (const { what } of QUERIES) console.log(`| ${what} | ${names.map((n) => (results[n]?.[what] ?? 0).toFixed(2)).join(' | ')} |`);
    console.log('\nArchive cost, one LoCoMo conversation with the real model\'s vector rows');
    console.log('| backend | sessions | turns | archive ms/session | unarchive ms/session | content bytes | archive bytes | saved |\n|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const [name, c] of Object.entries(costs)) {
      console.log(`| ${name} | ${c.sessions} | ${c.turns} | ${c.archiveMsPerSession.toFixed(1)} | ${c.unarchiveMsPerSession.toFixed(1)} | ${c.rawBytes.toLocaleString('en')} | ${c.archiveBytes.toLocaleString('en')} | ${(100 * (1 - c.archiveBytes / c.rawBytes)).toFixed(0)}% |`);
    }
  } finally {
    await database?.stop();
    await rm(root, { recursive: true, force: true });
  }
}

await main();
