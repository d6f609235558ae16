import { checkWebhookTarget, type WebhookTargetPolicy } from './target-policy.ts';
import { parseRetryAfter } from './retry-schedule.ts';
import type { WebhookHeaders } from './sign.ts';

/**
 * One HTTP attempt. Short timeout: a receiver should acknowledge and process asynchronously (Standard Webhooks
 * guidance); holding a Worker for longer only delays every other delivery in the batch.
 */
export const WEBHOOK_TIMEOUT_MS = 10_000;
export const WEBHOOK_USER_AGENT = 'hyperdreambooth-webhooks/1';
/** What we keep of an error description, so a receiver cannot fill our table. */
const MAX_ERROR_LENGTH = 500;

export type AttemptOutcome =
  | { kind: 'delivered'; status: number }
  /** The receiver or the network failed: retry later. */
  | { kind: 'failed'; status: number | null; error: string; retryAfterSeconds: number | null }
  /** The target URL is not allowed (policy changed since the request was accepted): never retry. */
  | { kind: 'refused'; error: string };

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export async function postWebhook(input: {
  url: string;
  headers: WebhookHeaders;
  body: string;
  policy: WebhookTargetPolicy;
  now: Date;
  fetch?: FetchLike;
  timeoutMs?: number;
}): Promise<AttemptOutcome> {
  // Checked again at send time, not only when the request was accepted: policy is code and it may have tightened.
  const target = checkWebhookTarget(input.url, input.policy);
  if (!target.ok) return { kind: 'refused', error: `webhook URL refused: ${target.reason}` };

  const doFetch = input.fetch ?? ((url: string, init: RequestInit) => fetch(url, init));
  let response: Response;
  try {
    response = await doFetch(target.url.href, {
      method: 'POST',
      headers: { ...input.headers, 'content-type': 'application/json', 'user-agent': WEBHOOK_USER_AGENT },
      body: input.body,
      // A redirect could point anywhere, including addresses the policy refuses: never follow one.
      redirect: 'manual',
      signal: AbortSignal.timeout(input.timeoutMs ?? WEBHOOK_TIMEOUT_MS),
    });
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    return {
      kind: 'failed',
      status: null,
      error: truncate(timedOut ? `timed out after ${input.timeoutMs ?? WEBHOOK_TIMEOUT_MS} ms` : `network error: ${describe(error)}`),
      retryAfterSeconds: null,
    };
  }
  // We never read the receiver's body; release the connection.
  await response.body?.cancel().catch(() => undefined);

  if (response.status >= 200 && response.status < 300) return { kind: 'delivered', status: response.status };
  const error =
    response.status >= 300 && response.status < 400
      ? `receiver answered ${response.status} (redirects are not followed)`
      : `receiver answered ${response.status}`;
  return {
    kind: 'failed',
    status: response.status,
    error,
    retryAfterSeconds:
      response.status === 429 || response.status === 503 ? parseRetryAfter(response.headers.get('retry-after'), input.now) : null,
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function truncate(text: string): string {
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}…` : text;
}
