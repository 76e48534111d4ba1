import { configDefaults, defineConfig } from 'vitest/config';
import { timeScale } from './test/support/env';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The package tests install and run what `make package` built: `make test-package` runs them.
    exclude: [...configDefaults.exclude, ...(process.env.CTRWATCH_TEST_PACKAGE ? [] : ['test/package/**'])],
    // Kernel tests share one kernel and start real runtimes: run files one at a time.
    fileParallelism: false,
    testTimeout: 60_000 * timeScale,
    hookTimeout: 120_000 * timeScale,
    // Vitest fails a run whose worker calls go unanswered for 60 s: under emulation the worker runs
    // before what it starts, and a blocked event loop is named.
    setupFiles: ['test/support/runner-priority.ts', 'test/support/loop-stall.ts'],
  },
});
