export { chatTurn, type ChatDeps, type ChatTurnOptions } from './turn.js';
export { cleanTitle } from './title.js';
export type { ChatError, ChatEvent, ReplyMetadata } from './events.js';
