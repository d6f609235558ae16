// Assembles a runner: outbox, service, HTTP server. Used by the entry point (gpu-runner/main.ts), tests and the bench.
import { serve, type ServerType } from '@hono/node-server';
import { join } from 'node:path';
import { createApp } from './app.ts';
import type { RunnerConfig } from './config.ts';
import { Outbox } from './events/outbox.ts';
import { edgeClaims } from './jobs/claims.ts';
import type { JobExecutor } from './jobs/executor.ts';
import type { Logger } from './log.ts';
import { RunnerMetrics } from './metrics.ts';
import { RunnerService } from './service.ts';

export type StartedRunner = {
  /** Base URL, e.g. http://127.0.0.1:8788 */
  url: string;
  port: number;
  service: RunnerService;
  metrics: RunnerMetrics;
  /** Graceful stop: drain jobs (grace period), flush events, close the HTTP server. */
  shutdown(): Promise<void>;
};

export async function startRunner(options: {
  config: RunnerConfig;
  executor: JobExecutor;
  log: Logger;
  metrics?: RunnerMetrics;
}): Promise<StartedRunner> {
  const { config, executor, log } = options;
  const metrics = options.metrics ?? new RunnerMetrics();
  const outbox = await Outbox.open(join(config.stateDir, 'outbox'), log);
  const service = new RunnerService({ config, executor, outbox, log, metrics });
  metrics.reportSessionProviders(() => service.sessionProviders());
  const claims = edgeClaims({ secret: config.secret, log });
  const app = createApp({ service, metrics, log, secrets: config.verificationSecrets, maxRequestBytes: config.maxRequestBytes, claims });
  service.start();

  const server = await new Promise<ServerType>((resolve) => {
    const started = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, () => resolve(started));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info('runner listening', {
    url,
    runner_id: claims.runnerId,
    executor: executor.description,
    concurrency: config.concurrency,
    queue_capacity: config.queueCapacity,
    outbox_pending: outbox.size,
  });

  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    stopping ??= (async () => {
      // The server keeps answering during the drain: /healthz stays up, /readyz and POST /v1/jobs answer 503, and
      // the edge can still cancel running jobs. It closes once the jobs are done and the events are flushed.
      await service.shutdown();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    })();
    return stopping;
  };
  return { url, port, service, metrics, shutdown };
}
