// The runner's HTTP surface (CONTRACT.md "Edge → runner"). Job routes are signed; health, readiness and
// metrics are for the platform and carry no job data.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { base64ToBytes, JobRequest, ReplayGuard, sha256Hex, WeightsCheckRequest, type JobAccepted } from '../../contract/index.ts';
import { errorResponse } from './http/errors.ts';
import { verifySignature, type SignedVariables } from './http/signature.ts';
import { ClaimUnavailableError, type JobClaims } from './jobs/claims.ts';
import { InvalidInputError } from './jobs/executor.ts';
import type { Logger } from './log.ts';
import type { RunnerMetrics } from './metrics.ts';
import type { RunnerService } from './service.ts';

/** Retry-After while models load or the runner stops: the edge retries soon, likely on another runner. */
const NOT_READY_RETRY_AFTER_SECONDS = 5;

export type AppOptions = {
  service: RunnerService;
  metrics: RunnerMetrics;
  log: Logger;
  secrets: readonly string[];
  maxRequestBytes: number;
  /** Asks the edge for each new attempt before taking it (jobs/claims.ts). */
  claims: JobClaims;
};

export function createApp(options: AppOptions): Hono {
  const { service, metrics, log } = options;
  const app = new Hono();

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get('/readyz', (c) => {
    const reasons = service.notReadyReasons();
    const body = {
      ready: reasons.length === 0,
      reasons,
      queue: { depth: service.queue.depth, running: service.queue.running },
      // kind → the provider asked for and the one its sessions run on (kinds appear once opened: the VAE decoder at
      // warmup, the others with the first job that needs them)
      session_providers: service.sessionProviders(),
    };
    return c.json(body, reasons.length === 0 ? 200 : 503);
  });

  app.get('/metrics', async (c) => c.body(await metrics.render(), 200, { 'content-type': metrics.contentType }));

  // One replay guard for every signed route: a message id is spent whichever path it was signed for.
  const replayGuard = new ReplayGuard();
  const signedRoutes = () => {
    const routes = new Hono<{ Variables: SignedVariables }>();
    routes.use(
      '*',
      bodyLimit({
        maxSize: options.maxRequestBytes,
        onError: (c) => {
          metrics.requestsRejected.inc({ reason: 'too_large' });
          return errorResponse(c, 413, 'payload_too_large', `the request body exceeds ${options.maxRequestBytes} bytes; send large inputs as URLs`);
        },
      }),
    );
    routes.use('*', verifySignature({ secrets: options.secrets, replayGuard, metrics }));
    return routes;
  };

  const jobs = signedRoutes();

  jobs.post('/', async (c) => {
    let json: unknown;
    try {
      json = JSON.parse(c.var.rawBody);
    } catch {
      metrics.requestsRejected.inc({ reason: 'malformed_json' });
      return errorResponse(c, 400, 'malformed_json', 'the body is not valid JSON');
    }
    const parsed = JobRequest.safeParse(json);
    if (!parsed.success) {
      metrics.requestsRejected.inc({ reason: 'invalid_job' });
      const details = parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
      return errorResponse(c, 422, 'invalid_job', 'the job does not match the contract', details);
    }
    const request = parsed.data;
    const notReady = service.notReadyReasons().filter((reason) => reason !== 'queue full');
    if (notReady.length > 0 && !service.queue.get(request.job_id)) {
      metrics.requestsRejected.inc({ reason: 'not_ready' });
      return errorResponse(c, 503, 'not_ready', `the runner is not taking jobs: ${notReady.join(', ')}`, undefined, {
        'retry-after': String(NOT_READY_RETRY_AFTER_SECONDS),
      });
    }
    // An attempt this runner already has is its own duplicate (the queue answers it); any other is claimed at the edge
    // first, so the same signed request sent to another runner behind the URL is not run there too.
    const claimed = service.queue.get(request.job_id)?.attempt !== request.attempt;
    if (claimed) {
      let verdict;
      try {
        verdict = await options.claims.claim(request);
      } catch (error) {
        if (!(error instanceof ClaimUnavailableError)) throw error;
        metrics.requestsRejected.inc({ reason: 'claim_unavailable' });
        log.warn('job not taken: the edge could not be asked', { job_id: request.job_id, reason: error.message });
        return errorResponse(c, 503, 'claim_unavailable', error.message, undefined, { 'retry-after': String(NOT_READY_RETRY_AFTER_SECONDS) });
      }
      if (verdict === 'held') {
        metrics.requestsRejected.inc({ reason: 'held_elsewhere' });
        log.info('job held by another runner', { job_id: request.job_id, attempt: request.attempt });
        return c.json({ job_id: request.job_id, status: 'duplicate' } satisfies JobAccepted, 202);
      }
      if (verdict === 'stale') {
        metrics.requestsRejected.inc({ reason: 'stale' });
        return errorResponse(c, 409, 'stale_job', `attempt ${request.attempt} of job ${request.job_id} is not the edge's current one`);
      }
    }
    let outcome;
    try {
      outcome = await service.submit(request);
    } catch (error) {
      if (claimed) await options.claims.release(request);
      if (!(error instanceof InvalidInputError)) throw error;
      metrics.requestsRejected.inc({ reason: 'invalid_input' });
      log.warn('job refused: invalid input', { job_id: request.job_id, reason: error.message });
      return errorResponse(c, 422, 'invalid_input', error.message);
    }
    if (claimed && (outcome.kind === 'full' || outcome.kind === 'closed')) await options.claims.release(request);
    switch (outcome.kind) {
      case 'accepted':
      case 'duplicate':
        return c.json({ job_id: request.job_id, status: outcome.kind } satisfies JobAccepted, 202);
      case 'full':
        metrics.requestsRejected.inc({ reason: 'queue_full' });
        return errorResponse(c, 503, 'queue_full', 'the runner queue is full; retry later', undefined, {
          'retry-after': String(outcome.retryAfterSeconds),
        });
      case 'closed':
        metrics.requestsRejected.inc({ reason: 'not_ready' });
        return errorResponse(c, 503, 'not_ready', 'the runner is shutting down', undefined, {
          'retry-after': String(NOT_READY_RETRY_AFTER_SECONDS),
        });
    }
  });

  jobs.get('/:id', (c) => {
    const view = service.view(c.req.param('id'));
    return view ? c.json(view) : errorResponse(c, 404, 'not_found', 'no such job on this runner');
  });

  jobs.delete('/:id', (c) => {
    const jobId = c.req.param('id');
    const outcome = service.cancel(jobId);
    if (outcome === 'unknown') return errorResponse(c, 404, 'not_found', 'no such job on this runner');
    if (outcome === 'already_finished') return c.json({ job_id: jobId, status: service.view(jobId)?.status ?? 'finished' }, 200);
    return c.json({ job_id: jobId, status: outcome }, 202);
  });

  app.route('/v1/jobs', jobs);

  // contract/CONTRACT.md, `POST /v1/weights/check`: the edge asks before it stores a file it did not get from a job.
  const weights = signedRoutes();
  weights.post('/check', async (c) => {
    let parsed;
    try {
      parsed = WeightsCheckRequest.safeParse(JSON.parse(c.var.rawBody));
    } catch {
      return errorResponse(c, 400, 'malformed_json', 'the body is not valid JSON');
    }
    if (!parsed.success) return errorResponse(c, 422, 'invalid_request', 'the body does not match the contract', parsed.error.issues);
    const checker = service.weightsChecker();
    if ('unavailable' in checker) {
      return checker.unavailable === 'not_ready'
        ? errorResponse(c, 503, 'not_ready', 'the models are not loaded', undefined, { 'retry-after': String(NOT_READY_RETRY_AFTER_SECONDS) })
        : errorResponse(c, 501, 'not_supported', 'this runner cannot check weight files');
    }
    let bytes: Uint8Array;
    try {
      bytes = base64ToBytes(parsed.data.data_base64);
    } catch {
      return errorResponse(c, 422, 'invalid_request', 'data_base64 is not base64');
    }
    if (bytes.byteLength !== parsed.data.byte_size || (await sha256Hex(bytes)) !== parsed.data.sha256) {
      return errorResponse(c, 422, 'invalid_request', 'the file does not match its byte_size and sha256');
    }
    try {
      return c.json(checker.check(bytes), 200);
    } catch (error) {
      if (!(error instanceof InvalidInputError)) throw error;
      return errorResponse(c, 422, 'invalid_weights', error.message);
    }
  });
  app.route('/v1/weights', weights);

  app.notFound((c) => errorResponse(c, 404, 'not_found', `no route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => {
    log.error('request failed', { method: c.req.method, path: c.req.path, error });
    return errorResponse(c, 500, 'internal', 'the runner failed to handle the request');
  });
  return app;
}
