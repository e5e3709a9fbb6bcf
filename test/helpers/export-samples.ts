import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ExportFormat } from '../../src/import/model.js';
import { SHARED_EVAL } from './eval.js';

/** The real chat-export samples (../shared/eval/chat-exports, README section 5): read in place, never copied. */
export const CHAT_EXPORTS = join(SHARED_EVAL, 'chat-exports');
export const hasChatExports = existsSync(join(CHAT_EXPORTS, 'chatgpt', 'librechat_chatgpt-export.json'));
export const CHAT_EXPORTS_MISSING = `skipped: the chat-export samples are not at ${CHAT_EXPORTS} (they live in ../shared/eval beside the clone)`;

/** Every sample and its format, by what the eval README says of it (detection never reads the names). */
export const SAMPLE_FORMATS: Record<string, ExportFormat> = {
  'chatgpt/librechat_chatgpt-citations.json': 'chatgpt-conversations',
  'chatgpt/librechat_chatgpt-export.json': 'chatgpt-conversations',
  'chatgpt/librechat_chatgpt-modern-export.json': 'chatgpt-conversations',
  'chatgpt/librechat_chatgpt-tree.json': 'chatgpt-conversations',
  'chatgpt/pulsar_edgecases_by_name.json': 'chatgpt-conversations',
  'chatgpt/pulsar_hardening_by_name.json': 'chatgpt-conversations',
  'claude/yaleman_conversations.json': 'claude-conversations',
  'claude/yaleman_projects.json': 'claude-projects',
  'claude/yaleman_memories.json': 'claude-memories',
  'claude/yaleman_users.json': 'claude-users',
  'gemini/chatlore_MyActivity.json': 'gemini-activity',
};

/** Descriptors of this process open on `path` (Linux), to see that nothing leaks. */
export function openHandles(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  }).length;
}
