import { defineConfig } from 'vitest/config';

// One project per runtime: the runner and tooling run in Node; the edge runs inside workerd
// (edge/vitest.config.ts, added by the edge).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'node',
          environment: 'node',
          include: ['gpu-runner/**/*.test.ts', 'edge/contract/**/*.test.ts', 'db/**/*.test.ts', 'scripts/**/*.test.ts', 'test/{runner,db,e2e,world}/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
