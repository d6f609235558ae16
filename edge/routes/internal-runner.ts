// The runner's side door: signed events and claims (CONTRACT.md) and signed input downloads. Not part of the public
// document.
import { Hono } from 'hono';
import type { ZodType } from 'zod';
import { EDGE_PATHS, JobClaim, RunnerEvent, verifyRequest, type VerifyFailure } from '../../contract/index.ts';
import type { AppEnv } from '../app-types.ts';
import { runnerSecrets } from '../env.ts';
import { INPUT_PATH, verifyInputUrl } from '../jobs/input-urls.ts';
import { answerClaim } from '../jobs/claims.ts';
import { applyRunnerEvent } from '../jobs/runner-events.ts';
import { ApiError, unprocessable } from '../lib/errors.ts';
import { limitBody } from '../middleware/body-limit.ts';
import { zodDetails } from '../middleware/errors.ts';

/** A `succeeded` event carries the result files inline (base64); generous for several PNGs and LoRA exports. */
export const RUNNER_EVENT_BODY_LIMIT = 64 * 1024 * 1024;
/** A claim is a few ids. */
const CLAIM_BODY_LIMIT = 4 * 1024;

const SIGNATURE_MESSAGES: Record<VerifyFailure, string> = {
  missing_headers: 'missing signature headers',
  bad_timestamp: 'malformed timestamp',
  timestamp_out_of_window: 'timestamp outside the replay window',
  bad_signature_format: 'malformed signature',
  signature_mismatch: 'signature does not match',
};

/** A runner request's body: its signature checked (401), then parsed as JSON (400) and by `schema` (422 `code`). */
async function signedBody<T>(env: AppEnv['Bindings'], request: Request, schema: ZodType<T>, code: string, message: string): Promise<T> {
  const { result, body } = await verifyRequest(runnerSecrets(env), request);
  if (!result.ok) throw new ApiError(401, 'invalid_signature', SIGNATURE_MESSAGES[result.reason], { reason: result.reason });
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new ApiError(400, 'invalid_json', 'request body is not valid JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw unprocessable(code, message, zodDetails(parsed.error));
  return parsed.data;
}

export function internalRunnerRouter() {
  const app = new Hono<AppEnv>();

  app.post(EDGE_PATHS.runnerEvents, limitBody(RUNNER_EVENT_BODY_LIMIT), async (c) => {
    const event = await signedBody(c.env, c.req.raw, RunnerEvent, 'invalid_event', 'the event does not match the contract');
    const ack = await applyRunnerEvent(c.get('db'), c.env, event);
    console.log(JSON.stringify({ level: 'info', component: 'runner-events', job_id: event.job_id, event_id: ack.event_id, type: event.type, outcome: ack.outcome }));
    return c.json(ack, 200);
  });

  app.post(EDGE_PATHS.runnerClaims, limitBody(CLAIM_BODY_LIMIT), async (c) => {
    const claim = await signedBody(c.env, c.req.raw, JobClaim, 'invalid_claim', 'the claim does not match the contract');
    // A replayed claim message can only get the same answer again: no replay check needed beyond the signature window.
    const answer = await answerClaim(c.get('db'), claim);
    console.log(JSON.stringify({ level: 'info', component: 'runner-claims', job_id: answer.job_id, attempt: answer.attempt, runner_id: claim.runner_id, outcome: answer.outcome }));
    return c.json(answer, 200);
  });

  app.get(INPUT_PATH, async (c) => {
    const key = await verifyInputUrl(runnerSecrets(c.env), new URL(c.req.url));
    if (!key) throw new ApiError(403, 'invalid_signature', 'the input URL is invalid or expired');
    const object = await c.env.BUCKET.get(key);
    if (!object) throw new ApiError(404, 'not_found', 'input not found');
    return c.body(object.body, 200, { 'content-type': object.httpMetadata?.contentType ?? 'application/octet-stream' });
  });

  return app;
}
