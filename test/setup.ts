import { hasSharedModel, modelEnv, SHARED_MODELS } from './helpers/model.js';

// Every Memex opened by a test (and every CLI child it spawns) embeds with the shared offline
// model; nothing is downloaded. Without it, tests fall back to the hashed embedder and say so.
Object.assign(process.env, modelEnv);
if (!hasSharedModel && !(globalThis as { memexModelNoted?: boolean }).memexModelNoted) {
  (globalThis as { memexModelNoted?: boolean }).memexModelNoted = true;
  process.stderr.write(`memex tests: no shared model at ${SHARED_MODELS}; embedding with the hashed fallback, real-model tests are skipped\n`);
}
