import { z } from 'zod';
import type { ExportParser, ImportedAttachment, ImportedBranch, ImportedConversation, ImportedMessage, ImportedRole, ImportItem, ParseContext } from './model.js';
import { hashOfValue, isoFromSeconds, issuesOf, isRecord, nonEmpty, skip, str } from './util.js';

/**
 * ChatGPT's `conversations.json`: each conversation is a tree (`mapping`, node id -> node with its
 * parent and children), because editing a question or regenerating an answer forks it. What the
 * user saw is one path, from `current_node` up to the root; every other leaf is a branch, kept
 * apart and never interleaved into that thread.
 *
 * Nodes the ChatGPT page never shows (the empty system prompt, custom instructions, the
 * assistant's calls to its tools, reasoning) stay out of the thread and are kept as metadata.
 * A tree that cannot be walked (no mapping, a parent that is not there, a cycle) is reported as a
 * skip, and the parser goes on with the next conversation; every walk is guarded by a visited
 * set so a malformed tree can never hang it.
 */

const NodeSchema = z.looseObject({
  id: z.string().nullish(),
  parent: z.string().nullish(),
  children: z.array(z.string()).nullish(),
  message: z.unknown().optional(),
});

const MessageSchema = z.looseObject({
  id: z.string().nullish(),
  author: z.looseObject({ role: z.string(), name: z.string().nullish() }),
  create_time: z.unknown().optional(),
  content: z.looseObject({ content_type: z.string().nullish() }),
  metadata: z.record(z.string(), z.unknown()).nullish(),
  recipient: z.string().nullish(),
});
type ChatGptMessage = z.infer<typeof MessageSchema>;

const ConversationSchema = z.looseObject({
  title: z.unknown().optional(),
  create_time: z.unknown().optional(),
  update_time: z.unknown().optional(),
  mapping: z.record(z.string(), z.unknown()).nullish(),
  current_node: z.unknown().optional(),
  conversation_id: z.unknown().optional(),
  id: z.unknown().optional(),
  default_model_slug: z.unknown().optional(),
});

interface Node {
  key: string;
  parent: string | null;
  children: string[];
  message: ChatGptMessage | null;
}

/** A node the thread does not show, kept in the conversation's metadata. */
interface HiddenNode {
  sourceId: string;
  role: string;
  contentType: string;
  reason: string;
  text: string;
  recipient?: string;
}

/** What one node becomes: a message of the thread, a hidden node, or reasoning for the answer after it. */
type Rendered = { kind: 'message'; message: ImportedMessage } | { kind: 'hidden'; hidden: HiddenNode } | { kind: 'reasoning'; reasoning: { contentType: string; text: string } };

export const parseChatGpt: ExportParser = async function* (values, context): AsyncGenerator<ImportItem> {
  for await (const { key, value } of values) {
    yield parseConversation(key, value, context);
  }
};

function parseConversation(key: string | null, value: unknown, context: ParseContext): ImportItem {
  const parsed = ConversationSchema.safeParse(value);
  const fallbackItem = key ?? (isRecord(value) ? (nonEmpty(value.title) ?? null) : null);
  if (!parsed.success) return skip('chatgpt', fallbackItem, 'invalid', `not a ChatGPT conversation: ${issuesOf(parsed.error)}`);
  const raw = parsed.data;
  const conversationId = nonEmpty(raw.conversation_id) ?? nonEmpty(raw.id) ?? key ?? `chatgpt-${hashOfValue(value)}`;
  const title = str(raw.title);
  if (!raw.mapping) return skip('chatgpt', conversationId, 'no-mapping', `conversation ${JSON.stringify(title ?? conversationId)} has no mapping (message tree)`);

  const nodes = new Map<string, Node>();
  let unreadable = 0;
  for (const [nodeKey, rawNode] of Object.entries(raw.mapping)) {
    const node = NodeSchema.safeParse(rawNode);
    if (!node.success) return skip('chatgpt', conversationId, 'invalid', `node ${nodeKey}: ${issuesOf(node.error)}`);
    let message: ChatGptMessage | null = null;
    if (node.data.message !== null && node.data.message !== undefined) {
      const m = MessageSchema.safeParse(node.data.message);
      if (m.success) message = m.data;
      else unreadable++;
    }
    nodes.set(nodeKey, { key: nodeKey, parent: node.data.parent ?? null, children: node.data.children ?? [], message });
  }
  if (nodes.size === 0) return skip('chatgpt', conversationId, 'no-mapping', `conversation ${JSON.stringify(title ?? conversationId)} has an empty mapping`);

  const broken = checkTree(nodes);
  if (broken) return skip('chatgpt', conversationId, broken.reason, broken.detail);
  const children = childrenOf(nodes);

  const metadata: Record<string, unknown> = {};
  const defaultModel = nonEmpty(raw.default_model_slug);
  if (defaultModel) metadata.defaultModelSlug = defaultModel;

  // The thread's end: `current_node`, else (an export that lost it) the newest leaf, said so.
  const currentNode = nonEmpty(raw.current_node);
  let end: string;
  if (currentNode !== null && nodes.has(currentNode)) {
    end = currentNode;
  } else {
    end = newestLeaf(nodes, children);
    metadata.threadEnd = 'newest-leaf';
    if (currentNode !== null) metadata.missingCurrentNode = currentNode;
  }

  // checkTree proved every parent chain ends at a root, so this walk ends; the set is the guard anyway.
  const path: string[] = [];
  const onThread = new Set<string>();
  for (let at: string | null = end; at !== null && !onThread.has(at); at = nodes.get(at)?.parent ?? null) {
    onThread.add(at);
    path.push(at);
  }
  path.reverse();

  // By source id: a node on several branch paths is kept once.
  const hidden = new Map<string, HiddenNode>();
  const orphanReasoning: { contentType: string; text: string }[] = [];
  // Source ids are the store's keys for re-import; a malformed export can repeat one, so a repeat takes its node's key.
  const usedIds = new Set<string>();
  // Node -> the id of the message it became, for the nodes shown in the thread or a branch.
  const shownAs = new Map<string, string>();
  const renderPath = (keys: readonly string[]): ImportedMessage[] => {
    const out: ImportedMessage[] = [];
    let reasoning: { contentType: string; text: string }[] = [];
    for (const nodeKey of keys) {
      const node = nodes.get(nodeKey);
      if (!node?.message) continue; // an empty node (the root): nothing was said there
      const rendered = renderMessage(node, context);
      if (rendered.kind === 'hidden') hidden.set(rendered.hidden.sourceId, rendered.hidden);
      else if (rendered.kind === 'reasoning') reasoning.push(rendered.reasoning);
      else {
        // Reasoning belongs to the answer that follows it, never to its text.
        if (reasoning.length > 0 && rendered.message.role === 'assistant') {
          rendered.message.metadata.reasoning = reasoning;
          reasoning = [];
        }
        if (usedIds.has(rendered.message.sourceId)) rendered.message.sourceId = `${rendered.message.sourceId}#${nodeKey}`;
        usedIds.add(rendered.message.sourceId);
        shownAs.set(nodeKey, rendered.message.sourceId);
        out.push(rendered.message);
      }
    }
    orphanReasoning.push(...reasoning);
    return out;
  };
  const messages = renderPath(path);

  const branches: ImportedBranch[] = [];
  const addBranches = (start: string, fromSourceId: string | null): void => {
    for (const { path: branchPath, forkOf } of branchPaths(start, nodes, children)) {
      const branchMessages = renderPath(branchPath);
      if (branchMessages.length === 0) continue;
      // A fork inside a branch: its first message says which message of the branch it answers.
      if (forkOf !== null) branchMessages[0]!.metadata.parentSourceId = sourceIdAbove(forkOf, nodes, shownAs);
      branches.push({ fromSourceId, messages: branchMessages });
    }
  };
  // The last thread message at or above each thread node: where a branch forking there leaves the thread.
  let lastShared: string | null = null;
  for (const nodeKey of path) {
    lastShared = shownAs.get(nodeKey) ?? lastShared;
    for (const child of children.get(nodeKey) ?? []) if (!onThread.has(child)) addBranches(child, lastShared);
  }
  // A second root (a tree the export split) shares nothing with the thread, but is kept all the same.
  for (const node of nodes.values()) if (node.parent === null && !onThread.has(node.key)) addBranches(node.key, null);

  if (hidden.size > 0) metadata.hidden = [...hidden.values()];
  const instructions = customInstructions(nodes);
  if (instructions) metadata.customInstructions = instructions;
  if (orphanReasoning.length > 0) metadata.reasoning = orphanReasoning;
  if (unreadable > 0) metadata.unreadableNodes = unreadable;

  const conversation: ImportedConversation = {
    kind: 'conversation',
    source: 'chatgpt',
    conversationId,
    title,
    createdAt: isoFromSeconds(raw.create_time),
    updatedAt: isoFromSeconds(raw.update_time),
    messages,
    branches,
    metadata,
  };
  return conversation;
}

/** A parent that is not in the mapping, or a parent chain that loops: either leaves no walkable thread. */
function checkTree(nodes: ReadonlyMap<string, Node>): { reason: 'missing-parent' | 'cycle'; detail: string } | null {
  // Nodes known to reach a root; each node is walked at most once overall, so this is linear.
  const rooted = new Set<string>();
  for (const start of nodes.keys()) {
    const chain = new Set<string>();
    let at: string | null = start;
    while (at !== null && !rooted.has(at)) {
      if (chain.has(at)) return { reason: 'cycle', detail: `the parent chain from node ${start} comes back to node ${at}` };
      chain.add(at);
      const parent: string | null = nodes.get(at)?.parent ?? null;
      if (parent !== null && !nodes.has(parent)) return { reason: 'missing-parent', detail: `node ${at} names parent ${parent}, which is not in the mapping` };
      at = parent;
    }
    for (const key of chain) rooted.add(key);
  }
  return null;
}

/**
 * Children from the parent links (the links the thread walk trusts), in the order the node lists
 * them; a child that does not name the node as its parent, or is not in the mapping, is not one.
 */
function childrenOf(nodes: ReadonlyMap<string, Node>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const node of nodes.values()) {
    if (node.parent === null) continue;
    const list = out.get(node.parent) ?? [];
    list.push(node.key);
    out.set(node.parent, list);
  }
  for (const [key, list] of out) {
    const listed = nodes.get(key)?.children ?? [];
    const rank = new Map(listed.map((child, i) => [child, i]));
    list.sort((a, b) => (rank.get(a) ?? Infinity) - (rank.get(b) ?? Infinity));
  }
  return out;
}

function timeOf(node: Node | undefined): number {
  const t = node?.message?.create_time;
  return typeof t === 'number' && Number.isFinite(t) ? t : -Infinity;
}

/** The newest child: the latest created, the last listed among equals (ChatGPT appends new versions). */
function newestChild(list: readonly string[], nodes: ReadonlyMap<string, Node>): string | undefined {
  let best: string | undefined;
  for (const child of list) if (best === undefined || timeOf(nodes.get(child)) >= timeOf(nodes.get(best))) best = child;
  return best;
}

function newestLeaf(nodes: ReadonlyMap<string, Node>, children: ReadonlyMap<string, string[]>): string {
  const leaves = [...nodes.keys()].filter((key) => (children.get(key) ?? []).length === 0);
  // A checked tree always has a leaf; the first node is only a formal fallback.
  return newestChild(leaves, nodes) ?? [...nodes.keys()][0]!;
}

/**
 * The paths of the branch that starts at `start`: first the one following the newest child at each
 * fork down to its leaf, then one for each other child at a fork inside the branch (`forkOf`, the
 * node it forks from), and so on down, so every leaf of the tree is kept and every node is in
 * exactly one path: nothing is stored or embedded twice.
 */
function branchPaths(start: string, nodes: ReadonlyMap<string, Node>, children: ReadonlyMap<string, string[]>): { path: string[]; forkOf: string | null }[] {
  const out: { path: string[]; forkOf: string | null }[] = [];
  const visited = new Set<string>();
  const pending: { at: string; forkOf: string | null }[] = [{ at: start, forkOf: null }];
  for (let i = 0; i < pending.length; i++) {
    const { at, forkOf } = pending[i]!;
    const path: string[] = [];
    let node: string | undefined = at;
    while (node !== undefined && !visited.has(node)) {
      visited.add(node);
      path.push(node);
      const list = children.get(node) ?? [];
      const next = newestChild(list, nodes);
      for (const other of list) if (other !== next) pending.push({ at: other, forkOf: node });
      node = next;
    }
    if (path.length > 0) out.push({ path, forkOf });
  }
  return out;
}

/** The id of the message at or above a node (an empty node has none of its own; a hidden one keeps its own id). */
function sourceIdAbove(key: string, nodes: ReadonlyMap<string, Node>, shownAs: ReadonlyMap<string, string>): string | null {
  const seen = new Set<string>();
  for (let at: string | null = key; at !== null && !seen.has(at); at = nodes.get(at)?.parent ?? null) {
    seen.add(at);
    const shown = shownAs.get(at);
    if (shown !== undefined) return shown;
    const message = nodes.get(at)?.message;
    if (message) return message.id ?? at;
  }
  return null;
}

const ROLES: Record<string, ImportedRole> = { user: 'user', assistant: 'assistant', system: 'system', tool: 'tool' };
const TOOL_CONTENT = new Set(['tether_browsing_display', 'tether_quote', 'execution_output', 'system_error']);
const CONTEXT_CONTENT = new Set(['user_editable_context', 'model_editable_context']);
const REASONING_CONTENT = new Set(['thoughts', 'reasoning_recap']);

function renderMessage(node: Node, context: ParseContext): Rendered {
  const message = node.message!;
  const sourceId = message.id ?? node.key;
  const contentType = message.content.content_type ?? 'text';
  const meta = message.metadata ?? {};
  const role = ROLES[message.author.role];
  const body = contentText(message, contentType);
  const hide = (reason: string): Rendered => {
    const hidden: HiddenNode = { sourceId, role: message.author.role, contentType, reason, text: body.text };
    if (message.recipient && message.recipient !== 'all') hidden.recipient = message.recipient;
    return { kind: 'hidden', hidden };
  };

  if (REASONING_CONTENT.has(contentType)) return { kind: 'reasoning', reasoning: { contentType, text: body.text } };
  if (CONTEXT_CONTENT.has(contentType)) return hide('context');
  if (meta.is_visually_hidden_from_conversation === true || meta.is_user_system_message === true) return hide('visually-hidden');
  // Calls the assistant addressed to a tool (`browser`, `python`): the page shows their results, not them.
  if (message.recipient && message.recipient !== 'all') return hide('internal-call');
  // ChatGPT never shows a system message; its (usually empty) prompt is kept as metadata.
  if (role === 'system') return hide('system');
  if (role === undefined) return hide('unknown-role');

  const metadata: Record<string, unknown> = {};
  if (contentType !== 'text') metadata.contentType = contentType;
  const modelSlug = nonEmpty(meta.model_slug);
  if (modelSlug) metadata.modelSlug = modelSlug;
  if (message.author.name) metadata.authorName = message.author.name;
  Object.assign(metadata, body.metadata);
  const visibleRole = TOOL_CONTENT.has(contentType) ? 'tool' : role;
  // Only an answer cites; in a tool's page text the same brackets mark the page's own links.
  const cleaned = visibleRole === 'assistant' ? cleanCitations(body.text, Array.isArray(meta.citations) ? meta.citations : []) : { text: body.text, citations: [] };
  if (cleaned.citations.length > 0) metadata.citations = cleaned.citations;

  return {
    kind: 'message',
    message: {
      sourceId,
      role: visibleRole,
      content: cleaned.text,
      createdAt: isoFromSeconds(message.create_time),
      metadata,
      attachments: attachmentsOf(body.pointers, meta.attachments, context),
    },
  };
}

interface Body {
  text: string;
  metadata: Record<string, unknown>;
  /** Asset pointers (`sediment://…`, `file-service://…`) met in the parts. */
  pointers: { pointer: string; contentType: string }[];
}

/** The text of a message by its content type; parts it does not know are named in metadata, never dropped silently. */
function contentText(message: ChatGptMessage, contentType: string): Body {
  const content = message.content;
  const metadata: Record<string, unknown> = {};
  const pointers: Body['pointers'] = [];
  const texts: string[] = [];
  const unknownParts: string[] = [];
  if (Array.isArray(content.parts)) {
    for (const part of content.parts) {
      if (typeof part === 'string') {
        if (part !== '') texts.push(part);
      } else if (isRecord(part)) {
        const partType = str(part.content_type) ?? 'unknown';
        const pointer = str(part.asset_pointer);
        if (pointer !== null) pointers.push({ pointer, contentType: partType });
        else if (typeof part.text === 'string') texts.push(part.text);
        else unknownParts.push(partType);
      }
    }
  }
  if (unknownParts.length > 0) metadata.unknownParts = unknownParts;

  switch (contentType) {
    case 'code': {
      const language = nonEmpty(content.language);
      const code = str(content.text) ?? texts.join('\n');
      if (language && language !== 'unknown') metadata.language = language;
      return { text: `\`\`\`${language && language !== 'unknown' ? language : ''}\n${code}\n\`\`\``, metadata, pointers };
    }
    case 'tether_browsing_display':
      return { text: [str(content.result), str(content.summary)].filter((s): s is string => !!s).join('\n\n'), metadata, pointers };
    case 'tether_quote': {
      const url = nonEmpty(content.url);
      const title = nonEmpty(content.title);
      if (url) metadata.url = url;
      if (title) metadata.title = title;
      return { text: [title, url, str(content.text)].filter((s): s is string => !!s).join('\n\n'), metadata, pointers };
    }
    case 'user_editable_context':
      return { text: [str(content.user_profile), str(content.user_instructions)].filter((s): s is string => !!s).join('\n\n'), metadata, pointers };
    case 'thoughts': {
      const thoughts = Array.isArray(content.thoughts) ? content.thoughts.filter(isRecord).map((t) => [str(t.summary), str(t.content)].filter(Boolean).join('\n')) : [];
      return { text: [...thoughts, ...texts].join('\n\n'), metadata, pointers };
    }
    case 'reasoning_recap':
      return { text: str(content.content) ?? texts.join('\n'), metadata, pointers };
    default:
      return { text: texts.length > 0 ? texts.join('\n') : (str(content.text) ?? str(content.result) ?? ''), metadata, pointers };
  }
}

/** Custom instructions, wherever the export put them: a `user_editable_context` node or a system message's context data. */
function customInstructions(nodes: ReadonlyMap<string, Node>): Record<string, string> | null {
  for (const node of nodes.values()) {
    const message = node.message;
    if (!message) continue;
    const c = message.content;
    if (c.content_type === 'user_editable_context') {
      const out: Record<string, string> = {};
      const profile = nonEmpty(c.user_profile);
      const instructions = nonEmpty(c.user_instructions);
      if (profile) out.userProfile = profile;
      if (instructions) out.userInstructions = instructions;
      if (profile || instructions) return out;
    }
    const data = message.metadata?.user_context_message_data;
    if (isRecord(data)) {
      const out: Record<string, string> = {};
      const about = nonEmpty(data.about_user_message);
      const model = nonEmpty(data.about_model_message);
      if (about) out.userProfile = about;
      if (model) out.userInstructions = model;
      if (about || model) return out;
    }
  }
  return null;
}

// `【3:0†source】` or `【12†source】`: one dagger. A search result's header (`【0†Title†site】`) has two and is kept.
const CITATION = /【\d+(?::\d+)?†[^】†\n]*】/g;
// The newer private-use form: U+E200 `cite` U+E202 ids U+E201.
const PRIVATE_CITATION = /\ue200(?:cite|filecite)\ue202([^\ue200\ue201]*)\ue201/g;

/** The text without citation markers; each marker kept with the source the message's metadata gives for it. */
function cleanCitations(text: string, sources: readonly unknown[]): { text: string; citations: Record<string, unknown>[] } {
  const byStart = new Map<number, Record<string, unknown>>();
  for (const source of sources) {
    if (isRecord(source) && typeof source.start_ix === 'number') byStart.set(source.start_ix, source);
  }
  const citations: Record<string, unknown>[] = [];
  const cite = (marker: string, offset: number): '' => {
    const entry: Record<string, unknown> = { marker };
    const source = byStart.get(offset);
    const about = source && isRecord(source.metadata) ? source.metadata : null;
    if (about) {
      const title = nonEmpty(about.title);
      const url = nonEmpty(about.url);
      if (title) entry.title = title;
      if (url) entry.url = url;
    }
    citations.push(entry);
    return '';
  };
  // Offsets are taken in the original text (as `start_ix` is), so each pass matches on the input.
  let cleaned = text.replace(CITATION, (marker: string, offset: number) => cite(marker, offset));
  cleaned = cleaned.replace(PRIVATE_CITATION, (marker: string, _ids: string, offset: number) => cite(marker, offset));
  return { text: cleaned, citations };
}

/**
 * A message's files: the asset pointers in its parts and the files its metadata lists, one
 * attachment per file id (the same file often appears as both). Bytes are found in the ZIP by
 * an entry whose name contains the file id, as ChatGPT names them (`file-abc-photo.png`).
 */
function attachmentsOf(pointers: Body['pointers'], listed: unknown, context: ParseContext): ImportedAttachment[] {
  const byId = new Map<string, ImportedAttachment>();
  const add = (id: string, update: Partial<ImportedAttachment>): void => {
    const existing = byId.get(id);
    if (existing) {
      Object.assign(existing, Object.fromEntries(Object.entries(update).filter(([, v]) => v !== null)));
      return;
    }
    const zipEntry = zipEntryFor(id, context);
    byId.set(id, { name: id, mimeType: mimeOf(zipEntry), zipEntry, text: null, ref: null, ...update });
  };
  for (const { pointer } of pointers) {
    const id = pointer.replace(/^[a-z-]+:\/\//i, '');
    if (id !== '') add(id, { ref: pointer });
  }
  if (Array.isArray(listed)) {
    for (const file of listed) {
      if (!isRecord(file)) continue;
      const id = nonEmpty(file.id);
      if (!id) continue;
      const update: Partial<ImportedAttachment> = {};
      const name = nonEmpty(file.name);
      const mimeType = nonEmpty(file.mime_type);
      if (name) update.name = name;
      if (mimeType) update.mimeType = mimeType;
      if (!byId.has(id)) update.ref = id;
      add(id, update);
    }
  }
  return [...byId.values()];
}

function zipEntryFor(id: string, context: ParseContext): string | null {
  if (context.zipEntries.size === 0) return null;
  for (const entry of context.zipEntries) {
    const base = entry.slice(entry.lastIndexOf('/') + 1);
    if (base.includes(id)) return entry;
  }
  return null;
}

const IMAGE_TYPES: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif' };

/** An image pointer says nothing of its type; the ZIP entry's extension does, for the usual image types. */
function mimeOf(zipEntry: string | null): string | null {
  const ext = zipEntry ? /\.([a-z0-9]+)$/i.exec(zipEntry)?.[1]?.toLowerCase() : undefined;
  return ext ? (IMAGE_TYPES[ext] ?? null) : null;
}
