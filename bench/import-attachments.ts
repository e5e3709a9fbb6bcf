/**
 * What ingesting imported attachments costs: one ChatGPT export ZIP imported with
 * `attachments: 'ingest'` (the default: images OCRed, made searchable) against
 * `attachments: 'store'` (the files kept and linked, nothing read), each into a fresh data dir, in
 * the same run, alternating which goes first over `--rounds`.
 *
 *  - The export: the ChatGPT sample (`librechat_chatgpt-export.json`, real text) plus one
 *    conversation per real image of ../shared/eval/images (scans, photos of text, screenshots;
 *    the few that are not images of text, or are broken on purpose, left out), each image in the ZIP
 *    as ChatGPT names it, written by this bench to a temp dir.
 *  - Real model (MEMEX_MODEL_DIR / MEMEX_MODEL), real tesseract.js.
 *
 *   npx tsx bench/import-attachments.ts [--rounds 2] [--backend flat|postgres]
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Memex } from '../src/index.js';
import { CHAT_EXPORTS } from '../test/helpers/export-samples.js';
import { IMAGES } from '../test/helpers/eval.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../test/helpers/postgres.js';
import { writeZip, type TestZipEntry } from '../test/helpers/zip.js';
import { benchModel, machine, median } from './locomo.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '2' }, backend: { type: 'string', default: 'flat' } } });
const rounds = Number(values.rounds);
const { model, modelDir } = benchModel();
const env = { MEMEX_MODEL_DIR: modelDir, MEMEX_MODEL: model };

/** Images of text from the eval set (README section 4); hebrew.png and the broken and bomb files are left out. */
const PICTURES = ['phototest.tif', 'eurotext.tif', 'devatest.png', 'multiline_text.png', 'phototest-rotated-180.png', 'text_mono.gif', 'hopper.webp', 'iss634.webp', 'hebtypo.jpg', '8087_054.3B.tif', 'pport_g4.tif'];

function imageConversation(index: number, file: string): unknown {
  const pointer = `file-bench${index}`;
  return {
    title: `Image ${file}`,
    create_time: 1_700_000_000 + index,
    current_node: 'user',
    conversation_id: `bench-image-${index}`,
    mapping: {
      root: { id: 'root', parent: null, children: ['user'], message: null },
      user: {
        id: 'user',
        parent: 'root',
        children: [],
        message: { id: `bench-image-${index}-m`, author: { role: 'user' }, create_time: 1_700_000_000 + index, content: { content_type: 'multimodal_text', parts: [`What does ${file} say?`, { content_type: 'image_asset_pointer', asset_pointer: `file-service://${pointer}` }] }, metadata: {} },
      },
    },
  };
}

const dir = await mkdtemp(join(tmpdir(), 'memex-bench-attach-'));
const text = JSON.parse(readFileSync(join(CHAT_EXPORTS, 'chatgpt', 'librechat_chatgpt-export.json'), 'utf8')) as unknown[];
const entries: TestZipEntry[] = PICTURES.map((file, i) => ({ name: `file-bench${i}-${file}`, data: readFileSync(join(IMAGES, file)), method: 'store' as const }));
const zip = await writeZip(join(dir, 'export.zip'), [{ name: 'conversations.json', data: JSON.stringify([...text, ...PICTURES.map((file, i) => imageConversation(i, file))]) }, ...entries]);

let database: TestDatabase | null = null;
if (values.backend === 'postgres') database = await startTestDatabase();

async function run(mode: 'ingest' | 'store'): Promise<{ ms: number; stored: number; ingested: number; skipped: number }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'memex-bench-attach-data-'));
  if (database) await resetMemexSchema(database.url);
  const memex = await Memex.open({ dataDir, env, ...(database ? { config: { store: { kind: 'postgres', url: database.url } } } : {}) });
  try {
    await memex.users.create({ id: 'bench' });
    // The model loads before the clock starts: both modes pay it, and it is not what is measured.
    await memex.search('bench', 'warm up', { k: 1 });
    const started = performance.now();
    const report = await memex.imports.run('bench', zip, { attachments: mode });
    const ms = performance.now() - started;
    const { stored, ingested } = report.record.counts.attachments;
    return { ms, stored, ingested, skipped: report.record.skippedTotal };
  } finally {
    await memex.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const times: Record<'ingest' | 'store', number[]> = { ingest: [], store: [] };
let last: Record<string, unknown> = {};
for (let round = 0; round < rounds; round++) {
  for (const mode of round % 2 === 0 ? (['ingest', 'store'] as const) : (['store', 'ingest'] as const)) {
    const result = await run(mode);
    times[mode].push(result.ms);
    last = { ...last, [mode]: result };
  }
}
if (database) await database.stop();
await rm(dir, { recursive: true, force: true });

const ingest = median(times.ingest);
const store = median(times.store);
console.log(`${machine()}, model ${model}, backend ${values.backend}, ${PICTURES.length} images + ${text.length} text conversations, ${rounds} round(s)`);
console.log(`attachments ingest: ${(ingest / 1000).toFixed(2)} s (median), ${((ingest - store) / PICTURES.length / 1000).toFixed(2)} s more per image`);
console.log(`attachments store:  ${(store / 1000).toFixed(2)} s (median)`);
console.log(`ingest / store: ${(ingest / store).toFixed(1)}x`);
console.log(JSON.stringify(last));
