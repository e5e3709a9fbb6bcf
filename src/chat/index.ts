export { chatTurn, runTurn, type ChatDeps, type ChatTurnOptions, type TurnSpec } from './turn.js';
export { cleanTitle } from './title.js';
export type { ChatError, ChatEvent, ReplyMetadata } from './events.js';
