import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { json, memex } from '../helpers/cli.js';
import { CHAT_EXPORTS, hasChatExports } from '../helpers/export-samples.js';
import { tempDir } from '../helpers/tmp.js';
import { writeZip } from '../helpers/zip.js';

describe.skipIf(!hasChatExports)('memex import --attachments', () => {
  it("store keeps the export's files unread; by default they are ingested, and the table says how many", async () => {
    const dir = await tempDir();
    const cases = JSON.parse(readFileSync(join(CHAT_EXPORTS, 'chatgpt', 'pulsar_hardening_by_name.json'), 'utf8')) as Record<string, unknown>;
    const zip = await writeZip(join(dir, 'export.zip'), [
      { name: 'conversations.json', data: JSON.stringify([cases.knownImage]) },
      { name: 'image_456-blank.png', data: await sharp({ create: { width: 40, height: 20, channels: 3, background: '#ffffff' } }).png().toBuffer(), method: 'store' },
    ]);
    const stored = await json<{ record: { counts: { attachments: unknown } } }>(['import', '--attachments', 'store', zip], { env: { MEMEX_DATA_DIR: join(dir, 'stored') } });
    expect(stored.record.counts.attachments).toEqual({ stored: 1, ingested: 0, missing: 0 });
    const ingested = await memex(['import', zip], { env: { MEMEX_DATA_DIR: join(dir, 'ingested') } });
    expect(ingested.code, ingested.stderr).toBe(0);
    expect(ingested.stdout).toMatch(/attachments\s+1\s+0/);
    expect(ingested.stdout).toMatch(/ {2}ingested\s+1/);
    const wrong = await memex(['import', '--attachments', 'ocr', zip], { env: { MEMEX_DATA_DIR: join(dir, 'wrong') } });
    expect(wrong.code).not.toBe(0);
  }, 120_000);
});
