// The Worker: HTTP (Hono app), the `jobs` and `webhooks` Queue consumers, and the Cron sweep.
import { createApp } from './app.ts';
import { openDb } from './db/client.ts';
import type { Env } from './env.ts';
import { runCron } from './jobs/cron.ts';
import { consumeJobsBatch, type DispatchMessage } from './jobs/dispatch.ts';
import { consumeWebhookBatch } from './webhooks/consumer.ts';
import type { WebhookQueue } from './webhooks/queue-message.ts';
import { retryScheduleFromEnv } from './webhooks/retry-schedule.ts';
import { webhookKeyringFromEnv } from './webhooks/secrets-store.ts';
import { targetPolicyFromEnv } from './webhooks/target-policy.ts';

const app = createApp();

export const QUEUE_NAMES = { jobs: 'jobs', webhooks: 'webhooks' } as const;

export default {
  fetch: app.fetch,

  async queue(batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext): Promise<void> {
    if (batch.queue === QUEUE_NAMES.jobs) return consumeJobsBatch(batch as { messages: readonly DispatchMessage[] }, env, ctx);
    if (batch.queue === QUEUE_NAMES.webhooks) {
      const handle = openDb(env);
      try {
        await consumeWebhookBatch(batch, {
          db: handle.db,
          queue: env.WEBHOOKS_QUEUE as unknown as WebhookQueue,
          policy: targetPolicyFromEnv(env),
          keyring: await webhookKeyringFromEnv(env),
          schedule: retryScheduleFromEnv(env),
        });
      } finally {
        ctx.waitUntil(handle.close());
      }
      return;
    }
    console.error(JSON.stringify({ level: 'error', msg: 'message from an unknown queue', queue: batch.queue }));
    batch.retryAll();
  },

  async scheduled(_controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    const handle = openDb(env);
    try {
      await runCron(handle.db, env);
    } finally {
      ctx.waitUntil(handle.close());
    }
  },
} satisfies ExportedHandler<Env>;
