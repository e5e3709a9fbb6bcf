import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { main } from '../../src/cli/main.js';

// The CLI as users run it: the real bin in a child process (`npm test` builds dist/ first).
export const BIN = fileURLToPath(new URL('../../bin/memex.js', import.meta.url));

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Standard input; the run then happens in a child process. */
  input?: string;
  /** Close our end of the child's stdout at once, as `| head` does once it has read enough. */
  closeStdout?: boolean;
  /** Run the real bin in a child process even when nothing else asks for one. */
  child?: boolean;
}

/** What every run sees: no data dir or config file of the machine's, only what the test names. */
const BASE_ENV = { MEMEX_DATA_DIR: '', MEMEX_CONFIG: '' };

/** Starts the CLI without waiting for it (say, `memex serve`). */
export function spawnMemex(args: string[], options: RunOptions = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...BASE_ENV, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** The bin in a child process: exit codes, standard input and output as a shell sees them. */
export function memexChild(args: string[], options: RunOptions = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawnMemex(args, options);
    let stdout = '';
    let stderr = '';
    if (options.closeStdout) child.stdout.destroy();
    else child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

let turn: Promise<unknown> = Promise.resolve();

/**
 * The CLI's `main` (what the bin calls) in this process, with the run's environment and working
 * directory for its duration. A child costs about 1.5 s here (0.5 s of imports, 1 s to load the
 * model); in this process the model loads once. Runs take turns: the environment is the process's.
 */
function memexHere(args: string[], options: RunOptions): Promise<Run> {
  const run = turn.then(async () => {
    const env = { ...BASE_ENV, ...options.env };
    const saved = Object.entries(env).map(([name]) => [name, process.env[name]] as const);
    const cwd = process.cwd();
    const set = (name: string, value: string | undefined): void => {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    };
    for (const [name, value] of Object.entries(env)) set(name, value);
    if (options.cwd) process.chdir(options.cwd);
    const out = new Capture();
    const err = new Capture();
    try {
      const code = await main(args, { out, err });
      return { code, stdout: out.text, stderr: err.text };
    } finally {
      process.chdir(cwd);
      for (const [name, value] of saved) set(name, value);
    }
  });
  turn = run.catch(() => undefined);
  return run;
}

/** Runs the CLI: in this process unless the run needs a child of its own (see `RunOptions`). */
export function memex(args: string[], options: RunOptions = {}): Promise<Run> {
  const child = options.child === true || options.input !== undefined || options.closeStdout === true;
  return child ? memexChild(args, options) : memexHere(args, options);
}

export async function json<T = Record<string, unknown>>(args: string[], options?: RunOptions): Promise<T> {
  const run = await memex([...args, '--json'], options);
  expect(run.stderr, run.stderr).toBe('');
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as T;
}
