// The service with its executor in a worker thread (ThreadExecutor): results, progress, cancellation and error
// classes cross the thread boundary; a failed model load keeps the runner unready.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunnerEvent } from '../../contract/index.ts';
import { loadConfig } from '../../gpu-runner/server/config.ts';
import { ThreadExecutor } from '../../gpu-runner/server/executors/thread-executor.ts';
import { WorkerPoolExecutor } from '../../gpu-runner/server/executors/worker-pool.ts';
import { createLogger } from '../../gpu-runner/server/log.ts';
import { startRunner } from '../../gpu-runner/server/runner.ts';
import { startFakeEdge, type FakeEdge } from './support/fake-edge.ts';
import { generationJob, personalizationJob, readJson, runnerClient, stepWeights, TEST_SECRET } from './support/jobs.ts';
import { startTestRunner, TEST_ENV, waitUntil, type TestRunner } from './support/runner.ts';

const MODULE = new URL('./support/step-executor-module.ts', import.meta.url);
const silent = createLogger({ level: 'silent' });
const threaded = (options: Record<string, unknown> = {}) =>
  new ThreadExecutor({ moduleUrl: MODULE, executorOptions: { size: 32, depth: 4, ...options }, description: 'step executor', log: silent });
const isFinal = (jobId: string) => (event: RunnerEvent) => event.job_id === jobId && (event.type === 'succeeded' || event.type === 'failed');

let edge: FakeEdge;
let runner: TestRunner;

beforeAll(async () => {
  edge = await startFakeEdge({ secret: TEST_SECRET });
  runner = await startTestRunner({ executor: threaded() });
});

afterAll(async () => {
  await runner?.stop();
  await edge?.close();
});

describe('ThreadExecutor', () => {
  it('runs personalization and generation jobs in the worker, with progress', async () => {
    const personalization = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 200 });
    const generation = generationJob({ eventsUrl: edge.eventsUrl, weights: stepWeights(), params: { num_images: 2, steps: 2 } });
    expect((await runner.client.post(personalization)).status).toBe(202);
    expect((await runner.client.post(generation)).status).toBe(202);
    expect(await edge.waitFor(isFinal(personalization.job_id))).toMatchObject({ type: 'succeeded', result: { kind: 'personalization' } });
    expect(await edge.waitFor(isFinal(generation.job_id))).toMatchObject({ type: 'succeeded', result: { kind: 'generation' } });
    expect(await readJson(await runner.client.get(personalization.job_id))).toMatchObject({ progress: { step: 200, total_steps: 200 } });
  });

  it('keeps the error class across the thread: unusable weights are invalid input', async () => {
    const job = generationJob({ eventsUrl: edge.eventsUrl, weights: new TextEncoder().encode('{"not": "safetensors"}') });
    expect((await runner.client.post(job)).status).toBe(202);
    expect(await edge.waitFor(isFinal(job.job_id))).toMatchObject({ type: 'failed', error: { code: 'invalid_input', retryable: false } });
  });

  it('cancels a job running in the worker between steps', async () => {
    const slow = await startTestRunner({ executor: threaded({ size: 160, depth: 8 }) });
    try {
      const job = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 2000 });
      expect((await slow.client.post(job)).status).toBe(202);
      await edge.waitFor((event) => event.job_id === job.job_id && event.type === 'progress');
      expect((await slow.client.cancel(job.job_id)).status).toBe(202);
      expect(await edge.waitFor(isFinal(job.job_id))).toMatchObject({ type: 'failed', error: { code: 'canceled' } });
    } finally {
      await slow.stop();
    }
  });

  it('fails the job as retryable when the worker thread dies, and starts a new worker for the next job', async () => {
    const dying = await startTestRunner({ executor: threaded({ exitOnJobWithSteps: 7 }) });
    try {
      const doomed = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 7 });
      expect((await dying.client.post(doomed)).status).toBe(202);
      const failed = await edge.waitFor(isFinal(doomed.job_id));
      expect(failed).toMatchObject({ type: 'failed', error: { code: 'internal', retryable: true } });
      if (failed.type === 'failed') expect(failed.error.message).toMatch(/worker exited/);
      const next = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 3 });
      expect((await dying.client.post(next)).status).toBe(202);
      expect(await edge.waitFor(isFinal(next.job_id))).toMatchObject({ type: 'succeeded' });
    } finally {
      await dying.stop();
    }
  });

  it('reports a model load failure on /readyz and refuses jobs with 503', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'hdb-runner-'));
    const config = loadConfig({ ...TEST_ENV, RUNNER_STATE_DIR: stateDir });
    const broken = await startRunner({ config, executor: threaded({ failWarmup: true }), log: silent });
    try {
      await waitUntil(async () => (await readJson(await fetch(`${broken.url}/readyz`))).reasons.some((r: string) => r.startsWith('models failed')), 30_000, 'load failure');
      const readyz = await readJson(await fetch(`${broken.url}/readyz`));
      expect(readyz.reasons.join()).toContain('this executor was told not to start');
      const response = await runnerClient(broken.url).post(await personalizationJob({ eventsUrl: edge.eventsUrl }));
      expect(response.status).toBe(503);
    } finally {
      await broken.shutdown();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe('WorkerPoolExecutor (RUNNER_CONCURRENCY > 1)', () => {
  it('runs concurrent jobs in separate worker threads: one thread dying fails only its own job', async () => {
    // Both workers die on a 7-step job; a shared thread would take the long job down with it.
    const pool = new WorkerPoolExecutor([threaded({ size: 96, depth: 6, exitOnJobWithSteps: 7 }), threaded({ size: 96, depth: 6, exitOnJobWithSteps: 7 })]);
    expect(pool.description).toBe('step executor × 2');
    const two = await startTestRunner({ executor: pool, env: { RUNNER_CONCURRENCY: '2' } });
    try {
      const long = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 2000 });
      expect((await two.client.post(long)).status).toBe(202);
      await edge.waitFor((event) => event.job_id === long.job_id && event.type === 'progress');
      const doomed = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 7 });
      expect((await two.client.post(doomed)).status).toBe(202);
      expect(await edge.waitFor(isFinal(doomed.job_id))).toMatchObject({ type: 'failed', error: { code: 'internal', retryable: true } });
      expect((await readJson(await two.client.get(long.job_id))).status).toBe('running');
      expect(await edge.waitFor(isFinal(long.job_id), 120_000)).toMatchObject({ type: 'succeeded' });
      // The slot whose thread died starts a new one for the next job.
      const next = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 3 });
      expect((await two.client.post(next)).status).toBe(202);
      expect(await edge.waitFor(isFinal(next.job_id))).toMatchObject({ type: 'succeeded' });
    } finally {
      await two.stop();
    }
  });
});

