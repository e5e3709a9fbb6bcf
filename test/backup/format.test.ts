import { describe, expect, it } from 'vitest';
import { SessionRecordSchema } from '../../src/backup/format.js';

describe('the backup session record', () => {
  it('keeps session fields this format does not name (tags, trashedAt, forkedFrom, archivedAt, …), so they travel to the restore', () => {
    const session = {
      id: 'ses_1',
      userId: 'alice',
      title: 't',
      titleSource: 'user',
      personaId: null,
      origin: { kind: 'native' },
      createdAt: '2024-01-01T00:00:00.000Z',
      updatedAt: '2024-01-01T00:00:00.000Z',
      lastMessageAt: null,
      messageCount: 0,
      lastMessagePreview: null,
      metadata: {},
      tags: ['work'],
      trashedAt: null,
      forkedFrom: { sessionId: 'ses_0', messageId: 'msg_9' },
      archivedAt: '2024-02-01T00:00:00.000Z',
    };
    const parsed = SessionRecordSchema.parse({ session, summary: null, files: [], vectors: { rows: 0, model: null, dimension: null } });
    expect(parsed.session).toMatchObject(session);
  });
});
