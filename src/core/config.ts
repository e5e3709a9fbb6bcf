import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { MemexError } from './errors.js';

/**
 * Configuration, parsed once with defaults, then frozen. Sources, later ones winning:
 * defaults < config file (`MEMEX_CONFIG`, else `./memex.config.json` when present) < environment
 * (`MEMEX_DATA_DIR`, `MEMEX_FSYNC`, `MEMEX_LOCK_TIMEOUT_MS`) < explicit overrides (CLI flags, library options).
 */
export const FSYNC_POLICIES = ['always', 'group', 'none'] as const;
export type FsyncPolicy = (typeof FSYNC_POLICIES)[number];

export const ConfigSchema = z.strictObject({
  /** Where the flat-file store keeps everything. Relative paths resolve against the working directory. */
  dataDir: z.string().min(1).default('./memex-data'),
  /**
   * When appended messages and written JSON reach the disk (see README "Durability"):
   * - `always`: every write is fsynced before its promise resolves; one fsync per write.
   * - `group` (default): the same promise as `always` (a resolved append survives power loss), but
   *   concurrent appends to one file share an fsync, so many writers cost about one fsync each round.
   * - `none`: never fsync; a resolved write survives a crash of the process, not of the machine.
   */
  fsync: z.enum(FSYNC_POLICIES).default('group'),
  /**
   * How long opening a data dir waits for another process's lock before MEMEX_DATA_DIR_LOCKED.
   * Short CLI commands take turns inside this window; a long-running server makes others fail fast after it.
   */
  lockTimeoutMs: z.number().int().min(0).max(600_000).default(5_000),
  limits: z
    .strictObject({
      /** Largest message content accepted, in characters. */
      maxMessageChars: z.number().int().positive().default(1_000_000),
      /** Largest file accepted into a session, in bytes; checked while streaming, before anything is kept. */
      maxFileBytes: z.number().int().positive().default(100 * 1024 * 1024),
    })
    .prefault({}),
});

export type Config = Readonly<Omit<z.output<typeof ConfigSchema>, 'limits'> & { limits: Readonly<z.output<typeof ConfigSchema>['limits']> }>;
export type ConfigInput = z.input<typeof ConfigSchema>;

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** A config file to read instead of MEMEX_CONFIG / ./memex.config.json. */
  file?: string;
  overrides?: Partial<ConfigInput>;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new MemexError('MEMEX_CONFIG_INVALID', `cannot read config file ${path}`, { cause, details: { path } });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Record<string, unknown>;
  } catch (cause) {
    throw new MemexError('MEMEX_CONFIG_INVALID', `config file ${path} is not a JSON object`, { cause, details: { path } });
  }
}

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (env.MEMEX_DATA_DIR) out.dataDir = env.MEMEX_DATA_DIR;
  if (env.MEMEX_FSYNC) out.fsync = env.MEMEX_FSYNC;
  if (env.MEMEX_LOCK_TIMEOUT_MS) out.lockTimeoutMs = Number(env.MEMEX_LOCK_TIMEOUT_MS);
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicitFile = options.file ?? env.MEMEX_CONFIG;
  const file = explicitFile ? resolve(cwd, explicitFile) : resolve(cwd, 'memex.config.json');
  const fromFile = explicitFile || existsSync(file) ? readConfigFile(file) : {};
  const fileLimits = (fromFile.limits ?? {}) as Record<string, unknown>;
  const overrideLimits = (options.overrides?.limits ?? {}) as Record<string, unknown>;
  const merged = {
    ...fromFile,
    ...fromEnv(env),
    ...options.overrides,
    limits: { ...fileLimits, ...overrideLimits },
  };
  const result = ConfigSchema.safeParse(merged);
  if (!result.success) {
    const summary = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new MemexError('MEMEX_CONFIG_INVALID', `invalid configuration: ${summary}`, {
      cause: result.error,
      details: { file: explicitFile || existsSync(file) ? file : null },
    });
  }
  return deepFreeze({ ...result.data, dataDir: resolve(cwd, result.data.dataDir) });
}
