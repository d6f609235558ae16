// Claims: before a runner starts a job it asks the edge for that job's attempt (POST `/internal/runner/claims`, signed
// like an event). The edge grants each (job_id, attempt) to one runner process only, in PostgreSQL, so a signed job
// request replayed to another runner behind the same URL is answered "duplicate" there and never runs twice.
import { z } from 'zod';

/** A runner process's id, fresh at every start: a restarted runner is another claimant. */
export const RunnerId = z.string().regex(/^rnr_[0-9a-f]{32}$/, 'rnr_ followed by 32 lowercase hex digits');

export const JobClaim = z
  .object({
    job_id: z.string().min(1),
    attempt: z.number().int().positive(),
    runner_id: RunnerId,
    /** `release` gives back a claim of this runner for a job it did not take after all (queue full, invalid input). */
    action: z.enum(['claim', 'release']).default('claim'),
  })
  .strict();
export type JobClaim = z.input<typeof JobClaim>;

/**
 * `granted`: run it (also when this runner already holds it). `held`: another runner holds this attempt; answer the
 * request as a duplicate. `stale`: the attempt is not the job's current one, or the job is no longer dispatched;
 * do not run it. `released`: the answer to a release.
 */
export const ClaimOutcome = z.enum(['granted', 'held', 'stale', 'released']);
export type ClaimOutcome = z.infer<typeof ClaimOutcome>;

export const ClaimAnswer = z.object({ job_id: z.string(), attempt: z.number().int(), outcome: ClaimOutcome });
export type ClaimAnswer = z.infer<typeof ClaimAnswer>;

export function newRunnerId(): string {
  return `rnr_${crypto.randomUUID().replaceAll('-', '')}`;
}
