// Replay protection across runners: two runner processes behind one "URL" (the same edge, the same secret). A signed
// job request replayed to the second runner is answered as a duplicate there and runs once, because each runner claims
// the job's attempt at the edge before taking it (contract/claims.ts); each runner's own guard still refuses a replay
// sent to itself.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNNER_PATHS, signMessage, type RunnerEvent } from '../../contract/index.ts';
import { spawnRunner, type ChildRunner } from './support/child-runner.ts';
import { startFakeEdge, type FakeEdge } from './support/fake-edge.ts';
import { personalizationJob, readJson, runnerClient, TEST_SECRET } from './support/jobs.ts';

let edge: FakeEdge;
const runners: ChildRunner[] = [];
const stateDirs: string[] = [];

async function runner(): Promise<ChildRunner> {
  const stateDir = await mkdtemp(join(tmpdir(), 'hdb-replay-'));
  stateDirs.push(stateDir);
  const started = await spawnRunner({ RUNNER_STATE_DIR: stateDir });
  runners.push(started);
  return started;
}

beforeAll(async () => {
  edge = await startFakeEdge({ secret: TEST_SECRET });
});

afterAll(async () => {
  for (const started of runners) {
    started.child.kill('SIGTERM');
    await started.exitCode;
  }
  await edge?.close();
  for (const dir of stateDirs) await rm(dir, { recursive: true, force: true });
});

/** One signed request, sent as captured: the same bytes and headers wherever it goes. */
async function captured(job: unknown) {
  const body = JSON.stringify(job);
  const headers = { 'content-type': 'application/json', ...(await signMessage(TEST_SECRET, { method: 'POST', path: RUNNER_PATHS.jobs, body })) };
  return (baseUrl: string) => fetch(`${baseUrl}${RUNNER_PATHS.jobs}`, { method: 'POST', headers, body });
}

describe('a signed job replayed to another runner', () => {
  it('runs once: the second runner finds the attempt held at the edge and answers duplicate', async () => {
    const [first, second] = await Promise.all([runner(), runner()]);
    const job = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 3 });
    const send = await captured(job);

    const accepted = await send(first.url);
    expect([accepted.status, (await readJson(accepted)).status]).toEqual([202, 'accepted']);
    const replayed = await send(second.url);
    expect([replayed.status, (await readJson(replayed)).status]).toEqual([202, 'duplicate']);
    // The same capture sent to the first runner again: its own guard refuses it outright.
    expect((await send(first.url)).status).toBe(401);

    await edge.waitFor((event) => event.job_id === job.job_id && event.type === 'succeeded');
    expect((await runnerClient(second.url).get(job.job_id)).status).toBe(404);
    expect((await runnerClient(first.url).get(job.job_id)).status).toBe(200);
    const started = edge.events.filter((event: RunnerEvent) => event.job_id === job.job_id && event.type === 'started');
    expect(started).toHaveLength(1);
    const claims = edge.claims.filter((claim) => claim.jobId === job.job_id);
    expect(claims.map((claim) => claim.outcome)).toEqual(['granted', 'held']);
    expect(new Set(claims.map((claim) => claim.runnerId)).size).toBe(2);
    await second.waitForLog('job held by another runner');
  });

  it('a runner that cannot take a job gives its claim back, so another runner can', async () => {
    const [full, free] = await Promise.all([
      (async () => {
        const stateDir = await mkdtemp(join(tmpdir(), 'hdb-replay-'));
        stateDirs.push(stateDir);
        const started = await spawnRunner({ RUNNER_STATE_DIR: stateDir, RUNNER_QUEUE_CAPACITY: '0', RUNNER_CONCURRENCY: '1', STEP_SIZE: '160', STEP_DEPTH: '8' });
        runners.push(started);
        return started;
      })(),
      runner(),
    ]);
    // Keep the first runner busy so it has no room.
    const busy = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 2000 });
    expect((await runnerClient(full.url).post(busy)).status).toBe(202);
    const job = await personalizationJob({ eventsUrl: edge.eventsUrl, steps: 2 });
    const refused = await runnerClient(full.url).post(job);
    expect(refused.status).toBe(503);
    await refused.text();
    // The edge retries the same attempt; the request lands on the other runner, which may take it.
    const taken = await runnerClient(free.url).post(job);
    expect([taken.status, (await readJson(taken)).status]).toEqual([202, 'accepted']);
    await edge.waitFor((event) => event.job_id === job.job_id && event.type === 'succeeded');
    expect(edge.claims.filter((claim) => claim.jobId === job.job_id).map((claim) => `${claim.action}:${claim.outcome}`)).toEqual([
      'claim:granted',
      'release:released',
      'claim:granted',
    ]);
    expect((await runnerClient(full.url).cancel(busy.job_id)).status).toBe(202);
  });
});
