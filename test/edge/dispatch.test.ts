// The jobs Queue consumer and the Cron sweep, driven directly with Queue message batches and scheduled events.
import { createExecutionContext, createMessageBatch, createScheduledController, getQueueResult, waitOnExecutionContext } from 'cloudflare:test';
import { and, eq } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { idempotencyKeys, jobs, subjectImages, webhookDeliveries } from '../../db/schema.ts';
import worker from '../../edge/index.ts';
import { consumeJobsBatch } from '../../edge/jobs/dispatch.ts';
import type { Env } from '../../edge/env.ts';
import { newId } from '../../edge/lib/ids.ts';
import { call, createTenant, testEnv, withDb, type TestTenant } from './helpers.ts';
import { file, form, png } from './images.ts';
import { runnerJob, runnerSecret, runnerUrl, waitForRunnerJob } from './runner-double.ts';
import { signMessage } from '../../contract/index.ts';

const WEBHOOK_URL = 'http://127.0.0.1:9/hooks';
const CLOSED_PORT_URL = 'http://127.0.0.1:9';

let tenant: TestTenant;
let subjectId: string;

beforeAll(async () => {
  tenant = await createTenant('dispatch');
  const res = await call('/v1/subjects', { method: 'POST', key: tenant.key, body: form([file(png(128, 128), 'a.png')]) });
  subjectId = ((await res.json()) as { id: string }).id;
});

/** A job row as the API writes it, without a queue message, so only the test drives its dispatch. */
async function insertJob(values: Partial<typeof jobs.$inferInsert> = {}) {
  return withDb(async ({ db }) => {
    const [row] = await db
      .insert(jobs)
      .values({
        id: newId('personalization'),
        tenantId: tenant.id,
        kind: 'personalization',
        subjectId,
        method: 'hyperdreambooth',
        params: { method: 'hyperdreambooth', finetune: { steps: 2, rank: 4, relax: 'lora', seed: 0, identifier_token: '[V]' }, outputs: [{ format: 'lidb', dtype: 'fp16' }] },
        maxAttempts: 2,
        leaseExpiresAt: new Date(Date.now() + 600_000),
        webhookUrl: WEBHOOK_URL,
        ...values,
      })
      .returning();
    return row!;
  });
}

async function jobRow(id: string) {
  return withDb(async ({ db }) => (await db.select().from(jobs).where(eq(jobs.id, id)))[0]!);
}

async function dispatch(jobId: string, attempts: number, env: Env = testEnv) {
  const batch = createMessageBatch('jobs', [{ id: `m-${jobId}-${attempts}`, timestamp: new Date(), attempts, body: { job_id: jobId } }]);
  const ctx = createExecutionContext();
  await worker.queue(batch as MessageBatch<unknown>, env, ctx);
  return getQueueResult(batch, ctx);
}

/** Queue messages record how they were settled; the pool's batch result does not report retry delays. */
async function dispatchRecording(jobId: string, attempts: number, env: Env) {
  const settled: { acked: boolean; retryDelay: number | undefined | null } = { acked: false, retryDelay: null };
  const message = {
    body: { job_id: jobId },
    attempts,
    ack: () => void (settled.acked = true),
    retry: (options?: { delaySeconds?: number }) => void (settled.retryDelay = options?.delaySeconds),
  };
  const ctx = createExecutionContext();
  await consumeJobsBatch({ messages: [message] }, env, ctx);
  await waitOnExecutionContext(ctx);
  return settled;
}

async function deliveriesOf(jobId: string) {
  return withDb(({ db }) => db.select().from(webhookDeliveries).where(eq(webhookDeliveries.jobId, jobId)));
}

describe('jobs queue consumer', () => {
  it('dispatches a queued job with a signed request and starts its lease', async () => {
    const job = await insertJob();
    const result = await dispatch(job.id, 1);
    expect(result.explicitAcks).toEqual([`m-${job.id}-1`]);
    const row = await jobRow(job.id);
    expect(row).toMatchObject({ status: 'dispatched', attempts: 1 });
    expect(row.leaseExpiresAt!.getTime()).toBeGreaterThan(Date.now());
    const received = await runnerJob(job.id);
    expect(received?.request).toMatchObject({ job_id: job.id, attempt: 1, kind: 'personalization' });
    // A duplicate message finds the job already dispatched and does nothing.
    expect((await dispatch(job.id, 1)).explicitAcks).toHaveLength(1);
    expect((await runnerJob(job.id))?.attempts).toEqual([1]);
  });

  it('backs off when the runner is busy (503 + Retry-After), leaving the job queued', async () => {
    const job = await insertJob();
    const result = await dispatch(job.id, 1, { ...testEnv, RUNNER_URL: `${runnerUrl()}/busy` });
    expect(result.retryMessages).toEqual([{ msgId: `m-${job.id}-1` }]);
    expect(await dispatchRecording(job.id, 1, { ...testEnv, RUNNER_URL: `${runnerUrl()}/busy` })).toEqual({ acked: false, retryDelay: 7 });
    expect(await jobRow(job.id)).toMatchObject({ status: 'queued', attempts: 0 });
  });

  it('retries with exponential delay when the runner is unreachable', async () => {
    const job = await insertJob();
    expect(await dispatchRecording(job.id, 2, { ...testEnv, RUNNER_URL: CLOSED_PORT_URL })).toEqual({ acked: false, retryDelay: 10 });
    expect(await dispatchRecording(job.id, 1, { ...testEnv, RUNNER_URL: CLOSED_PORT_URL })).toEqual({ acked: false, retryDelay: 5 });
    expect(await jobRow(job.id)).toMatchObject({ status: 'queued', attempts: 0 });
  });

  it('fails the job with a clear error and tells the webhook when retries run out', async () => {
    const job = await insertJob();
    const result = await dispatch(job.id, 3, { ...testEnv, RUNNER_URL: CLOSED_PORT_URL });
    expect(result.explicitAcks).toHaveLength(1);
    const row = await jobRow(job.id);
    expect(row).toMatchObject({ status: 'failed', errorCode: 'runner_unavailable' });
    expect(row.errorMessage).toMatch(/could not take the job after 3 tries/);
    const deliveries = await deliveriesOf(job.id);
    expect(deliveries.map((d) => d.eventType)).toEqual(['personalization.failed']);
    expect(JSON.parse(deliveries[0]!.body)).toMatchObject({ data: { id: job.id, status: 'failed', error: { code: 'runner_unavailable' } } });
  });

  it('fails at once when the runner rejects the job as malformed', async () => {
    const job = await insertJob();
    await dispatch(job.id, 1, { ...testEnv, RUNNER_URL: `${runnerUrl()}/reject` });
    expect(await jobRow(job.id)).toMatchObject({ status: 'failed', errorCode: 'runner_rejected' });
  });

  it('never dispatches a canceled job', async () => {
    const job = await insertJob({ status: 'canceled', finishedAt: new Date() });
    expect((await dispatch(job.id, 1)).explicitAcks).toHaveLength(1);
    expect(await runnerJob(job.id)).toBeNull();
  });
});

async function runCron() {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: new Date(), cron: '* * * * *' }), testEnv, ctx);
  await waitOnExecutionContext(ctx);
}

describe('cron', () => {
  it('re-dispatches a job whose lease expired, as a new attempt', async () => {
    const job = await insertJob({ status: 'running', attempts: 1, dispatchedAt: new Date(), leaseExpiresAt: new Date(Date.now() - 1000), progressStep: 1, progressTotal: 2 });
    await runCron();
    const received = await waitForRunnerJob(job.id, 2);
    expect(received.request.attempt).toBe(2);
    expect(await jobRow(job.id)).toMatchObject({ status: 'dispatched', attempts: 2, progressStep: 0 });
  });

  it('ignores late events of the attempt a job was taken back from', async () => {
    const job = await insertJob({ status: 'running', attempts: 1, dispatchedAt: new Date() });
    const { requeueJob } = await import('../../edge/jobs/transitions.ts');
    await withDb(({ db }) => requeueJob(db, testEnv, job.id, ['running']));
    const body = JSON.stringify({ event_id: `evt_${job.id}_late`, job_id: job.id, attempt: 1, occurred_at: new Date().toISOString(), type: 'started' });
    const headers = await signMessage(runnerSecret(), { method: 'POST', path: '/internal/runner/events', body });
    const res = await call('/internal/runner/events', { method: 'POST', headers, body });
    expect(((await res.json()) as { outcome: string }).outcome).toBe('stale');
    expect(await jobRow(job.id)).toMatchObject({ status: 'queued', attempts: 1 });
  });

  it('fails a job whose lease expired after its last attempt', async () => {
    const job = await insertJob({ status: 'dispatched', attempts: 2, dispatchedAt: new Date(), leaseExpiresAt: new Date(Date.now() - 1000) });
    await runCron();
    expect(await jobRow(job.id)).toMatchObject({ status: 'failed', errorCode: 'lease_expired' });
    expect((await deliveriesOf(job.id)).map((d) => d.eventType)).toEqual(['personalization.failed']);
  });

  it('sends a new queue message for a queued job whose message was lost', async () => {
    const job = await insertJob({ leaseExpiresAt: new Date(Date.now() - 1000) });
    await runCron();
    await waitForRunnerJob(job.id, 1);
    expect((await jobRow(job.id)).status).not.toBe('queued');
  });

  it('removes uploads that never completed and old idempotency records', async () => {
    const bucket = (testEnv as Env).BUCKET;
    const stale = { id: newId('subjectImage'), r2Key: `tenants/${tenant.id}/subjects/${subjectId}/stale.png` };
    const fresh = { id: newId('subjectImage'), r2Key: `tenants/${tenant.id}/subjects/${subjectId}/fresh.png` };
    await bucket.put(stale.r2Key, png(64, 64));
    const common = { subjectId, tenantId: tenant.id, status: 'pending' as const, contentType: 'image/png', byteSize: 33, width: 64, height: 64, sha256: '0'.repeat(64) };
    await withDb(async ({ db }) => {
      await db.insert(subjectImages).values([
        { ...stale, ...common, createdAt: new Date(Date.now() - 2 * 3600_000) },
        { ...fresh, ...common },
      ]);
      await db.insert(idempotencyKeys).values([
        { tenantId: tenant.id, key: 'old', route: 'POST /v1/subjects', requestHash: 'x', createdAt: new Date(Date.now() - 25 * 3600_000) },
        { tenantId: tenant.id, key: 'new', route: 'POST /v1/subjects', requestHash: 'x' },
      ]);
    });
    await runCron();
    const images = await withDb(({ db }) => db.select({ id: subjectImages.id }).from(subjectImages).where(eq(subjectImages.subjectId, subjectId)));
    expect(images.map((i) => i.id)).not.toContain(stale.id);
    expect(images.map((i) => i.id)).toContain(fresh.id);
    expect(await bucket.head(stale.r2Key)).toBeNull();
    const keys = await withDb(({ db }) => db.select({ key: idempotencyKeys.key }).from(idempotencyKeys).where(and(eq(idempotencyKeys.tenantId, tenant.id))));
    expect(keys.map((k) => k.key)).toEqual(['new']);
  });
});
