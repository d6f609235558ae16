import { defineConfig } from 'vitest/config';
import { edgeProject } from './edge/vitest.project.ts';

// One project per runtime: the runner and tooling run in Node; the edge runs inside workerd
// (edge/vitest.project.ts).
export default defineConfig({
  test: {
    // postgres.js in workerd rejects a pending read with "Stream was cancelled." after sql.end(), and leaves its
    // socket's ready promise unhandled when a connection is refused (the outage tests, test/edge/outage.test.ts);
    // the query itself fails properly either way (docs/architecture.md): noise.
    onUnhandledError: (error) =>
      /Stream was cancelled|proxy request failed, cannot connect to the specified address/.test(String(error?.message ?? error)) ? false : undefined,
    projects: [
      {
        test: {
          name: 'node',
          environment: 'node',
          include: ['gpu-runner/**/*.test.ts', 'contract/**/*.test.ts', 'edge/**/*.node.test.ts', 'db/**/*.test.ts', 'scripts/**/*.test.ts', 'bench/**/*.test.ts', 'test/{runner,db,e2e,world}/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      edgeProject,
    ],
  },
});
