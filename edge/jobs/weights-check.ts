// Asks the runner whether an imported weight file fits the base model it serves (contract/CONTRACT.md,
// `POST /v1/weights/check`). The check needs the model pack's structure and digest, which only the runner has (the
// edge bundle never imports the runner: docs/architecture.md), and it is the very check a generation applies to its
// weights.
import { bytesToBase64, RUNNER_PATHS, signedFetch, WeightsCheckResult } from '../../contract/index.ts';
import type { Env } from '../env.ts';
import { ApiError, unprocessable } from '../lib/errors.ts';

/** Reading a file of a few MB is milliseconds on the runner; a runner that takes longer is treated as away. */
const RUNNER_CHECK_TIMEOUT_MS = 30_000;
/** What the client is told to wait when no runner could answer (runners restart in seconds: docs/deploy.md). */
const RUNNER_UNAVAILABLE_RETRY_AFTER_SECONDS = 10;

const unavailable = (why: string) =>
  new ApiError(503, 'runner_unavailable', `the weight file could not be checked now (${why}); send it again later`, null, {
    'retry-after': String(RUNNER_UNAVAILABLE_RETRY_AFTER_SECONDS),
  });

/** The file's figures when the runner accepts it; a 422 `invalid_weights` with the runner's reason when it does not. */
export async function checkWeightsOnRunner(env: Env, bytes: Uint8Array, sha256: string): Promise<WeightsCheckResult> {
  const url = `${env.RUNNER_URL.replace(/\/+$/, '')}${RUNNER_PATHS.weightsCheck}`;
  const body = JSON.stringify({ data_base64: bytesToBase64(bytes), sha256, byte_size: bytes.byteLength });
  let response: Response;
  try {
    response = await signedFetch(env.RUNNER_SECRET, url, { method: 'POST', body, signal: AbortSignal.timeout(RUNNER_CHECK_TIMEOUT_MS) });
  } catch (error) {
    throw unavailable(`runner unreachable: ${String(error)}`);
  }
  const text = await response.text();
  if (response.status === 422) {
    const reason = runnerMessage(text);
    throw unprocessable('invalid_weights', `the weight file was refused: ${reason}`, { reason });
  }
  if (!response.ok) throw unavailable(`the runner answered ${response.status}`);
  const parsed = WeightsCheckResult.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`the runner's weights check answer does not match the contract: ${parsed.error.message}`);
  return parsed.data;
}

function runnerMessage(text: string): string {
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof message === 'string') return message;
  } catch {
    // Not the runner's error shape: show what came.
  }
  return text.slice(0, 500);
}
