// A real HTTP server standing in for the edge's `/internal/runner/events` (the edge has its own issue): it verifies
// every signature with the contract's code, validates every event, deduplicates by event id, and can be told to fail
// its first acknowledgements or to ask the runner to cancel a job.
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { EDGE_PATHS, JobClaim, RunnerEvent, verifyRequest, type ClaimAnswer, type EventAck } from '../../../contract/index.ts';

export type FakeEdge = {
  url: string;
  eventsUrl: string;
  /** Applied events, in arrival order, without duplicates. */
  readonly events: RunnerEvent[];
  /** Every request, with the status the fake answered. */
  readonly requests: Array<{ status: number; eventId?: string; type?: string }>;
  /** Answer the next `count` well-formed events with `status` (503 by default) instead of applying them. */
  failNext(count: number, status?: 503 | 401 | 409 | 422 | 404): void;
  /** Claims answered, in order (the edge grants each job attempt to the first runner that asks). */
  readonly claims: Array<{ jobId: string; attempt: number; runnerId: string; action: string; outcome: ClaimAnswer['outcome'] }>;
  /** Answer `cancel: true` to events of this job. */
  cancelJob(jobId: string): void;
  /** Serves these bytes at a one-off input URL (as the edge's signed input links), returned. */
  serveInput(bytes: Uint8Array): string;
  /** Resolves with the first applied event matching `predicate` (already received or future). */
  waitFor(predicate: (event: RunnerEvent) => boolean, timeoutMs?: number): Promise<RunnerEvent>;
  close(): Promise<void>;
};

const DEFAULT_WAIT_MS = 60_000;

export async function startFakeEdge(options: { secret: string; port?: number }): Promise<FakeEdge> {
  const events: RunnerEvent[] = [];
  const requests: FakeEdge['requests'] = [];
  const seen = new Set<string>();
  const canceled = new Set<string>();
  const waiters = new Set<() => void>();
  let failuresLeft = 0;
  let failureStatus: 503 | 401 | 409 | 422 | 404 = 503;
  const inputs = new Map<string, Uint8Array>();
  const claims: FakeEdge['claims'] = [];
  /** `${job_id}#${attempt}` → the runner holding it, as the edge keeps it in the jobs row (edge/jobs/claims.ts). */
  const holders = new Map<string, string>();

  const app = new Hono();
  app.get('/internal/runner/inputs', (c) => {
    const bytes = inputs.get(c.req.query('key') ?? '');
    if (!bytes) return c.json({ error: { code: 'not_found', message: 'expired or unknown input' } }, 404);
    return c.body(bytes.slice().buffer, 200, { 'content-type': 'application/octet-stream' });
  });
  app.post(EDGE_PATHS.runnerClaims, async (c) => {
    const { result, body } = await verifyRequest([options.secret], c.req.raw);
    if (!result.ok) return c.json({ error: { code: 'unauthorized', message: result.reason } }, 401);
    const parsed = JobClaim.safeParse(JSON.parse(body));
    if (!parsed.success) return c.json({ error: { code: 'invalid_claim', message: parsed.error.message } }, 422);
    const { job_id, attempt, runner_id, action } = parsed.data;
    const slot = `${job_id}#${attempt}`;
    let outcome: ClaimAnswer['outcome'];
    if (action === 'release') {
      if (holders.get(slot) === runner_id) holders.delete(slot);
      outcome = 'released';
    } else {
      const holder = holders.get(slot) ?? runner_id;
      holders.set(slot, holder);
      outcome = holder === runner_id ? 'granted' : 'held';
    }
    claims.push({ jobId: job_id, attempt, runnerId: runner_id, action, outcome });
    return c.json({ job_id, attempt, outcome } satisfies ClaimAnswer);
  });
  app.post(EDGE_PATHS.runnerEvents, async (c) => {
    const { result, body } = await verifyRequest([options.secret], c.req.raw);
    if (!result.ok) {
      requests.push({ status: 401 });
      return c.json({ error: { code: 'unauthorized', message: result.reason } }, 401);
    }
    const parsed = RunnerEvent.safeParse(JSON.parse(body));
    if (!parsed.success) {
      requests.push({ status: 422 });
      return c.json({ error: { code: 'invalid_event', message: parsed.error.message } }, 422);
    }
    const event = parsed.data;
    if (result.id !== event.event_id) {
      requests.push({ status: 422, eventId: event.event_id });
      return c.json({ error: { code: 'invalid_event', message: 'hdb-message-id must be the event_id' } }, 422);
    }
    if (failuresLeft > 0) {
      failuresLeft--;
      requests.push({ status: failureStatus, eventId: event.event_id, type: event.type });
      return c.json({ error: { code: 'failing_on_purpose', message: `the edge answers ${failureStatus} on purpose` } }, failureStatus);
    }
    const duplicate = seen.has(event.event_id);
    if (!duplicate) {
      seen.add(event.event_id);
      events.push(event);
      for (const wake of [...waiters]) wake();
    }
    requests.push({ status: 200, eventId: event.event_id, type: event.type });
    const ack: EventAck = { event_id: event.event_id, outcome: duplicate ? 'duplicate' : 'applied', cancel: canceled.has(event.job_id) };
    return c.json(ack);
  });

  const server = await new Promise<ServerType>((resolve) => {
    const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: options.port ?? 0 }, () => resolve(started));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    eventsUrl: `${url}${EDGE_PATHS.runnerEvents}`,
    events,
    requests,
    claims,
    failNext: (count, status = 503) => {
      failuresLeft = count;
      failureStatus = status;
    },
    cancelJob: (jobId) => {
      canceled.add(jobId);
    },
    serveInput: (bytes) => {
      const key = crypto.randomUUID();
      inputs.set(key, bytes);
      return `${url}/internal/runner/inputs?key=${key}`;
    },
    waitFor: (predicate, timeoutMs = DEFAULT_WAIT_MS) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(predicate);
          if (!found) return false;
          clearTimeout(timer);
          waiters.delete(wake);
          resolve(found);
          return true;
        };
        const wake = () => void check();
        const timer = setTimeout(() => {
          waiters.delete(wake);
          reject(new Error(`no matching event within ${timeoutMs} ms; got ${events.map((e) => `${e.job_id}:${e.type}`).join(', ')}`));
        }, timeoutMs);
        if (!check()) waiters.add(wake);
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  };
}
