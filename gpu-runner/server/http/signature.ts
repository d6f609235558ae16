// Verifies the edge's HMAC signature on every job request (CONTRACT.md "Signing"): bad or stale signatures and
// replayed message ids are answered 401 before the body is parsed. The verified body is handed on as `rawBody`.
import type { MiddlewareHandler } from 'hono';
import { ReplayGuard, verifyRequest, type VerifyFailure } from '../../../contract/index.ts';
import type { RunnerMetrics } from '../metrics.ts';
import { errorResponse } from './errors.ts';

export type SignedVariables = { rawBody: string };

const FAILURE_MESSAGES: Record<VerifyFailure, string> = {
  missing_headers: 'the request is not signed (hdb-message-id, hdb-timestamp and hdb-signature are required)',
  bad_timestamp: 'hdb-timestamp is not a Unix time in seconds',
  timestamp_out_of_window: 'hdb-timestamp is too far from the runner clock (stale or replayed message)',
  bad_signature_format: 'hdb-signature has no v1 entry',
  signature_mismatch: 'the signature does not match',
};

export function verifySignature(options: {
  secrets: readonly string[];
  replayGuard: ReplayGuard;
  metrics: RunnerMetrics;
}): MiddlewareHandler<{ Variables: SignedVariables }> {
  return async (c, next) => {
    const { result, body } = await verifyRequest(options.secrets, c.req.raw);
    if (!result.ok) {
      options.metrics.requestsRejected.inc({ reason: result.reason });
      return errorResponse(c, 401, 'unauthorized', FAILURE_MESSAGES[result.reason]);
    }
    if (!options.replayGuard.accept(result.id)) {
      options.metrics.requestsRejected.inc({ reason: 'replay' });
      return errorResponse(c, 401, 'replayed', `message ${result.id} was already received`);
    }
    c.set('rawBody', body);
    await next();
  };
}
