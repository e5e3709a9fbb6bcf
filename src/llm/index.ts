export { ChatModel, chatModelFromConfig, type CallOptions, type ChatModelOptions, type StreamOptions } from './client.js';
export { ReplyFold } from './fold.js';
export { sseData } from './sse.js';
export { summarizeWith, summaryMessages, type SummaryRequest } from './summarize.js';
export { ChatMessageSchema, ChatRequestSchema, ChunkSchema, CompletionSchema, type ChatChunk, type ChatMessage, type ChatReply, type ChatRequest, type Completion, type ToolCall, type Usage } from './types.js';
