import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SHARED_EVAL } from './eval.js';

/** The real chat-export samples (../shared/eval/chat-exports, README section 5): read in place, never copied. */
export const CHAT_EXPORTS = join(SHARED_EVAL, 'chat-exports');
export const hasChatExports = existsSync(join(CHAT_EXPORTS, 'chatgpt', 'librechat_chatgpt-export.json'));
export const CHAT_EXPORTS_MISSING = `skipped: the chat-export samples are not at ${CHAT_EXPORTS} (they live in ../shared/eval beside the clone)`;
