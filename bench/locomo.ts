import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** LoCoMo (../shared/eval/locomo), read in place: never copied into the project. */
export const LOCOMO = fileURLToPath(new URL('../../shared/eval/locomo/locomo10.json', import.meta.url));
export const SHARED_MODELS = fileURLToPath(new URL('../../shared/models', import.meta.url));
export const SHARED_MODEL_ID = 'google/universal-sentence-encoder-lite';

export interface LocomoSession {
  conversation: string;
  index: number;
  date: string;
  turns: { speaker: string; text: string; diaId: string }[];
}

export function locomoSessions(): LocomoSession[] {
  if (!existsSync(LOCOMO)) {
    console.error(`LoCoMo not found at ${LOCOMO}: it lives in ../shared/eval beside the clone.`);
    process.exit(1);
  }
  const samples = JSON.parse(readFileSync(LOCOMO, 'utf8')) as { sample_id: string; conversation: Record<string, unknown> }[];
  const sessions: LocomoSession[] = [];
  for (const sample of samples) {
    for (let n = 1; Array.isArray(sample.conversation[`session_${n}`]); n++) {
      const turns = (sample.conversation[`session_${n}`] as { speaker: string; text: string; dia_id: string }[]).map((t) => ({ speaker: t.speaker, text: t.text, diaId: t.dia_id }));
      sessions.push({ conversation: sample.sample_id, index: n, date: sample.conversation[`session_${n}_date_time`] as string, turns });
    }
  }
  return sessions;
}

/** The model the benchmarks use: MEMEX_MODEL_DIR / MEMEX_MODEL, else the shared offline model. */
export function benchModel(): { model: string; modelDir: string } {
  const modelDir = process.env.MEMEX_MODEL_DIR ?? SHARED_MODELS;
  const model = process.env.MEMEX_MODEL ?? SHARED_MODEL_ID;
  if (!existsSync(modelDir)) {
    console.error(`no model folder at ${modelDir}: set MEMEX_MODEL_DIR (and MEMEX_MODEL) to a local transformers.js model.`);
    process.exit(1);
  }
  return { model, modelDir };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

export function machine(): string {
  return `${process.platform} ${process.arch}, Node ${process.version}`;
}
