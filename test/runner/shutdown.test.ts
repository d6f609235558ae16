// Graceful shutdown (docs/architecture.md, "The runner"): SIGTERM to a real runner process during a job, and events
// kept on disk across a restart while the edge is down.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunnerEvent } from '../../contract/index.ts';
import { spawnRunner } from './support/child-runner.ts';
import { startFakeEdge, type FakeEdge } from './support/fake-edge.ts';
import { personalizationJob, readJson, runnerClient, TEST_SECRET } from './support/jobs.ts';
import { startTestRunner } from './support/runner.ts';

/** Thousands of steps of 8 MatMuls of 160²: seconds of work, so a signal surely lands mid-job. */
const LONG_JOB_STEPS = 2000;
const SLOW_STEPS = { STEP_SIZE: '160', STEP_DEPTH: '8' };
const isFinal = (jobId: string) => (event: RunnerEvent) => event.job_id === jobId && (event.type === 'succeeded' || event.type === 'failed');

let edge: FakeEdge;
const stateDirs: string[] = [];
const newStateDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hdb-runner-'));
  stateDirs.push(dir);
  return dir;
};
const pendingEvents = async (stateDir: string) => readdir(join(stateDir, 'outbox', 'pending'));

beforeAll(async () => {
  edge = await startFakeEdge({ secret: TEST_SECRET });
});

afterAll(async () => {
  await edge?.close();
  for (const dir of stateDirs) await rm(dir, { recursive: true, force: true });
});

describe('SIGTERM', () => {
  it('hands a running job back as failed and retryable when the grace period ends, then exits 0', async () => {
    const stateDir = await newStateDir();
    const runner = await spawnRunner({ ...SLOW_STEPS, RUNNER_STATE_DIR: stateDir, RUNNER_SHUTDOWN_GRACE_MS: '200' });
    const job = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: LONG_JOB_STEPS });
    expect((await runnerClient(runner.url).post(job)).status).toBe(202);
    await edge.waitFor((event) => event.job_id === job.job_id && event.type === 'progress');

    runner.child.kill('SIGTERM');
    expect(await runner.exitCode).toBe(0);
    const final = await edge.waitFor(isFinal(job.job_id), 1_000);
    expect(final).toMatchObject({ type: 'failed', error: { code: 'shutdown', retryable: true } });
    expect(await pendingEvents(stateDir)).toEqual([]);
  });

  it('stops taking jobs but lets a running job finish within the grace period', async () => {
    const stateDir = await newStateDir();
    const runner = await spawnRunner({ ...SLOW_STEPS, RUNNER_STATE_DIR: stateDir, RUNNER_SHUTDOWN_GRACE_MS: '60000' });
    const client = runnerClient(runner.url);
    const job = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: LONG_JOB_STEPS });
    expect((await client.post(job)).status).toBe(202);
    await edge.waitFor((event) => event.job_id === job.job_id && event.type === 'progress');

    runner.child.kill('SIGTERM');
    await runner.waitForLog('shutting down');
    const refused = await client.post(await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 1 }));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).not.toBeNull();
    expect(await readJson(refused)).toMatchObject({ error: { code: 'not_ready' } });
    const readyz = await fetch(`${runner.url}/readyz`);
    expect(readyz.status).toBe(503);
    expect((await readJson(readyz)).reasons).toContain('shutting down');

    expect(await runner.exitCode).toBe(0);
    expect(await edge.waitFor(isFinal(job.job_id), 1_000)).toMatchObject({ type: 'succeeded' });
    expect(await pendingEvents(stateDir)).toEqual([]);
  });
});

describe('outbox', () => {
  it('keeps events on disk while the edge is down and delivers them after a restart', async () => {
    const stateDir = await newStateDir();
    // The edge grants the job (the runner claims it there first) and then fails and goes away: every event meets it
    // refusing or absent.
    const absent = await startFakeEdge({ secret: TEST_SECRET });
    const { eventsUrl } = absent;
    const port = Number(new URL(absent.url).port);
    absent.failNext(Number.POSITIVE_INFINITY);

    const first = await startTestRunner({ stateDir });
    const job = await personalizationJob({ eventsUrl, steps: 3 });
    expect((await first.client.post(job)).status).toBe(202);
    await absent.close();
    await new Promise<void>((resolve, reject) => {
      const poll = async () => {
        const view = await readJson(await first.client.get(job.job_id));
        if (view.status === 'succeeded') resolve();
        else if (view.status === 'failed') reject(new Error('job failed'));
        else setTimeout(poll, 20);
      };
      void poll();
    });
    await first.stop();
    const kept = await pendingEvents(stateDir);
    expect(kept.length).toBeGreaterThanOrEqual(2);

    const back = await startFakeEdge({ secret: TEST_SECRET, port });
    const second = await startTestRunner({ stateDir });
    try {
      const final = await back.waitFor(isFinal(job.job_id), 10_000);
      expect(final.type).toBe('succeeded');
      expect(back.events.filter((event) => event.job_id === job.job_id)[0]?.type).toBe('started');
    } finally {
      await second.stop();
      await back.close();
    }
    expect(await pendingEvents(stateDir)).toEqual([]);
  });
});
