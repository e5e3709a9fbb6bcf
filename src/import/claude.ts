import { z } from 'zod';
import type { ExportParser, ImportedAttachment, ImportedConversation, ImportedMessage, ImportedRole, ImportItem } from './model.js';
import { hashOfValue, isoFromString, issuesOf, nonEmpty, skip, stableHash, str } from './util.js';

/**
 * claude.ai's data export: four JSON files. `conversations.json` (linear `chat_messages`),
 * `projects.json` (each project's docs become imported documents), `memories.json` (what Claude
 * remembered, as notes) and `users.json` (the account, for the import's manifest).
 * The assistant's `text` field runs its thinking and its answer together; the content blocks keep
 * them apart, so they are preferred whenever a message has them.
 */

const AttachmentSchema = z.looseObject({
  file_name: z.string().nullish(),
  file_type: z.string().nullish(),
  file_size: z.unknown().optional(),
  extracted_content: z.string().nullish(),
});

const FileSchema = z.looseObject({
  file_name: z.string().nullish(),
  file_uuid: z.string().nullish(),
  uuid: z.string().nullish(),
  file_kind: z.string().nullish(),
});

const BlockSchema = z.looseObject({ type: z.string() });

const ChatMessageSchema = z.looseObject({
  uuid: z.string().nullish(),
  text: z.string().nullish(),
  content: z.array(z.unknown()).nullish(),
  sender: z.string(),
  created_at: z.unknown().optional(),
  attachments: z.array(z.unknown()).nullish(),
  files: z.array(z.unknown()).nullish(),
  parent_message_uuid: z.string().nullish(),
});

const ConversationSchema = z.looseObject({
  uuid: z.string().nullish(),
  name: z.unknown().optional(),
  summary: z.unknown().optional(),
  created_at: z.unknown().optional(),
  updated_at: z.unknown().optional(),
  account: z.looseObject({ uuid: z.string().nullish() }).nullish(),
  project_uuid: z.string().nullish(),
  chat_messages: z.array(z.unknown()),
});

const SENDERS: Record<string, ImportedRole> = { human: 'user', assistant: 'assistant' };

export const parseClaudeConversations: ExportParser = async function* (values): AsyncGenerator<ImportItem> {
  for await (const { key, value } of values) {
    const parsed = ConversationSchema.safeParse(value);
    if (!parsed.success) {
      yield skip('claude', key, 'invalid', `not a Claude conversation: ${issuesOf(parsed.error)}`);
      continue;
    }
    const raw = parsed.data;
    const conversationId = nonEmpty(raw.uuid) ?? key ?? `claude-${hashOfValue(value)}`;
    const messages: ImportedMessage[] = [];
    const unreadable: number[] = [];
    raw.chat_messages.forEach((rawMessage, index) => {
      const m = ChatMessageSchema.safeParse(rawMessage);
      const role = m.success ? SENDERS[m.data.sender] : undefined;
      if (!m.success || role === undefined) {
        unreadable.push(index);
        return;
      }
      messages.push(toMessage(m.data, role, conversationId, index));
    });
    const metadata: Record<string, unknown> = {};
    const summary = nonEmpty(raw.summary);
    if (summary) metadata.summary = summary;
    if (raw.account?.uuid) metadata.accountId = raw.account.uuid;
    if (raw.project_uuid) metadata.projectId = raw.project_uuid;
    // A message that is not one (no sender, or one Claude does not use) is counted, never guessed at.
    if (unreadable.length > 0) metadata.unreadableMessages = unreadable;
    const conversation: ImportedConversation = {
      kind: 'conversation',
      source: 'claude',
      conversationId,
      title: str(raw.name),
      createdAt: isoFromString(raw.created_at),
      updatedAt: isoFromString(raw.updated_at),
      messages,
      branches: [],
      metadata,
    };
    yield conversation;
  }
};

function toMessage(raw: z.infer<typeof ChatMessageSchema>, role: ImportedRole, conversationId: string, index: number): ImportedMessage {
  const metadata: Record<string, unknown> = {};
  let content: string;
  const blocks = (raw.content ?? []).flatMap((b) => {
    const parsed = BlockSchema.safeParse(b);
    return parsed.success ? [parsed.data] : [];
  });
  if (blocks.length > 0) {
    const texts: string[] = [];
    const thinking: string[] = [];
    const citations: unknown[] = [];
    const tools: Record<string, unknown>[] = [];
    const unknown: string[] = [];
    for (const block of blocks) {
      if (block.type === 'text') {
        const text = str(block.text);
        if (text) texts.push(text);
        if (Array.isArray(block.citations)) citations.push(...(block.citations as unknown[]));
      } else if (block.type === 'thinking') {
        const text = str(block.thinking);
        if (text) thinking.push(text);
      } else if (block.type === 'tool_use' || block.type === 'tool_result') {
        // Tool calls and their results are part of the exchange but not of the answer's prose.
        const { type, name, input, content: result } = block;
        tools.push({ type, ...(name !== undefined && { name }), ...(input !== undefined && { input }), ...(result !== undefined && { content: result }) });
      } else {
        unknown.push(block.type);
      }
    }
    content = texts.join('\n\n');
    if (thinking.length > 0) metadata.thinking = thinking.join('\n\n');
    if (citations.length > 0) metadata.citations = citations;
    if (tools.length > 0) metadata.tools = tools;
    if (unknown.length > 0) metadata.unknownBlocks = unknown;
  } else {
    content = raw.text ?? '';
  }
  if (raw.parent_message_uuid) metadata.parentSourceId = raw.parent_message_uuid;

  const attachments: ImportedAttachment[] = [];
  for (const a of raw.attachments ?? []) {
    const parsed = AttachmentSchema.safeParse(a);
    if (!parsed.success) continue;
    attachments.push({
      name: nonEmpty(parsed.data.file_name) ?? 'attachment',
      mimeType: nonEmpty(parsed.data.file_type),
      zipEntry: null,
      text: parsed.data.extracted_content ?? null,
      ref: null,
    });
  }
  for (const f of raw.files ?? []) {
    const parsed = FileSchema.safeParse(f);
    if (!parsed.success) continue;
    const ref = nonEmpty(parsed.data.file_uuid) ?? nonEmpty(parsed.data.uuid);
    attachments.push({ name: nonEmpty(parsed.data.file_name) ?? ref ?? 'file', mimeType: null, zipEntry: null, text: null, ref });
  }

  return {
    // A message without a uuid gets one from its place, stable for the same export.
    sourceId: nonEmpty(raw.uuid) ?? `${conversationId}#${index}`,
    role,
    content,
    createdAt: isoFromString(raw.created_at),
    metadata,
    attachments,
  };
}

const ProjectSchema = z.looseObject({
  uuid: z.string(),
  name: z.string().nullish(),
  description: z.string().nullish(),
  prompt_template: z.string().nullish(),
  is_private: z.boolean().nullish(),
  is_starter_project: z.boolean().nullish(),
  created_at: z.unknown().optional(),
  docs: z.array(z.unknown()).nullish(),
});

const DocSchema = z.looseObject({
  uuid: z.string().nullish(),
  filename: z.string().nullish(),
  content: z.string(),
  created_at: z.unknown().optional(),
});

export const parseClaudeProjects: ExportParser = async function* (values): AsyncGenerator<ImportItem> {
  for await (const { key, value } of values) {
    const parsed = ProjectSchema.safeParse(value);
    if (!parsed.success) {
      yield skip('claude', key, 'invalid', `not a Claude project: ${issuesOf(parsed.error)}`);
      continue;
    }
    const project = parsed.data;
    const metadata: Record<string, unknown> = {};
    const description = nonEmpty(project.description);
    const promptTemplate = nonEmpty(project.prompt_template);
    if (description) metadata.projectDescription = description;
    if (promptTemplate) metadata.projectPromptTemplate = promptTemplate;
    if (project.is_starter_project === true) metadata.starterProject = true;
    const docs = project.docs ?? [];
    if (docs.length === 0) {
      // Nothing to store, but the user should see the project was read, not lost.
      yield skip('claude', project.uuid, 'empty-project', `project ${JSON.stringify(project.name ?? project.uuid)} has no docs`);
      continue;
    }
    for (const [index, rawDoc] of docs.entries()) {
      const doc = DocSchema.safeParse(rawDoc);
      if (!doc.success) {
        yield skip('claude', `${project.uuid}#${index}`, 'invalid', `doc ${index} of project ${project.uuid}: ${issuesOf(doc.error)}`);
        continue;
      }
      yield {
        kind: 'document',
        source: 'claude',
        documentId: nonEmpty(doc.data.uuid) ?? `${project.uuid}#${stableHash(doc.data.filename ?? '', doc.data.content)}`,
        collectionId: project.uuid,
        collectionTitle: project.name ?? null,
        name: nonEmpty(doc.data.filename) ?? 'document',
        text: doc.data.content,
        createdAt: isoFromString(doc.data.created_at),
        metadata: { ...metadata },
      };
    }
  }
};

const MemoriesSchema = z.looseObject({
  account_uuid: z.string().nullish(),
  conversations_memory: z.string().nullish(),
  project_memories: z.record(z.string(), z.unknown()).nullish(),
});

export const parseClaudeMemories: ExportParser = async function* (values): AsyncGenerator<ImportItem> {
  for await (const { key, value } of values) {
    const parsed = MemoriesSchema.safeParse(value);
    if (!parsed.success) {
      yield skip('claude', key, 'invalid', `not a Claude memories record: ${issuesOf(parsed.error)}`);
      continue;
    }
    const account = parsed.data.account_uuid ?? '';
    const base = { imported: true, ...(account && { accountId: account }) };
    // Ids from the account and the memory's kind: a newer export's memory replaces the older one.
    const text = nonEmpty(parsed.data.conversations_memory);
    if (text) yield { kind: 'note', source: 'claude', noteId: `claude-memory-${stableHash(account, 'conversations')}`, text, metadata: { ...base, memoryKind: 'conversations' } };
    for (const [projectId, memory] of Object.entries(parsed.data.project_memories ?? {})) {
      const projectText = nonEmpty(memory);
      if (!projectText) continue;
      yield {
        kind: 'note',
        source: 'claude',
        noteId: `claude-memory-${stableHash(account, 'project', projectId)}`,
        text: projectText,
        metadata: { ...base, memoryKind: 'project', projectId },
      };
    }
  }
};

const UserSchema = z.looseObject({ uuid: z.string(), full_name: z.string().nullish() });

export const parseClaudeUsers: ExportParser = async function* (values): AsyncGenerator<ImportItem> {
  for await (const { key, value } of values) {
    const parsed = UserSchema.safeParse(value);
    if (!parsed.success) {
      yield skip('claude', key, 'invalid', `not a Claude user: ${issuesOf(parsed.error)}`);
      continue;
    }
    // Only the id and the name: the e-mail address and phone number are not Memex's to keep.
    yield { kind: 'account', source: 'claude', accountId: parsed.data.uuid, name: nonEmpty(parsed.data.full_name) };
  }
};
