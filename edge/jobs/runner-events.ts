// Applies runner events (CONTRACT.md): idempotent by event id, never backwards, results stored in R2 + Postgres.
import { eq } from 'drizzle-orm';
import { generationImages, jobs, runnerEvents, weightFiles, weights } from '../../db/schema.ts';
import {
  base64ToBytes,
  sha256Hex,
  type EventAck,
  type GenerationResult,
  type PersonalizationResult,
  type RunnerEvent,
} from '../../contract/index.ts';
import type { Queryable as Database } from '../db/client.ts';
import type { Env } from '../env.ts';
import { ApiError, notFound, unprocessable } from '../lib/errors.ts';
import { notifyJob } from './notify.ts';
import { r2Keys } from './storage.ts';
import type { JobRow } from './state.ts';
import { enqueueDispatch, failJob, leaseFrom, requeueJob } from './transitions.ts';

type Outcome = EventAck['outcome'];

/** Weights ids mirror their job's id, so a retried `succeeded` finds and overwrites the same objects. */
export function weightsIdFor(jobId: string): string {
  return `wts_${jobId.slice(jobId.indexOf('_') + 1)}`;
}

/**
 * Only the attempt the runner holds now may move the job. A `queued` job has no such attempt: it is waiting for its
 * next dispatch (the claim sets `dispatched` and the new attempt number before the runner hears of it), so events of
 * the attempt it was taken from are stale.
 */
function isCurrent(job: JobRow, event: RunnerEvent): boolean {
  return (job.status === 'dispatched' || job.status === 'running') && event.attempt === job.attempts;
}

async function decodeVerified(item: { data_base64: string; sha256: string; byte_size: number }, what: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = base64ToBytes(item.data_base64);
  } catch {
    throw unprocessable('invalid_result', `${what} is not valid base64`);
  }
  if (bytes.byteLength !== item.byte_size) throw unprocessable('invalid_result', `${what} has ${bytes.byteLength} bytes, byte_size says ${item.byte_size}`);
  if ((await sha256Hex(bytes)) !== item.sha256) throw unprocessable('invalid_result', `${what} does not match its sha256`);
  return bytes;
}

/** Writes result files to R2 before the transaction that records them (keys are deterministic, so retries overwrite). */
async function storePersonalizationFiles(env: Env, job: JobRow, result: PersonalizationResult) {
  const weightsId = weightsIdFor(job.id);
  const stored = [];
  for (const file of result.files) {
    const bytes = await decodeVerified(file, `file ${file.format}/${file.dtype}`);
    const key = r2Keys.weightFile(job.tenantId, weightsId, file.format, file.dtype);
    await env.BUCKET.put(key, bytes, { httpMetadata: { contentType: 'application/octet-stream' }, sha256: file.sha256 });
    stored.push({ weightsId, format: file.format, dtype: file.dtype, r2Key: key, byteSize: file.byte_size, sha256: file.sha256 });
  }
  return stored;
}

async function storeGenerationImages(env: Env, job: JobRow, result: GenerationResult) {
  const stored = [];
  for (const image of result.images) {
    const bytes = await decodeVerified(image, `image ${image.index}`);
    const key = r2Keys.generationImage(job.tenantId, job.id, image.index);
    await env.BUCKET.put(key, bytes, { httpMetadata: { contentType: 'image/png' }, sha256: image.sha256 });
    stored.push({ image, key });
  }
  return stored;
}

type Prepared =
  | { kind: 'personalization'; files: Awaited<ReturnType<typeof storePersonalizationFiles>>; result: PersonalizationResult }
  | { kind: 'generation'; images: Awaited<ReturnType<typeof storeGenerationImages>> };

async function prepareSucceeded(env: Env, job: JobRow, event: Extract<RunnerEvent, { type: 'succeeded' }>): Promise<Prepared> {
  const result = event.result;
  if (result.kind !== job.kind) throw unprocessable('invalid_result', `a ${job.kind} job cannot succeed with a ${result.kind} result`);
  if (result.kind === 'personalization') return { kind: 'personalization', files: await storePersonalizationFiles(env, job, result), result };
  return { kind: 'generation', images: await storeGenerationImages(env, job, result) };
}

async function recordSucceeded(tx: Database, job: JobRow, prepared: Prepared, now: Date): Promise<JobRow> {
  if (prepared.kind === 'personalization') {
    const { result, files } = prepared;
    const weightsId = weightsIdFor(job.id);
    await tx
      .insert(weights)
      .values({
        id: weightsId,
        tenantId: job.tenantId,
        subjectId: job.subjectId,
        jobId: job.id,
        method: result.method,
        baseModelId: result.base_model_id,
        rank: result.rank,
        layers: result.layers,
        numParameters: result.num_parameters,
        totalBytes: files.reduce((sum, f) => sum + f.byteSize, 0),
      })
      .onConflictDoNothing();
    if (files.length) await tx.insert(weightFiles).values(files).onConflictDoNothing();
  } else {
    for (const { image, key } of prepared.images) {
      await tx
        .insert(generationImages)
        .values({
          id: `gim_${job.id.slice(4)}${String(image.index).padStart(2, '0')}`.slice(0, 64),
          jobId: job.id,
          tenantId: job.tenantId,
          index: image.index,
          r2Key: key,
          contentType: image.content_type,
          width: image.width,
          height: image.height,
          seed: image.seed,
          byteSize: image.byte_size,
          sha256: image.sha256,
        })
        .onConflictDoNothing();
    }
  }
  const [row] = await tx
    .update(jobs)
    .set({
      status: 'succeeded',
      finishedAt: now,
      updatedAt: now,
      leaseExpiresAt: null,
      startedAt: job.startedAt ?? now,
      progressStep: job.progressTotal ?? job.progressStep,
    })
    .where(eq(jobs.id, job.id))
    .returning();
  return row ?? job;
}

const REQUEUED = 'requeued' as const;

async function transition(tx: Database, env: Env, job: JobRow, event: RunnerEvent, prepared: Prepared | null): Promise<Outcome | typeof REQUEUED> {
  if (!isCurrent(job, event)) return 'stale';
  const now = new Date();
  const lease = leaseFrom(now, env);
  switch (event.type) {
    case 'started': {
      if (job.status === 'running') {
        await tx.update(jobs).set({ leaseExpiresAt: lease, updatedAt: now }).where(eq(jobs.id, job.id));
        return 'stale';
      }
      const [row] = await tx
        .update(jobs)
        .set({ status: 'running', startedAt: now, leaseExpiresAt: lease, updatedAt: now })
        .where(eq(jobs.id, job.id))
        .returning();
      if (row) await notifyJob(tx, env, row, 'started');
      return 'applied';
    }
    case 'progress': {
      const forward = event.step > job.progressStep || job.progressTotal === null;
      if (!forward) {
        await tx.update(jobs).set({ leaseExpiresAt: lease, updatedAt: now }).where(eq(jobs.id, job.id));
        return 'stale';
      }
      const [row] = await tx
        .update(jobs)
        .set({
          status: 'running',
          startedAt: job.startedAt ?? now,
          progressStep: Math.max(event.step, job.progressStep),
          progressTotal: event.total_steps,
          leaseExpiresAt: lease,
          updatedAt: now,
        })
        .where(eq(jobs.id, job.id))
        .returning();
      if (row) {
        // A progress that also starts the job announces the start first, so receivers see the order they expect.
        if (job.status !== 'running') await notifyJob(tx, env, row, 'started');
        await notifyJob(tx, env, row, 'progress');
      }
      return 'applied';
    }
    case 'succeeded': {
      if (!prepared) throw new Error('succeeded event without prepared result');
      const row = await recordSucceeded(tx, job, prepared, now);
      await notifyJob(tx, env, row, 'succeeded');
      return 'applied';
    }
    case 'failed': {
      if (event.error.code === 'canceled') {
        const [row] = await tx
          .update(jobs)
          .set({ status: 'canceled', finishedAt: now, updatedAt: now, leaseExpiresAt: null })
          .where(eq(jobs.id, job.id))
          .returning();
        if (row) await notifyJob(tx, env, row, 'canceled');
        return 'applied';
      }
      if (event.error.retryable && (await requeueJob(tx, env, job.id, ['dispatched', 'running']))) return REQUEUED;
      await failJob(tx, env, job.id, event.error.code, event.error.message, ['dispatched', 'running']);
      return 'applied';
    }
  }
}

function preparedKeys(prepared: Prepared): string[] {
  return prepared.kind === 'personalization' ? prepared.files.map((f) => f.r2Key) : prepared.images.map((i) => i.key);
}

export async function applyRunnerEvent(db: Database, env: Env, event: RunnerEvent): Promise<EventAck> {
  const [before] = await db.select().from(jobs).where(eq(jobs.id, event.job_id));
  if (!before) throw notFound('job', event.job_id);
  const [seen] = await db.select({ id: runnerEvents.eventId }).from(runnerEvents).where(eq(runnerEvents.eventId, event.event_id));
  if (seen) return { event_id: event.event_id, outcome: 'duplicate', cancel: before.status === 'canceled' };
  // Results go to R2 only for an event that can still apply; the transaction below re-checks under a row lock.
  const prepared = event.type === 'succeeded' && isCurrent(before, event) ? await prepareSucceeded(env, before, event) : null;

  let settled: JobRow | undefined;
  const applied = await db
    .transaction(async (tx): Promise<EventAck & { requeued: boolean }> => {
      const [job] = await tx.select().from(jobs).where(eq(jobs.id, event.job_id)).for('update');
      settled = job;
      if (!job) throw notFound('job', event.job_id);
      const inserted = await tx
        .insert(runnerEvents)
        .values({ eventId: event.event_id, jobId: job.id, type: event.type, attempt: event.attempt, outcome: 'pending' })
        .onConflictDoNothing()
        .returning({ id: runnerEvents.eventId });
      if (inserted.length === 0) return { event_id: event.event_id, outcome: 'duplicate', cancel: job.status === 'canceled', requeued: false };
      if (event.type === 'succeeded' && !prepared && isCurrent(job, event)) {
        throw new ApiError(409, 'retry', 'the job changed while the result was stored; send the event again');
      }
      const result = await transition(tx, env, job, event, prepared);
      const outcome: Outcome = result === REQUEUED ? 'applied' : result;
      await tx.update(runnerEvents).set({ outcome }).where(eq(runnerEvents.eventId, event.event_id));
      return { event_id: event.event_id, outcome, cancel: job.status === 'canceled', requeued: result === REQUEUED };
    })
    .catch(async (error: unknown) => {
      // The job itself is gone (its tenant was deleted): so is everything stored for it.
      if (prepared && error instanceof ApiError && error.status === 404) await env.BUCKET.delete(preparedKeys(prepared));
      throw error;
    });
  // Files stored for a result that can no longer apply because the job was canceled or failed meanwhile (its
  // subject or tenant deleted, edge/lib/erasure.ts) belong to nothing: remove them. A job that succeeded keeps its
  // files, whose keys are the same.
  if (prepared && applied.outcome === 'stale' && settled && (settled.status === 'canceled' || settled.status === 'failed')) {
    await env.BUCKET.delete(preparedKeys(prepared));
  }
  if (applied.requeued) await enqueueDispatch(env, event.job_id);
  const { requeued: _requeued, ...ack } = applied;
  return ack;
}
