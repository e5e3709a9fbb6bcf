import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { loadConfig, toMemexError, type Config, type MemexError } from '../core/index.js';
import { Memex, describeWarning } from '../memex.js';
import { registerCommands } from './commands.js';
import type { Io } from './output.js';

export interface GlobalOptions {
  dataDir?: string;
  user: string;
  json: boolean;
  config?: string;
}

/** What each command gets: its output, and the data dir opened on first use and closed after. */
export interface Context {
  io: Io;
  user: string;
  /** True when --user was not given: the `default` user is then created on demand. */
  defaultUser: boolean;
  /** `allowModelMismatch` only for `reindex`, which exists to fix one. */
  memex(options?: { allowModelMismatch?: boolean }): Promise<Memex>;
  /** The configuration, without opening the data dir (for commands that work beside a running server). */
  config(): Config;
  /** For a command that finished but has bad news (say, `doctor` found problems). */
  setExitCode(code: number): void;
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

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
  let opened: Memex | null = null;
  let exitCode = 0;

  const program = new Command('memex')
    .description('Local-first semantic memory for AI chat assistants: users, sessions and messages in plain files.')
    .version(version(), '-V, --version')
    .addOption(new Option('--data-dir <path>', 'data dir (default: $MEMEX_DATA_DIR or ./memex-data)'))
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
    return {
      io,
      user: options.user,
      defaultUser: command.getOptionValueSourceWithGlobals('user') === 'default',
      memex: async (extra = {}) => {
        opened ??= await Memex.open({
          ...extra,
          ...(options.dataDir ? { dataDir: options.dataDir } : {}),
          ...(options.config ? { configFile: options.config } : {}),
          onWarning: (warning) => io.err.write(`memex: warning: ${describeWarning(warning)}\n`),
        });
        return opened;
      },
      config: () =>
        loadConfig({
          ...(options.config ? { file: options.config } : {}),
          overrides: options.dataDir ? { dataDir: options.dataDir } : {},
        }),
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
    const error = toMemexError(cause);
    reportError(io, error);
    return error.code === 'MEMEX_INTERNAL' ? 70 : 1;
  } finally {
    await (opened as Memex | null)?.close();
  }
}
