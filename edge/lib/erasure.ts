// Deleting what came from a face: a subject with its photos and, unless kept, the weights trained on them and the
// images generated with those weights; or a whole tenant with everything it owns (docs/api.md, "Deletion").
// Rows and R2 objects go in one transaction: the objects are deleted before the commit, so a failure leaves the rows
// (the request can be sent again) and never a row pointing at nothing the caller was told is gone, nor an object
// without a row that nobody would ever delete. Objects are deleted by their key prefix (edge/jobs/storage.ts), which
// also removes files no row points to (an upload rolled back by an outage, a result stored for a job canceled here).
import { and, eq, inArray, isNull, or } from 'drizzle-orm';
import { apiKeys, generationImages, jobs, subjectImages, subjects, tenants, weightFiles, weights } from '../../db/schema.ts';
import type { Database, Transaction } from '../db/client.ts';
import type { Env } from '../env.ts';
import { notifyJob } from '../jobs/notify.ts';
import { weightsIdFor } from '../jobs/runner-events.ts';
import { LIVE_STATUSES, type JobRow } from '../jobs/state.ts';
import { cancelOnRunner } from '../jobs/transitions.ts';
import { apiKeyCache } from './api-key-cache.ts';
import { notFound } from './errors.ts';

/** The part of the execution context used: runner cancellations continue after the response. */
type WaitUntil = { waitUntil(promise: Promise<unknown>): void };

export const KEEPABLE = ['weights', 'generations'] as const;
export type Keep = { weights: boolean; generations: boolean };

/** R2 deletes take at most 1,000 keys per call (Workers R2 API). */
const R2_DELETE_BATCH = 1000;

export type SubjectErasure = { images: number; weights: number; generationImages: number; canceledJobs: string[] };

/** Deletes every object under each prefix (listing page by page). */
async function deletePrefixes(bucket: R2Bucket, prefixes: readonly string[]): Promise<number> {
  let deleted = 0;
  for (const prefix of prefixes) {
    let cursor: string | undefined;
    do {
      const page = await bucket.list({ prefix, limit: R2_DELETE_BATCH, ...(cursor ? { cursor } : {}) });
      if (page.objects.length > 0) await bucket.delete(page.objects.map((o) => o.key));
      deleted += page.objects.length;
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
  }
  return deleted;
}

const subjectPrefix = (tenantId: string, subjectId: string) => `tenants/${tenantId}/subjects/${subjectId}/`;
const weightsPrefix = (tenantId: string, weightsId: string) => `tenants/${tenantId}/weights/${weightsId}/`;
const generationPrefix = (tenantId: string, jobId: string) => `tenants/${tenantId}/generations/${jobId}/`;

async function cancelLive(tx: Transaction, env: Env, live: JobRow[]): Promise<JobRow[]> {
  const now = new Date();
  const canceled: JobRow[] = [];
  for (const job of live) {
    const [row] = await tx
      .update(jobs)
      .set({ status: 'canceled', finishedAt: now, updatedAt: now, leaseExpiresAt: null, errorCode: null, errorMessage: null })
      .where(and(eq(jobs.id, job.id), inArray(jobs.status, [...LIVE_STATUSES])))
      .returning();
    if (row) {
      await notifyJob(tx as unknown as Database, env, row, 'canceled');
      canceled.push(job);
    }
  }
  return canceled;
}

/**
 * Deletes a subject, its photos and (unless kept) its weights and generated images. Live jobs that would bring any of
 * it back are canceled: personalizations always (their photos are gone), generations unless generations are kept.
 * Throws 404 for a subject that is not the tenant's or already deleted.
 */
export async function eraseSubject(db: Database, env: Env, ctx: WaitUntil, tenantId: string, subjectId: string, keep: Keep): Promise<SubjectErasure> {
  const { erasure, onRunner } = await db.transaction(async (tx) => {
    const [subject] = await tx
      .select({ id: subjects.id })
      .from(subjects)
      .where(and(eq(subjects.id, subjectId), eq(subjects.tenantId, tenantId), isNull(subjects.deletedAt)))
      .for('update');
    if (!subject) throw notFound('subject', subjectId);

    const subjectWeights = await tx
      .select({ id: weights.id })
      .from(weights)
      .where(and(eq(weights.subjectId, subjectId), eq(weights.tenantId, tenantId)));
    const weightsIds = subjectWeights.map((w) => w.id);
    // Generations made from the subject's weights (they carry the subject too, so either finds them).
    const subjectJobs = await tx
      .select()
      .from(jobs)
      .where(
        and(
          eq(jobs.tenantId, tenantId),
          or(eq(jobs.subjectId, subjectId), weightsIds.length > 0 ? and(eq(jobs.kind, 'generation'), inArray(jobs.weightsId, weightsIds)) : undefined),
        ),
      )
      .for('update');
    const personalizations = subjectJobs.filter((j) => j.kind === 'personalization');
    const generations = subjectJobs.filter((j) => j.kind === 'generation');
    const isLive = (j: JobRow) => (LIVE_STATUSES as readonly string[]).includes(j.status);
    const canceled = await cancelLive(tx, env, [...personalizations, ...(keep.generations ? [] : generations)].filter(isLive));

    const prefixes = [subjectPrefix(tenantId, subjectId)];
    const images = (await tx.delete(subjectImages).where(eq(subjectImages.subjectId, subjectId)).returning({ id: subjectImages.id })).length;
    await tx.update(subjects).set({ deletedAt: new Date() }).where(eq(subjects.id, subjectId));

    let erasedWeights = 0;
    if (!keep.weights) {
      // Rows of weights already deleted one by one have no files left; their prefixes are swept all the same.
      if (weightsIds.length > 0) {
        await tx.delete(weightFiles).where(inArray(weightFiles.weightsId, weightsIds));
        erasedWeights = (await tx.update(weights).set({ deletedAt: new Date() }).where(and(inArray(weights.id, weightsIds), isNull(weights.deletedAt))).returning({ id: weights.id })).length;
      }
      // A personalization's weights id follows from its job, so a result stored but never recorded is found too.
      const ids = new Set([...weightsIds, ...personalizations.map((j) => weightsIdFor(j.id))]);
      prefixes.push(...[...ids].map((id) => weightsPrefix(tenantId, id)));
    }
    let erasedImages = 0;
    if (!keep.generations && generations.length > 0) {
      const jobIds = generations.map((j) => j.id);
      erasedImages = (await tx.delete(generationImages).where(inArray(generationImages.jobId, jobIds)).returning({ id: generationImages.id })).length;
      prefixes.push(...jobIds.map((id) => generationPrefix(tenantId, id)));
    }
    // Before the commit: if this fails, the rows stay and the caller can delete again.
    await deletePrefixes(env.BUCKET, prefixes);
    return {
      erasure: { images, weights: erasedWeights, generationImages: erasedImages, canceledJobs: canceled.map((j) => j.id) },
      onRunner: canceled.filter((j) => j.status !== 'queued').map((j) => j.id),
    };
  });
  for (const jobId of onRunner) ctx.waitUntil(cancelOnRunner(env, jobId));
  return erasure;
}

export type TenantErasure = { objects: number; canceledJobs: string[] };

/**
 * Deletes a tenant and everything it owns: every R2 object under its prefix, then its row, which takes subjects,
 * jobs, weights, images, keys, idempotency records and webhooks with it (foreign keys on delete cascade). Jobs still
 * on a runner are told to stop; their later events find no job and are dropped.
 */
export async function eraseTenant(db: Database, env: Env, ctx: WaitUntil, tenantId: string): Promise<TenantErasure> {
  const result = await db.transaction(async (tx) => {
    const [tenant] = await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId)).for('update');
    if (!tenant) throw notFound('tenant', tenantId);
    const live = await tx
      .select({ id: jobs.id, status: jobs.status })
      .from(jobs)
      .where(and(eq(jobs.tenantId, tenantId), inArray(jobs.status, [...LIVE_STATUSES])))
      .for('update');
    const keys = await tx.select({ id: apiKeys.id }).from(apiKeys).where(eq(apiKeys.tenantId, tenantId));
    await tx.delete(tenants).where(eq(tenants.id, tenantId));
    const objects = await deletePrefixes(env.BUCKET, [`tenants/${tenantId}/`]);
    return { objects, live, keys };
  });
  // Refused at once in this isolate; others refuse the keys when their cache entry expires (edge/lib/api-key-cache.ts).
  for (const key of result.keys) apiKeyCache.forgetKey(key.id);
  for (const job of result.live) if (job.status !== 'queued') ctx.waitUntil(cancelOnRunner(env, job.id));
  return { objects: result.objects, canceledJobs: result.live.map((j) => j.id) };
}
