export { ContextManager, NOTES_HEADER, MEMORIES_HEADER, type ContextManagerDeps, type ContextOptions, type ContextReport, type ContextWindow, type LeftOut, type LeftReason, type PartReport, type RecalledMemory } from './window.js';
export { ExtractiveSummarizer, modelSummarizer, withFallback, renderSummary, SUMMARY_HEADER, type ExtractiveOptions, type ModelSummaryRequest, type Summarizer, type SummarizeInput, type SummaryDraft, type SummaryVectors } from './summarizer.js';
export { extendSummary, type SummaryDeps, type SummaryState } from './summary.js';
export { OPENAI_CHAT_FORMAT, CountCache, messageTokens, requestTokens, tiktokenTokenizer, type ChatFormat, type ChatMessage, type Count, type Tokenizer } from './tokenizer.js';
export { allocate, PARTS, type Part, type PerPart } from './allocate.js';
export { splitSentences, wordCount, type Sentence } from './sentences.js';
