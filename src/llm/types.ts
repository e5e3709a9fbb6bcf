import { z } from 'zod';

/**
 * The OpenAI Chat Completions wire format, as far as Memex reads it. Every schema is loose: fields
 * Memex does not know (a server's extensions, newer API fields) pass through untouched, because the
 * memory proxy forwards requests and chunks whole.
 */

/** One message of a request: role and content are read, everything else (tool calls, names, multi-part content) is kept. */
export const ChatMessageSchema = z.looseObject({
  role: z.string().min(1),
  content: z.unknown().optional(),
});
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

/** A request. `model` may be left out to use the configured one; `stream` is set by the client. */
export const ChatRequestSchema = z.looseObject({
  model: z.string().min(1).optional(),
  messages: z.array(ChatMessageSchema).min(1),
  temperature: z.number().optional(),
  max_tokens: z.number().int().optional(),
  tools: z.array(z.unknown()).optional(),
});
export type ChatRequest = z.input<typeof ChatRequestSchema>;

const RawUsageSchema = z.looseObject({
  prompt_tokens: z.number().int().nonnegative().optional(),
  completion_tokens: z.number().int().nonnegative().optional(),
  total_tokens: z.number().int().nonnegative().optional(),
});

const ToolCallSchema = z.looseObject({
  id: z.string().optional(),
  type: z.string().optional(),
  function: z.looseObject({ name: z.string().optional(), arguments: z.string().optional() }).optional(),
});

/** A non-streamed reply (`chat.completion`). */
export const CompletionSchema = z.looseObject({
  id: z.string().optional(),
  model: z.string().optional(),
  choices: z.array(
    z.looseObject({
      index: z.number().int().optional(),
      message: z.looseObject({
        role: z.string().optional(),
        content: z.string().nullable().optional(),
        tool_calls: z.array(ToolCallSchema).nullable().optional(),
      }),
      finish_reason: z.string().nullable().optional(),
    }),
  ),
  usage: RawUsageSchema.nullable().optional(),
});
export type Completion = z.infer<typeof CompletionSchema>;

/** One streamed chunk (`chat.completion.chunk`); the last may carry only `usage` and no choices. */
export const ChunkSchema = z.looseObject({
  id: z.string().optional(),
  model: z.string().optional(),
  choices: z
    .array(
      z.looseObject({
        index: z.number().int().optional(),
        delta: z
          .looseObject({
            role: z.string().optional(),
            content: z.string().nullable().optional(),
            tool_calls: z.array(ToolCallSchema.extend({ index: z.number().int().optional() })).nullable().optional(),
          })
          .optional(),
        finish_reason: z.string().nullable().optional(),
      }),
    )
    .optional(),
  usage: RawUsageSchema.nullable().optional(),
});
export type ChatChunk = z.infer<typeof ChunkSchema>;

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface ToolCall {
  id: string;
  type: string;
  function: { name: string; arguments: string };
}

/** A whole reply, from `complete` or folded from a stream. */
export interface ChatReply {
  /** The completion's id, as the server gave it. */
  id: string | null;
  /** The model that answered, as the server named it (else the one asked for). */
  model: string;
  /** The text of the first choice; null when it answered only with tool calls. */
  content: string | null;
  toolCalls: ToolCall[];
  /** `stop`, `length`, `tool_calls`, ...; null when the server said none. */
  finishReason: string | null;
  /** Null when the server reported no usage (some ignore `stream_options.include_usage`). */
  usage: Usage | null;
  /** The response object as received (a streamed reply: assembled in the `chat.completion` shape). */
  raw: Record<string, unknown>;
}

export function toUsage(raw: z.infer<typeof RawUsageSchema> | null | undefined): Usage | null {
  if (!raw || (raw.prompt_tokens === undefined && raw.completion_tokens === undefined)) return null;
  const promptTokens = raw.prompt_tokens ?? 0;
  const completionTokens = raw.completion_tokens ?? 0;
  return { promptTokens, completionTokens, totalTokens: raw.total_tokens ?? promptTokens + completionTokens };
}
