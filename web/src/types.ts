/** The shapes of the API's answers the page reads (the OpenAPI document at /v1/openapi.json has them all). */
export interface Session {
  id: string;
  title: string | null;
  origin: { kind: 'native' } | { kind: 'imported'; source: string; conversationId: string };
  createdAt: string;
  lastMessageAt: string | null;
  messageCount: number;
  lastMessagePreview: string | null;
  personaId: string | null;
  tags: string[];
  archivedAt?: string | null;
}

export interface SessionPage {
  sessions: Session[];
  total: number;
  nextCursor: string | null;
}

export interface Attachment {
  fileId: string;
  name?: string;
  mimeType?: string;
}

export interface Message {
  id: string;
  role: 'user' | 'assistant' | 'system' | 'tool';
  content: string;
  name?: string;
  createdAt: string;
  attachments: Attachment[];
  personaId?: string;
}

export interface MessagePage {
  messages: Message[];
  total: number;
  nextCursor: string | null;
}

export interface FileRecord {
  id: string;
  name: string;
  mimeType: string;
  size: number;
  content?: { kind: string; pages: number; chunks: number };
}

export interface Hit {
  sessionId: string;
  text: string;
  source: { kind: 'message'; messageId: string; role: string; createdAt: string } | { kind: 'file'; fileId: string; name?: string; page?: number };
}

export interface SessionMatch {
  session: Session;
  score: number;
  hits: Hit[];
}

export interface Job {
  id: string;
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  progress: { phase: string; done: number; total: number } | null;
  error: { code: string; message: string } | null;
}

export interface ContextWindow {
  messages: { role: string; content: string }[];
  report: {
    budget: number;
    reserve: number;
    tokens: number;
    encoding: string;
    parts: Record<string, { tokens: number; allotted: number; items: number }>;
  };
}
