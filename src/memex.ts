import {
  isMemexError,
  loadConfig,
  type Config,
  type ConfigInput,
  type FileRecord,
  type Message,
  type NewMessage,
  type NewPersona,
  type NewSession,
  type NewUser,
  type PageOptions,
  type Persona,
  type PersonaPatch,
  type Profile,
  type ProfilePatch,
  type SessionPatch,
  type SessionSummary,
} from './core/index.js';
import {
  exportSession,
  FlatFileStore,
  type ExportFormat,
  type ListOptions,
  type MessagePage,
  type PutFileInput,
  type PutFileResult,
  type SessionPage,
  type Store,
  type StoreWarning,
} from './store/index.js';

export interface MemexOptions {
  /** Shorthand for `config.dataDir`. */
  dataDir?: string;
  /** Settings that win over the config file and the environment. */
  config?: Partial<ConfigInput>;
  /** A config file to read instead of MEMEX_CONFIG / ./memex.config.json. */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Repairs and unreadable files the store reports; defaults to process.emitWarning. */
  onWarning?: (warning: StoreWarning) => void;
}

/**
 * The library facade: one object per data dir, grouped the way callers think (users, sessions,
 * messages, personas, files). The HTTP server and the CLI are thin shells over this class.
 *
 * ```ts
 * const memex = await Memex.open({ dataDir: './memex-data' });
 * await memex.users.ensure('alice');
 * const session = await memex.sessions.create('alice', { title: 'Trip planning' });
 * await memex.messages.append('alice', session.id, { role: 'user', content: 'Book Lisbon for May' });
 * await memex.close();
 * ```
 */
export class Memex {
  private constructor(
    readonly config: Config,
    private readonly store: Store,
  ) {}

  static async open(options: MemexOptions = {}): Promise<Memex> {
    const config = loadConfig({
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(options.configFile ? { file: options.configFile } : {}),
      overrides: { ...options.config, ...(options.dataDir ? { dataDir: options.dataDir } : {}) },
    });
    const store = await FlatFileStore.open({
      dataDir: config.dataDir,
      fsync: config.fsync,
      lockTimeoutMs: config.lockTimeoutMs,
      limits: config.limits,
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    });
    return new Memex(config, store);
  }

  /** Waits for work in flight, then releases the data dir for other processes. */
  close(): Promise<void> {
    return this.store.close();
  }

  readonly users = {
    create: (input: NewUser): Promise<Profile> => this.store.createUser(input),
    get: (userId: string): Promise<Profile> => this.store.getUser(userId),
    /** The user, created with defaults if missing: what a single-user app wants. */
    ensure: async (userId: string): Promise<Profile> => {
      try {
        return await this.store.getUser(userId);
      } catch (cause) {
        if (!isMemexError(cause, 'MEMEX_USER_NOT_FOUND')) throw cause;
        return this.store.createUser({ id: userId }).catch(async (inner: unknown) => {
          if (isMemexError(inner, 'MEMEX_USER_EXISTS')) return this.store.getUser(userId);
          throw inner;
        });
      }
    },
    list: (): Promise<Profile[]> => this.store.listUsers(),
    update: (userId: string, patch: ProfilePatch): Promise<Profile> => this.store.updateUser(userId, patch),
    delete: (userId: string): Promise<void> => this.store.deleteUser(userId),
  };

  readonly sessions = {
    create: (userId: string, input?: NewSession): Promise<SessionSummary> => this.store.createSession(userId, input),
    get: (userId: string, sessionId: string): Promise<SessionSummary> => this.store.getSession(userId, sessionId),
    list: (userId: string, options?: ListOptions): Promise<SessionPage> => this.store.listSessions(userId, options),
    rename: (userId: string, sessionId: string, title: string): Promise<SessionSummary> => this.store.updateSession(userId, sessionId, { title }),
    update: (userId: string, sessionId: string, patch: SessionPatch): Promise<SessionSummary> => this.store.updateSession(userId, sessionId, patch),
    delete: (userId: string, sessionId: string): Promise<void> => this.store.deleteSession(userId, sessionId),
    /** The session as a JSON or Markdown document, in pieces. */
    export: (userId: string, sessionId: string, format: ExportFormat, options?: { signal?: AbortSignal }): AsyncIterable<string> =>
      exportSession(this.store, userId, sessionId, format, options),
  };

  readonly messages = {
    append: async (userId: string, sessionId: string, message: NewMessage): Promise<Message> => {
      const [written] = await this.store.appendMessages(userId, sessionId, [message]);
      return written as Message;
    },
    appendMany: (userId: string, sessionId: string, messages: readonly NewMessage[]): Promise<Message[]> =>
      this.store.appendMessages(userId, sessionId, messages),
    list: (userId: string, sessionId: string, page?: PageOptions): Promise<MessagePage> => this.store.listMessages(userId, sessionId, page),
    get: (userId: string, sessionId: string, messageId: string): Promise<Message> => this.store.getMessage(userId, sessionId, messageId),
    stream: (userId: string, sessionId: string, options?: { signal?: AbortSignal }): AsyncIterable<Message> =>
      this.store.streamMessages(userId, sessionId, options),
  };

  readonly personas = {
    create: (userId: string, input: NewPersona): Promise<Persona> => this.store.createPersona(userId, input),
    get: (userId: string, personaId: string): Promise<Persona> => this.store.getPersona(userId, personaId),
    list: (userId: string): Promise<Persona[]> => this.store.listPersonas(userId),
    update: (userId: string, personaId: string, patch: PersonaPatch): Promise<Persona> => this.store.updatePersona(userId, personaId, patch),
    delete: (userId: string, personaId: string): Promise<void> => this.store.deletePersona(userId, personaId),
  };

  readonly files = {
    put: (userId: string, sessionId: string, input: PutFileInput): Promise<PutFileResult> => this.store.putFile(userId, sessionId, input),
    get: (userId: string, sessionId: string, fileId: string): Promise<FileRecord> => this.store.getFile(userId, sessionId, fileId),
    list: (userId: string, sessionId: string): Promise<FileRecord[]> => this.store.listFiles(userId, sessionId),
    read: (userId: string, sessionId: string, fileId: string): Promise<AsyncIterable<Uint8Array>> => this.store.readFile(userId, sessionId, fileId),
  };
}
