import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Real evaluation data (../shared/eval, see its README): read in place, never copied into the project. */
export const SHARED_EVAL = fileURLToPath(new URL('../../../shared/eval', import.meta.url));
export const PDFS = join(SHARED_EVAL, 'pdfs');
export const IMAGES = join(SHARED_EVAL, 'images');
export const hasEvalFiles = existsSync(join(PDFS, 'manifest.json')) && existsSync(join(IMAGES, 'phototest.tif'));
export const EVAL_FILES_MISSING = `skipped: the eval PDFs and images are not at ${SHARED_EVAL} (they live in ../shared/eval beside the clone)`;
