import { Command, CommanderError, Option } from 'commander';
import { ConfigSchema, loadConfig, memexVersion, toMemexError, type Config, type MemexError } from '../core/index.js';
import { Memex, describeWarning, type MemexOptions } from '../memex.js';
import type { MemexApi } from './api.js';
import { registerCommands } from './commands.js';
import { CLI_LOCK_WAIT_MS, openOrConnect } from './connect.js';
import type { Io } from './output.js';

export interface GlobalOptions {
  dataDir?: string;
  user: string;
  json: boolean;
  config?: string;
  databaseUrl?: string;
}

/** What each command gets: its output, and the data dir opened on first use and closed after. */
export interface Context {
  io: Io;
  user: string;
  /** True when --user was not given: the `default` user is then created on demand. */
  defaultUser: boolean;
  /**
   * The data dir, opened on first use: over HTTP when a `memex serve` owns it, else the library.
   * `allowModelMismatch` only for `reindex` and `doctor`, which exist to fix one.
   */
  memex(options?: { allowModelMismatch?: boolean }): Promise<MemexApi>;
  /** The library itself, never a server (for `memex serve`). */
  library(): Promise<Memex>;
  /** The configuration, without opening the data dir (for commands that work beside a running server). */
  config(): Config;
  /** For a command that finished but has bad news (say, `doctor` found problems). */
  setExitCode(code: number): void;
}


const DEFAULT_LOCK_TIMEOUT_MS = ConfigSchema.shape.lockTimeoutMs.parse(undefined);

function reportError(io: Io, error: MemexError): void {
  if (io.json) {
    io.err.write(`${JSON.stringify({ error: error.toJSON() })}\n`);
  } else {
    io.err.write(`memex: ${error.code}: ${error.message}\n  ${error.hint}\n`);
  }
}

/** Runs the CLI with `argv` (without node and the script) and returns the exit code. */
export async function main(argv: string[], streams: { out?: NodeJS.WritableStream; err?: NodeJS.WritableStream } = {}): Promise<number> {
  const io: Io = { out: (streams.out ?? process.stdout) as Io['out'], err: (streams.err ?? process.stderr) as Io['err'], json: false };
  let opened: MemexApi | null = null;
  let exitCode = 0;
  // A reader that stopped reading (`memex export | head`) is not an error: the command ends quietly.
  let outClosed = false;
  const onOutError = (error: NodeJS.ErrnoException): void => {
    // Anything else surfaces as the failed write's own error, in the command.
    if (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED') outClosed = true;
  };
  io.out.on('error', onOutError);

  const program = new Command('memex')
    .description('Local-first semantic memory for AI chat assistants: users, sessions and messages in plain files.')
    .version(memexVersion(), '-V, --version')
    .addOption(new Option('--data-dir <path>', 'data dir (default: $MEMEX_DATA_DIR or ./memex-data)'))
    .addOption(new Option('--database-url <url>', 'use PostgreSQL with pgvector instead of a data dir (default: $MEMEX_DATABASE_URL)'))
    .addOption(new Option('-u, --user <id>', 'user to act as').default('default'))
    .addOption(new Option('--json', 'print machine-readable JSON').default(false))
    .addOption(new Option('--config <file>', 'config file (default: $MEMEX_CONFIG or ./memex.config.json)'))
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.out.write(text),
      writeErr: (text) => io.err.write(text),
    });

  const context = (command: Command): Context => {
    const options = command.optsWithGlobals<GlobalOptions>();
    io.json = options.json;
    const overrides = {
      ...(options.dataDir ? { dataDir: options.dataDir } : {}),
      ...(options.databaseUrl ? { store: { kind: 'postgres' as const, url: options.databaseUrl } } : {}),
    };
    const configOf = (): Config =>
      loadConfig({
        ...(options.config ? { file: options.config } : {}),
        overrides,
      });
    const libraryOptions = (): MemexOptions => ({
      ...(options.dataDir ? { dataDir: options.dataDir } : {}),
      ...(options.databaseUrl ? { config: { store: overrides.store } } : {}),
      ...(options.config ? { configFile: options.config } : {}),
      onWarning: (warning) => io.err.write(`memex: warning: ${describeWarning(warning)}\n`),
    });
    return {
      io,
      user: options.user,
      defaultUser: command.getOptionValueSourceWithGlobals('user') === 'default',
      memex: async (extra = {}) => {
        if (opened) return opened;
        const config = configOf();
        // An explicit lockTimeoutMs (config or MEMEX_LOCK_TIMEOUT_MS) is obeyed; else CLI commands take turns patiently.
        const explicit = process.env.MEMEX_LOCK_TIMEOUT_MS !== undefined && process.env.MEMEX_LOCK_TIMEOUT_MS !== '';
        const lockWaitMs = explicit || config.lockTimeoutMs !== DEFAULT_LOCK_TIMEOUT_MS ? config.lockTimeoutMs : CLI_LOCK_WAIT_MS;
        opened = await openOrConnect(config, { ...extra, ...libraryOptions(), lockWaitMs, user: options.user });
        return opened;
      },
      library: async () => {
        const memex = await Memex.open(libraryOptions());
        opened = memex;
        return memex;
      },
      config: configOf,
      setExitCode: (code) => {
        exitCode = code;
      },
    };
  };

  registerCommands(program, context);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (cause) {
    if (cause instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return cause.exitCode === 0 ? 0 : 2;
    }
    if (outClosed) return exitCode;
    const error = toMemexError(cause);
    reportError(io, error);
    // Usage mistakes found after parsing (say, a missing --yes) exit like commander's own: 2.
    return error.code === 'MEMEX_INTERNAL' ? 70 : error.code === 'MEMEX_USAGE' ? 2 : 1;
  } finally {
    await (opened as MemexApi | null)?.close();
  }
}
