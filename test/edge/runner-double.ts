// Talks to the Node-side runner double (test/support/test-runner.ts) from inside workerd, and relays its signed
// events to the Worker, which has no listening port in tests.
import { inject, vi } from 'vitest';
import type { JobRequest, RunnerEvent } from '../../contract/index.ts';
import { call } from './helpers.ts';

/** Mirrors ReceivedJob in test/support/test-runner.ts (Node side; not importable here). */
export type SignedEvent = { headers: Record<string, string>; body: string; event: RunnerEvent };
export type ReceivedJob = { request: JobRequest; attempts: number[]; canceled: boolean; events: SignedEvent[] };

export const runnerUrl = () => inject('runnerUrl');
export const runnerSecret = () => inject('runnerSecret');

export async function runnerJob(jobId: string): Promise<ReceivedJob | null> {
  const res = await fetch(`${runnerUrl()}/control/jobs/${encodeURIComponent(jobId)}`);
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  return (await res.json()) as ReceivedJob;
}

/** Waits until the queue consumer has delivered the job (attempt `attempt`) to the runner double. */
export async function waitForRunnerJob(jobId: string, attempt = 1): Promise<ReceivedJob> {
  return vi.waitFor(
    async () => {
      const job = await runnerJob(jobId);
      if (!job || !job.attempts.includes(attempt)) throw new Error(`runner has not received ${jobId} attempt ${attempt} yet`);
      return job;
    },
    { timeout: 20_000, interval: 100 },
  );
}

export type Ack = { event_id: string; outcome: 'applied' | 'duplicate' | 'stale'; cancel: boolean };

export async function deliver(event: { headers: Record<string, string>; body: string }): Promise<Response> {
  return call('/internal/runner/events', { method: 'POST', headers: event.headers, body: event.body });
}

export async function deliverOk(event: { headers: Record<string, string>; body: string }): Promise<Ack> {
  const res = await deliver(event);
  if (res.status !== 200) throw new Error(`event rejected: ${res.status} ${await res.text()}`);
  return (await res.json()) as Ack;
}
