/**
 * The flat-file store against the PostgreSQL store, in one run over the same inputs, through the
 * same `Store` contract. The Postgres here is PGlite (Postgres compiled to WASM, one backend
 * session behind a wire-protocol multiplexer) with pgvector, its files on local disk, reached with
 * the ordinary `pg` driver exactly as a real server would be. Measured:
 *
 *  - appends/s, one writer and 16 concurrent, single LoCoMo turns to one session (each durable on
 *    return under the backend's own promise, see below);
 *  - session listing of a user with `--sessions` sessions: first page and a keyset-cursor page;
 *  - message paging of a `--messages`-message session: an offset page, a cursor page, `latest`;
 *  - vector rows: appendVectors (rows/s, batches of 100, one row per message of that session) and
 *    readVectors of the whole session;
 *  - migration (migrateStore, what `memex migrate` runs): `--conversations` LoCoMo conversations
 *    with one fake vector row per turn, flat → flat (baseline), flat → Postgres, Postgres → flat;
 *  - search (bench/backends-search.ts): hybrid p50/p99 and queries/s, 1 and 8 callers, FlatSearch
 *    against PostgresSearch, at LoCoMo size with the real model and at `--chunks` chunks of one user
 *    with a fake embedding, and recall@10 of each HNSW index against exact search on the same rows.
 *
 * PGlite runs no autovacuum, so its planner statistics stay those of empty tables unless someone
 * runs ANALYZE. The bench runs ANALYZE after each setup, as autovacuum would on a server; the first
 * half of the vector appends runs while the chunks table has never been analysed, to show what
 * stale statistics cost.
 *
 * Vectors are a fake embedding, named as one: unit-length rows from a seeded PRNG, because these are
 * store figures and a model would dominate them. Latencies are p50/p99 over `--samples` calls taken
 * in rounds that alternate which backend goes first, so load from the other work on this shared
 * machine lands on both alike; read the ratio to the flat files of the same run, not the absolutes.
 *
 * Durability: the flat files run with the default `fsync: group` (a resolved append survives power
 * loss). PGlite writes its WAL with pwrite and never fsyncs (checked with strace), so a commit it has
 * acknowledged survives a crash of the process, not of the machine: the flat files' `fsync: none`
 * row makes the same promise and is the like-for-like comparison. A real PostgreSQL fsyncs its WAL
 * at commit (group commit across connections) and runs sessions in parallel, which PGlite cannot.
 *
 *   npx tsx bench/backends.ts [--appends 1000] [--sessions 1000] [--messages 10000]
 *                             [--vectors 2000] [--samples 200] [--conversations 10]
 *                             [--chunks 100000] [--queries 200] [--recall-queries 100]
 *                             [--only search] [--json [file]]
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { FsyncPolicy, Message, NewMessage } from '../src/core/index.js';
import { DEFAULT_HNSW } from '../src/index/hnsw.js';
import { FlatFileStore, migrateStore, PostgresStore, type Store } from '../src/store/index.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../test/helpers/postgres.js';
import { searchSections, type SearchOptions as SearchBenchOptions } from './backends-search.js';
import { chunkOf, fakeVectors as uniformVectors } from './lib/fixtures.js';
import { LOCOMO, locomoSessions, machine } from './locomo.js';

const CONCURRENCY = 16;
const ROUNDS = 4;
const WARMUP = 10;
const PAGE = 50;
const SESSION_PAGE = 20;
const VECTOR_BATCH = 100;
const DIMENSION = 512;
/** Named as a fake everywhere it is stored: these rows come from a PRNG, not a model. */
const FAKE_MODEL = 'fake/seeded-prng-unit-vectors';
const SEED = 16;

// ---------------------------------------------------------------- options

interface Options {
  appends: number;
  sessions: number;
  messages: number;
  vectors: number;
  samples: number;
  conversations: number;
  /** The search sections: chunks of the large set (0 skips it), queries, recall queries. */
  search: SearchBenchOptions;
  /** `--only search` runs the search sections alone (the store sections take minutes). */
  only: 'search' | null;
  json: string | null;
}

function options(): Options {
  const argv = process.argv.slice(2);
  // A bare `--json` writes to a default file.
  const at = argv.indexOf('--json');
  if (at >= 0 && (argv[at + 1] === undefined || argv[at + 1]?.startsWith('--'))) argv.splice(at + 1, 0, join(tmpdir(), 'memex-bench-backends.json'));
  const { values } = parseArgs({
    args: argv,
    options: {
      appends: { type: 'string', default: '1000' },
      sessions: { type: 'string', default: '1000' },
      messages: { type: 'string', default: '10000' },
      vectors: { type: 'string', default: '2000' },
      samples: { type: 'string', default: '200' },
      conversations: { type: 'string', default: '10' },
      chunks: { type: 'string', default: '100000' },
      queries: { type: 'string', default: '200' },
      'recall-queries': { type: 'string', default: '100' },
      only: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const count = (name: string, value: string | undefined, min: number): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      console.error(`--${name} must be an integer >= ${min}, not ${value}`);
      process.exit(2);
    }
    return n;
  };
  const messages = count('messages', values.messages, 2 * PAGE);
  return {
    appends: count('appends', values.appends, CONCURRENCY),
    sessions: count('sessions', values.sessions, 2 * SESSION_PAGE),
    messages,
    // Rows belong to messages (a row of a message not in the log is skipped), so at most one per
    // message here. The default is small because PGlite keeps its HNSW index up at tens of rows/s.
    vectors: Math.min(messages, count('vectors', values.vectors, 2 * VECTOR_BATCH)),
    samples: count('samples', values.samples, ROUNDS),
    conversations: count('conversations', values.conversations, 1),
    search: {
      chunks: count('chunks', values.chunks, 0),
      queries: count('queries', values.queries, 1),
      samples: count('samples', values.samples, ROUNDS),
      recallQueries: count('recall-queries', values['recall-queries'], 1),
    },
    only: values.only === 'search' ? 'search' : null,
    json: values.json ?? null,
  };
}

// ---------------------------------------------------------------- inputs

/** LoCoMo turns as chat messages, speakers alternating as user and assistant, cycled to any length. */
function turns(): (i: number) => NewMessage {
  const all: NewMessage[] = [];
  for (const session of locomoSessions()) {
    const first = session.turns[0]?.speaker;
    for (const turn of session.turns) all.push({ role: turn.speaker === first ? 'user' : 'assistant', content: turn.text });
  }
  return (i) => all[i % all.length] as NewMessage;
}

/** The fake embedding: `count` unit-length rows of uniform noise, the same for every backend. */
function fakeVectors(count: number, seed: number): Float32Array[] {
  return uniformVectors(count, seed, DIMENSION);
}

// ---------------------------------------------------------------- backends

interface Backend {
  name: string;
  /** The flat files under the default fsync policy: every ratio is against this one. */
  baseline: boolean;
  /** Only in the append section: the flat files making PGlite's promise (no fsync). */
  appendsOnly: boolean;
  store: Store;
}

async function openBackends(root: string, database: TestDatabase): Promise<Backend[]> {
  const flat = (fsync: FsyncPolicy) => FlatFileStore.open({ dataDir: join(root, `flat-${fsync}`), fsync, onWarning: () => undefined });
  const postgres = await PostgresStore.open({
    url: database.url,
    // What the facade passes from a default config.
    maxConnections: 10,
    hnsw: { m: DEFAULT_HNSW.m, efConstruction: DEFAULT_HNSW.efConstruction },
    onWarning: () => undefined,
  });
  return [
    { name: 'flat files (fsync group)', baseline: true, appendsOnly: false, store: await flat('group') },
    { name: 'flat files (fsync none)', baseline: false, appendsOnly: true, store: await flat('none') },
    { name: 'PostgreSQL (PGlite)', baseline: false, appendsOnly: false, store: postgres },
  ];
}

// ---------------------------------------------------------------- measuring

interface Row {
  section: string;
  what: string;
  backend: string;
  /** Throughput rows: per second. */
  perSecond?: number;
  /** Latency rows: milliseconds. */
  p50?: number;
  p99?: number;
  samples?: number;
  /** The row the others of its measure are compared with (the flat files under the default policy). */
  baseline?: boolean;
  /** Recall rows: recall@10 against exact search. */
  recall?: number;
  /** Build rows: seconds. */
  seconds?: number;
}

const results: Row[] = [];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

/** Runs `each` `count` times across the backends, 16 at a time or one after another. */
async function drive(count: number, concurrent: boolean, one: (i: number) => Promise<void>): Promise<void> {
  if (!concurrent) {
    for (let i = 0; i < count; i++) await one(i);
    return;
  }
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) await one(next++);
  }));
}

/** Backends in an order that rotates each round, so neither always runs first. */
function rotated<T>(items: T[], round: number): T[] {
  const r = round % items.length;
  return [...items.slice(r), ...items.slice(0, r)];
}

/**
 * p50/p99 of `call` per backend: WARMUP untimed calls, then `samples` timed calls split over ROUNDS
 * rounds that alternate the backends' order.
 */
async function latency(section: string, what: string, backends: Backend[], samples: number, call: (b: Backend) => Promise<unknown>): Promise<void> {
  const times = new Map<Backend, number[]>(backends.map((b) => [b, []]));
  for (const b of backends) for (let i = 0; i < WARMUP; i++) await call(b);
  const perRound = Math.ceil(samples / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    for (const b of rotated(backends, round)) {
      const mine = times.get(b) as number[];
      for (let i = 0; i < perRound; i++) {
        const start = performance.now();
        await call(b);
        mine.push(performance.now() - start);
      }
    }
  }
  for (const b of backends) {
    const sorted = (times.get(b) as number[]).sort((x, y) => x - y);
    results.push({ section, what, backend: b.name, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), samples: sorted.length });
  }
  progress(`${section}: ${what}`);
}

function progress(line: string): void {
  process.stderr.write(`  ${line} (load ${(loadavg()[0] ?? 0).toFixed(1)})\n`);
}

// ---------------------------------------------------------------- sections

/** Single-message appends to one session, one writer or 16; each resolves once the backend committed it. */
async function appends(backends: Backend[], count: number, message: (i: number) => NewMessage): Promise<void> {
  for (const concurrent of [false, true]) {
    const seconds = new Map<Backend, number>(backends.map((b) => [b, 0]));
    const perRound = Math.ceil(count / ROUNDS);
    for (let round = 0; round < ROUNDS; round++) {
      for (const b of rotated(backends, round)) {
        const userId = `appender-${concurrent ? 'c' : 's'}${round}`;
        await b.store.createUser({ id: userId });
        const { id } = await b.store.createSession(userId);
        const start = performance.now();
        await drive(perRound, concurrent, async (i) => void (await b.store.appendMessages(userId, id, [message(round * perRound + i)])));
        seconds.set(b, (seconds.get(b) as number) + (performance.now() - start) / 1000);
      }
    }
    const what = concurrent ? `${CONCURRENCY} concurrent writers` : '1 writer';
    for (const b of backends) results.push({ section: 'appends', what, backend: b.name, perSecond: (perRound * ROUNDS) / (seconds.get(b) as number) });
    progress(`appends: ${what}`);
  }
}

/**
 * Refreshes the planner's statistics, as autovacuum does on a server after enough rows changed.
 * PGlite runs no background workers, so without this its planner keeps the estimates of empty
 * tables and picks nested loops that cost quadratic time on a long session.
 */
async function analyze(backends: Backend[]): Promise<void> {
  for (const b of backends) if (b.store instanceof PostgresStore) await b.store.database.pool.query('ANALYZE');
}

/** Fills `count` items with 16 at a time (setup, not timed). */
async function fill(count: number, one: (i: number) => Promise<void>): Promise<void> {
  await drive(count, true, one);
}

async function listing(backends: Backend[], count: number, samples: number, message: (i: number) => NewMessage): Promise<void> {
  const cursors = new Map<Backend, string>();
  for (const b of backends) {
    await b.store.createUser({ id: 'lister' });
    await fill(count, async (i) => {
      const session = await b.store.createSession('lister', { title: `session ${i}` });
      await b.store.appendMessages('lister', session.id, [message(i)]);
    });
    // A cursor from the middle of the list: keyset paging must not cost more the deeper it goes.
    const step = Math.min(100, Math.floor(count / 2));
    let page = await b.store.listSessions('lister', { limit: step });
    for (let seen = step; seen + step <= count / 2 && page.nextCursor !== null; seen += step) page = await b.store.listSessions('lister', { limit: step, cursor: page.nextCursor });
    if (page.nextCursor === null) throw new Error(`${b.name}: no cursor into the middle of ${count} sessions`);
    cursors.set(b, page.nextCursor);
    progress(`sessions: ${count} made on ${b.name}`);
  }
  await analyze(backends);
  await latency('sessions', `first page (${SESSION_PAGE} of ${count})`, backends, samples, (b) => b.store.listSessions('lister', { limit: SESSION_PAGE }));
  await latency('sessions', `cursor page from the middle (${SESSION_PAGE})`, backends, samples, (b) =>
    b.store.listSessions('lister', { limit: SESSION_PAGE, cursor: cursors.get(b) as string }),
  );
}

/** One long session, then paging it; returns its messages per backend for the vector section. */
async function paging(backends: Backend[], count: number, samples: number, message: (i: number) => NewMessage): Promise<Map<Backend, { sessionId: string; messages: Message[] }>> {
  const made = new Map<Backend, { sessionId: string; messages: Message[] }>();
  for (const b of backends) {
    await b.store.createUser({ id: 'pager' });
    const { id } = await b.store.createSession('pager', { title: 'a long conversation' });
    const messages: Message[] = [];
    for (let i = 0; i < count; i += 100) {
      messages.push(...(await b.store.appendMessages('pager', id, Array.from({ length: Math.min(100, count - i) }, (_, j) => message(i + j)))));
    }
    made.set(b, { sessionId: id, messages });
    progress(`messages: ${count} in one session on ${b.name}`);
  }
  await analyze(backends);
  const middle = Math.floor(count / 2);
  const session = (b: Backend) => made.get(b) as { sessionId: string; messages: Message[] };
  const cursors = new Map<Backend, string>();
  for (const b of backends) {
    const cursor = (await b.store.listMessages('pager', session(b).sessionId, { offset: middle - PAGE, limit: PAGE })).nextCursor;
    if (cursor === null) throw new Error(`${b.name}: no cursor into the middle of ${count} messages`);
    cursors.set(b, cursor);
  }
  await latency('messages', `offset page (${PAGE} at ${middle} of ${count})`, backends, samples, (b) => b.store.listMessages('pager', session(b).sessionId, { offset: middle, limit: PAGE }));
  await latency('messages', `cursor page (${PAGE} at ${middle})`, backends, samples, (b) => b.store.listMessages('pager', session(b).sessionId, { cursor: cursors.get(b) as string, limit: PAGE }));
  await latency('messages', `latest (${PAGE})`, backends, samples, (b) => b.store.listMessages('pager', session(b).sessionId, { latest: true, limit: PAGE }));
  return made;
}

async function vectorRows(backends: Backend[], sessions: Map<Backend, { sessionId: string; messages: Message[] }>, count: number): Promise<void> {
  const vectors = fakeVectors(count, SEED);
  for (const b of backends) await b.store.setEmbeddingModel({ model: FAKE_MODEL, dimension: DIMENSION });
  const half = Math.floor(count / 2 / VECTOR_BATCH) * VECTOR_BATCH;
  const append = async (b: Backend, from: number, to: number): Promise<number> => {
    const { sessionId, messages } = sessions.get(b) as { sessionId: string; messages: Message[] };
    const start = performance.now();
    for (let i = from; i < to; i += VECTOR_BATCH) {
      const end = Math.min(to, i + VECTOR_BATCH);
      await b.store.appendVectors('pager', sessionId, { model: FAKE_MODEL, chunks: messages.slice(i, end).map(chunkOf), vectors: vectors.slice(i, end) });
    }
    return (to - from) / ((performance.now() - start) / 1000);
  };
  // Rows cannot be appended twice, so each half runs once per backend. The first half runs while
  // the chunks table has never been analysed: PGlite runs no autovacuum, so the planner still
  // thinks it is empty. The second half runs after ANALYZE, as a server's autovacuum would have done.
  for (const b of backends) {
    results.push({ section: 'vectors', what: `appendVectors, rows 0-${half} (${DIMENSION}-d, batches of ${VECTOR_BATCH}), stale statistics`, backend: b.name, perSecond: await append(b, 0, half) });
  }
  await analyze(backends);
  for (const b of backends) {
    results.push({ section: 'vectors', what: `appendVectors, rows ${half}-${count}, after ANALYZE`, backend: b.name, perSecond: await append(b, half, count) });
  }
  progress(`vectors: ${count} rows appended`);
  const reads = 5;
  const times = new Map<Backend, number[]>(backends.map((b) => [b, []]));
  for (let round = 0; round < reads; round++) {
    for (const b of rotated(backends, round)) {
      const { sessionId } = sessions.get(b) as { sessionId: string };
      const start = performance.now();
      const data = await b.store.readVectors('pager', sessionId);
      if (data.rows !== count) throw new Error(`${b.name}: read ${data.rows} rows, expected ${count}`);
      (times.get(b) as number[]).push(performance.now() - start);
    }
  }
  for (const b of backends) {
    const sorted = (times.get(b) as number[]).sort((x, y) => x - y);
    results.push({ section: 'vectors', what: `readVectors (the session's ${count} rows, median of ${reads})`, backend: b.name, perSecond: count / (percentile(sorted, 0.5) / 1000) });
  }
  progress('vectors: read');
}

// TODO(issue 16, search): hybrid search p50/p99 and queries/s at LoCoMo size and at `--chunks`
// (100k) chunks for one user, and recall@10 of pgvector's HNSW against exact search at the same
// ef_search, with the real model. The Postgres search backend had not landed on main when this
// script was written; until it does this section is left out rather than guessed. When it lands:
// index LoCoMo through both facades (store.kind flat / postgres), query with the LoCoMo questions,
// and take the exact baseline from the same rows (ExactVectorIndex on flat, an index-less scan on
// Postgres).

/**
 * `memex migrate`'s engine (migrateStore) on LoCoMo conversations, one user each, a session per
 * LoCoMo session, every turn a message with one fake vector row: flat files → flat files (the
 * baseline), flat files → Postgres, and Postgres back into a new data dir. Rows/s is messages plus
 * vector rows written per second of copying, as migrateStore reports it; its read-back
 * verification (counts and checksums per session) is timed apart.
 */
async function migration(root: string, postgres: Store, conversations: number): Promise<void> {
  const wanted = new Set([...new Set(locomoSessions().map((s) => s.conversation))].slice(0, conversations));
  const picked = locomoSessions().filter((s) => wanted.has(s.conversation));
  const open = (name: string) => FlatFileStore.open({ dataDir: join(root, name), onWarning: () => undefined });
  const source = await open('migrate-source');
  const copy = await open('migrate-copy');
  const back = await open('migrate-back');
  try {
    await source.setEmbeddingModel({ model: FAKE_MODEL, dimension: DIMENSION });
    const userIds = [...new Set(picked.map((s) => `locomo-${s.conversation}`))];
    for (const userId of userIds) await source.createUser({ id: userId });
    let seed = SEED + 1;
    for (const s of picked) {
      const userId = `locomo-${s.conversation}`;
      const { id } = await source.createSession(userId, { title: `LoCoMo ${s.conversation} session ${s.index}` });
      const first = s.turns[0]?.speaker;
      const messages = await source.appendMessages(userId, id, s.turns.map((t) => ({ role: t.speaker === first ? 'user' : 'assistant', content: t.text })));
      await source.appendVectors(userId, id, { model: FAKE_MODEL, chunks: messages.map(chunkOf), vectors: fakeVectors(messages.length, seed++) });
    }
    progress(`migration: ${picked.length} LoCoMo sessions of ${userIds.length} conversations written to flat files`);
    const paths = [
      { name: 'flat files → flat files', from: source as Store, to: copy as Store, baseline: true },
      { name: 'flat files → PostgreSQL (PGlite)', from: source, to: postgres, baseline: false },
      { name: 'PostgreSQL (PGlite) → flat files', from: postgres, to: back, baseline: false },
    ];
    for (const path of paths) {
      const result = await migrateStore(path.from, path.to, { userIds });
      const rows = result.written.messages + result.written.vectorRows;
      const what = `rows/s (${f(result.written.messages)} messages + ${f(result.written.vectorRows)} vector rows of ${picked.length} sessions)`;
      results.push({ section: 'migration', what, backend: path.name, perSecond: result.rowsPerSecond, baseline: path.baseline });
      results.push({ section: 'migration', what: 'verification rows/s (read back both sides, checksums)', backend: path.name, perSecond: rows / (result.verification?.seconds ?? Number.NaN), baseline: path.baseline });
      progress(`migration: ${path.name}`);
    }
  } finally {
    await source.close();
    await copy.close();
    await back.close();
  }
}

// ---------------------------------------------------------------- report

function f(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A ratio with two significant digits, so 1/800 does not print as 0.00. */
function times(ratio: number): string {
  return `${ratio >= 10 ? f(ratio) : Number(ratio.toPrecision(2)).toString()}×`;
}

function report(opts: Options, database: TestDatabase, seconds: number, loads: [number, number]): void {
  const baselineOf = (row: Row) => results.find((r) => r.section === row.section && r.what === row.what && (r.baseline === true || r.backend === 'flat files (fsync group)'));
  console.log(`\n- machine: ${machine()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; 1-min load ${f(loads[0], 1)} at start, ${f(loads[1], 1)} at end`);
  console.log(`- PostgreSQL: ${database.kind === 'pglite' ? 'PGlite with pgvector (single-connection WASM Postgres, files on local disk, no fsync), over pglite-socket and the pg driver' : 'an external server (MEMEX_TEST_DATABASE_URL)'}`);
  console.log(`- inputs: LoCoMo turns as messages; ${FAKE_MODEL} (${DIMENSION}-d) for the store's vector rows; search: see bench/backends-search.ts; took ${f(seconds)} s`);
  const search = `--chunks ${opts.search.chunks} --queries ${opts.search.queries} --recall-queries ${opts.search.recallQueries}`;
  const store = `--appends ${opts.appends} --sessions ${opts.sessions} --messages ${opts.messages} --vectors ${opts.vectors} --conversations ${opts.conversations}`;
  console.log(`- command: MEMEX_MODEL_DIR=${process.env.MEMEX_MODEL_DIR ?? '../shared/models'} MEMEX_MODEL=${process.env.MEMEX_MODEL ?? 'google/universal-sentence-encoder-lite'} npx tsx bench/backends.ts ${opts.only === 'search' ? '--only search ' : `${store} `}--samples ${opts.samples} ${search}\n`);
  console.log('| measure | backend | rate /s | p50 ms | p99 ms | vs flat (group) |\n|---|---|---:|---:|---:|---:|');
  for (const row of results) {
    const base = baselineOf(row);
    let ratio = '';
    const comparable = base !== undefined && ((row.perSecond !== undefined && base.perSecond !== undefined) || (row.p50 !== undefined && base.p50 !== undefined));
    if (base !== undefined && base !== row && comparable) {
      // Throughput: how many times the flat files' rate; latency: how many times their p50.
      ratio = row.perSecond !== undefined ? `${times(row.perSecond / (base.perSecond as number))} rate` : `${times((row.p50 as number) / (base.p50 as number))} p50`;
    }
    const rate = row.recall !== undefined ? `recall ${row.recall.toFixed(3)}` : row.seconds !== undefined ? `${f(row.seconds, 1)} s` : row.perSecond === undefined ? '' : f(row.perSecond, row.perSecond < 100 ? 1 : 0);
    const p50 = row.p50 === undefined ? '' : f(row.p50, 2);
    const p99 = row.p99 === undefined ? '' : f(row.p99, 2);
    console.log(`| ${row.section}: ${row.what} | ${row.backend} | ${rate} | ${p50} | ${p99} | ${ratio} |`);
  }
  if (opts.json) {
    writeFileSync(opts.json, `${JSON.stringify({ machine: machine(), cpu: cpus()[0]?.model ?? null, cores: cpus().length, database: database.kind, options: opts, seconds, loads, results }, null, 2)}\n`);
    console.log(`\nraw numbers: ${opts.json}`);
  }
}

// ---------------------------------------------------------------- main

const opts = options();
if (!existsSync(LOCOMO)) {
  console.log(`skipped: LoCoMo not found at ${LOCOMO} (the messages are its turns; it lives in ../shared/eval beside the clone).`);
  process.exit(0);
}
const message = turns();
const root = mkdtempSync(join(tmpdir(), 'memex-bench-backends-'));
const started = performance.now();
const loadStart = loadavg()[0] ?? 0;
process.stderr.write('starting PGlite with pgvector...\n');
const database = await startTestDatabase({ dataDir: join(root, 'pglite') });
// A real server named by MEMEX_TEST_DATABASE_URL is a database kept for tests: start it empty.
if (database.kind === 'external') await resetMemexSchema(database.url);
const backends = await openBackends(root, database);
try {
  const main = backends.filter((b) => !b.appendsOnly);
  if (opts.only !== 'search') {
    await appends(backends, opts.appends, message);
    await listing(main, opts.sessions, opts.samples, message);
    const long = await paging(main, opts.messages, opts.samples, message);
    await vectorRows(main, long, opts.vectors);
    await migration(root, (main.find((b) => b.store instanceof PostgresStore) as Backend).store, opts.conversations);
  }
  // The search sections reset the schema (each set records its own model): the stores go first.
  for (const b of backends) await b.store.close();
  backends.length = 0;
  results.push(...(await searchSections(root, database, opts.search, progress)));
} finally {
  for (const b of backends) await b.store.close();
  await database.stop();
  rmSync(root, { recursive: true, force: true });
}
report(opts, database, (performance.now() - started) / 1000, [loadStart, loadavg()[0] ?? 0]);
