// The scheduled handler: re-dispatch jobs whose lease expired (bounded by max attempts), clean stale uploads and
// old idempotency records, hand overdue webhook deliveries back to their queue and re-seal webhook secrets.
import { and, eq, inArray, lt } from 'drizzle-orm';
import { idempotencyKeys, jobs, subjectImages } from '../../db/schema.ts';
import type { Database } from '../db/client.ts';
import type { Env } from '../env.ts';
import { redispatchOverdueWebhooks } from '../webhooks/consumer.ts';
import type { WebhookQueue } from '../webhooks/queue-message.ts';
import { resealWebhookSecrets, webhookKeyringFromEnv } from '../webhooks/secrets-store.ts';
import { EDGE_ERROR_CODES, LIVE_STATUSES } from './state.ts';
import { enqueueDispatch, failJob, leaseFrom, requeueJob } from './transitions.ts';

/** An upload whose R2 write never completed is given this long before it is removed. */
export const STALE_UPLOAD_SECONDS = 3600;
/** Stripe keeps idempotency keys for 24 h; so do we. */
export const IDEMPOTENCY_RETENTION_SECONDS = 24 * 3600;
const BATCH = 100;

export type SweepReport = {
  redispatched: number;
  requeued: number;
  failed: number;
  staleUploads: number;
  idempotencyKeys: number;
  webhooks: number;
  /** Webhook secrets sealed or moved to the active key this run (edge/webhooks/README.md, "Sealed at rest"). */
  resealedSecrets: number;
};

export async function sweepExpiredLeases(db: Database, env: Env, now = new Date()): Promise<Pick<SweepReport, 'redispatched' | 'requeued' | 'failed'>> {
  const expired = await db
    .select()
    .from(jobs)
    .where(and(inArray(jobs.status, [...LIVE_STATUSES]), lt(jobs.leaseExpiresAt, now)))
    .orderBy(jobs.leaseExpiresAt)
    .limit(BATCH);
  const report = { redispatched: 0, requeued: 0, failed: 0 };
  for (const job of expired) {
    if (job.status === 'queued') {
      // Never reached a runner (its queue message may be lost): send another message with a new deadline.
      const [row] = await db
        .update(jobs)
        .set({ leaseExpiresAt: leaseFrom(now, env), updatedAt: now })
        .where(and(eq(jobs.id, job.id), eq(jobs.status, 'queued'), lt(jobs.leaseExpiresAt, now)))
        .returning();
      if (row) {
        await env.JOBS_QUEUE.send({ job_id: row.id });
        report.redispatched++;
      }
      continue;
    }
    const from = [job.status] as const;
    const requeued = await db.transaction(async (tx) => {
      const [locked] = await tx.select().from(jobs).where(and(eq(jobs.id, job.id), eq(jobs.status, job.status), lt(jobs.leaseExpiresAt, now))).for('update');
      if (!locked) return 'skipped' as const;
      if (await requeueJob(tx, env, job.id, from)) return 'requeued' as const;
      await failJob(tx, env, job.id, EDGE_ERROR_CODES.leaseExpired, `the runner stopped reporting and the job used all ${job.maxAttempts} attempts`, from);
      return 'failed' as const;
    });
    if (requeued === 'requeued') {
      await enqueueDispatch(env, job.id);
      report.requeued++;
    }
    if (requeued === 'failed') report.failed++;
  }
  return report;
}

export async function cleanStaleUploads(db: Database, env: Env, now = new Date()): Promise<number> {
  const horizon = new Date(now.getTime() - STALE_UPLOAD_SECONDS * 1000);
  const stale = await db
    .select({ id: subjectImages.id, r2Key: subjectImages.r2Key })
    .from(subjectImages)
    .where(and(eq(subjectImages.status, 'pending'), lt(subjectImages.createdAt, horizon)))
    .limit(BATCH);
  if (stale.length === 0) return 0;
  await env.BUCKET.delete(stale.map((s) => s.r2Key));
  await db.delete(subjectImages).where(and(inArray(subjectImages.id, stale.map((s) => s.id)), eq(subjectImages.status, 'pending')));
  return stale.length;
}

export async function cleanIdempotencyKeys(db: Database, now = new Date()): Promise<number> {
  const horizon = new Date(now.getTime() - IDEMPOTENCY_RETENTION_SECONDS * 1000);
  const deleted = await db.delete(idempotencyKeys).where(lt(idempotencyKeys.createdAt, horizon)).returning({ key: idempotencyKeys.key });
  return deleted.length;
}

/** A missing or wrong key configuration is logged loudly but must not stop the lease sweep above. */
async function resealSecrets(db: Database, env: Env): Promise<number> {
  try {
    const report = await resealWebhookSecrets(db, await webhookKeyringFromEnv(env));
    if (Object.keys(report.missingKeys).length > 0) {
      console.error(JSON.stringify({ level: 'error', component: 'cron', msg: 'webhook secrets sealed under keys missing from WEBHOOK_SEALING_KEYS', missing_keys: report.missingKeys }));
    }
    return report.resealed;
  } catch (error) {
    console.error(JSON.stringify({ level: 'error', component: 'cron', msg: 'webhook secrets were not re-sealed', error: String(error) }));
    return 0;
  }
}

export async function runCron(db: Database, env: Env, now = new Date()): Promise<SweepReport> {
  const leases = await sweepExpiredLeases(db, env, now);
  const staleUploads = await cleanStaleUploads(db, env, now);
  const idempotency = await cleanIdempotencyKeys(db, now);
  const webhooks = await redispatchOverdueWebhooks({ db, queue: env.WEBHOOKS_QUEUE as unknown as WebhookQueue, now: () => now });
  const resealedSecrets = await resealSecrets(db, env);
  const report = { ...leases, staleUploads, idempotencyKeys: idempotency, webhooks, resealedSecrets };
  console.log(JSON.stringify({ level: 'info', component: 'cron', ...report }));
  return report;
}
