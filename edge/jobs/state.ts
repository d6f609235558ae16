// Job status order (docs/architecture.md): queued → dispatched → running → succeeded | failed | canceled.
// Never backwards.
import type { GenerationJobParams, jobs, PersonalizationJobParams } from '../../db/schema.ts';

export type JobRow = typeof jobs.$inferSelect;
export type JobStatus = JobRow['status'];

/** A personalization's params; the create route writes them with the row's kind, so a mismatch is a bug. */
export function personalizationParams(job: JobRow): PersonalizationJobParams {
  if (job.kind !== 'personalization' || !('finetune' in job.params)) throw new Error(`job ${job.id} holds no personalization params`);
  return job.params;
}

/** A generation's params; see personalizationParams. */
export function generationParams(job: JobRow): GenerationJobParams {
  if (job.kind !== 'generation' || 'finetune' in job.params) throw new Error(`job ${job.id} holds no generation params`);
  return job.params;
}

export const LIVE_STATUSES = ['queued', 'dispatched', 'running'] as const satisfies readonly JobStatus[];
export const TERMINAL_STATUSES = ['succeeded', 'failed', 'canceled'] as const satisfies readonly JobStatus[];

export function isTerminal(status: JobStatus): boolean {
  return (TERMINAL_STATUSES as readonly JobStatus[]).includes(status);
}

/** Error codes the edge itself sets on jobs (the runner's codes are in the contract). */
export const EDGE_ERROR_CODES = {
  runnerUnavailable: 'runner_unavailable',
  runnerRejected: 'runner_rejected',
  leaseExpired: 'lease_expired',
} as const;
