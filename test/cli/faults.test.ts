import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { json, memex } from '../helpers/cli.js';
import { textPdf } from '../helpers/pdf.js';
import { tempDir } from '../helpers/tmp.js';

/** Regression tests for the CLI's small faults (issue 15, item 21), each named after what broke. */
describe('memex CLI faults', () => {
  it('export into a reader that closed (`| head`) exits 0 without an EPIPE error', async () => {
    const env = { MEMEX_DATA_DIR: join(await tempDir(), 'data') };
    await json(['add', 'a message worth exporting'], { env });
    const run = await memex(['export'], { env, closeStdout: true });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });

  it('add - drops the one trailing newline stdin ends with', async () => {
    const env = { MEMEX_DATA_DIR: join(await tempDir(), 'data') };
    await memex(['add', '-'], { env, input: 'line one\nline two\n\n' });
    const page = await json<{ messages: { content: string }[] }>(['messages'], { env });
    expect(page.messages[0]?.content).toBe('line one\nline two\n');
  });

  it('search --after and --before accept plain dates and full ISO times; a bad date is a usage error', async () => {
    const env = { MEMEX_DATA_DIR: join(await tempDir(), 'data') };
    await json(['add', 'the roof repair invoice'], { env });
    expect((await json<{ hits: unknown[] }>(['search', '--after', '2023-10-01', 'roof'], { env })).hits).toHaveLength(1);
    expect((await json<{ hits: unknown[] }>(['search', '--after', '2023-10-01T12:00:00+02:00', 'roof'], { env })).hits).toHaveLength(1);
    expect((await json<{ hits: unknown[] }>(['search', '--before', '2023-10-01', 'roof'], { env })).hits).toHaveLength(0);
    const bad = await memex(['search', '--after', '2023-13-45', 'roof'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--after');
  });

  it('usage mistakes exit 2 with a hint about usage, not about schemas', async () => {
    const env = { MEMEX_DATA_DIR: join(await tempDir(), 'data') };
    await json(['user', 'add', 'alice'], { env });
    const unconfirmed = await memex(['user', 'rm', 'alice', '--json'], { env });
    expect(unconfirmed.code).toBe(2);
    expect(JSON.parse(unconfirmed.stderr).error.code).toBe('MEMEX_USAGE');
    expect(unconfirmed.stderr).toContain('--yes');
    const blank = await memex(['keys', 'revoke', ' '], { env });
    expect(blank.code).toBe(2);
    expect(blank.stderr).toContain('MEMEX_USAGE');
    expect(blank.stderr).not.toContain('schema');
  });

  it('search --source file without files says no file chunks match, not no messages', async () => {
    const env = { MEMEX_DATA_DIR: join(await tempDir(), 'data') };
    await json(['add', 'only a message here'], { env });
    const run = await memex(['search', '--source', 'file', 'message'], { env });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('No file chunks match');
    expect(run.stdout).not.toContain('no messages match');
  });

  it("search shows a file hit's file name", async () => {
    const dir = await tempDir();
    const env = { MEMEX_DATA_DIR: join(dir, 'data') };
    const pdf = join(dir, 'lisbon-invoice.pdf');
    await writeFile(pdf, textPdf('Invoice for the Lisbon apartment roof repair'));
    const ingested = await memex(['ingest', pdf], { env });
    expect(ingested.code, ingested.stderr).toBe(0);
    const run = await memex(['search', 'roof repair'], { env });
    expect(run.stdout).toContain('lisbon-invoice.pdf');
  });

  it('keys list says whose keys exist when the user has none', async () => {
    const cwd = await tempDir();
    await json(['keys', 'create', '--user', 'bob'], { cwd });
    const run = await memex(['keys', 'list'], { cwd });
    expect(run.code).toBe(0);
    expect(run.stdout).not.toMatch(/^No API keys\./);
    expect(run.stdout).toContain('1 key of other users');
  });

  it('ingest of a path with no file says the file is missing (the README example), not a schema hint', async () => {
    const cwd = await tempDir();
    const run = await memex(['--json', 'ingest', 'paper.pdf', 'scan.png'], { cwd });
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as { files: { error?: { code: string; hint: string } }[] };
    expect(report.files.map((f) => f.error?.code)).toEqual(['MEMEX_PATH_NOT_FOUND', 'MEMEX_PATH_NOT_FOUND']);
    expect(report.files[0]?.error?.hint).not.toContain('schema');
  });
});
