import type { FastifyBaseLogger } from 'fastify';
import type { Memex } from '../index.js';

/**
 * Applies the retention policies every `retention.intervalMs` while the server runs (not at start:
 * a restart loop must not turn into a maintenance loop). One run at a time; a failed run is logged
 * and the next goes on; the timer is unref'd, so it never keeps a process alive, and `stop`
 * (called as the server closes) clears it and waits for a run in progress.
 */
export function scheduleRetention(memex: Memex, log: FastifyBaseLogger): { stop(): Promise<void> } {
  const { intervalMs, maxAgeDays, maxSessionsPerUser, maxMessagesPerSession } = memex.config.retention;
  if (intervalMs === 0 || (!maxAgeDays && !maxSessionsPerUser && !maxMessagesPerSession)) return { stop: () => Promise.resolve() };
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    if (running) return;
    running = memex
      .maintain()
      .then((report) => {
        const failed = report.actions.filter((action) => action.status === 'failed');
        if (report.actions.length > 0) log.info({ actions: report.actions.length, failed: failed.length }, 'retention policies applied');
        for (const action of failed) log.warn({ userId: action.userId, sessionId: action.sessionId, policy: action.policy, error: action.error }, 'retention action failed');
      })
      .catch((error: unknown) => log.error({ err: error }, 'retention run failed'))
      .finally(() => {
        running = null;
      });
  }, intervalMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
