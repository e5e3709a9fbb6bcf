import type { z } from 'zod';
import { MemexError, messageBody, newMessageId, NewMessageSchema, parseInput, type Message, type MessageBody, type NewMessage, type SessionId } from '../core/index.js';

/** A batch of new messages, parsed and checked; every backend appends exactly these rules. */
export interface ParsedBatch {
  inputs: z.output<typeof NewMessageSchema>[];
  bodies: MessageBody[];
}

export function parseBatch(inputs: readonly NewMessage[], maxMessageChars: number): ParsedBatch {
  if (!Array.isArray(inputs) || inputs.length === 0) throw new MemexError('MEMEX_INVALID_INPUT', 'no messages to append');
  const parsed = inputs.map((input, i) => parseInput(NewMessageSchema, input, inputs.length > 1 ? `message ${i + 1}` : 'message'));
  const bodies = parsed.map(messageBody);
  for (const [i, message] of parsed.entries()) {
    const body = bodies[i] as MessageBody;
    if (body.size > maxMessageChars) {
      throw new MemexError('MEMEX_MESSAGE_TOO_LARGE', `message ${i + 1} has ${body.size} characters; the limit is ${maxMessageChars}`, { details: { maxMessageChars } });
    }
    // An image, a tool call or an attachment is content too.
    if (body.content.trim() === '' && (message.attachments ?? []).length === 0 && !body.parts?.length && !body.toolCalls) {
      throw new MemexError('MEMEX_INVALID_INPUT', `message ${i + 1} has no content and no attachments`);
    }
  }
  return { inputs: parsed, bodies };
}

export interface BatchChecks {
  /** Whether the session already holds a message with this id. */
  exists(messageId: string): boolean | Promise<boolean>;
  /** Throws MEMEX_FILE_NOT_FOUND unless the session holds the file. */
  requireFile(fileId: string): void | Promise<void>;
}

/** The stored messages of a batch: given or new ids, given or current times, the parsed bodies. */
export async function buildMessages(sessionId: SessionId, batch: ParsedBatch, checks: BatchChecks): Promise<Message[]> {
  const seen = new Set<string>();
  const now = Date.now();
  const out: Message[] = [];
  for (const [i, input] of batch.inputs.entries()) {
    if (input.id !== undefined && seen.has(input.id)) {
      throw new MemexError('MEMEX_INVALID_INPUT', `message ${i + 1}: id ${input.id} appears twice in the batch`, { details: { messageId: input.id } });
    }
    // A retry of an append that succeeded: a conflict, so a client can tell it from bad input.
    if (input.id !== undefined && (await checks.exists(input.id))) {
      throw new MemexError('MEMEX_MESSAGE_EXISTS', `message ${i + 1}: id ${input.id} is already in session ${sessionId}`, { details: { messageId: input.id, sessionId } });
    }
    const attachments = input.attachments ?? [];
    for (const attachment of attachments) await checks.requireFile(attachment.fileId);
    const id = input.id ?? newMessageId(now);
    seen.add(id);
    const { v, content, parts, name, toolCalls, toolCallId, toolName, personaId } = batch.bodies[i] as MessageBody;
    const base = {
      v,
      id,
      sessionId,
      content,
      ...(parts !== undefined ? { parts } : {}),
      ...(name !== undefined ? { name } : {}),
      createdAt: input.createdAt ?? new Date(now).toISOString(),
      metadata: input.metadata ?? {},
      attachments,
      ...(personaId !== undefined ? { personaId } : {}),
    };
    out.push(
      input.role === 'tool'
        ? { ...base, role: 'tool', ...(toolCallId !== undefined ? { toolCallId } : {}), ...(toolName !== undefined ? { toolName } : {}) }
        : input.role === 'assistant'
          ? { ...base, role: 'assistant', ...(toolCalls !== undefined ? { toolCalls } : {}) }
          : { ...base, role: input.role },
    );
  }
  return out;
}
