import { toUsage, type ChatChunk, type ChatReply, type ToolCall, type Usage } from './types.js';

/**
 * Folds streamed chunks into a reply: `add` returns each chunk's new text (first choice), `reply`
 * the whole so far. Tool calls arrive in pieces keyed by `index` (id and name once, the arguments
 * split anywhere) and are joined here. Usage is taken from whichever chunk carries it (the last,
 * with `stream_options.include_usage`), and stays null for servers that never send it.
 *
 * ```ts
 * const fold = new ReplyFold(request.model);
 * for await (const chunk of model.stream(request, { signal })) write(fold.add(chunk));
 * const { content, usage } = fold.reply();
 * ```
 */
export class ReplyFold {
  private id: string | null = null;
  private model: string;
  private text = '';
  private sawText = false;
  private readonly calls = new Map<number, ToolCall>();
  private finishReason: string | null = null;
  private usage: Usage | null = null;
  private rawUsage: unknown = undefined;

  constructor(requestedModel: string) {
    this.model = requestedModel;
  }

  /** Takes one chunk; returns the text it adds ('' when none). */
  add(chunk: ChatChunk): string {
    if (chunk.id !== undefined && this.id === null) this.id = chunk.id;
    if (chunk.model) this.model = chunk.model;
    const usage = toUsage(chunk.usage);
    if (usage) {
      this.usage = usage;
      this.rawUsage = chunk.usage;
    }
    const choice = chunk.choices?.find((c) => (c.index ?? 0) === 0);
    if (!choice) return '';
    if (choice.finish_reason) this.finishReason = choice.finish_reason;
    for (const part of choice.delta?.tool_calls ?? []) {
      const index = part.index ?? 0;
      const call = this.calls.get(index) ?? { id: '', type: 'function', function: { name: '', arguments: '' } };
      if (part.id) call.id = part.id;
      if (part.type) call.type = part.type;
      if (part.function?.name) call.function.name += part.function.name;
      if (part.function?.arguments) call.function.arguments += part.function.arguments;
      this.calls.set(index, call);
    }
    const delta = choice.delta?.content ?? '';
    if (typeof delta === 'string' && delta !== '') {
      this.text += delta;
      this.sawText = true;
    }
    return delta;
  }

  reply(): ChatReply {
    const toolCalls = [...this.calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call);
    const content = this.sawText || toolCalls.length === 0 ? this.text : null;
    const message: Record<string, unknown> = { role: 'assistant', content };
    if (toolCalls.length > 0) message.tool_calls = toolCalls;
    const raw: Record<string, unknown> = {
      id: this.id,
      object: 'chat.completion',
      model: this.model,
      choices: [{ index: 0, message, finish_reason: this.finishReason }],
    };
    if (this.rawUsage !== undefined) raw.usage = this.rawUsage;
    return { id: this.id, model: this.model, content, toolCalls, finishReason: this.finishReason, usage: this.usage, raw };
  }
}
