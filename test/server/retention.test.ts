import type { FastifyBaseLogger } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { Memex } from '../../src/index.js';
import { scheduleRetention } from '../../src/server/retention.js';

/** A fake Memex for the scheduler alone (the real one runs in archive.test.ts): its maintain fails. */
function fakeMemex(retention: Record<string, unknown>, maintain: () => Promise<unknown>): Memex {
  return { config: { retention: { intervalMs: 10, maxAgeDays: null, maxSessionsPerUser: null, maxMessagesPerSession: null, ...retention } }, maintain } as unknown as Memex;
}

function recordingLog(): { log: FastifyBaseLogger; errors: unknown[] } {
  const errors: unknown[] = [];
  const log = { info: () => undefined, warn: () => undefined, error: (entry: unknown) => errors.push(entry) } as unknown as FastifyBaseLogger;
  return { log, errors };
}

describe('the retention schedule', () => {
  it('logs a failed run and keeps running (a failure never reaches the process)', async () => {
    let calls = 0;
    const { log, errors } = recordingLog();
    const schedule = scheduleRetention(fakeMemex({ maxAgeDays: { limit: 1, action: 'archive' } }, () => {
      calls++;
      return Promise.reject(new Error('the database went away'));
    }), log);
    for (let i = 0; i < 500 && calls < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    await schedule.stop();
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(errors.length).toBeGreaterThanOrEqual(2);
    const after = calls;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(calls).toBe(after);
  });

  it('does not run without a policy, or with intervalMs 0', async () => {
    let calls = 0;
    const maintain = (): Promise<unknown> => {
      calls++;
      return Promise.resolve({ actions: [] });
    };
    const none = scheduleRetention(fakeMemex({}, maintain), recordingLog().log);
    const off = scheduleRetention(fakeMemex({ intervalMs: 0, maxAgeDays: { limit: 1, action: 'trash' } }, maintain), recordingLog().log);
    await new Promise((resolve) => setTimeout(resolve, 60));
    await none.stop();
    await off.stop();
    expect(calls).toBe(0);
  });
});
