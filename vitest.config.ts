import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    // Room for a CI host slower than a developer's (stop 33's CI ran tests 1.4x slower than here and
    // two that take 20 s here passed 30 s there). A test that hangs still fails, only later.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Vitest's default leaves a core free (one worker on two cores), but many files wait on child
    // processes, sockets and the database more than they compute: two files at a time on two cores.
    maxWorkers: Math.max(2, availableParallelism()),
  },
});
