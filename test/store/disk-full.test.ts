import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlatFileStore } from '../../src/store/index.js';
import { expectCode } from '../helpers/errors.js';

/**
 * A real full disk: a small tmpfs mounted for the test. Mounting needs root (or CAP_SYS_ADMIN);
 * where the machine does not allow it, the test says so and is skipped.
 */
let mountPoint: string | null = null;
let skipReason = '';

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'memex-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { stdio: 'pipe' });
    mountPoint = dir;
  } catch (cause) {
    skipReason = `skipped: cannot mount a tmpfs here (${String((cause as Error).message).split('\n')[0]}); run as root to test a real full disk`;
    process.stderr.write(`memex tests: ${skipReason}\n`);
  }
});

afterAll(async () => {
  if (mountPoint) {
    execFileSync('umount', ['-l', mountPoint], { stdio: 'pipe' });
    await rm(mountPoint, { recursive: true, force: true });
  }
});

/** Fills the file system at `dir` with one file until it refuses more; returns that file. */
async function fill(dir: string): Promise<string> {
  const filler = join(dir, 'filler');
  const block = Buffer.alloc(64 * 1024, 0x61);
  const { open } = await import('node:fs/promises');
  const handle = await open(filler, 'w');
  try {
    for (;;) await handle.write(block);
  } catch {
    // ENOSPC: the disk is full.
  } finally {
    await handle.close();
  }
  return filler;
}

describe('a full disk', () => {
  it('a failed append leaves the session log as it was, and the next append works (regression: glued partial line, session corrupt for good)', async (context) => {
    if (!mountPoint) return context.skip(skipReason);
    const dataDir = join(mountPoint, 'data');
    await mkdir(dataDir);
    const store = await FlatFileStore.open({ dataDir, fsync: 'group', lockTimeoutMs: 1000 });
    try {
      await store.createUser({ id: 'alice' });
      const session = await store.createSession('alice');
      await store.appendMessages('alice', session.id, [{ role: 'user', content: 'before the disk filled' }]);
      const logPath = join(dataDir, 'users', 'alice', 'sessions', session.id, 'messages.jsonl');
      const before = await readFile(logPath);

      const filler = await fill(mountPoint);
      // Room for part of a line, not all of it: the write is torn by ENOSPC.
      await writeFile(filler, (await readFile(filler)).subarray(0, (await readFile(filler)).length - 8 * 1024));
      await expectCode(store.appendMessages('alice', session.id, [{ role: 'user', content: 'x'.repeat(64 * 1024) }]), 'MEMEX_DISK_FULL');
      expect(await readFile(logPath)).toEqual(before);

      await rm(filler);
      await store.appendMessages('alice', session.id, [{ role: 'assistant', content: 'after space came back' }]);
      const page = await store.listMessages('alice', session.id);
      expect(page.messages.map((m) => m.content)).toEqual(['before the disk filled', 'after space came back']);
    } finally {
      await store.close();
    }
    const again = await FlatFileStore.open({ dataDir, fsync: 'group', lockTimeoutMs: 1000 });
    try {
      const sessions = await again.listSessions('alice');
      const [only] = sessions.sessions;
      expect(only?.messageCount).toBe(2);
      expect((await again.listMessages('alice', only?.id ?? '')).messages).toHaveLength(2);
    } finally {
      await again.close();
    }
  });
});
