// An in-process runner on a free port with its own state folder, for the service tests.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../gpu-runner/server/config.ts';
import type { JobExecutor } from '../../../gpu-runner/server/jobs/executor.ts';
import { createLogger } from '../../../gpu-runner/server/log.ts';
import { startRunner, type StartedRunner } from '../../../gpu-runner/server/runner.ts';
import { runnerClient, TEST_SECRET } from './jobs.ts';
import { OnnxStepExecutor } from './step-executor.ts';

/** Fast enough for tests, still exercising throttling and backoff. */
export const TEST_ENV = {
  RUNNER_SECRET: TEST_SECRET,
  RUNNER_HOST: '127.0.0.1',
  RUNNER_PORT: '0',
  RUNNER_PROGRESS_INTERVAL_MS: '25',
  RUNNER_EVENT_RETRY_MIN_MS: '20',
  RUNNER_EVENT_RETRY_MAX_MS: '200',
  RUNNER_EVENT_TIMEOUT_MS: '5000',
} as const;

export type TestRunner = StartedRunner & {
  stateDir: string;
  logs: string[];
  client: ReturnType<typeof runnerClient>;
  stop(): Promise<void>;
};

export async function startTestRunner(
  options: { env?: Record<string, string>; executor?: JobExecutor; stateDir?: string } = {},
): Promise<TestRunner> {
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'hdb-runner-')));
  const config = loadConfig({ ...TEST_ENV, RUNNER_STATE_DIR: stateDir, ...options.env });
  const logs: string[] = [];
  const log = createLogger({ level: 'debug', sink: (line) => logs.push(line) });
  const runner = await startRunner({ config, executor: options.executor ?? new OnnxStepExecutor(), log });
  // Generous: on a fresh clone the first start writes the tiny pack, on a machine other tests keep busy.
  await waitUntil(async () => (await fetch(`${runner.url}/readyz`)).ok, 120_000, 'runner ready');
  return {
    ...runner,
    stateDir,
    logs,
    client: runnerClient(runner.url),
    stop: async () => {
      await runner.shutdown();
      if (!options.stateDir) await rm(stateDir, { recursive: true, force: true });
    },
  };
}

export async function waitUntil(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
