// The `jobs` Queue consumer: sends each queued job to the runner, signed. Back-pressure (503 + Retry-After) and
// network errors are retried with delay; when the retries run out the job fails with a clear error.
import { and, eq, sql } from 'drizzle-orm';
import { jobs } from '../../db/schema.ts';
import { RUNNER_PATHS, signedFetch } from '../../contract/index.ts';
import { openDb, type Queryable as Database } from '../db/client.ts';
import { settingsOf, type Env } from '../env.ts';
import { JobMessage } from './messages.ts';
import { MissingInputError, buildJobRequest } from './runner-request.ts';
import { EDGE_ERROR_CODES } from './state.ts';
import { cancelOnRunner, failJob, leaseFrom } from './transitions.ts';

const RUNNER_REQUEST_TIMEOUT_MS = 30_000;
/** Exponential backoff for runner faults: 5 s, 10 s, 20 s … capped at 5 min. */
const BACKOFF_BASE_SECONDS = 5;
const BACKOFF_MAX_SECONDS = 300;
/** Retry-After is honoured within these bounds. */
const RETRY_AFTER_MAX_SECONDS = 3600;

export type DispatchMessage = {
  readonly body: unknown;
  readonly attempts: number;
  ack(): void;
  retry(options?: { delaySeconds?: number }): void;
};

export function backoffSeconds(deliveryAttempt: number): number {
  return Math.min(BACKOFF_BASE_SECONDS * 2 ** Math.max(0, deliveryAttempt - 1), BACKOFF_MAX_SECONDS);
}

export function retryAfterSeconds(header: string | null): number | null {
  if (!header) return null;
  const seconds = /^\d+$/.test(header.trim()) ? Number(header) : (Date.parse(header) - Date.now()) / 1000;
  if (!Number.isFinite(seconds)) return null;
  return Math.min(Math.max(1, Math.ceil(seconds)), RETRY_AFTER_MAX_SECONDS);
}

function log(fields: Record<string, unknown>) {
  console.log(JSON.stringify({ level: 'info', component: 'dispatch', ...fields }));
}

type Outcome = { kind: 'done' } | { kind: 'retry'; delaySeconds: number; reason: string };

/** Claims the job for one attempt; the claim is undone if the runner does not take it. */
async function claim(db: Database, env: Env, jobId: string) {
  const now = new Date();
  const [row] = await db
    .update(jobs)
    .set({ status: 'dispatched', attempts: sql`${jobs.attempts} + 1`, dispatchedAt: now, leaseExpiresAt: leaseFrom(now, env), updatedAt: now })
    .where(and(eq(jobs.id, jobId), eq(jobs.status, 'queued')))
    .returning();
  return row ?? null;
}

async function unclaim(db: Database, env: Env, jobId: string, attempt: number) {
  const now = new Date();
  await db
    .update(jobs)
    .set({ status: 'queued', attempts: attempt - 1, leaseExpiresAt: leaseFrom(now, env), updatedAt: now })
    .where(and(eq(jobs.id, jobId), eq(jobs.status, 'dispatched'), eq(jobs.attempts, attempt)));
}

export async function dispatchOne(db: Database, env: Env, body: unknown): Promise<Outcome> {
  const parsed = JobMessage.safeParse(body);
  if (!parsed.success) return { kind: 'done' };
  const job = await claim(db, env, parsed.data.job_id);
  if (!job) return { kind: 'done' }; // canceled, already dispatched by a duplicate message, or unknown
  let requestBody: string;
  try {
    requestBody = JSON.stringify(await buildJobRequest(db, env, job, job.attempts));
  } catch (error) {
    if (!(error instanceof MissingInputError)) {
      await unclaim(db, env, job.id, job.attempts);
      throw error;
    }
    await failJob(db, env, job.id, 'invalid_input', error.message);
    return { kind: 'done' };
  }
  const url = `${env.RUNNER_URL.replace(/\/+$/, '')}${RUNNER_PATHS.jobs}`;
  let response: Response;
  try {
    response = await signedFetch(env.RUNNER_SECRET, url, { method: 'POST', body: requestBody, signal: AbortSignal.timeout(RUNNER_REQUEST_TIMEOUT_MS) });
  } catch (error) {
    await unclaim(db, env, job.id, job.attempts);
    return { kind: 'retry', delaySeconds: 0, reason: `runner unreachable: ${String(error)}` };
  }
  const text = await response.text();
  if (response.ok) {
    log({ msg: 'dispatched', job_id: job.id, attempt: job.attempts, status: response.status });
    // Canceled between our claim and the runner's answer: make sure the runner drops it.
    const [current] = await db.select({ status: jobs.status }).from(jobs).where(eq(jobs.id, job.id));
    if (current?.status === 'canceled') await cancelOnRunner(env, job.id);
    return { kind: 'done' };
  }
  if (response.status === 400 || response.status === 422) {
    await failJob(db, env, job.id, EDGE_ERROR_CODES.runnerRejected, `the runner rejected the job (${response.status}): ${text.slice(0, 500)}`);
    return { kind: 'done' };
  }
  await unclaim(db, env, job.id, job.attempts);
  return {
    kind: 'retry',
    delaySeconds: retryAfterSeconds(response.headers.get('retry-after')) ?? 0,
    reason: `runner answered ${response.status}`,
  };
}

/** Handles one message: retry with delay while deliveries remain, then fail the job. */
export async function handleDispatchMessage(db: Database, env: Env, message: DispatchMessage): Promise<void> {
  const outcome = await dispatchOne(db, env, message.body);
  if (outcome.kind === 'done') return message.ack();
  const { dispatchMaxRetries } = settingsOf(env);
  const jobId = JobMessage.parse(message.body).job_id;
  if (message.attempts >= dispatchMaxRetries) {
    log({ msg: 'dispatch retries exhausted', job_id: jobId, reason: outcome.reason });
    await failJob(db, env, jobId, EDGE_ERROR_CODES.runnerUnavailable, `the runner could not take the job after ${message.attempts} tries (${outcome.reason})`, ['queued']);
    return message.ack();
  }
  const delaySeconds = Math.max(outcome.delaySeconds, backoffSeconds(message.attempts));
  log({ msg: 'dispatch retry', job_id: jobId, reason: outcome.reason, delay_seconds: delaySeconds, delivery: message.attempts });
  message.retry({ delaySeconds });
}

export async function consumeJobsBatch(batch: { readonly messages: readonly DispatchMessage[] }, env: Env, ctx: ExecutionContext): Promise<void> {
  const handle = openDb(env);
  try {
    for (const message of batch.messages) {
      try {
        await handleDispatchMessage(handle.db, env, message);
      } catch (error) {
        console.error(JSON.stringify({ level: 'error', component: 'dispatch', msg: 'dispatch failed', error: String(error) }));
        message.retry({ delaySeconds: backoffSeconds(message.attempts) });
      }
    }
  } finally {
    ctx.waitUntil(handle.close());
  }
}
