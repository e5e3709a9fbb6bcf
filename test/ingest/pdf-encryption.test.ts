import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encryptsOnlyAttachments, withoutEncryption } from '../../src/ingest/pdf-encryption.js';
import { EVAL_FILES_MISSING, hasEvalFiles, PDFS } from '../helpers/eval.js';

describe.skipIf(!hasEvalFiles)('encryptsOnlyAttachments (real eval PDFs)', () => {
  it('accepts a file that encrypts only its embedded file, and hides its Encrypt key without moving a byte', async () => {
    const bytes = await readFile(join(PDFS, 'encrypted-attachment.pdf'));
    expect(encryptsOnlyAttachments(bytes)).toBe(true);
    const patched = withoutEncryption(bytes);
    expect(patched.length).toBe(bytes.length);
    expect(Buffer.from(patched).toString('latin1')).not.toMatch(/\/Encrypt\s/);
    expect(encryptsOnlyAttachments(patched)).toBe(false);
  });

  it.each(['issue6010_1.pdf', 'issue3371.pdf', 'issue21579.pdf', 'issue7665.pdf', 'issue9972-2.pdf', 'bug1815476.pdf', 'tracemonkey.pdf'])('refuses %s, whose pages are encrypted (or that is not encrypted)', async (name) => {
    expect(encryptsOnlyAttachments(await readFile(join(PDFS, name)))).toBe(false);
  });
});
it.skipIf(hasEvalFiles)(EVAL_FILES_MISSING, () => undefined);
