// Edge tests run inside workerd (@cloudflare/vitest-pool-workers, vitest 4 plugin form) with the bindings of
// wrangler.toml (local R2 and Queues), a real Postgres and the runner double from the Node-side global setup.
import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import type { TestProjectInlineConfiguration } from 'vitest/config';
import '../test/support/provided-context.ts';

// Inlined into the root vitest.config.ts, so paths are relative to the repository root.
export const edgeProject: TestProjectInlineConfiguration = {
  plugins: [
    cloudflareTest(({ inject }) => ({
      main: './edge/index.ts',
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        bindings: {
          DATABASE_URL: inject('databaseUrl'),
          RUNNER_URL: inject('runnerUrl'),
          RUNNER_SECRET: inject('runnerSecret'),
          WEBHOOK_SEALING_KEYS: inject('webhookSealingKeys'),
          PUBLIC_URL: 'http://edge.test',
          WEBHOOK_ALLOW_HTTP_LOOPBACK: 'true',
          JOB_LEASE_SECONDS: '600',
          JOB_MAX_ATTEMPTS: '2',
          DISPATCH_MAX_RETRIES: '3',
        },
        // Lower than production so the 429 path is reachable in a test; above what any one test key sends otherwise.
        ratelimits: { API_RATE_LIMITER: { simple: { limit: 150, period: 60 } } },
      },
    })),
  ],
  test: {
    name: 'edge',
    include: ['test/edge/**/*.test.ts', 'edge/**/*.test.ts'],
    exclude: ['**/*.node.test.ts', '**/node_modules/**'],
    globalSetup: ['./test/support/edge-global-setup.ts', './test/edge/webhooks-receiver.global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
};
