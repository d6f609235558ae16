// The few writes that move a job, each guarded by the statuses it may leave, so concurrent actors (queue consumer,
// runner events, cron, cancel) can never move a job backwards or finish it twice.
import { and, eq, inArray, sql } from 'drizzle-orm';
import { jobs } from '../../db/schema.ts';
import { RUNNER_PATHS, signedFetch } from '../../contract/index.ts';
import type { Queryable as Database } from '../db/client.ts';
import { settingsOf, type Env } from '../env.ts';
import { notifyJob } from './notify.ts';
import { LIVE_STATUSES, type JobRow, type JobStatus } from './state.ts';

const RUNNER_CANCEL_TIMEOUT_MS = 10_000;

export function leaseFrom(now: Date, env: Env): Date {
  return new Date(now.getTime() + settingsOf(env).leaseSeconds * 1000);
}

/** Ends a live job as failed and tells its webhook. Returns the row, or null when it was no longer live. */
export async function failJob(db: Database, env: Env, jobId: string, code: string, message: string, from: readonly JobStatus[] = LIVE_STATUSES): Promise<JobRow | null> {
  const now = new Date();
  const [row] = await db
    .update(jobs)
    .set({ status: 'failed', errorCode: code, errorMessage: message, finishedAt: now, updatedAt: now, leaseExpiresAt: null })
    .where(and(eq(jobs.id, jobId), inArray(jobs.status, [...from])))
    .returning();
  if (row) await notifyJob(db, env, row, 'failed');
  return row ?? null;
}

/**
 * Puts a job back in `queued` for another runner attempt, with a fresh dispatch deadline. The caller sends the queue
 * message (`enqueueDispatch`) after its transaction commits: a consumer that ran earlier would still see the old status.
 */
export async function requeueJob(db: Database, env: Env, jobId: string, from: readonly JobStatus[]): Promise<JobRow | null> {
  const now = new Date();
  const [row] = await db
    .update(jobs)
    .set({ status: 'queued', progressStep: 0, leaseExpiresAt: leaseFrom(now, env), updatedAt: now })
    .where(and(eq(jobs.id, jobId), inArray(jobs.status, [...from]), sql`${jobs.attempts} < ${jobs.maxAttempts}`))
    .returning();
  return row ?? null;
}

export async function enqueueDispatch(env: Env, jobId: string): Promise<void> {
  await env.JOBS_QUEUE.send({ job_id: jobId });
}

/** Best effort: the job is canceled at the edge whatever the runner answers; later events for it are stale. */
export async function cancelOnRunner(env: Env, jobId: string): Promise<void> {
  const url = `${env.RUNNER_URL.replace(/\/+$/, '')}${RUNNER_PATHS.job(jobId)}`;
  try {
    const response = await signedFetch(env.RUNNER_SECRET, url, { method: 'DELETE', signal: AbortSignal.timeout(RUNNER_CANCEL_TIMEOUT_MS) });
    await response.text(); // drain the (small) answer so the connection is released
  } catch (error) {
    console.warn(JSON.stringify({ level: 'warn', msg: 'runner cancel failed', job_id: jobId, error: String(error) }));
  }
}

/**
 * Cancels a live job. Returns the canceled row and whether a runner may be working on it, or the unchanged row when
 * it had already finished.
 */
export async function cancelJob(db: Database, env: Env, tenantId: string, jobId: string): Promise<{ job: JobRow; canceled: boolean; wasOnRunner: boolean } | null> {
  return db.transaction(async (tx) => {
    const [current] = await tx.select().from(jobs).where(and(eq(jobs.id, jobId), eq(jobs.tenantId, tenantId))).for('update');
    if (!current) return null;
    if (!(LIVE_STATUSES as readonly string[]).includes(current.status)) return { job: current, canceled: false, wasOnRunner: false };
    const now = new Date();
    const [row] = await tx
      .update(jobs)
      .set({ status: 'canceled', finishedAt: now, updatedAt: now, leaseExpiresAt: null, errorCode: null, errorMessage: null })
      .where(eq(jobs.id, jobId))
      .returning();
    if (!row) return null;
    await notifyJob(tx, env, row, 'canceled');
    return { job: row, canceled: true, wasOnRunner: current.status !== 'queued' };
  });
}
