// Job events → tenant webhooks, through the webhooks module's delivery queue.
import { eq } from 'drizzle-orm';
import { generationImages, weights } from '../../db/schema.ts';
import type { Queryable as Database } from '../db/client.ts';
import type { Env } from '../env.ts';
import { settingsOf } from '../env.ts';
import { enqueueWebhook } from '../webhooks/enqueue.ts';
import type { WebhookEventType } from '../webhooks/events.ts';
import type { WebhookQueue } from '../webhooks/queue-message.ts';
import { presentGeneration, presentPersonalization } from './present.ts';
import type { JobRow } from './state.ts';

type JobEventAction = 'started' | 'progress' | 'succeeded' | 'failed' | 'canceled';

/** Enqueues the webhook for `action` on `job` (as it is now) if the job asked for it. Call within the transaction. */
export async function notifyJob(db: Database, env: Env, job: JobRow, action: JobEventAction): Promise<void> {
  if (!job.webhookUrl) return;
  const type = `${job.kind}.${action}`;
  // Generations only announce their outcome (docs/api.md).
  if (job.kind === 'generation' && action !== 'succeeded' && action !== 'failed') return;
  let data: unknown;
  if (job.kind === 'personalization') {
    const [row] = await db.select({ id: weights.id }).from(weights).where(eq(weights.jobId, job.id));
    data = presentPersonalization(job, row?.id ?? null);
  } else {
    const images = await db.select().from(generationImages).where(eq(generationImages.jobId, job.id));
    data = presentGeneration(job, images, settingsOf(env).publicUrl);
  }
  await enqueueWebhook(
    { db, queue: env.WEBHOOKS_QUEUE as unknown as WebhookQueue },
    {
      tenantId: job.tenantId,
      jobId: job.id,
      url: job.webhookUrl,
      events: job.webhookEvents,
      type: type as WebhookEventType,
      data,
    },
  );
}
