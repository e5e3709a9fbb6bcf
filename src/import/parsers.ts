import { parseChatGpt } from './chatgpt.js';
import { parseClaudeConversations, parseClaudeMemories, parseClaudeProjects, parseClaudeUsers } from './claude.js';
import { parseGemini } from './gemini.js';
import { parseMemexSession } from './memex.js';
import type { ExportFormat, ExportParser } from './model.js';

export { parseChatGpt, parseClaudeConversations, parseClaudeMemories, parseClaudeProjects, parseClaudeUsers, parseGemini, parseMemexSession };
export { CONVERSATION_GAP_MS } from './gemini.js';

/** The parser of each detected format (detect.ts decides the format from the content). */
export const PARSERS: Record<ExportFormat, ExportParser> = {
  'chatgpt-conversations': parseChatGpt,
  'claude-conversations': parseClaudeConversations,
  'claude-projects': parseClaudeProjects,
  'claude-memories': parseClaudeMemories,
  'claude-users': parseClaudeUsers,
  'gemini-activity': parseGemini,
  'memex-session': parseMemexSession,
};
