import { toMemexError } from './core/index.js';
import type { Recall } from './index/index.js';
import type { MessageIndexer, SessionRef } from './ingest/index.js';
import type { Store } from './store/index.js';

/** What `doctor` found: `repaired` was fixed (derived data only), `problem` needs a person, `note` is worth knowing. */
export interface DoctorFinding {
  severity: 'repaired' | 'problem' | 'note';
  /** `data dir`, a user id, or `<user>/<session>`. */
  where: string;
  what: string;
}

export interface DoctorReport {
  /** True when nothing is left for a person to fix. */
  ok: boolean;
  users: number;
  sessions: number;
  messages: number;
  rows: number;
  findings: DoctorFinding[];
}

export interface DoctorProgress {
  phase: 'sessions' | 'index';
  userId: string;
  done: number;
  total: number;
}

export interface DoctorOptions {
  /** Only this user (default: every user). */
  userId?: string;
  /** Build each index from the session files even when it loads fine. */
  rebuildIndex?: boolean;
  onProgress?: (progress: DoctorProgress) => void;
}

export interface DoctorParts {
  store: Store;
  recall: Recall;
  indexer: MessageIndexer;
  /** Embeds again the chunks of a session's ingested files whose rows were lost. */
  repairFiles(ref: SessionRef): Promise<{ files: number; chunks: number }>;
  /** Calls `listener` with every warning raised while `work` runs (repairs made on open, rebuilds). */
  tap<T>(listener: (finding: DoctorFinding) => void, work: () => Promise<T>): Promise<T>;
}

/**
 * First repairs what reading would skip or hide (`Store.repair`: an unreadable profile, a missing
 * or unreadable session meta, log lines that are not messages). Then reads every session of every
 * user (or one), which repairs what opening repairs (torn log lines, stale counts, vector files
 * that disagree), embeds messages and ingested files left without rows, and loads, syncs and
 * checks each user's search index, rebuilding it when it is missing, corrupt or inconsistent. What it
 * cannot fix (an unreadable session, a foreign model) is reported with what to do.
 */
export async function doctor(parts: DoctorParts, options: DoctorOptions = {}): Promise<DoctorReport> {
  const { store, recall, indexer } = parts;
  const report: DoctorReport = { ok: true, users: 0, sessions: 0, messages: 0, rows: 0, findings: [] };
  const add = (finding: DoctorFinding): void => {
    report.findings.push(finding);
  };
  // Before listing: a user or session hidden by a broken file is listed once it is repaired. What
  // opening the sessions repairs here (a torn line, stale counts) is reported; what it skips, `repair` reports itself.
  const reportRepairs = (finding: DoctorFinding): void => {
    if (finding.severity !== 'problem') add(finding);
  };
  await parts.tap(reportRepairs, async () => {
    for (const finding of await store.repair(options.userId !== undefined ? { userId: options.userId } : {})) add(finding);
  });
  const users = options.userId ? [options.userId] : (await store.listUsers()).map((user) => user.id);
  for (const userId of users) {
    report.users++;
    await parts.tap(add, async () => {
      const sessions = [];
      for (let offset = 0; ; ) {
        // Archived sessions are checked when they are unarchived: their content is in the archive.
        const page = await store.listSessions(userId, { limit: 1000, offset, archived: 'exclude', trashed: 'include' });
        sessions.push(...page.sessions);
        for (const broken of page.unreadable) {
          add({ severity: 'problem', where: `${userId}/${broken.sessionId}`, what: `unreadable (${broken.code}): ${broken.message}` });
        }
        offset += page.sessions.length;
        if (page.sessions.length === 0 || offset >= page.total) break;
      }
      let rows = 0;
      for (const [i, session] of sessions.entries()) {
        const where = `${userId}/${session.id}`;
        try {
          const pending = await store.unembeddedMessages(userId, session.id, { limit: 1 });
          if (pending.length > 0) {
            const { messages, chunks } = await indexer.indexSession({ userId, sessionId: session.id });
            add({ severity: 'repaired', where, what: `embedded ${messages} messages left without vector rows (${chunks} chunks)` });
          }
          const files = await parts.repairFiles({ userId, sessionId: session.id });
          if (files.files > 0) add({ severity: 'repaired', where, what: `embedded again the text of ${files.files} ingested file(s) that had lost their vector rows (${files.chunks} chunks)` });
          // The search index leaves sessions in the trash out; their rows are kept for a restore.
          if (session.trashedAt === null) rows += (await store.vectorStatus(userId, session.id)).rows;
          report.messages += session.messageCount;
          report.sessions++;
        } catch (cause) {
          const error = toMemexError(cause);
          add({ severity: 'problem', where, what: `${error.code}: ${error.message}` });
        }
        options.onProgress?.({ phase: 'sessions', userId, done: i + 1, total: sessions.length });
      }
      report.rows += rows;
      const onProgress = (p: { done: number; total: number }): void => options.onProgress?.({ phase: 'index', userId, done: p.done, total: p.total });
      try {
        let status = options.rebuildIndex ? await recall.rebuild(userId, { onProgress }) : await recall.prepare(userId, { onProgress });
        if (options.rebuildIndex) add({ severity: 'repaired', where: userId, what: `rebuilt the search index as asked (${status.rows} rows)` });
        if (status.rows !== rows) {
          const held = status.rows;
          status = await recall.rebuild(userId, { onProgress });
          add({ severity: 'repaired', where: userId, what: `the search index held ${held} rows of ${rows}; rebuilt it (${status.rows} rows)` });
        }
      } catch (cause) {
        const error = toMemexError(cause);
        add({ severity: 'problem', where: userId, what: `search index: ${error.code}: ${error.message}` });
      }
    });
  }
  report.ok = report.findings.every((finding) => finding.severity !== 'problem');
  return report;
}
