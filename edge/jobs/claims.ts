// Claims (contract/claims.ts): each attempt of a job runs on one runner process. The job row holds who claimed which
// attempt; one conditional UPDATE grants it, so two runners asking at once cannot both win, and a signed job request
// replayed to another runner behind the same URL is told "held" there.
import { and, eq, inArray, or, sql } from 'drizzle-orm';
import { jobs } from '../../db/schema.ts';
import type { ClaimAnswer, JobClaim } from '../../contract/index.ts';
import type { Database } from '../db/client.ts';
import { notFound } from '../lib/errors.ts';

/** A runner asks between the edge's dispatch and its answer, so the job is `dispatched`; `running` when the same
 * runner asks again for an attempt it already started. */
const CLAIMABLE = ['dispatched', 'running'] as const;

export async function answerClaim(db: Database, claim: Required<JobClaim>): Promise<ClaimAnswer> {
  const answer = (outcome: ClaimAnswer['outcome']): ClaimAnswer => ({ job_id: claim.job_id, attempt: claim.attempt, outcome });
  if (claim.action === 'release') {
    await db
      .update(jobs)
      .set({ claimedBy: null, claimedAttempt: null })
      .where(and(eq(jobs.id, claim.job_id), eq(jobs.claimedAttempt, claim.attempt), eq(jobs.claimedBy, claim.runner_id)));
    return answer('released');
  }
  const granted = await db
    .update(jobs)
    .set({ claimedBy: claim.runner_id, claimedAttempt: claim.attempt })
    .where(
      and(
        eq(jobs.id, claim.job_id),
        eq(jobs.attempts, claim.attempt),
        inArray(jobs.status, [...CLAIMABLE]),
        // Unclaimed for this attempt, or already this runner's (its own retry).
        or(sql`${jobs.claimedAttempt} IS DISTINCT FROM ${claim.attempt}`, eq(jobs.claimedBy, claim.runner_id)),
      ),
    )
    .returning({ id: jobs.id });
  if (granted.length > 0) return answer('granted');
  const [job] = await db.select({ attempts: jobs.attempts, status: jobs.status, claimedAttempt: jobs.claimedAttempt }).from(jobs).where(eq(jobs.id, claim.job_id));
  if (!job) throw notFound('job', claim.job_id);
  const current = job.attempts === claim.attempt && (CLAIMABLE as readonly string[]).includes(job.status);
  return answer(current ? 'held' : 'stale');
}
