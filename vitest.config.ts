import { defineConfig } from 'vitest/config';
import { edgeProject } from './edge/vitest.project.ts';

/**
 * The browser tests that build the device mode (scripts/build-device.ts) or load a page that reads that build (the
 * web client's example prompts come from its pack.json).
 */
const DEVICE_BUILD_TESTS = ['test/e2e/device.test.ts', 'test/e2e/device-webgpu.test.ts', 'test/e2e/device-account.test.ts', 'test/e2e/web-client.test.ts'];

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
          exclude: [...DEVICE_BUILD_TESTS],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        test: {
          // These build the device mode into the one folder the edge serves (scripts/build-device.ts) or load pages
          // that read it: run side by side, one build rewrote files while another's page was reading them (a
          // forced-WebGPU page hung; the web client's page got a 404). One at a time, in file order.
          name: 'device',
          environment: 'node',
          include: [...DEVICE_BUILD_TESTS],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      edgeProject,
    ],
  },
});
