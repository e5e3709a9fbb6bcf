import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The real offline model the tests use (see ../shared/models/README.md); never copied into the project. */
export const SHARED_MODELS = fileURLToPath(new URL('../../../shared/models', import.meta.url));
export const SHARED_MODEL_ID = 'google/universal-sentence-encoder-lite';
export const hasSharedModel = existsSync(join(SHARED_MODELS, SHARED_MODEL_ID, 'config.json'));
export const SHARED_MODEL_MISSING = `skipped: the shared model is not at ${join(SHARED_MODELS, SHARED_MODEL_ID)} (it lives in ../shared/models beside the clone)`;

/** The environment every test runs with: the shared model when present, else the hashed fallback, named. */
export const modelEnv: Record<string, string> = hasSharedModel
  ? { MEMEX_MODEL_DIR: SHARED_MODELS, MEMEX_MODEL: SHARED_MODEL_ID }
  : { MEMEX_MODEL: 'hashed' };
