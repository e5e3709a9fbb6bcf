import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { json, memex } from '../helpers/cli.js';
import { textPdf } from '../helpers/pdf.js';
import { tempDir } from '../helpers/tmp.js';

describe('memex file and add --attach', () => {
  it('stores, lists and deletes files, and attaches one to a message that `messages` shows', async () => {
    const dir = await tempDir();
    const env = { MEMEX_DATA_DIR: join(dir, 'data') };
    const pdf = join(dir, 'boarding-pass.pdf');
    await writeFile(pdf, textPdf('Boarding pass TP1350 Lisbon gate 14'));
    const message = await json<{ id: string; sessionId: string; attachments: { fileId: string; name: string; mimeType: string }[] }>(['add', '--attach', pdf, 'my boarding pass'], { env });
    expect(message.attachments).toEqual([expect.objectContaining({ name: 'boarding-pass.pdf', mimeType: 'application/pdf' })]);
    const shown = await memex(['messages'], { env });
    expect(shown.stdout).toContain('user: my boarding pass\n    attached: boarding-pass.pdf (application/pdf)');
    // The attached file is searchable like any ingested one.
    expect((await memex(['search', '--source', 'file', 'gate'], { env })).stdout).toContain('boarding-pass.pdf');

    const list = await memex(['file', 'list'], { env });
    expect(list.stdout).toMatch(/ID\s+NAME\s+TYPE\s+SIZE\s+SEARCHABLE\s+ADDED/);
    expect(list.stdout).toContain('boarding-pass.pdf');
    const other = join(dir, 'menu.pdf');
    await writeFile(other, textPdf('Dinner menu'));
    expect((await memex(['file', 'add', other], { env })).code).toBe(0);
    expect((await json<{ files: unknown[] }>(['file', 'list'], { env })).files).toHaveLength(2);
    const fileId = message.attachments[0]!.fileId;
    expect(await json(['file', 'rm', fileId.slice(0, 12)], { env })).toMatchObject({ deleted: true, fileId });
    expect((await json<{ files: { name: string }[] }>(['file', 'list'], { env })).files.map((f) => f.name)).toEqual(['menu.pdf']);
    const missing = await memex(['add', '--attach', join(dir, 'nope.pdf'), 'x', '--json'], { env });
    expect(JSON.parse(missing.stderr).error.code).toBe('MEMEX_PATH_NOT_FOUND');
  });
});

describe('--persona by name', () => {
  it('takes the persona by its id or its name (any case), and says which code when none matches or a name is taken', async () => {
    const env = { MEMEX_DATA_DIR: join(await tempDir(), 'data') };
    const persona = await json<{ id: string }>(['persona', 'add', 'Travel agent', '--instructions', 'Plan trips.'], { env });
    expect((await json<{ personaId: string }>(['session', 'new', '--persona', 'Travel agent'], { env })).personaId).toBe(persona.id);
    expect((await json<{ personaId: string }>(['session', 'new', '--persona', persona.id], { env })).personaId).toBe(persona.id);
    // Names are unique per user, ignoring case: the name in any case finds it, and a second is refused.
    expect((await json<{ personaId: string }>(['session', 'new', '--persona', 'travel agent'], { env })).personaId).toBe(persona.id);
    const none = await memex(['session', 'new', '--persona', 'tour guide', '--json'], { env });
    expect(JSON.parse(none.stderr).error.code).toBe('MEMEX_PERSONA_NOT_FOUND');
    const twin = await memex(['persona', 'add', 'Travel Agent', '--instructions', 'Another.', '--json'], { env });
    expect(twin.code).toBe(1);
    expect(JSON.parse(twin.stderr).error.code).toBe('MEMEX_PERSONA_EXISTS');
  });
});
