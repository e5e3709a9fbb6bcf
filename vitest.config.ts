import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Vitest's default leaves a core free (one worker on two cores), but many files wait on child
    // processes, sockets and the database more than they compute: two files at a time on two cores.
    maxWorkers: Math.max(2, availableParallelism()),
  },
});
