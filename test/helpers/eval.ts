import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Real evaluation data (../shared/eval, see its README): read in place, never copied into the project. */
export const SHARED_EVAL = fileURLToPath(new URL('../../../shared/eval', import.meta.url));
export const PDFS = join(SHARED_EVAL, 'pdfs');
export const IMAGES = join(SHARED_EVAL, 'images');
export const hasEvalFiles = existsSync(join(PDFS, 'manifest.json')) && existsSync(join(IMAGES, 'phototest.tif'));
export const EVAL_FILES_MISSING = `skipped: the eval PDFs and images are not at ${SHARED_EVAL} (they live in ../shared/eval beside the clone)`;

export const LOCOMO = join(SHARED_EVAL, 'locomo', 'locomo10.json');
export const hasLocomo = existsSync(LOCOMO);
export const LOCOMO_MISSING = `skipped: LoCoMo is not at ${LOCOMO} (it lives in ../shared/eval beside the clone)`;

export interface LocomoSession {
  /** The sample id (`conv-26`), used as the user id. */
  conversation: string;
  index: number;
  /** The session's start as ISO time, from its `session_N_date_time`. */
  startedAt: string;
  speakerA: string;
  turns: { speaker: string; text: string; diaId: string }[];
}

function locomoDate(text: string): string {
  const match = /^(\d+):(\d+) (am|pm) on (\d+) (\w+), (\d{4})$/.exec(text.trim());
  if (!match) throw new Error(`unexpected LoCoMo date ${text}`);
  const [, h, m, ampm, day, month, year] = match;
  const hour = (Number(h) % 12) + (ampm === 'pm' ? 12 : 0);
  return new Date(`${month} ${day}, ${year} ${hour}:${m}:00 UTC`).toISOString();
}

/** Every session of every LoCoMo conversation (10 conversations, 272 sessions, 5,882 turns), read in place. */
export function locomoSessions(): LocomoSession[] {
  const samples = JSON.parse(readFileSync(LOCOMO, 'utf8')) as { sample_id: string; conversation: Record<string, unknown> }[];
  const sessions: LocomoSession[] = [];
  for (const sample of samples) {
    const c = sample.conversation;
    for (let n = 1; Array.isArray(c[`session_${n}`]); n++) {
      const turns = (c[`session_${n}`] as { speaker: string; text: string; dia_id: string }[]).map((t) => ({ speaker: t.speaker, text: t.text, diaId: t.dia_id }));
      sessions.push({ conversation: sample.sample_id, index: n, startedAt: locomoDate(c[`session_${n}_date_time`] as string), speakerA: c.speaker_a as string, turns });
    }
  }
  return sessions;
}
