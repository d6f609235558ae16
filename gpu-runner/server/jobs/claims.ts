// Asks the edge for a job's attempt before running it (contract/claims.ts), so that with several runners behind one
// URL a replayed signed job request cannot run on a second one: the per-process replay guard only sees its own
// traffic, the edge's PostgreSQL sees all of it. The claim goes to the edge that sent the job: the events URL's
// origin, which the signed request carries.
import { ClaimAnswer, EDGE_PATHS, newRunnerId, signMessage, type JobRequest } from '../../../contract/index.ts';
import type { Logger } from '../log.ts';

/** A claim is one indexed UPDATE at the edge; a slower answer means the edge is in trouble and the job should wait. */
export const CLAIM_TIMEOUT_MS = 10_000;

export type ClaimVerdict = 'granted' | 'held' | 'stale';

export class ClaimUnavailableError extends Error {
  constructor(reason: string) {
    super(`the edge could not be asked for the job: ${reason}`);
    this.name = 'ClaimUnavailableError';
  }
}

export type JobClaims = {
  readonly runnerId: string;
  claim(request: JobRequest): Promise<ClaimVerdict>;
  /** Best effort: gives back a claim for a job this runner did not take after all. */
  release(request: JobRequest): Promise<void>;
};

export function edgeClaims(options: { secret: string; log: Logger; runnerId?: string; fetch?: typeof fetch }): JobClaims {
  const runnerId = options.runnerId ?? newRunnerId();
  const send = options.fetch ?? fetch;

  async function ask(request: JobRequest, action: 'claim' | 'release'): Promise<ClaimAnswer> {
    const url = new URL(EDGE_PATHS.runnerClaims, request.events_url);
    const body = JSON.stringify({ job_id: request.job_id, attempt: request.attempt, runner_id: runnerId, action });
    let response: Response;
    try {
      const signature = await signMessage(options.secret, { method: 'POST', path: url.pathname, body });
      response = await send(url, { method: 'POST', headers: { 'content-type': 'application/json', ...signature }, body, signal: AbortSignal.timeout(CLAIM_TIMEOUT_MS) });
    } catch (error) {
      throw new ClaimUnavailableError(String(error));
    }
    const text = await response.text();
    if (response.status === 404) return { job_id: request.job_id, attempt: request.attempt, outcome: 'stale' };
    if (!response.ok) throw new ClaimUnavailableError(`${response.status} ${text.slice(0, 200)}`);
    const parsed = ClaimAnswer.safeParse(JSON.parse(text));
    if (!parsed.success) throw new ClaimUnavailableError(`unexpected answer ${text.slice(0, 200)}`);
    return parsed.data;
  }

  return {
    runnerId,
    async claim(request) {
      const { outcome } = await ask(request, 'claim');
      if (outcome === 'released') throw new ClaimUnavailableError('the edge answered a claim with "released"');
      options.log.info('job claim', { job_id: request.job_id, attempt: request.attempt, runner_id: runnerId, outcome });
      return outcome;
    },
    async release(request) {
      try {
        await ask(request, 'release');
      } catch (error) {
        // The claim stays until the edge re-dispatches the job as a new attempt after its lease: slower, never wrong.
        options.log.warn('job claim release failed', { job_id: request.job_id, attempt: request.attempt, error: String(error) });
      }
    },
  };
}
