import { join, resolve, sep } from 'node:path';
import { IMPORT_SOURCES, MemexError, importedSessionParts, type FileId, type ImportSource, type PersonaId, type SessionId, type UserId } from '../../core/index.js';
import type { FileArtifactName } from '../store.js';

/**
 * Where each thing lives in a flat-file data dir (see DESIGN.md "Flat-file layout"). Only ids that
 * passed validation reach here (branded types); every path is still checked to stay inside the root.
 */
export class Layout {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  private inside(...parts: string[]): string {
    const path = join(this.root, ...parts);
    if (path !== this.root && !path.startsWith(this.root + sep)) {
      throw new MemexError('MEMEX_INVALID_ID', `path escapes the data dir: ${parts.join('/')}`);
    }
    return path;
  }

  get manifest(): string {
    return this.inside('memex.json');
  }
  get lockFile(): string {
    return this.inside('memex.lock');
  }
  /** Deleted users and sessions are renamed here first, so a crash mid-delete never leaves half of one visible. */
  get trash(): string {
    return this.inside('.trash');
  }
  get users(): string {
    return this.inside('users');
  }
  user(userId: UserId): string {
    return this.inside('users', userId);
  }
  profile(userId: UserId): string {
    return this.inside('users', userId, 'profile.json');
  }
  sessionIndex(userId: UserId): string {
    return this.inside('users', userId, 'session_index.json');
  }
  /** Derived, rebuildable search index files (src/index); deleting the folder loses nothing. */
  searchIndex(userId: UserId): string {
    return this.inside('users', userId, 'index');
  }
  /** Long-term, cross-session notes about the user. */
  contextHistory(userId: UserId): string {
    return this.inside('users', userId, 'context_history.json');
  }
  personas(userId: UserId): string {
    return this.inside('users', userId, 'personas');
  }
  persona(userId: UserId, personaId: PersonaId): string {
    return this.inside('users', userId, 'personas', `${personaId}.json`);
  }
  sessions(userId: UserId): string {
    return this.inside('users', userId, 'sessions');
  }
  /** Imported conversations, apart from the sessions Memex records: `imported/<source>/<key>/`. */
  imported(userId: UserId, source?: ImportSource): string {
    return source === undefined ? this.inside('users', userId, 'imported') : this.inside('users', userId, 'imported', source);
  }
  /** Each import's record (flat-file/imports.ts); not a source name, so never taken for session folders. */
  importRecords(userId: UserId): string {
    return this.inside('users', userId, 'imported', 'manifests');
  }

  importJobs(userId: UserId): string {
    return this.inside('users', userId, 'imported', 'jobs');
  }
  /**
   * Archived sessions, outside the session folders: `archived/<sessionId>.tar.gz` (the session's
   * folder, compressed) beside `archived/<sessionId>.json` (its meta, so it stays listable).
   */
  archived(userId: UserId): string {
    return this.inside('users', userId, 'archived');
  }
  archive(userId: UserId, sessionId: SessionId): string {
    return this.inside('users', userId, 'archived', `${sessionId}.tar.gz`);
  }
  archivedMeta(userId: UserId, sessionId: SessionId): string {
    return this.inside('users', userId, 'archived', `${sessionId}.json`);
  }
  /** Every folder that holds session folders, each with how its folder names map to session ids. */
  sessionFolders(userId: UserId): { dir: string; idOf: (name: string) => string }[] {
    return [
      { dir: this.sessions(userId), idOf: (name) => name },
      ...IMPORT_SOURCES.map((source) => ({ dir: this.imported(userId, source), idOf: (name: string) => `${source}.${name}` })),
    ];
  }
  /** The folder a session's folder sits in (its siblings' parent), where a new one is staged. */
  sessionParent(userId: UserId, sessionId: SessionId): string {
    return this.inside(...this.sessionPath(userId, sessionId).slice(0, -1));
  }
  private sessionPath(userId: UserId, sessionId: SessionId): string[] {
    const imported = importedSessionParts(sessionId);
    return imported ? ['users', userId, 'imported', imported.source, imported.key] : ['users', userId, 'sessions', sessionId];
  }
  session(userId: UserId, sessionId: SessionId): string {
    return this.inside(...this.sessionPath(userId, sessionId));
  }
  sessionMeta(userId: UserId, sessionId: SessionId): string {
    return this.inside(...this.sessionPath(userId, sessionId), 'session_meta.json');
  }
  messages(userId: UserId, sessionId: SessionId): string {
    return this.inside(...this.sessionPath(userId, sessionId), 'messages.jsonl');
  }
  /** The session's folder, for files that live beside its messages (vector files, summary). */
  sessionFile(userId: UserId, sessionId: SessionId, name: 'vector_index.jsonl' | 'embeddings.npy' | 'vectors.swap.json' | 'summary.json' | 'trashed_messages.json'): string {
    return this.inside(...this.sessionPath(userId, sessionId), name);
  }
  files(userId: UserId, sessionId: SessionId): string {
    return this.inside(...this.sessionPath(userId, sessionId), 'files');
  }
  fileBlob(userId: UserId, sessionId: SessionId, fileId: FileId, ext: string): string {
    // A JSON document's bytes must not take its record's name (`<sha256>.json`): they overwrote it.
    return this.inside(...this.sessionPath(userId, sessionId), 'files', `${fileId}.${ext === 'json' ? 'data.json' : ext}`);
  }
  /** A file derived from a stored one (its extracted text, a thumbnail): `files/<sha256>.<name>`. */
  fileArtifact(userId: UserId, sessionId: SessionId, fileId: FileId, name: FileArtifactName): string {
    return this.inside(...this.sessionPath(userId, sessionId), 'files', `${fileId}.${name}`);
  }
  fileRecord(userId: UserId, sessionId: SessionId, fileId: FileId): string {
    return this.inside(...this.sessionPath(userId, sessionId), 'files', `${fileId}.json`);
  }
}
