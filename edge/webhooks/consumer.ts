import { and, eq, isNull, lt } from 'drizzle-orm';
import { webhookDeliveries } from '../../db/schema/webhooks.ts';
import type { WebhookDb } from './db.ts';
import { logWebhook } from './log.ts';
import { newDispatchToken, sendAttemptMessage, webhookQueueMessageSchema, type WebhookQueue } from './queue-message.ts';
import { nextRetryDelaySeconds, type WebhookRetrySchedule } from './retry-schedule.ts';
import type { Keyring } from '../lib/sealing.ts';
import { ensureWebhookSecrets } from './secrets-store.ts';
import { postWebhook, WEBHOOK_TIMEOUT_MS, type AttemptOutcome, type FetchLike } from './send.ts';
import { signWebhook } from './sign.ts';
import type { WebhookTargetPolicy } from './target-policy.ts';

/** A claimed attempt is considered lost (worker evicted mid-attempt) this long after the claim. */
export const ATTEMPT_CLAIM_LEASE_SECONDS = Math.ceil(WEBHOOK_TIMEOUT_MS / 1000) * 6;
/** A message may arrive a little before its due time (clock skew between Queue and Worker): attempt anyway. */
const EARLY_ARRIVAL_TOLERANCE_SECONDS = 5;
/** A message that names a row we cannot see yet (the enqueuing transaction has not committed) is retried this often. */
const MISSING_ROW_RETRIES = 3;
const MISSING_ROW_RETRY_DELAY_SECONDS = 10;
/** A database or Queue failure while handling a message: let Cloudflare Queues redeliver it. */
const INFRASTRUCTURE_RETRY_DELAY_SECONDS = 30;

export interface WebhookConsumerDeps {
  db: WebhookDb;
  queue: WebhookQueue;
  policy: WebhookTargetPolicy;
  /** Opens the tenant's sealed signing secrets (`webhookKeyringFromEnv`). */
  keyring: Keyring;
  now?: () => Date;
  /** Uniform in [0, 1), for the retry jitter. */
  random?: () => number;
  /** The deployment's schedule (`retryScheduleFromEnv`); production's when absent. */
  schedule?: WebhookRetrySchedule;
  fetch?: FetchLike;
  timeoutMs?: number;
}

/** The part of a Cloudflare `Message` we use. */
export interface WebhookBatchMessage {
  readonly body: unknown;
  readonly attempts: number;
  ack(): void;
  retry(options?: { delaySeconds?: number }): void;
}

/**
 * The `queue()` handler body for the `webhooks` Queue. Messages are independent (each names its own delivery), so they
 * are handled concurrently and one failing never blocks another.
 */
export async function consumeWebhookBatch(batch: { readonly messages: readonly WebhookBatchMessage[] }, deps: WebhookConsumerDeps): Promise<void> {
  await Promise.all(
    batch.messages.map(async (message) => {
      try {
        const verdict = await handleAttemptMessage(message.body, deps);
        if (verdict === 'retry-missing' && message.attempts <= MISSING_ROW_RETRIES) {
          message.retry({ delaySeconds: MISSING_ROW_RETRY_DELAY_SECONDS });
        } else {
          message.ack();
        }
      } catch (error) {
        logWebhook('error', 'webhook message failed; the Queue will redeliver it', { error: String(error) });
        message.retry({ delaySeconds: INFRASTRUCTURE_RETRY_DELAY_SECONDS });
      }
    }),
  );
}

type Verdict = 'done' | 'stale' | 'rescheduled' | 'retry-missing' | 'malformed';

export async function handleAttemptMessage(body: unknown, deps: WebhookConsumerDeps): Promise<Verdict> {
  const parsed = webhookQueueMessageSchema.safeParse(body);
  if (!parsed.success) {
    logWebhook('error', 'malformed webhook queue message dropped', { issues: parsed.error.issues.map((i) => i.message) });
    return 'malformed';
  }
  const { deliveryId, token } = parsed.data;
  const { db } = deps;
  const now = deps.now?.() ?? new Date();

  const [row] = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, deliveryId));
  if (!row) return 'retry-missing';
  // Another message owns this delivery now (a duplicate, a retry superseded by a replay, or a finished delivery).
  if (row.state !== 'pending' || row.dispatchToken !== token) return 'stale';

  // Waits longer than the Queue's 12 h limit arrive early by design: send the rest of the wait.
  const dueInSeconds = row.nextAttemptAt ? (row.nextAttemptAt.getTime() - now.getTime()) / 1000 : 0;
  if (dueInSeconds > EARLY_ARRIVAL_TOLERANCE_SECONDS) {
    await sendAttemptMessage(deps.queue, deliveryId, token, dueInSeconds);
    return 'rescheduled';
  }

  const claimed = await db
    .update(webhookDeliveries)
    .set({ dispatchToken: null, nextAttemptAt: new Date(now.getTime() + ATTEMPT_CLAIM_LEASE_SECONDS * 1000), updatedAt: now })
    .where(and(eq(webhookDeliveries.id, deliveryId), eq(webhookDeliveries.dispatchToken, token), eq(webhookDeliveries.state, 'pending')))
    .returning({ id: webhookDeliveries.id });
  if (claimed.length === 0) return 'stale';

  const secrets = await ensureWebhookSecrets(db, deps.keyring, row.tenantId, now);
  const timestampSeconds = Math.floor(now.getTime() / 1000);
  const headers = await signWebhook({ id: row.id, timestampSeconds, body: row.body, secrets: secrets.map((s) => s.secret) });
  const outcome = await postWebhook({
    url: row.url,
    headers,
    body: row.body,
    policy: deps.policy,
    now,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.timeoutMs ? { timeoutMs: deps.timeoutMs } : {}),
  });
  await recordOutcome(deps, { id: row.id, attemptsBefore: row.attempts, firstAttemptAt: row.firstAttemptAt ?? now, tenantId: row.tenantId }, outcome, now);
  return 'done';
}

async function recordOutcome(
  deps: WebhookConsumerDeps,
  delivery: { id: string; tenantId: string; attemptsBefore: number; firstAttemptAt: Date },
  outcome: AttemptOutcome,
  now: Date,
): Promise<void> {
  const attempts = delivery.attemptsBefore + 1;
  const common = { attempts, firstAttemptAt: delivery.firstAttemptAt, lastAttemptAt: now, updatedAt: now };
  const ours = and(eq(webhookDeliveries.id, delivery.id), isNull(webhookDeliveries.dispatchToken), eq(webhookDeliveries.state, 'pending'));
  const logFields = { deliveryId: delivery.id, tenantId: delivery.tenantId, attempt: attempts };

  if (outcome.kind === 'delivered') {
    await deps.db
      .update(webhookDeliveries)
      .set({ ...common, state: 'delivered', lastStatus: outcome.status, lastError: null, nextAttemptAt: null, deliveredAt: now })
      .where(ours);
    logWebhook('info', 'webhook delivered', { ...logFields, status: outcome.status });
    return;
  }

  const delay =
    outcome.kind === 'refused'
      ? null
      : nextRetryDelaySeconds({
          attemptsMade: attempts,
          firstAttemptAt: delivery.firstAttemptAt,
          now,
          random: (deps.random ?? Math.random)(),
          retryAfterSeconds: outcome.retryAfterSeconds,
          ...(deps.schedule ? { schedule: deps.schedule } : {}),
        });
  const lastStatus = outcome.kind === 'failed' ? outcome.status : null;

  if (delay === null) {
    await deps.db
      .update(webhookDeliveries)
      .set({ ...common, state: 'dead', lastStatus, lastError: outcome.error, nextAttemptAt: null, deadAt: now })
      .where(ours);
    logWebhook('warn', 'webhook dead-lettered', { ...logFields, error: outcome.error });
    return;
  }

  const token = newDispatchToken();
  const updated = await deps.db
    .update(webhookDeliveries)
    .set({ ...common, lastStatus, lastError: outcome.error, nextAttemptAt: new Date(now.getTime() + delay * 1000), dispatchToken: token })
    .where(ours)
    .returning({ id: webhookDeliveries.id });
  if (updated.length === 0) return;
  logWebhook('info', 'webhook attempt failed; retry scheduled', { ...logFields, error: outcome.error, retryInSeconds: delay });
  await sendAttemptMessage(deps.queue, delivery.id, token, delay);
}

/** Overdue this long, a pending delivery's queue message is presumed lost (or its worker died mid-attempt). */
export const SWEEP_GRACE_SECONDS = 10 * 60;
const SWEEP_BATCH = 100;

/**
 * Cron: re-dispatch pending deliveries whose attempt is overdue by more than the grace period, with a fresh token so
 * that a late original message becomes a no-op. Returns how many were re-dispatched.
 */
export async function redispatchOverdueWebhooks(deps: { db: WebhookDb; queue: WebhookQueue; now?: () => Date }): Promise<number> {
  const now = deps.now?.() ?? new Date();
  const threshold = new Date(now.getTime() - SWEEP_GRACE_SECONDS * 1000);
  const overdue = await deps.db
    .select({ id: webhookDeliveries.id, nextAttemptAt: webhookDeliveries.nextAttemptAt })
    .from(webhookDeliveries)
    .where(and(eq(webhookDeliveries.state, 'pending'), lt(webhookDeliveries.nextAttemptAt, threshold)))
    .orderBy(webhookDeliveries.nextAttemptAt)
    .limit(SWEEP_BATCH);
  let count = 0;
  for (const row of overdue) {
    const token = newDispatchToken();
    const taken = await deps.db
      .update(webhookDeliveries)
      .set({ dispatchToken: token, nextAttemptAt: now, updatedAt: now })
      .where(and(eq(webhookDeliveries.id, row.id), eq(webhookDeliveries.state, 'pending'), lt(webhookDeliveries.nextAttemptAt, threshold)))
      .returning({ id: webhookDeliveries.id });
    if (taken.length === 0) continue;
    await sendAttemptMessage(deps.queue, row.id, token, 0);
    count++;
  }
  if (count > 0) logWebhook('warn', 'overdue webhooks re-dispatched', { count });
  return count;
}
