// Job status order (docs/architecture.md): queued → dispatched → running → succeeded | failed | canceled.
// Never backwards.
import type { jobs } from '../../db/schema.ts';

export type JobRow = typeof jobs.$inferSelect;
export type JobStatus = JobRow['status'];

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
