import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { tsxEval } from '../helpers/child.js';
import { CHAT_EXPORTS, CHAT_EXPORTS_MISSING, hasChatExports } from '../helpers/export-samples.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * A ChatGPT conversations.json of about 320 MB, made from a real conversation repeated with new
 * ids, imported with `dryRun` (everything but the writes) by a Memex in a child process whose heap
 * is capped at a third of the file and whose peak RSS must stay under the bound.
 * Reading the document whole would need more than the document's size (its text alone, then the
 * parsed objects), so the bound is set below the document's size: the test fails if memory grows
 * with the file instead of with one conversation.
 */
const TARGET_BYTES = 320 * 1024 ** 2;
const RSS_BOUND_BYTES = 256 * 1024 ** 2;
/** V8's old space for the child, in MB: a third of the file. */
const HEAP_CAP_MB = 96;
/** The file plus room for the rest of the suite; below this the test skips and says so. */
const NEEDED_FREE_BYTES = 2 * TARGET_BYTES;

function freeBytes(): number {
  const stats = statfsSync(tmpdir());
  return stats.bavail * stats.bsize;
}
const enoughDisk = freeBytes() >= NEEDED_FREE_BYTES;
const DISK_FULL = `skipped: ${tmpdir()} has ${Math.round(freeBytes() / 1024 ** 2)} MB free, the large-export test needs ${NEEDED_FREE_BYTES / 1024 ** 2} MB`;

/** Writes the export to disk a conversation at a time (never whole in memory); returns how many conversations it holds. */
async function writeLargeExport(path: string): Promise<number> {
  const [conversation] = JSON.parse(readFileSync(join(CHAT_EXPORTS, 'chatgpt/librechat_chatgpt-export.json'), 'utf8')) as Record<string, unknown>[];
  const ids = [conversation!.id, conversation!.conversation_id, ...Object.keys(conversation!.mapping as object)].filter((id): id is string => typeof id === 'string');
  let template = JSON.stringify(conversation);
  // Every id of the conversation and its nodes gets the copy's number, so the copies are distinct conversations.
  for (const id of new Set(ids)) template = template.replaceAll(JSON.stringify(id), JSON.stringify(`@COPY@-${id}`));
  // A long pasted text in one message makes the file big quickly, as real exports with code and logs are.
  const paste = 'A long pasted log line with some words in it, repeated to make a big message. '.repeat(2_500);
  template = template.replace('"parts":[""]', `"parts":[${JSON.stringify(paste)}]`);
  const out = createWriteStream(path);
  let bytes = 0;
  let count = 0;
  out.write('[\n');
  while (bytes < TARGET_BYTES) {
    const text = `${count === 0 ? '' : ',\n'}${template.replaceAll('@COPY@', `c${count}`)}`;
    bytes += text.length;
    count += 1;
    if (!out.write(text)) await once(out, 'drain');
  }
  out.end('\n]\n');
  await once(out, 'finish');
  return count;
}

it.skipIf(hasChatExports)(CHAT_EXPORTS_MISSING, () => undefined);
it.skipIf(enoughDisk)(DISK_FULL, () => undefined);

describe.skipIf(!hasChatExports || !enoughDisk)('a large export', () => {
  // Regression: the child keeps every conversation's id, as an importer does; each kept id used to
  // pin the parser's text buffer it was cut from (peak RSS 274 MB, 140 MB of heap held by 1,008 ids).
  it(`imports (dry run) a ${TARGET_BYTES / 1024 ** 2} MB conversations.json with a ${HEAP_CAP_MB} MB heap and peak RSS under ${RSS_BOUND_BYTES / 1024 ** 2} MB, every conversation counted`, async () => {
    const path = join(await tempDir('memex-large-export-'), 'conversations.json');
    const written = await writeLargeExport(path);
    const moduleUrl = new URL('../../src/index.ts', import.meta.url).href;
    const dataDir = await tempDir('memex-large-import-');
    // The whole import path but the writes: every file read twice (checked, then taken item by
    // item), each conversation parsed, turned into messages and compared with the store.
    const child = spawn(
      process.execPath,
      [
        // With the heap capped well below the file, an import that held the file (or grew with it) dies of it.
        `--max-old-space-size=${HEAP_CAP_MB}`,
        ...tsxEval(`import { Memex } from ${JSON.stringify(moduleUrl)};
        const memex = await Memex.open({ dataDir: ${JSON.stringify(dataDir)}, env: { MEMEX_MODEL: 'hashed' } });
        await memex.users.create({ id: 'alice' });
        const report = await memex.imports.run('alice', [${JSON.stringify(path)}], { dryRun: true });
        await memex.close();
        const distinct = new Set(report.conversations.map((c) => c.sessionId)).size;
        process.stdout.write(JSON.stringify({ source: report.record.source, count: report.record.counts.conversations.added, messages: report.record.counts.messages.added, distinct, size: report.record.files[0].bytes, maxRSS: process.resourceUsage().maxRSS * 1024 }));`),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    const report = JSON.parse(output) as { source: string; count: number; messages: number; distinct: number; size: number; maxRSS: number };
    expect(report.size).toBeGreaterThan(RSS_BOUND_BYTES);
    expect(report.source).toBe('chatgpt');
    expect(report.count).toBe(written);
    expect(report.distinct).toBe(written);
    expect(report.messages).toBeGreaterThan(written);
    expect(report.maxRSS).toBeLessThan(RSS_BOUND_BYTES);
    console.log(`large export: ${report.count} conversations, ${report.messages} messages, ${Math.round(report.size / 1024 ** 2)} MB, dry-run import peak RSS ${Math.round(report.maxRSS / 1024 ** 2)} MB`);
  }, 180_000);
});
