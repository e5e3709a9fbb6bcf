// Long-term memory the model keeps: facts about the user proposed after each exchange.

export { extractMemories, type Exchange, type ExtractDeps, type ExtractResult, type MemoryChange } from './extract.js';
