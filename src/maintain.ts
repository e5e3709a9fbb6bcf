import { parseId, toMemexError, type Config, type MemexErrorCode, type RetentionAction, type SessionSummary } from './core/index.js';
import type { MessagePage, SessionPage } from './store/index.js';

/** The retention policies of the config (`retention`), by name. */
export type RetentionPolicy = 'maxAgeDays' | 'maxSessionsPerUser' | 'maxMessagesPerSession';

export interface MaintainOptions {
  /** Work out and report what the policies would do, changing nothing. */
  dryRun?: boolean;
  /** The clock the policies measure age against (default: now); tests pass a fake one. */
  now?: Date;
  /** Only this user (default: every user). */
  userId?: string;
}

/** One thing a policy does to one session. */
export interface MaintenanceAction {
  userId: string;
  sessionId: string;
  title: string | null;
  policy: RetentionPolicy;
  action: RetentionAction;
  /** `maxMessagesPerSession` with `trash`: how many of the oldest messages go; null when the action is on the whole session. */
  messages: number | null;
  /** Why, in words: "last active 2025-01-02, more than 90 days ago". */
  reason: string;
  /** `planned` in a dry run; `done` or `failed` (with its error) otherwise. */
  status: 'planned' | 'done' | 'failed';
  error: { code: MemexErrorCode; message: string } | null;
}

export interface MaintenanceReport {
  dryRun: boolean;
  now: string;
  users: number;
  sessionsSeen: number;
  actions: MaintenanceAction[];
  /** What had been in the trash longer than `trash.retentionDays` and was deleted for good (not on a dry run). */
  purged: { sessions: number; messages: number };
}

/** What maintenance asks of the library (the facade provides it), so this module knows no backend. */
export interface MaintainParts {
  retention: Config['retention'];
  listUsers(): Promise<{ id: string }[]>;
  listSessions(userId: string, options: { limit: number; offset: number }): Promise<SessionPage>;
  listMessages(userId: string, sessionId: string, page: { limit: number }): Promise<MessagePage>;
  archive(userId: string, sessionId: string, now: Date): Promise<unknown>;
  /** The library's session delete without purge: to the trash. */
  trashSession(userId: string, sessionId: string): Promise<void>;
  trashMessage(userId: string, sessionId: string, messageId: string): Promise<void>;
  /** Empties what has been in the user's trash longer than `trash.retentionDays` at `now`. */
  purgeExpiredTrash(userId: string, now: Date): Promise<{ sessions: unknown[]; messages: unknown[] }>;
}

const DAY_MS = 86_400_000;
const PAGE = 1000;

/**
 * Applies the retention policies: first works out the whole plan for each user (so one policy sees
 * what an earlier one did: a session trashed for its age is not counted again), then, unless
 * `dryRun`, carries it out action by action. A failed action (a session deleted meanwhile) is
 * reported and the rest go on.
 */
export async function maintain(parts: MaintainParts, options: MaintainOptions = {}): Promise<MaintenanceReport> {
  const now = options.now ?? new Date();
  const dryRun = options.dryRun ?? false;
  const users = options.userId !== undefined ? [{ id: parseId('user', options.userId) as string }] : await parts.listUsers();
  const actions: MaintenanceAction[] = [];
  let sessionsSeen = 0;
  const purged = { sessions: 0, messages: 0 };
  for (const user of users) {
    const sessions = await allSessions(parts, user.id);
    sessionsSeen += sessions.length;
    const planned = plan(parts.retention, user.id, sessions, now);
    for (const action of planned) {
      if (!dryRun) await carryOut(parts, action, now);
      actions.push(action);
    }
    if (!dryRun) {
      const gone = await parts.purgeExpiredTrash(user.id, now);
      purged.sessions += gone.sessions.length;
      purged.messages += gone.messages.length;
    }
  }
  return { dryRun, now: now.toISOString(), users: users.length, sessionsSeen, actions, purged };
}

function activity(session: SessionSummary): string {
  return session.lastMessageAt ?? session.createdAt;
}

/** The plan for one user's sessions, in the order the policies run: age, then count, then size. */
export function plan(retention: Config['retention'], userId: string, sessions: readonly SessionSummary[], now: Date): MaintenanceAction[] {
  const out: MaintenanceAction[] = [];
  const trashed = new Set<string>();
  const archived = new Set(sessions.filter((s) => s.archivedAt !== null).map((s) => s.id));
  const act = (session: SessionSummary, policy: RetentionPolicy, action: RetentionAction, reason: string, messages: number | null = null): void => {
    // Archiving is a decision to keep: the trash action passes archived sessions by.
    if (action === 'trash' && archived.has(session.id)) return;
    out.push({ userId, sessionId: session.id, title: session.title, policy, action, messages, reason, status: 'planned', error: null });
    if (messages !== null) return;
    if (action === 'trash') trashed.add(session.id);
    else archived.add(session.id);
  };
  const age = retention.maxAgeDays;
  if (age) {
    const cutoff = new Date(now.getTime() - age.limit * DAY_MS).toISOString();
    for (const session of sessions) {
      if (activity(session) >= cutoff || trashed.has(session.id)) continue;
      if (age.action === 'archive' && archived.has(session.id)) continue;
      act(session, 'maxAgeDays', age.action, `last active ${activity(session)}, more than ${age.limit} days before ${now.toISOString()}`);
    }
  }
  const count = retention.maxSessionsPerUser;
  if (count) {
    // Most recently active first (ties: the newer id), the order listings use.
    const ranked = sessions
      .filter((s) => !trashed.has(s.id) && (count.action === 'trash' || !archived.has(s.id)))
      .sort((a, b) => activity(b).localeCompare(activity(a)) || b.id.localeCompare(a.id));
    for (const session of ranked.slice(count.limit)) {
      act(session, 'maxSessionsPerUser', count.action, `past the ${count.limit} most recently active ${count.action === 'archive' ? 'live ' : ''}sessions of user ${userId}`);
    }
  }
  const size = retention.maxMessagesPerSession;
  if (size) {
    for (const session of sessions) {
      if (trashed.has(session.id) || archived.has(session.id) || session.messageCount <= size.limit) continue;
      const over = session.messageCount - size.limit;
      if (size.action === 'archive') act(session, 'maxMessagesPerSession', 'archive', `${session.messageCount} messages, more than ${size.limit}`);
      else act(session, 'maxMessagesPerSession', 'trash', `${session.messageCount} messages, more than ${size.limit}: the oldest ${over} go`, over);
    }
  }
  return out;
}

async function carryOut(parts: MaintainParts, action: MaintenanceAction, now: Date): Promise<void> {
  try {
    if (action.messages !== null) await trimOldest(parts, action.userId, action.sessionId, action.messages);
    else if (action.action === 'archive') await parts.archive(action.userId, action.sessionId, now);
    else await parts.trashSession(action.userId, action.sessionId);
    action.status = 'done';
  } catch (cause) {
    const error = toMemexError(cause);
    action.status = 'failed';
    action.error = { code: error.code, message: error.message };
  }
}

/** Deletes the session's `count` oldest messages (to the trash once message trash exists). */
async function trimOldest(parts: MaintainParts, userId: string, sessionId: string, count: number): Promise<void> {
  for (let left = count; left > 0; ) {
    const page = await parts.listMessages(userId, sessionId, { limit: Math.min(left, PAGE) });
    if (page.messages.length === 0) return;
    for (const message of page.messages) await parts.trashMessage(userId, sessionId, message.id);
    left -= page.messages.length;
  }
}

async function allSessions(parts: MaintainParts, userId: string): Promise<SessionSummary[]> {
  const sessions: SessionSummary[] = [];
  for (let offset = 0; ; ) {
    const page = await parts.listSessions(userId, { limit: PAGE, offset });
    sessions.push(...page.sessions);
    offset += page.sessions.length;
    if (page.sessions.length === 0 || offset >= page.total) return sessions;
  }
}
