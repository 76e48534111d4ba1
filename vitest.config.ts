import { defineConfig } from 'vitest/config';
import { timeScale } from './test/support/env';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Kernel tests share one kernel and start real runtimes: run files one at a time.
    fileParallelism: false,
    testTimeout: 60_000 * timeScale,
    hookTimeout: 120_000 * timeScale,
  },
});
