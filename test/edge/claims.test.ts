// Claims (contract/claims.ts) against the real edge and Postgres: each attempt of a job goes to one runner process,
// so a job request replayed to a second runner behind the same URL is refused there ("held").
import { describe, expect, it } from 'vitest';
import { EDGE_PATHS, newRunnerId, signMessage, type ClaimAnswer } from '../../contract/index.ts';
import { call, createTenant, expectError } from './helpers.ts';
import { file, form, png } from './images.ts';
import { runnerSecret, waitForRunnerJob } from './runner-double.ts';

async function claim(body: Record<string, unknown>, secret = runnerSecret()): Promise<Response> {
  const text = JSON.stringify(body);
  const headers = { 'content-type': 'application/json', ...(await signMessage(secret, { method: 'POST', path: EDGE_PATHS.runnerClaims, body: text })) };
  return call(EDGE_PATHS.runnerClaims, { method: 'POST', headers, body: text });
}

async function outcome(body: Record<string, unknown>): Promise<ClaimAnswer['outcome']> {
  const response = await claim(body);
  const answer = (await response.json()) as ClaimAnswer;
  expect(response.status).toBe(200);
  return answer.outcome;
}

/** A personalization the edge has dispatched (attempt 1), as a runner sees it. */
async function dispatchedJob(): Promise<string> {
  const tenant = await createTenant('claims');
  const subject = (await (await call('/v1/subjects', { method: 'POST', key: tenant.key, body: form([file(png(128, 128), 'face.png')]) })).json()) as { id: string };
  const job = (await (await call('/v1/personalizations', { method: 'POST', key: tenant.key, json: { subject_id: subject.id } })).json()) as { id: string };
  await waitForRunnerJob(job.id);
  return job.id;
}

describe('runner claims', () => {
  it('grants an attempt to one runner: another is told it is held, the holder may ask again, a release frees it', async () => {
    const jobId = await dispatchedJob();
    const first = newRunnerId();
    const second = newRunnerId();
    expect(await outcome({ job_id: jobId, attempt: 1, runner_id: first })).toBe('granted');
    expect(await outcome({ job_id: jobId, attempt: 1, runner_id: second })).toBe('held');
    expect(await outcome({ job_id: jobId, attempt: 1, runner_id: first })).toBe('granted');
    // Not the job's current attempt (an old request replayed, or one from the future).
    expect(await outcome({ job_id: jobId, attempt: 2, runner_id: second })).toBe('stale');
    // A runner that claimed and then could not take the job gives it back; only the holder can.
    expect(await outcome({ job_id: jobId, attempt: 1, runner_id: second, action: 'release' })).toBe('released');
    expect(await outcome({ job_id: jobId, attempt: 1, runner_id: second })).toBe('held');
    expect(await outcome({ job_id: jobId, attempt: 1, runner_id: first, action: 'release' })).toBe('released');
    expect(await outcome({ job_id: jobId, attempt: 1, runner_id: second })).toBe('granted');
  });

  it('two runners asking at once: exactly one wins', async () => {
    const jobIds = await Promise.all([dispatchedJob(), dispatchedJob(), dispatchedJob()]);
    for (const jobId of jobIds) {
      const runners = [newRunnerId(), newRunnerId(), newRunnerId()];
      const outcomes = await Promise.all(runners.map((runner_id) => outcome({ job_id: jobId, attempt: 1, runner_id })));
      expect(outcomes.sort()).toEqual(['granted', 'held', 'held']);
    }
  });

  it('refuses unsigned, malformed and unknown claims', async () => {
    const body = { job_id: 'psn_00000000000000000000000000000000', attempt: 1, runner_id: newRunnerId() };
    await expectError(await claim(body, 'not-the-runner-secret-0123456789abcdef'), 401, 'invalid_signature');
    await expectError(await claim({ ...body, runner_id: 'me' }), 422, 'invalid_claim');
    await expectError(await claim(body), 404, 'not_found');
  });
});
