import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

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
  input?: string;
  /** Close our end of the child's stdout at once, as `| head` does once it has read enough. */
  closeStdout?: boolean;
}

/** Starts the CLI without waiting for it (say, `memex serve`). */
export function spawnMemex(args: string[], options: RunOptions = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: { ...process.env, MEMEX_DATA_DIR: '', MEMEX_CONFIG: '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export function memex(args: string[], options: RunOptions = {}): Promise<Run> {
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

export async function json<T = Record<string, unknown>>(args: string[], options?: RunOptions): Promise<T> {
  const run = await memex([...args, '--json'], options);
  expect(run.stderr, run.stderr).toBe('');
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as T;
}
